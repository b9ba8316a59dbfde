//! Events and webhooks over HTTP: the event list pages by `after` and
//! filters; endpoints refuse non-http(s) URLs, show their secret once, and
//! the server's background task delivers signed events to a receiver on
//! loopback, lists the deliveries with their attempts and redelivers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use billing_api::webhook_delivery::WebhookArgs;
use billing_test_support::{TestDatabase, test_on_each_backend};
use billing_webhooks::{DEFAULT_TOLERANCE, verify};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::fixtures::{create_user, get, get_json, json_with, patch_json, post_empty, post_json};
use crate::helpers::{TestOptions, spawn_app, spawn_app_with};

async fn events_are_paged_by_cursor_and_filtered(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let user = create_user(&app, "ada@example.com").await?;
    let id = &user["id"];
    json_with(
        patch_json(
            &app,
            &format!("/users/{id}"),
            None,
            &json!({"role": "admin"}),
        )
        .await?,
        200,
    )
    .await?;
    json_with(
        patch_json(
            &app,
            &format!("/users/{id}"),
            None,
            &json!({"status": "active"}),
        )
        .await?,
        200,
    )
    .await?;

    let first = get_json(&app, "/events?limit=2").await?;
    let items = first["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["type"], "user.created");
    assert_eq!(
        items[0]["resource"],
        json!({"kind": "user", "id": id, "version": 1})
    );
    assert_eq!(items[0]["data"]["email"], "ada@example.com");
    assert!(items[0]["data"].get("password_hash").is_none());
    assert_eq!(first["next_after"], items[1]["id"]);
    let rest = get_json(&app, &format!("/events?after={}", first["next_after"])).await?;
    let rest = rest["items"].as_array().expect("items").clone();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["resource"]["version"], 3);
    let empty = get_json(&app, &format!("/events?after={}", rest[0]["id"])).await?;
    assert_eq!(empty["items"], json!([]));
    assert_eq!(empty["next_after"], Value::Null);

    let created = get_json(&app, "/events?type=user.created,invoice.paid").await?;
    assert_eq!(created["items"].as_array().map(Vec::len), Some(1));
    let of_user = get_json(
        &app,
        &format!("/events?resource_kind=user&resource_id={id}"),
    )
    .await?;
    assert_eq!(of_user["items"].as_array().map(Vec::len), Some(3));
    let one = get_json(&app, &format!("/events/{}", rest[0]["id"])).await?;
    assert_eq!(one["type"], "user.updated");

    // `resource_id` alone: the resources of every kind with that id.
    let of_id = get_json(&app, &format!("/events?resource_id={id}")).await?;
    assert!(
        of_id["items"]
            .as_array()
            .is_some_and(
                |items| items.iter().all(|e| e["resource"]["id"] == *id) && items.len() >= 3
            ),
        "{of_id}"
    );
    for bad in [
        "/events?type=user.exploded",
        "/events?type=user.created,%20invoice.paid",
        "/events?type=",
        "/events?resource_kind=plan",
        "/events?limit=0",
        "/events?colour=blue",
    ] {
        let problem = json_with(get(&app, bad).await?, 400).await?;
        assert_eq!(problem["code"], "validation_failed", "{bad}");
    }
    // Which events exist is state, not input: an unknown cursor is 404.
    let problem = json_with(get(&app, "/events?after=999999").await?, 404).await?;
    assert_eq!(problem["code"], "not_found");
    json_with(get(&app, "/events/999999").await?, 404).await?;
    Ok(())
}

/// A receiver on loopback: answers 500 to its first request, 200 after;
/// keeps (signature header, body) of each.
async fn receiver() -> anyhow::Result<(String, Arc<Mutex<Vec<(String, Vec<u8>)>>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/events", listener.local_addr()?);
    let got = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&got);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = Vec::new();
            let mut chunk = [0_u8; 4096];
            let (head_end, length) = loop {
                let Ok(n) = stream.read(&mut chunk).await else {
                    break (0, 0);
                };
                if n == 0 {
                    break (0, 0);
                }
                buffer.extend_from_slice(&chunk[..n]);
                if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buffer[..at]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    break (at + 4, length);
                }
            };
            while head_end > 0 && buffer.len() < head_end + length {
                let Ok(n) = stream.read(&mut chunk).await else {
                    break;
                };
                if n == 0 {
                    break;
                }
                buffer.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
            let signature = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("billing-signature")
                        .then(|| v.trim().to_owned())
                })
                .unwrap_or_default();
            let body = buffer[head_end..].to_vec();
            let first = {
                let mut got = kept.lock().expect("not poisoned");
                got.push((signature, body));
                got.len() == 1
            };
            let status = if first {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let answer =
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    Ok((url, got))
}

