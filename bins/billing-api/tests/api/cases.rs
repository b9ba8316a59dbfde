//! Support cases: opening, listing by status, changing, and `closed` being
//! final.

use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::json;

use crate::fixtures::{create_user, etag, get, get_json, json_with, patch_json, post_json, total};
use crate::helpers::{assert_problem, spawn_app};

async fn support_cases_are_opened_changed_and_closed(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let user = create_user(&app, "dee@example.com").await?;
    let cases = format!("/users/{}/cases", user["id"]);

    let response = post_json(
        &app,
        &cases,
        &json!({"subject": "Invoice wrong", "description": "VAT missing"}),
    )
    .await?;
    let location = response.headers()["location"].to_str()?.to_owned();
    assert_eq!(etag(&response), "\"1\"");
    let case = json_with(response, 201).await?;
    assert_eq!(location, format!("/api/v1/cases/{}", case["id"]));
    assert_eq!(
        (case["status"].clone(), case["user_id"].clone()),
        (json!("open"), user["id"].clone())
    );
    let path = format!("/cases/{}", case["id"]);
    assert_eq!(get_json(&app, &path).await?["subject"], "Invoice wrong");

    for bad in [
        json!({"subject": " ", "description": "x"}),
        json!({"subject": "x".repeat(201), "description": "x"}),
        json!({"subject": "s"}),
    ] {
        assert_problem(
            post_json(&app, &cases, &bad).await?,
            400,
            "validation_failed",
        )
        .await?;
    }
    let response = post_json(
        &app,
        "/users/999999/cases",
        &json!({"subject": "s", "description": "d"}),
    )
    .await?;
    assert_problem(response, 404, "not_found").await?;
    assert_eq!(total(&app, &cases).await?, 1);

    let response = patch_json(
        &app,
        &path,
        Some("\"1\""),
        &json!({"status": "in_progress"}),
    )
    .await?;
    assert_eq!(json_with(response, 200).await?["status"], "in_progress");
    assert_eq!(
        total(&app, &format!("{cases}?status=in_progress")).await?,
        1
    );
    assert_eq!(total(&app, &format!("{cases}?status=open")).await?, 0);
    let stale = patch_json(&app, &path, Some("\"1\""), &json!({"status": "resolved"})).await?;
    assert_problem(stale, 412, "version_mismatch").await?;
    let closed = patch_json(&app, &path, None, &json!({"status": "closed"})).await?;
    assert_eq!(json_with(closed, 200).await?["version"], 3);
    let reopened = patch_json(&app, &path, None, &json!({"status": "open"})).await?;
    assert_problem(reopened, 409, "invalid_transition").await?;
    assert_eq!(get_json(&app, &path).await?["status"], "closed");

    assert_problem(get(&app, "/cases/999999").await?, 404, "not_found").await?;
    assert_problem(get(&app, "/users/999999/cases").await?, 404, "not_found").await?;
    Ok(())
}

test_on_each_backend!(support_cases_are_opened_changed_and_closed);
