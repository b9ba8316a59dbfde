//! Framework errors as problem+json: unknown routes, wrong methods,
//! malformed or oversized bodies, unparsable path and query values, and
//! server errors that must not leak their cause.

use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::json;

use crate::helpers::{TestOptions, assert_problem, spawn_app, spawn_app_with};

async fn unknown_routes_are_404_problems(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let response = app.client.get(app.url("/no/such/route")).send().await?;
    let body = assert_problem(response, 404, "not_found").await?;
    assert_eq!(body["detail"], "no resource at /no/such/route");
    let response = app
        .api_client
        .get(app.url("/api/v1/no-such-resource"))
        .send()
        .await?;
    assert_problem(response, 404, "not_found").await?;
    Ok(())
}

async fn wrong_methods_are_405_problems(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let response = app.client.post(app.url("/health/live")).send().await?;
    let allow = response.headers().get("allow").cloned();
    assert_problem(response, 405, "method_not_allowed").await?;
    assert_eq!(allow.unwrap(), "GET");
    let response = app
        .api_client
        .delete(app.url("/api/v1/test/echo"))
        .send()
        .await?;
    assert_problem(response, 405, "method_not_allowed").await?;
    Ok(())
}

async fn malformed_json_is_a_400(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let response = app
        .api_client
        .post(app.url("/api/v1/test/echo"))
        .header("Content-Type", "application/json")
        .body(r#"{"name": "a", "amount": "#)
        .send()
        .await?;
    let body = assert_problem(response, 400, "validation_failed").await?;
    assert!(
        body["detail"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );
    Ok(())
}

async fn wrong_types_unknown_and_missing_fields_are_400s(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let cases = [
        (json!({"name": "a", "amount": "12"}), "invalid type"),
        (
            json!({"name": "a", "amount": 1, "extra": true}),
            "unknown field `extra`",
        ),
        (json!({"name": "a"}), "missing field `amount`"),
        (json!([1, 2]), "invalid type"),
    ];
    for (sent, expected) in cases {
        let response = app
            .api_client
            .post(app.url("/api/v1/test/echo"))
            .json(&sent)
            .send()
            .await?;
        let body = assert_problem(response, 400, "validation_failed").await?;
        assert!(
            body["detail"].as_str().unwrap().contains(expected),
            "{sent} → {body}"
        );
    }
    // And a valid body passes.
    let response = app
        .api_client
        .post(app.url("/api/v1/test/echo"))
        .json(&json!({"name": "a", "amount": 1}))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    Ok(())
}

async fn a_body_that_is_not_json_is_a_415(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let response = app
        .api_client
        .post(app.url("/api/v1/test/echo"))
        .header("Content-Type", "text/plain")
        .body(r#"{"name": "a", "amount": 1}"#)
        .send()
        .await?;
    assert_problem(response, 415, "unsupported_media_type").await?;
    Ok(())
}

async fn oversized_bodies_are_413s(db: TestDatabase) -> anyhow::Result<()> {
    let options = TestOptions {
        body_limit: 1024,
        ..TestOptions::default()
    };
    let app = spawn_app_with(db, options).await?;
    let big = json!({"name": "x".repeat(2048), "amount": 1});
    let response = app
        .api_client
        .post(app.url("/api/v1/test/echo"))
        .json(&big)
        .send()
        .await?;
    let body = assert_problem(response, 413, "payload_too_large").await?;
    assert!(body["detail"].as_str().unwrap().contains("1024"), "{body}");

    // Raw bodies have the same limit.
    let response = app
        .api_client
        .post(app.url("/api/v1/test/raw"))
        .body(vec![b'a'; 2048])
        .send()
        .await?;
    assert_problem(response, 413, "payload_too_large").await?;

    let response = app
        .api_client
        .post(app.url("/api/v1/test/raw"))
        .body(vec![b'a'; 512])
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    Ok(())
}

async fn unparsable_path_and_query_values_are_400s(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let response = app
        .api_client
        .get(app.url("/api/v1/test/items/abc"))
        .send()
        .await?;
    let body = assert_problem(response, 400, "validation_failed").await?;
    assert!(
        body["detail"].as_str().unwrap().contains("path parameter"),
        "{body}"
    );
    let response = app
        .api_client
        .get(app.url("/api/v1/test/list?page=x"))
        .send()
        .await?;
    let body = assert_problem(response, 400, "validation_failed").await?;
    assert!(body["detail"].as_str().unwrap().contains("query"), "{body}");
    let response = app
        .api_client
        .get(app.url("/api/v1/test/list"))
        .send()
        .await?;
    assert_problem(response, 400, "validation_failed").await?;
    Ok(())
}

async fn server_errors_hide_their_cause(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let response = app
        .api_client
        .get(app.url("/api/v1/test/fail"))
        .send()
        .await?;
    assert!(response.headers().contains_key("x-request-id"));
    let body = assert_problem(response, 500, "internal_error").await?;
    let text = body.to_string();
    assert!(!text.contains("secret"), "{text}");
    assert!(!text.contains("SELECT"), "{text}");
    Ok(())
}

test_on_each_backend!(
    unknown_routes_are_404_problems,
    wrong_methods_are_405_problems,
    malformed_json_is_a_400,
    wrong_types_unknown_and_missing_fields_are_400s,
    a_body_that_is_not_json_is_a_415,
    oversized_bodies_are_413s,
    unparsable_path_and_query_values_are_400s,
    server_errors_hide_their_cause
);