async fn webhooks_are_registered_signed_and_delivered(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app_with(
        db,
        TestOptions {
            webhooks: Some(WebhookArgs {
                timeout: Duration::from_secs(2),
                poll_interval: Duration::from_millis(20),
                retry_base: Duration::from_millis(20),
                ..WebhookArgs::default()
            }),
            ..TestOptions::default()
        },
    )
    .await?;
    for url in [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "not a url",
        "https://u:p@example.com/",
    ] {
        let problem = json_with(
            post_json(&app, "/webhook-endpoints", &json!({"url": url})).await?,
            400,
        )
        .await?;
        assert_eq!(problem["code"], "validation_failed", "{url}");
    }
    let problem = json_with(
        post_json(
            &app,
            "/webhook-endpoints",
            &json!({"url": "https://example.com/", "event_types": ["user.exploded"]}),
        )
        .await?,
        400,
    )
    .await?;
    assert_eq!(problem["code"], "validation_failed");
    let problem = json_with(
        post_json(
            &app,
            "/webhook-endpoints",
            &json!({"url": "https://example.com/", "colour": 1}),
        )
        .await?,
        400,
    )
    .await?;
    assert_eq!(problem["code"], "validation_failed");

    let (url, got) = receiver().await?;
    let endpoint = json_with(
        post_json(
            &app,
            "/webhook-endpoints",
            &json!({"url": url, "event_types": ["user.created"]}),
        )
        .await?,
        201,
    )
    .await?;
    let secret = endpoint["secret"].as_str().expect("the secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    let shown = get_json(&app, &format!("/webhook-endpoints/{}", endpoint["id"])).await?;
    assert!(shown.get("secret").is_none(), "shown once");
    assert_eq!(shown["event_types"], json!(["user.created"]));
    let listed = get_json(&app, "/webhook-endpoints").await?;
    assert_eq!(listed["total"], 1);

    let user = create_user(&app, "grace@example.com").await?;
    // Not wanted by the endpoint: never sent.
    json_with(
        patch_json(
            &app,
            &format!("/users/{}", user["id"]),
            None,
            &json!({"role": "admin"}),
        )
        .await?,
        200,
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.lock().expect("not poisoned").len() < 2 {
        anyhow::ensure!(Instant::now() < deadline, "no retried delivery");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = chrono::Utc::now().timestamp();
    for (signature, body) in got.lock().expect("not poisoned").iter() {
        verify(&secret, signature, body, now, DEFAULT_TOLERANCE)?;
        let event: Value = serde_json::from_slice(body)?;
        assert_eq!(event["type"], "user.created");
        assert_eq!(event["resource"]["id"], user["id"]);
    }
    let deliveries = get_json(
        &app,
        &format!("/webhook-deliveries?endpoint_id={}", endpoint["id"]),
    )
    .await?;
    let items = deliveries["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 1);
    let delivery_id = &items[0]["id"];
    let deadline = Instant::now() + Duration::from_secs(30);
    let detail = loop {
        let detail = get_json(&app, &format!("/webhook-deliveries/{delivery_id}")).await?;
        if detail["status"] == "succeeded" {
            break detail;
        }
        anyhow::ensure!(Instant::now() < deadline, "not acknowledged: {detail}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let log = detail["attempt_log"].as_array().expect("attempts");
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["status_code"], 500);
    assert_eq!(log[1]["status_code"], 200);

    let again = json_with(
        post_empty(
            &app,
            &format!("/webhook-deliveries/{delivery_id}/redeliver"),
            None,
        )
        .await?,
        200,
    )
    .await?;
    assert_eq!(again["status"], "pending");
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.lock().expect("not poisoned").len() < 3 {
        anyhow::ensure!(Instant::now() < deadline, "not redelivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    json_with(
        patch_json(
            &app,
            &format!("/webhook-endpoints/{}", endpoint["id"]),
            None,
            &json!({"status": "failing"}),
        )
        .await?,
        400,
    )
    .await?;
    let disabled = json_with(
        patch_json(
            &app,
            &format!("/webhook-endpoints/{}", endpoint["id"]),
            None,
            &json!({"status": "disabled"}),
        )
        .await?,
        200,
    )
    .await?;
    assert_eq!(disabled["status"], "disabled");
    let deleted = app
        .api_client
        .delete(app.url(&format!("/api/v1/webhook-endpoints/{}", endpoint["id"])))
        .send()
        .await?;
    assert_eq!(deleted.status(), 204);
    json_with(
        get(&app, &format!("/webhook-endpoints/{}", endpoint["id"])).await?,
        404,
    )
    .await?;
    Ok(())
}

test_on_each_backend!(
    events_are_paged_by_cursor_and_filtered,
    webhooks_are_registered_signed_and_delivered,
);
