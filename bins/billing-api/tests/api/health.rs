//! `/health/live` and `/health/ready`, including a dependency that hangs.

use std::time::{Duration, Instant};

use billing_test_support::{Backend, TestDatabase, test_on_each_backend};
use serde_json::{Value, json};

use crate::helpers::{
    HangingProxy, TestOptions, replace_host_port, socket_address, spawn_app, spawn_app_with,
};

async fn liveness_answers_ok(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    assert_eq!(app.address, format!("http://127.0.0.1:{}", app.port));
    let response = app.client.get(app.url("/health/live")).send().await?;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.json::<Value>().await?, json!({"status": "ok"}));
    Ok(())
}

async fn readiness_names_each_dependency(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let response = app.client.get(app.url("/health/ready")).send().await?;
    assert_eq!(response.status().as_u16(), 200);
    let redis = match app.db.backend() {
        Backend::Postgres if app.uses_redis => "ok",
        Backend::Postgres | Backend::Sqlite => "embedded",
    };
    assert_eq!(
        response.json::<Value>().await?,
        json!({"status": "ok", "database": "ok", "redis": redis})
    );
    Ok(())
}

async fn health_needs_no_token(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    assert!(app.token.is_some());
    for path in ["/health/live", "/health/ready", "/metrics", "/openapi.json"] {
        let response = app.client.get(app.url(path)).send().await?;
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
    Ok(())
}

test_on_each_backend!(
    liveness_answers_ok,
    readiness_names_each_dependency,
    health_needs_no_token
);

/// A database that stops answering makes readiness answer 503 with
/// `"database": "down"` within the health timeout, not hang; it recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_reports_a_hung_database_in_bounded_time() -> anyhow::Result<()> {
    let Some(db) = TestDatabase::create(Backend::Postgres).await? else {
        eprintln!("TEST_DATABASE_URL is not set: hung-database test not run");
        return Ok(());
    };
    let proxy = HangingProxy::start(socket_address(db.url(), 5432).await?).await?;
    let options = TestOptions {
        database_url: Some(replace_host_port(db.url(), proxy.address())?),
        ..TestOptions::default()
    };
    let app = spawn_app_with(db, options).await?;

    proxy.set_hung(true);
    let started = Instant::now();
    let response = app.client.get(app.url("/health/ready")).send().await?;
    let elapsed = started.elapsed();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .map(|v| v.as_bytes()),
        Some(&b"5"[..])
    );
    let body: Value = response.json().await?;
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["database"], "down", "{body}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");

    proxy.set_hung(false);
    wait_until_ready(&app.client, &app.url("/health/ready")).await
}

/// Redis that stops answering makes readiness answer 503 with
/// `"redis": "down"` within the health timeout; it recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_reports_a_hung_redis_in_bounded_time() -> anyhow::Result<()> {
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
    assert!(app.uses_redis);

    proxy.set_hung(true);
    let started = Instant::now();
    let response = app.client.get(app.url("/health/ready")).send().await?;
    let elapsed = started.elapsed();
    assert_eq!(response.status().as_u16(), 503);
    let body: Value = response.json().await?;
    assert_eq!(
        body,
        json!({"status": "unavailable", "database": "ok", "redis": "down"})
    );
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");

    proxy.set_hung(false);
    wait_until_ready(&app.client, &app.url("/health/ready")).await
}

async fn wait_until_ready(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = client.get(url).send().await?.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "still not ready: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
