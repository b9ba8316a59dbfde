//! Test data created through the API itself, and small request helpers
//! for the resource tests: `post_json`, `create_user`, `create_plan`,
//! `subscribe`, `create_invoice`, `pay` …

use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// `POST /api/v1<path>` with a JSON body.
pub async fn post_json(app: &TestApp, path: &str, body: &Value) -> anyhow::Result<Response> {
    Ok(app
        .api_client
        .post(app.url(&format!("/api/v1{path}")))
        .json(body)
        .send()
        .await?)
}

/// `PATCH /api/v1<path>` with a JSON body and, if given, `If-Match`.
pub async fn patch_json(
    app: &TestApp,
    path: &str,
    if_match: Option<&str>,
    body: &Value,
) -> anyhow::Result<Response> {
    let mut request = app
        .api_client
        .patch(app.url(&format!("/api/v1{path}")))
        .json(body);
    if let Some(version) = if_match {
        request = request.header("If-Match", version);
    }
    Ok(request.send().await?)
}

/// `POST /api/v1<path>` without a body and, if given, `If-Match`.
pub async fn post_empty(
    app: &TestApp,
    path: &str,
    if_match: Option<&str>,
) -> anyhow::Result<Response> {
    let mut request = app.api_client.post(app.url(&format!("/api/v1{path}")));
    if let Some(version) = if_match {
        request = request.header("If-Match", version);
    }
    Ok(request.send().await?)
}

/// `GET /api/v1<path>`.
pub async fn get(app: &TestApp, path: &str) -> anyhow::Result<Response> {
    Ok(app
        .api_client
        .get(app.url(&format!("/api/v1{path}")))
        .send()
        .await?)
}

/// The JSON body of a response with `status`.
pub async fn json_with(response: Response, status: u16) -> anyhow::Result<Value> {
    let actual = response.status().as_u16();
    let url = response.url().clone();
    let text = response.text().await?;
    assert_eq!(actual, status, "{url}: {text}");
    Ok(serde_json::from_str(&text)?)
}

/// The body of `GET /api/v1<path>` (200).
pub async fn get_json(app: &TestApp, path: &str) -> anyhow::Result<Value> {
    json_with(get(app, path).await?, 200).await
}

/// `total` of the list at `path`.
pub async fn total(app: &TestApp, path: &str) -> anyhow::Result<u64> {
    let list = get_json(app, path).await?;
    list["total"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no total in {list}"))
}

/// The `ETag` header of a response.
pub fn etag(response: &Response) -> String {
    response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// A user `email` (201).
pub async fn create_user(app: &TestApp, email: &str) -> anyhow::Result<Value> {
    let body = json!({"email": email, "password": "correct horse battery"});
    json_with(post_json(app, "/users", &body).await?, 201).await
}

/// A monthly plan in EUR (201).
pub async fn create_plan(app: &TestApp, slug: &str, price: &str) -> anyhow::Result<Value> {
    create_plan_with(
        app,
        &json!({"name": slug.to_uppercase(), "slug": slug, "price": price,
                "currency": "EUR", "billing_period": "monthly"}),
    )
    .await
}

/// A plan from `body` (201).
pub async fn create_plan_with(app: &TestApp, body: &Value) -> anyhow::Result<Value> {
    json_with(post_json(app, "/plans", body).await?, 201).await
}

/// A currency `code` at `rate` against the default (201).
pub async fn create_currency(app: &TestApp, code: &str, rate: &str) -> anyhow::Result<Value> {
    let body = json!({"code": code, "name": code, "exchange_rate": rate});
    json_with(post_json(app, "/currencies", &body).await?, 201).await
}

/// The German VAT, 19 % (201).
pub async fn create_vat(app: &TestApp) -> anyhow::Result<Value> {
    let body =
        json!({"name": "German VAT", "code": "DE_VAT", "rate": "19.00", "country_code": "DE"});
    json_with(post_json(app, "/taxes", &body).await?, 201).await
}

/// A pending subscription of `user` to `plan` (201).
pub async fn subscribe(app: &TestApp, user: &Value, plan: &Value) -> anyhow::Result<Value> {
    let body = json!({"user_id": user["id"], "plan_id": plan["id"]});
    json_with(post_json(app, "/subscriptions", &body).await?, 201).await
}

/// A pending invoice of `user` for `plan` and `subscription` (201).
pub async fn create_invoice(
    app: &TestApp,
    user: &Value,
    plan: &Value,
    subscription: Option<&Value>,
) -> anyhow::Result<Value> {
    let body = json!({
        "user_id": user["id"],
        "plan_id": plan["id"],
        "subscription_id": subscription.map(|s| s["id"].clone()),
    });
    json_with(post_json(app, "/invoices", &body).await?, 201).await
}

/// A user, a 10.00 EUR monthly plan, a pending subscription and a pending
/// invoice for it.
pub struct Billed {
    pub user: Value,
    pub plan: Value,
    pub subscription: Value,
    pub invoice: Value,
}

/// Creates a [`Billed`] set for `email`.
pub async fn billed(app: &TestApp, email: &str, slug: &str) -> anyhow::Result<Billed> {
    let user = create_user(app, email).await?;
    let plan = create_plan(app, slug, "10.00").await?;
    let subscription = subscribe(app, &user, &plan).await?;
    let invoice = create_invoice(app, &user, &plan, Some(&subscription)).await?;
    Ok(Billed {
        user,
        plan,
        subscription,
        invoice,
    })
}

/// The body of a payment by card.
pub fn card() -> Value {
    json!({"payment_method": "card", "payment_reference": "ch_1"})
}

/// `POST /api/v1/invoices/{id}/pay` by card with `key`.
pub async fn pay(app: &TestApp, invoice_id: &Value, key: &str) -> anyhow::Result<Response> {
    Ok(app
        .api_client
        .post(app.url(&format!("/api/v1/invoices/{invoice_id}/pay")))
        .header("Idempotency-Key", key)
        .json(&card())
        .send()
        .await?)
}
