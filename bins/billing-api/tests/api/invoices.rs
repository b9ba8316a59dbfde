//! Invoices: amounts from the plan, the currency and the tax, numbers,
//! paying (which activates the subscription), failing, cancelling,
//! refunding, and the refusals that write nothing.

use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::json;

use crate::fixtures::{
    billed, card, create_currency, create_user, create_vat, etag, get, get_json, json_with, pay,
    post_empty, post_json, total,
};
use crate::helpers::{assert_problem, spawn_app};

async fn invoices_are_priced_numbered_and_paid(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    create_vat(&app).await?;
    create_currency(&app, "USD", "1.08").await?;
    let set = billed(&app, "gus@example.com", "pro").await?;
    let invoice = &set.invoice;
    let number = invoice["invoice_number"].as_str().unwrap();
    let year = &invoice["invoiced_at"].as_str().unwrap()[..4];
    assert_eq!(number, format!("INV-{year}-000001"));
    assert_eq!(
        (
            invoice["amount"].clone(),
            invoice["net_amount"].clone(),
            invoice["tax_amount"].clone()
        ),
        (json!("10.00"), json!("10.00"), json!("0.00"))
    );
    assert_eq!(invoice["status"], "pending");
    assert!(invoice.get("fencing_token").is_none(), "{invoice}");

    // With the tax in force, and in another currency.
    let response = post_json(
        &app,
        "/invoices",
        &json!({"user_id": set.user["id"], "plan_id": set.plan["id"], "currency": "usd", "tax_code": "DE_VAT"}),
    )
    .await?;
    let location = response.headers()["location"].to_str()?.to_owned();
    assert_eq!(etag(&response), "\"1\"");
    let taxed = json_with(response, 201).await?;
    assert_eq!(location, format!("/api/v1/invoices/{}", taxed["id"]));
    assert_eq!(taxed["invoice_number"], format!("INV-{year}-000002"));
    assert_eq!(taxed["currency"], "USD");
    assert_eq!(
        (
            taxed["net_amount"].clone(),
            taxed["tax_amount"].clone(),
            taxed["amount"].clone()
        ),
        (json!("10.80"), json!("2.05"), json!("12.85"))
    );

    // Pay the first: the invoice is paid and the subscription active.
    let response = pay(&app, &invoice["id"], "pay-gus-1").await?;
    assert_eq!(etag(&response), "\"2\"");
    assert!(response.headers().get("idempotent-replayed").is_none());
    let paid = json_with(response, 200).await?;
    assert_eq!(
        (
            paid["status"].clone(),
            paid["payment_method"].clone(),
            paid["payment_reference"].clone()
        ),
        (json!("paid"), json!("card"), json!("ch_1"))
    );
    assert!(paid["paid_at"].is_string());
    assert!(paid.get("fencing_token").is_none(), "{paid}");
    let subscription =
        get_json(&app, &format!("/subscriptions/{}", set.subscription["id"])).await?;
    assert_eq!(
        (
            subscription["status"].clone(),
            subscription["version"].clone(),
            subscription["is_valid"].clone()
        ),
        (json!("active"), json!(2), json!(true))
    );

    // Paying again with another key is refused; nothing changes.
    assert_problem(
        pay(&app, &invoice["id"], "pay-gus-2").await?,
        409,
        "invalid_transition",
    )
    .await?;
    let path = format!("/invoices/{}", invoice["id"]);
    let stored = get(&app, &path).await?;
    assert_eq!(etag(&stored), "\"2\"");

    // Refund needs a key, then works once.
    let refund = |key: Option<&'static str>| {
        let mut request = app
            .api_client
            .post(app.url(&format!("/api/v1{path}/refund")));
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send()
    };
    assert_problem(refund(None).await?, 400, "idempotency_key_required").await?;
    let refunded = json_with(refund(Some("refund-gus-1")).await?, 200).await?;
    assert_eq!(refunded["status"], "refunded");
    assert_problem(
        refund(Some("refund-gus-2")).await?,
        409,
        "invalid_transition",
    )
    .await?;
    assert_problem(
        post_empty(&app, &format!("{path}/cancel"), None).await?,
        409,
        "invalid_transition",
    )
    .await?;
    assert_eq!(get_json(&app, &path).await?["version"], 3);
    assert_eq!(
        get_json(&app, &format!("/subscriptions/{}", set.subscription["id"])).await?["status"],
        "active",
        "a refund leaves the subscription"
    );

    // fail → pay, and cancel.
    let taxed_path = format!("/invoices/{}", taxed["id"]);
    let stale = post_empty(&app, &format!("{taxed_path}/fail"), Some("\"2\"")).await?;
    assert_eq!(
        assert_problem(stale, 412, "version_mismatch").await?["current_version"],
        1
    );
    let failed = json_with(
        post_empty(&app, &format!("{taxed_path}/fail"), Some("\"1\"")).await?,
        200,
    )
    .await?;
    assert_eq!(failed["status"], "failed");
    assert_problem(
        post_empty(&app, &format!("{taxed_path}/fail"), None).await?,
        409,
        "invalid_transition",
    )
    .await?;
    let cancelled = json_with(
        post_empty(&app, &format!("{taxed_path}/cancel"), None).await?,
        200,
    )
    .await?;
    assert_eq!(cancelled["status"], "cancelled");
    assert_problem(
        pay(&app, &taxed["id"], "pay-cancelled").await?,
        409,
        "invalid_transition",
    )
    .await?;

    // Lists by user and status.
    let user_invoices = format!("/users/{}/invoices", set.user["id"]);
    assert_eq!(total(&app, &user_invoices).await?, 2);
    assert_eq!(
        total(&app, &format!("{user_invoices}?status=refunded")).await?,
        1
    );
    assert_eq!(
        total(&app, &format!("{user_invoices}?status=pending")).await?,
        0
    );
    assert_problem(
        get(&app, &format!("{user_invoices}?status=lost")).await?,
        400,
        "validation_failed",
    )
    .await?;
    assert_problem(get(&app, "/users/999999/invoices").await?, 404, "not_found").await?;
    assert_problem(get(&app, "/invoices/999999").await?, 404, "not_found").await?;
    Ok(())
}

