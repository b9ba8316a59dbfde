//! A dependency that stops answering: requests that need it answer 503
//! `dependency_unavailable` naming it (never its error text) within the
//! dependency's timeout, write nothing, and keep no idempotency key, so
//! the same request succeeds once it is back.

use std::time::{Duration, Instant};

use billing_test_support::{Backend, TestDatabase};
use serde_json::json;

use crate::fixtures::{billed, card, get_json, json_with, total};
use crate::helpers::{
    HangingProxy, TestOptions, assert_problem, replace_host_port, socket_address, spawn_app_with,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_redis_is_a_503_that_keeps_no_key() -> anyhow::Result<()> {
    let Some(redis_url) = billing_test_support::redis_url() else {
        eprintln!("TEST_REDIS_URL is not set: hung-Redis test not run");
        return Ok(());
    };
    let db = TestDatabase::create(Backend::Sqlite)
        .await?
        .expect("SQLite is always available");
    let proxy = HangingProxy::start(socket_address(&redis_url, 6379).await?).await?;
    let options = TestOptions {
        redis_url: Some(replace_host_port(&redis_url, proxy.address())?),
        ..TestOptions::default()
    };
    let app = spawn_app_with(db, options).await?;
    let set = billed(&app, "nia@example.com", "pro").await?;
    let pay = || {
        app.api_client
            .post(app.url(&format!("/api/v1/invoices/{}/pay", set.invoice["id"])))
            .header("Idempotency-Key", "pay-during-outage")
            .json(&card())
            .send()
    };
    let create = || {
        app.api_client
            .post(app.url("/api/v1/users"))
            .header("Idempotency-Key", "user-during-outage")
            .json(&json!({"email": "new@example.com", "password": "correct horse battery"}))
            .send()
    };

    proxy.set_hung(true);
    for request in [0, 1] {
        let started = Instant::now();
        let response = if request == 0 {
            pay().await?
        } else {
            create().await?
        };
        let elapsed = started.elapsed();
        assert_eq!(
            response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"5"[..])
        );
        let body = assert_problem(response, 503, "dependency_unavailable").await?;
        assert_eq!(body["detail"], "Redis is unavailable; retry later");
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    }
    proxy.set_hung(false);

    // Nothing was written and no key was kept: the same requests run now.
    let invoice = get_json(&app, &format!("/invoices/{}", set.invoice["id"])).await?;
    assert_eq!(invoice["status"], "pending");
    assert_eq!(total(&app, "/users").await?, 1);
    let deadline = Instant::now() + Duration::from_secs(15);
    let paid = loop {
        let response = pay().await?;
        if response.status().as_u16() != 503 || Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(paid.headers().get("idempotent-replayed").is_none());
    assert_eq!(json_with(paid, 200).await?["status"], "paid");
    // A claim the hung Redis received late is released in the background
    // within about a second of Redis answering again, not at its 60 s TTL.
    let deadline = Instant::now() + Duration::from_secs(5);
    let created = loop {
        let response = create().await?;
        if response.status().as_u16() != 409 || Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(created.status().as_u16(), 201);
    Ok(())
}
