//! `Idempotency-Key`: replays of identical bytes with
//! `Idempotent-Replayed: true`, 422 on reuse with another request, errors
//! never recorded (so a corrected request runs under the same key), keys
//! kept across a restart, keys checked, and keys on every `POST`.

use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::{Value, json};

use crate::fixtures::{billed, card, create_plan, create_user, get_json, json_with, total};
use crate::helpers::{TestApp, assert_problem, restart, spawn_app};

/// `POST /api/v1<path>` with `key` and the raw `body`.
async fn post_with_key(
    app: &TestApp,
    path: &str,
    key: &str,
    body: &str,
) -> anyhow::Result<reqwest::Response> {
    Ok(app
        .api_client
        .post(app.url(&format!("/api/v1{path}")))
        .header("Idempotency-Key", key)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await?)
}

/// Status, the headers that are replayed, and the body bytes.
async fn parts(
    response: reqwest::Response,
) -> anyhow::Result<(u16, Vec<(String, String)>, bool, Vec<u8>)> {
    let status = response.status().as_u16();
    let mut headers: Vec<(String, String)> = ["content-type", "location", "etag"]
        .iter()
        .filter_map(|name| {
            response.headers().get(*name).map(|v| {
                (
                    (*name).to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
        })
        .collect();
    headers.sort();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    Ok((status, headers, replayed, response.bytes().await?.to_vec()))
}

async fn a_repeated_create_replays_the_first_response(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let body = r#"{"email": "jo@example.com", "password": "correct horse battery"}"#;
    let first = parts(post_with_key(&app, "/users", "create-jo", body).await?).await?;
    assert_eq!(first.0, 201);
    assert!(!first.2, "the first response is not a replay");
    for _ in 0..2 {
        let again = parts(post_with_key(&app, "/users", "create-jo", body).await?).await?;
        assert_eq!(
            (again.0, &again.1, &again.3),
            (first.0, &first.1, &first.3),
            "identical"
        );
        assert!(again.2, "Idempotent-Replayed: true");
    }
    // The same key with another body (even another spacing) is refused.
    let other = r#"{"email":"jo@example.com","password":"correct horse battery"}"#;
    let response = post_with_key(&app, "/users", "create-jo", other).await?;
    assert_problem(response, 422, "idempotency_key_reused").await?;
    // So is the same key on another path.
    let plan = r#"{"name": "P", "slug": "p", "price": "1", "currency": "EUR", "billing_period": "monthly"}"#;
    let response = post_with_key(&app, "/plans", "create-jo", plan).await?;
    assert_problem(response, 422, "idempotency_key_reused").await?;
    assert_eq!(total(&app, "/users").await?, 1);

    // A new key with the same body runs, and meets the taken e-mail.
    let response = post_with_key(&app, "/users", "create-jo-2", body).await?;
    assert_problem(response, 409, "already_exists").await?;
    Ok(())
}

async fn errors_are_not_recorded_and_bad_keys_refused(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let user = create_user(&app, "kim@example.com").await?;
    let plan = create_plan(&app, "pro", "10.00").await?;
    // A 404 changed nothing: it is not recorded, a repeat runs again...
    let missing = json!({"user_id": user["id"], "plan_id": 999_999}).to_string();
    for _ in 0..2 {
        let answer =
            parts(post_with_key(&app, "/subscriptions", "sub-kim", &missing).await?).await?;
        assert_eq!(answer.0, 404);
        assert!(!answer.2, "an error is not replayed");
    }
    // ... and the corrected request runs under the same key, once.
    let fixed = json!({"user_id": user["id"], "plan_id": plan["id"]}).to_string();
    let created = parts(post_with_key(&app, "/subscriptions", "sub-kim", &fixed).await?).await?;
    assert_eq!((created.0, created.2), (201, false));
    let again = parts(post_with_key(&app, "/subscriptions", "sub-kim", &fixed).await?).await?;
    assert_eq!(
        (again.0, &again.1, &again.3, again.2),
        (201, &created.1, &created.3, true)
    );
    // Now that it is recorded, the key belongs to that request.
    let response = post_with_key(&app, "/subscriptions", "sub-kim", &missing).await?;
    assert_problem(response, 422, "idempotency_key_reused").await?;
    assert_eq!(
        total(&app, &format!("/users/{}/subscriptions", user["id"])).await?,
        1
    );

    // Keys are 1 to 255 visible ASCII characters.
    let body = json!({"user_id": user["id"], "plan_id": plan["id"]}).to_string();
    for key in ["", "two words", &"k".repeat(256)] {
        let response = post_with_key(&app, "/subscriptions", key, &body).await?;
        assert_problem(response, 400, "validation_failed").await?;
    }
    let response = post_with_key(&app, "/subscriptions", &"k".repeat(255), &body).await?;
    assert_eq!(response.status().as_u16(), 201);
    assert_eq!(
        total(&app, &format!("/users/{}/subscriptions", user["id"])).await?,
        2
    );
    Ok(())
}

/// A payment refused for a stale `If-Match` (412) is not recorded: the
/// same key with the right version pays.
async fn a_stale_if_match_can_be_corrected_under_the_same_key(
    db: TestDatabase,
) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let set = billed(&app, "ola@example.com", "pro").await?;
    let path = format!("/invoices/{}/pay", set.invoice["id"]);
    let pay = async |version: &str| -> anyhow::Result<reqwest::Response> {
        Ok(app
            .api_client
            .post(app.url(&format!("/api/v1{path}")))
            .header("Idempotency-Key", "pay-ola")
            .header("If-Match", version)
            .json(&card())
            .send()
            .await?)
    };
    assert_problem(pay("\"7\"").await?, 412, "version_mismatch").await?;
    let paid = parts(pay("\"1\"").await?).await?;
    assert_eq!((paid.0, paid.2), (200, false), "the corrected payment ran");
    let replay = parts(pay("\"1\"").await?).await?;
    assert_eq!((replay.0, replay.2, &replay.3), (200, true, &paid.3));
    let invoice = get_json(&app, &format!("/invoices/{}", set.invoice["id"])).await?;
    assert_eq!(
        (invoice["status"].clone(), invoice["version"].clone()),
        (json!("paid"), json!(2))
    );
    Ok(())
}

/// Keys outlive the process: after a restart (on the embedded default the
/// key lives in the SQLite file), the same request replays, it does not
/// create a second invoice.
async fn keys_survive_a_restart(db: TestDatabase) -> anyhow::Result<()> {
    let mut app = spawn_app(db).await?;
    let user = create_user(&app, "max@example.com").await?;
    let plan = create_plan(&app, "pro", "10.00").await?;
    let body = json!({"user_id": user["id"], "plan_id": plan["id"]}).to_string();
    let first = parts(post_with_key(&app, "/invoices", "inv-max", &body).await?).await?;
    assert_eq!((first.0, first.2), (201, false));
    app.stop_gracefully().await?;

    let app = restart(&app).await?;
    let again = parts(post_with_key(&app, "/invoices", "inv-max", &body).await?).await?;
    assert_eq!(
        (again.0, &again.1, &again.3, again.2),
        (201, &first.1, &first.3, true)
    );
    assert_eq!(
        total(&app, &format!("/users/{}/invoices", user["id"])).await?,
        1,
        "the restart made the key run twice"
    );
    Ok(())
}

async fn payments_replay_and_refuse_reused_keys(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let set = billed(&app, "lea@example.com", "pro").await?;
    let path = format!("/invoices/{}/pay", set.invoice["id"]);
    let body = card().to_string();
    let first = parts(post_with_key(&app, &path, "pay-lea", &body).await?).await?;
    assert_eq!(first.0, 200);
    assert!(!first.2);
    let again = parts(post_with_key(&app, &path, "pay-lea", &body).await?).await?;
    assert_eq!((again.0, &again.1, &again.3), (200, &first.1, &first.3));
    assert!(again.2);
    let other = json!({"payment_method": "sepa", "payment_reference": "x"}).to_string();
    let response = post_with_key(&app, &path, "pay-lea", &other).await?;
    assert_problem(response, 422, "idempotency_key_reused").await?;

    let invoice = get_json(&app, &format!("/invoices/{}", set.invoice["id"])).await?;
    assert_eq!(
        (invoice["status"].clone(), invoice["version"].clone()),
        (json!("paid"), json!(2))
    );
    let subscription =
        get_json(&app, &format!("/subscriptions/{}", set.subscription["id"])).await?;
    assert_eq!(subscription["version"], 2, "one activation");

    // Transitions honour keys too: the second cancel replays the first.
    let invoice2 = json_with(
        crate::fixtures::post_json(
            &app,
            "/invoices",
            &json!({"user_id": set.user["id"], "plan_id": set.plan["id"]}),
        )
        .await?,
        201,
    )
    .await?;
    let cancel = format!("/invoices/{}/cancel", invoice2["id"]);
    let first = parts(post_with_key(&app, &cancel, "cancel-1", "").await?).await?;
    let again = parts(post_with_key(&app, &cancel, "cancel-1", "").await?).await?;
    assert_eq!((first.0, again.0, again.2), (200, 200, true));
    assert_eq!(first.3, again.3);
    let parsed: Value = serde_json::from_slice(&again.3)?;
    assert_eq!(parsed["status"], "cancelled");
    Ok(())
}

test_on_each_backend!(
    a_repeated_create_replays_the_first_response,
    errors_are_not_recorded_and_bad_keys_refused,
    payments_replay_and_refuse_reused_keys,
    a_stale_if_match_can_be_corrected_under_the_same_key,
    keys_survive_a_restart
);
