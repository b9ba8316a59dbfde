//! Request ids, `/metrics` and `/openapi.json`.

use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::Value;

use crate::helpers::spawn_app;

async fn request_ids_are_set_and_propagated(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let response = app.client.get(app.url("/health/live")).send().await?;
    let generated = response.headers()["x-request-id"].to_str()?.to_owned();
    assert_eq!(generated.len(), 36, "{generated}");

    let response = app
        .client
        .get(app.url("/health/live"))
        .header("X-Request-Id", "client-chosen-id-42")
        .send()
        .await?;
    assert_eq!(response.headers()["x-request-id"], "client-chosen-id-42");

    // An id that could garble the logs is replaced.
    let response = app
        .client
        .get(app.url("/nowhere"))
        .header("X-Request-Id", "two words")
        .send()
        .await?;
    assert_ne!(response.headers()["x-request-id"], "two words");
    Ok(())
}

async fn metrics_count_requests_by_route_pattern(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    for id in [1, 2, 3] {
        let response = app
            .api_client
            .get(app.url(&format!("/api/v1/test/items/{id}")))
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 200);
    }
    app.client.get(app.url("/no/such/thing")).send().await?;

    let response = app.client.get(app.url("/metrics")).send().await?;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()?
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await?;
    assert!(
        text.contains(
            r#"billing_http_requests_total{method="GET",route="/api/v1/test/items/{id}",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"billing_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        !text.contains("/api/v1/test/items/1\""),
        "raw paths must not be labels"
    );
    assert!(text.contains("billing_http_request_duration_seconds_bucket"));
    assert!(text.contains("billing_http_requests_in_flight"));
    assert!(text.contains(r#"billing_db_pool_connections{state="idle"}"#));
    assert!(text.contains(r#"billing_db_pool_connections{state="in_use"}"#));
    assert!(text.contains("billing_db_pool_max_connections"));
    Ok(())
}

async fn the_openapi_document_describes_the_operational_routes(
    db: TestDatabase,
) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let response = app.client.get(app.url("/openapi.json")).send().await?;
    assert_eq!(response.status().as_u16(), 200);
    let document: Value = response.json().await?;
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3."),
        "{document}"
    );
    for path in ["/health/live", "/health/ready", "/metrics", "/openapi.json"] {
        assert!(document["paths"][path]["get"].is_object(), "{path} missing");
    }
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(document["components"]["schemas"]["Problem"].is_object());
    Ok(())
}

test_on_each_backend!(
    request_ids_are_set_and_propagated,
    metrics_count_requests_by_route_pattern,
    the_openapi_document_describes_the_operational_routes
);
