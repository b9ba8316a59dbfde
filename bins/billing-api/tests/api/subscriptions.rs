//! Subscriptions: subscribing, the lifecycle transitions with `is_valid`
//! and `days_remaining`, refused transitions that write nothing, and
//! `If-Match` on transitions.

use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::{Value, json};

use crate::fixtures::{
    create_invoice, create_plan, create_plan_with, create_user, etag, get, get_json, json_with,
    pay, post_empty, post_json, subscribe, total,
};
use crate::helpers::{assert_problem, spawn_app};

async fn subscriptions_follow_their_lifecycle(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let user = create_user(&app, "eve@example.com").await?;
    let plan = create_plan(&app, "pro", "10.00").await?;
    let response = post_json(
        &app,
        "/subscriptions",
        &json!({"user_id": user["id"], "plan_id": plan["id"]}),
    )
    .await?;
    let location = response.headers()["location"].to_str()?.to_owned();
    assert_eq!(etag(&response), "\"1\"");
    let sub = json_with(response, 201).await?;
    assert_eq!(location, format!("/api/v1/subscriptions/{}", sub["id"]));
    assert_eq!(sub["status"], "pending");
    assert_eq!(sub["plan_id"], plan["id"]);
    assert_eq!(
        (sub["is_valid"].clone(), sub["days_remaining"].clone()),
        (json!(false), json!(0))
    );

    let path = format!("/subscriptions/{}", sub["id"]);
    let step = async |action: &str, if_match: Option<&str>| -> anyhow::Result<reqwest::Response> {
        post_empty(&app, &format!("{path}/{action}"), if_match).await
    };
    // Only a paid invoice starts it.
    assert_problem(
        step("activate", Some("\"1\"")).await?,
        409,
        "invalid_transition",
    )
    .await?;
    let invoice = create_invoice(&app, &user, &plan, Some(&sub)).await?;
    json_with(pay(&app, &invoice["id"], "start").await?, 200).await?;
    let response = get(&app, &path).await?;
    assert_eq!(etag(&response), "\"2\"");
    let active = json_with(response, 200).await?;
    assert_eq!(
        (active["status"].clone(), active["is_valid"].clone()),
        (json!("active"), json!(true))
    );
    let days = active["days_remaining"].as_u64().unwrap();
    assert!((28..=31).contains(&days), "{active}");
    assert!(active["started_at"].is_string() && active["expires_at"].is_string());

    let stale = step("pause", Some("\"1\"")).await?;
    assert_eq!(
        assert_problem(stale, 412, "version_mismatch").await?["current_version"],
        2
    );
    let paused = json_with(step("pause", None).await?, 200).await?;
    assert_eq!(
        (paused["status"].clone(), paused["is_valid"].clone()),
        (json!("paused"), json!(false))
    );
    assert!(paused["paused_at"].is_string());
    let resumed = json_with(step("activate", None).await?, 200).await?;
    assert_eq!(resumed["status"], "active");
    let cancelled = json_with(step("cancel", None).await?, 200).await?;
    assert_eq!(
        (cancelled["status"].clone(), cancelled["version"].clone()),
        (json!("cancelled"), json!(5))
    );

    for action in ["activate", "pause", "expire", "cancel"] {
        assert_problem(step(action, None).await?, 409, "invalid_transition").await?;
    }
    let stored = get(&app, &path).await?;
    assert_eq!(etag(&stored), "\"5\"");
    assert_eq!(json_with(stored, 200).await?["status"], "cancelled");
    assert_problem(step("renew", None).await?, 404, "not_found").await?;
    assert_problem(
        post_empty(&app, "/subscriptions/999999/cancel", None).await?,
        404,
        "not_found",
    )
    .await?;
    assert_problem(get(&app, "/subscriptions/999999").await?, 404, "not_found").await?;
    let wrong_method = app
        .api_client
        .get(app.url(&format!("/api/v1{path}/cancel")))
        .send()
        .await?;
    assert_problem(wrong_method, 405, "method_not_allowed").await?;

    // An active subscription expires; a lifetime one never runs out.
    let lifetime = create_plan_with(
        &app,
        &json!({"name": "Forever", "slug": "forever", "price": "99", "currency": "EUR", "billing_period": "lifetime"}),
    )
    .await?;
    let forever = subscribe(&app, &user, &lifetime).await?;
    let forever_path = format!("/subscriptions/{}", forever["id"]);
    let invoice = create_invoice(&app, &user, &lifetime, Some(&forever)).await?;
    json_with(pay(&app, &invoice["id"], "forever").await?, 200).await?;
    let active = get_json(&app, &forever_path).await?;
    assert_eq!(
        (
            active["is_valid"].clone(),
            active["days_remaining"].clone(),
            active["expires_at"].clone()
        ),
        (json!(true), Value::Null, Value::Null)
    );
    let expired = json_with(
        post_empty(&app, &format!("{forever_path}/expire"), None).await?,
        200,
    )
    .await?;
    assert_eq!(
        (expired["status"].clone(), expired["days_remaining"].clone()),
        (json!("expired"), json!(0))
    );

    let list = get_json(&app, &format!("/users/{}/subscriptions", user["id"])).await?;
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"][0]["id"], sub["id"]);
    assert_problem(
        get(&app, "/users/999999/subscriptions").await?,
        404,
        "not_found",
    )
    .await?;
    Ok(())
}

async fn bad_subscriptions_are_refused_and_write_nothing(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let user = create_user(&app, "fay@example.com").await?;
    let plan = create_plan(&app, "pro", "10.00").await?;
    let inactive = create_plan_with(
        &app,
        &json!({"name": "Old", "slug": "old", "price": "1", "currency": "EUR", "billing_period": "monthly", "is_active": false}),
    )
    .await?;
    let cases = [
        (
            json!({"user_id": 999_999, "plan_id": plan["id"]}),
            404,
            "not_found",
        ),
        (
            json!({"user_id": user["id"], "plan_id": 999_999}),
            404,
            "not_found",
        ),
        (
            json!({"user_id": user["id"], "plan_id": inactive["id"]}),
            409,
            "invalid_transition",
        ),
        (
            json!({"user_id": "1", "plan_id": plan["id"]}),
            400,
            "validation_failed",
        ),
        (json!({"user_id": user["id"]}), 400, "validation_failed"),
        (
            json!({"user_id": user["id"], "plan_id": plan["id"], "status": "active"}),
            400,
            "validation_failed",
        ),
    ];
    for (body, status, code) in cases {
        assert_problem(
            post_json(&app, "/subscriptions", &body).await?,
            status,
            code,
        )
        .await?;
    }
    assert_eq!(
        total(&app, &format!("/users/{}/subscriptions", user["id"])).await?,
        0
    );
    Ok(())
}

test_on_each_backend!(
    subscriptions_follow_their_lifecycle,
    bad_subscriptions_are_refused_and_write_nothing
);
