//! Requests refused before any use case runs: without a token, with a
//! wrong token, with an oversized body, without JSON, with a body that is
//! not a JSON object, with a query parameter the operation does not take.
//! Each answers a 4xx problem and writes nothing.

use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::{Value, json};

use crate::fixtures::{billed, get_json, total};
use crate::helpers::{TestOptions, assert_problem, spawn_app, spawn_app_with};

async fn refused_requests_write_nothing(db: TestDatabase) -> anyhow::Result<()> {
    let options = TestOptions {
        body_limit: 1024,
        ..TestOptions::default()
    };
    let app = spawn_app_with(db, options).await?;
    let set = billed(&app, "max@example.com", "pro").await?;
    let invoice = &set.invoice["id"];
    let padding = "x".repeat(2048);
    let writes: Vec<(&str, String, Value)> = vec![
        (
            "POST",
            "/currencies".into(),
            json!({"code": "USD", "name": "Dollar", "exchange_rate": "1.08"}),
        ),
        (
            "POST",
            "/taxes".into(),
            json!({"name": "VAT", "code": "FR_VAT", "rate": "20", "country_code": "FR"}),
        ),
        (
            "POST",
            "/users".into(),
            json!({"email": "new@example.com", "password": "correct horse battery"}),
        ),
        (
            "POST",
            "/plans".into(),
            json!({"name": "B", "slug": "b", "price": "1", "currency": "EUR", "billing_period": "monthly"}),
        ),
        (
            "POST",
            "/subscriptions".into(),
            json!({"user_id": set.user["id"], "plan_id": set.plan["id"]}),
        ),
        (
            "POST",
            "/invoices".into(),
            json!({"user_id": set.user["id"], "plan_id": set.plan["id"]}),
        ),
        (
            "POST",
            format!("/invoices/{invoice}/pay"),
            json!({"payment_method": "card"}),
        ),
        (
            "POST",
            format!("/subscriptions/{}/activate", set.subscription["id"]),
            json!({}),
        ),
        (
            "PATCH",
            format!("/users/{}", set.user["id"]),
            json!({"status": "active"}),
        ),
        (
            "PATCH",
            format!("/plans/{}", set.plan["id"]),
            json!({"price": "99"}),
        ),
        (
            "PUT",
            format!("/users/{}/details", set.user["id"]),
            json!({"city": "Rome"}),
        ),
    ];
    for (method, path, body) in &writes {
        let url = app.url(&format!("/api/v1{path}"));
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let request = |client: &reqwest::Client| {
            client
                .request(method.clone(), &url)
                .header("Idempotency-Key", format!("k-{path}"))
                .json(body)
        };
        // No token, a wrong token.
        let response = request(&app.client).send().await?;
        assert_problem(response, 401, "unauthorized").await?;
        let response = request(&app.client)
            .bearer_auth("not-the-token-at-all")
            .send()
            .await?;
        assert_problem(response, 401, "unauthorized").await?;
        // A body over the limit.
        let mut big = body.clone();
        big["padding"] = json!(padding);
        let response = request(&app.api_client).json(&big).send().await?;
        assert_problem(response, 413, "payload_too_large").await?;
        let response = app
            .api_client
            .request(method.clone(), &url)
            .header("Idempotency-Key", format!("raw-{path}"))
            .header("Content-Type", "application/json")
            .body(vec![b' '; 4096])
            .send()
            .await?;
        assert_problem(response, 413, "payload_too_large").await?;
    }

    assert_eq!(total(&app, "/currencies").await?, 1);
    assert_eq!(total(&app, "/taxes").await?, 0);
    assert_eq!(total(&app, "/users").await?, 1);
    assert_eq!(total(&app, "/plans?include_inactive=true").await?, 1);
    assert_eq!(
        total(&app, &format!("/users/{}/subscriptions", set.user["id"])).await?,
        1
    );
    assert_eq!(
        total(&app, &format!("/users/{}/invoices", set.user["id"])).await?,
        1
    );
    for path in [
        format!("/users/{}", set.user["id"]),
        format!("/plans/{}", set.plan["id"]),
        format!("/subscriptions/{}", set.subscription["id"]),
        format!("/invoices/{invoice}"),
    ] {
        assert_eq!(get_json(&app, &path).await?["version"], 1, "{path} changed");
    }
    let details = app
        .api_client
        .get(app.url(&format!("/api/v1/users/{}/details", set.user["id"])))
        .send()
        .await?;
    assert_problem(details, 404, "not_found").await?;
    // The keys of refused requests are free: the same key now works.
    let response = app
        .api_client
        .post(app.url("/api/v1/users"))
        .header("Idempotency-Key", "k-/users")
        .json(&json!({"email": "new@example.com", "password": "correct horse battery"}))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 201);
    Ok(())
}

/// Every query parameter an operation does not document is refused with
/// its name; the documented ones pass.
async fn unknown_query_parameters_are_refused(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let set = billed(&app, "ida@example.com", "pro").await?;
    let get = async |path: String| {
        app.api_client
            .get(app.url(&format!("/api/v1{path}")))
            .send()
            .await
    };
    for (path, unknown) in [
        ("/taxes/1/rates?anything=1".to_owned(), "anything"),
        ("/plans?page=1&pag=2".to_owned(), "pag"),
        (
            format!("/invoices/{}?expand=user", set.invoice["id"]),
            "expand",
        ),
        (
            format!("/users/{}/invoices?status=paid&sort=asc", set.user["id"]),
            "sort",
        ),
    ] {
        let response = get(path.clone()).await?;
        let problem = assert_problem(response, 400, "validation_failed").await?;
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(&format!("`{unknown}`")), "{path}: {detail}");
    }
    for path in [
        "/plans?page=1&per_page=5".to_owned(),
        format!("/users/{}/invoices?status=paid&page=1", set.user["id"]),
    ] {
        assert_eq!(get(path.clone()).await?.status().as_u16(), 200, "{path}");
    }
    // A write with an unknown parameter writes nothing.
    let response = app
        .api_client
        .post(app.url("/api/v1/users?role=admin"))
        .json(&json!({"email": "eve@example.com", "password": "correct horse battery"}))
        .send()
        .await?;
    assert_problem(response, 400, "validation_failed").await?;
    assert_eq!(total(&app, "/users").await?, 1);
    Ok(())
}

/// A body that is JSON but not an object is refused, whatever the fields
/// of the operation would accept.
async fn bodies_that_are_not_objects_are_refused(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let set = billed(&app, "uma@example.com", "pro").await?;
    let details = format!("/api/v1/users/{}/details", set.user["id"]);
    for body in ["[null, null]", "[]", "null", "1", "\"x\""] {
        let response = app
            .api_client
            .put(app.url(&details))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await?;
        let problem = assert_problem(response, 400, "validation_failed").await?;
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("JSON object")),
            "{body}: {problem}"
        );
    }
    let response = app.api_client.get(app.url(&details)).send().await?;
    assert_eq!(response.status().as_u16(), 404, "no details were stored");
    Ok(())
}

test_on_each_backend!(
    refused_requests_write_nothing,
    unknown_query_parameters_are_refused,
    bodies_that_are_not_objects_are_refused
);