async fn bad_invoices_and_payments_are_refused_and_write_nothing(
    db: TestDatabase,
) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let set = billed(&app, "hal@example.com", "pro").await?;
    let other = create_user(&app, "ivy@example.com").await?;
    let (user, plan) = (&set.user["id"], &set.plan["id"]);
    let cases = [
        (
            json!({"user_id": 999_999, "plan_id": plan}),
            404,
            "not_found",
        ),
        (
            json!({"user_id": user, "plan_id": 999_999}),
            404,
            "not_found",
        ),
        (
            json!({"user_id": user, "plan_id": plan, "currency": "XYZ"}),
            400,
            "validation_failed",
        ),
        (
            json!({"user_id": user, "plan_id": plan, "tax_code": "NONE"}),
            404,
            "not_found",
        ),
        (
            json!({"user_id": other["id"], "plan_id": plan, "subscription_id": set.subscription["id"]}),
            409,
            "invalid_transition",
        ),
        (
            json!({"user_id": user, "plan_id": plan, "amount": "0.01"}),
            400,
            "validation_failed",
        ),
        (json!({"user_id": user}), 400, "validation_failed"),
    ];
    for (body, status, code) in cases {
        assert_problem(post_json(&app, "/invoices", &body).await?, status, code).await?;
    }
    assert_eq!(total(&app, &format!("/users/{user}/invoices")).await?, 1);
    assert_eq!(
        total(&app, &format!("/users/{}/invoices", other["id"])).await?,
        0
    );

    // Payments: no key, a bad key, a bad body, an unknown invoice.
    let invoice = &set.invoice["id"];
    let pay_url = app.url(&format!("/api/v1/invoices/{invoice}/pay"));
    let response = app.api_client.post(&pay_url).json(&card()).send().await?;
    assert_problem(response, 400, "idempotency_key_required").await?;
    let response = app
        .api_client
        .post(&pay_url)
        .header("Content-Type", "application/json")
        .body("{")
        .send()
        .await?;
    assert_problem(response, 400, "idempotency_key_required").await?;
    for key in ["has space", &"k".repeat(256)] {
        let response = app
            .api_client
            .post(&pay_url)
            .header("Idempotency-Key", key)
            .json(&card())
            .send()
            .await?;
        assert_problem(response, 400, "validation_failed").await?;
    }
    for body in [
        json!({"payment_method": ""}),
        json!({"payment_method": "m".repeat(51)}),
        json!({"payment_method": 1}),
        json!({"payment_method": "card", "amount": "1"}),
        json!({}),
    ] {
        let response = app
            .api_client
            .post(&pay_url)
            .header("Idempotency-Key", format!("bad-{body}"))
            .json(&body)
            .send()
            .await?;
        assert_problem(response, 400, "validation_failed").await?;
    }
    let response = app
        .api_client
        .post(&pay_url)
        .header("Idempotency-Key", "pay-bad-if-match")
        .header("If-Match", "\"x\"")
        .json(&card())
        .send()
        .await?;
    assert_problem(response, 400, "validation_failed").await?;
    assert_problem(
        pay(&app, &json!(999_999), "pay-unknown").await?,
        404,
        "not_found",
    )
    .await?;

    let stored = get_json(&app, &format!("/invoices/{invoice}")).await?;
    assert_eq!(
        (stored["status"].clone(), stored["version"].clone()),
        (json!("pending"), json!(1))
    );
    let subscription =
        get_json(&app, &format!("/subscriptions/{}", set.subscription["id"])).await?;
    assert_eq!(
        (
            subscription["status"].clone(),
            subscription["version"].clone()
        ),
        (json!("pending"), json!(1))
    );
    Ok(())
}

test_on_each_backend!(
    invoices_are_priced_numbered_and_paid,
    bad_invoices_and_payments_are_refused_and_write_nothing
);
