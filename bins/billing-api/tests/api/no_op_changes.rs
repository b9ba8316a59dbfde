//! A change that changes nothing writes nothing: 200 with the unchanged
//! resource and its current `ETag`; a stale `If-Match` is still 412.

use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::{Value, json};

use crate::fixtures::{
    create_plan, create_user, create_vat, etag, get, json_with, patch_json, post_json,
};
use crate::helpers::{TestApp, assert_problem, spawn_app};

/// PATCHes (or PUTs) `body` at `path` with `If-Match: "<version>"` and
/// checks the answer is the stored resource, unchanged, at `version`.
async fn unchanged(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    version: i64,
    body: &Value,
) -> anyhow::Result<()> {
    let before = get(app, path).await?;
    assert_eq!(etag(&before), format!("\"{version}\""), "{path}");
    let before = json_with(before, 200).await?;
    let send = |if_match: String| {
        app.api_client
            .request(method.clone(), app.url(&format!("/api/v1{path}")))
            .header("If-Match", if_match)
            .json(body)
            .send()
    };
    let response = send(format!("\"{version}\"")).await?;
    assert_eq!(etag(&response), format!("\"{version}\""), "{path} {body}");
    assert_eq!(json_with(response, 200).await?, before, "{path} {body}");
    let after = get(app, path).await?;
    assert_eq!(
        etag(&after),
        format!("\"{version}\""),
        "{path} {body} wrote"
    );
    assert_eq!(json_with(after, 200).await?, before);
    assert_problem(
        send(format!("\"{}\"", version - 1)).await?,
        412,
        "version_mismatch",
    )
    .await?;
    Ok(())
}

async fn unchanged_values_write_nothing(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let user = create_user(&app, "hal@example.com").await?;
    let id = &user["id"];
    let user_path = format!("/users/{id}");
    json_with(
        patch_json(&app, &user_path, None, &json!({"status": "active"})).await?,
        200,
    )
    .await?;
    for body in [
        json!({}),
        json!({"status": "active", "role": "user", "email": "HAL@example.com"}),
    ] {
        unchanged(&app, reqwest::Method::PATCH, &user_path, 2, &body).await?;
    }

    let details_path = format!("/users/{id}/details");
    let details = json!({"first_name": "Hal", "city": "Urbana", "country_code": "us"});
    let put = app
        .api_client
        .put(app.url(&format!("/api/v1{details_path}")))
        .json(&details)
        .send()
        .await?;
    json_with(put, 200).await?;
    let put = app
        .api_client
        .put(app.url(&format!("/api/v1{details_path}")))
        .json(&json!({}))
        .send()
        .await?;
    json_with(put, 200).await?;
    let put = app
        .api_client
        .put(app.url(&format!("/api/v1{details_path}")))
        .json(&details)
        .send()
        .await?;
    json_with(put, 200).await?;
    unchanged(&app, reqwest::Method::PUT, &details_path, 3, &details).await?;

    let case = json_with(
        post_json(
            &app,
            &format!("/users/{id}/cases"),
            &json!({"subject": "Help", "description": "Text"}),
        )
        .await?,
        201,
    )
    .await?;
    let case_path = format!("/cases/{}", case["id"]);
    json_with(
        patch_json(&app, &case_path, None, &json!({"status": "in_progress"})).await?,
        200,
    )
    .await?;
    unchanged(
        &app,
        reqwest::Method::PATCH,
        &case_path,
        2,
        &json!({"status": "in_progress", "subject": "Help"}),
    )
    .await?;

    let currency = json_with(
        post_json(
            &app,
            "/currencies",
            &json!({"code": "USD", "name": "US Dollar", "exchange_rate": "1.08"}),
        )
        .await?,
        201,
    )
    .await?;
    assert_eq!(currency["version"], 1);
    json_with(
        patch_json(
            &app,
            "/currencies/USD",
            None,
            &json!({"exchange_rate": "1.09"}),
        )
        .await?,
        200,
    )
    .await?;
    unchanged(
        &app,
        reqwest::Method::PATCH,
        "/currencies/USD",
        2,
        &json!({"exchange_rate": "1.090", "name": "US Dollar"}),
    )
    .await?;
    let eur_version = json_with(get(&app, "/currencies/EUR").await?, 200).await?["version"]
        .as_i64()
        .expect("a version");
    // The default made the default again rebases nothing.
    unchanged(
        &app,
        reqwest::Method::PATCH,
        "/currencies/EUR",
        eur_version,
        &json!({"is_default": true}),
    )
    .await?;

    let plan = create_plan(&app, "pro", "10.00").await?;
    let plan_path = format!("/plans/{}", plan["id"]);
    json_with(
        patch_json(&app, &plan_path, None, &json!({"sort_order": 3})).await?,
        200,
    )
    .await?;
    unchanged(
        &app,
        reqwest::Method::PATCH,
        &plan_path,
        2,
        &json!({"price": "10", "slug": "pro", "sort_order": 3}),
    )
    .await?;

    let vat = create_vat(&app).await?;
    let tax_path = format!("/taxes/{}", vat["id"]);
    json_with(
        patch_json(&app, &tax_path, None, &json!({"description": "USt"})).await?,
        200,
    )
    .await?;
    unchanged(
        &app,
        reqwest::Method::PATCH,
        &tax_path,
        2,
        &json!({"rate": "19", "description": "USt"}),
    )
    .await?;

    // A real change still writes.
    let changed = patch_json(&app, &user_path, Some("\"2\""), &json!({"role": "admin"})).await?;
    assert_eq!(etag(&changed), "\"3\"");
    Ok(())
}

test_on_each_backend!(unchanged_values_write_nothing);
