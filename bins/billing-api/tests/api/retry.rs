//! Answers that invite a retry say when: 503 `overloaded` (a burst of
//! registrations beyond the password hashing queue), 409
//! `idempotency_in_flight`, 409 `locked` and any other 503 carry
//! `Retry-After`; the overloaded requests write nothing, and the queue
//! drains.

use std::time::Duration;

use billing_test_support::{TestDatabase, test_on_each_backend};
use futures::future::join_all;
use serde_json::json;

use crate::fixtures::total;
use crate::helpers::{TestApp, TestOptions, assert_problem, spawn_app, spawn_app_with};

fn retry_after(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

async fn register(app: &TestApp, email: &str) -> anyhow::Result<reqwest::Response> {
    Ok(app
        .api_client
        .post(app.url("/api/v1/users"))
        .json(&json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await?)
}

async fn a_registration_burst_beyond_the_hash_queue_is_refused_then_drains(
    db: TestDatabase,
) -> anyhow::Result<()> {
    let options = TestOptions {
        password_hash_queue: Some(1),
        ..TestOptions::default()
    };
    let app = spawn_app_with(db, options).await?;
    // One password is hashed, one waits: the rest of a burst of 20 cannot
    // queue.
    let burst = join_all((0..20).map(|i| {
        let app = &app;
        async move { register(app, &format!("burst{i}@example.com")).await }
    }))
    .await;
    let (mut created, mut overloaded) = (0, 0);
    for response in burst {
        let response = response?;
        match response.status().as_u16() {
            201 => created += 1,
            503 => {
                assert_eq!(retry_after(&response).as_deref(), Some("1"));
                let body = assert_problem(response, 503, "overloaded").await?;
                assert!(
                    body["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("password hashing")),
                    "{body}"
                );
                overloaded += 1;
            }
            other => anyhow::bail!("unexpected status {other}: {}", response.text().await?),
        }
    }
    assert!(
        overloaded > 0,
        "no registration was refused: {created} created"
    );
    assert!(created >= 1, "none was hashed");
    // The refused ones wrote nothing.
    assert_eq!(total(&app, "/users").await?, created);

    // The queue drains: registrations are accepted again, one by one.
    for i in 0..3 {
        let response = register(&app, &format!("after{i}@example.com")).await?;
        assert_eq!(
            response.status().as_u16(),
            201,
            "{}",
            response.text().await?
        );
    }
    assert_eq!(total(&app, "/users").await?, created + 3);
    Ok(())
}

async fn a_request_in_flight_says_retry_after_the_in_flight_ttl(
    db: TestDatabase,
) -> anyhow::Result<()> {
    let options = TestOptions {
        in_flight_ttl: Some(Duration::from_secs(7)),
        ..TestOptions::default()
    };
    let app = spawn_app_with(db, options).await?;
    let send = || {
        app.api_client
            .post(app.url("/api/v1/test/slow-idempotent?ms=1500"))
            .header("Idempotency-Key", "slow-1")
            .send()
    };
    let first = tokio::spawn(send());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = send().await?;
    assert_eq!(retry_after(&second).as_deref(), Some("7"));
    assert_problem(second, 409, "idempotency_in_flight").await?;
    let first = first.await??;
    assert_eq!(first.status().as_u16(), 200);
    assert_eq!(retry_after(&first), None);
    Ok(())
}

async fn locked_and_every_503_say_when_to_retry(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let locked = app
        .api_client
        .get(app.url("/api/v1/test/locked"))
        .send()
        .await?;
    assert_eq!(retry_after(&locked).as_deref(), Some("1"));
    assert_problem(locked, 409, "locked").await?;

    // A 503 that no ApiError built still says when, and is a problem.
    let plain = app
        .api_client
        .get(app.url("/api/v1/test/plain-503"))
        .send()
        .await?;
    assert_eq!(retry_after(&plain).as_deref(), Some("5"));
    assert_problem(plain, 503, "dependency_unavailable").await?;

    // Errors a retry cannot fix do not invite one.
    let missing = app
        .api_client
        .get(app.url("/api/v1/users/999"))
        .send()
        .await?;
    assert_eq!(retry_after(&missing), None);
    assert_problem(missing, 404, "not_found").await?;
    Ok(())
}

test_on_each_backend!(
    a_registration_burst_beyond_the_hash_queue_is_refused_then_drains,
    a_request_in_flight_says_retry_after_the_in_flight_ttl,
    locked_and_every_503_say_when_to_retry
);
