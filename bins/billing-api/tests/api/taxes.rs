//! `/taxes`: creating, reading, changing the rate (which closes the open
//! historical rate), the rate history newest first, and bad input that
//! writes nothing.

use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::json;

use crate::fixtures::{create_vat, etag, get, get_json, json_with, patch_json, post_json, total};
use crate::helpers::{assert_problem, spawn_app};

async fn taxes_keep_their_rate_history(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let response = post_json(
        &app,
        "/taxes",
        &json!({"name": "German VAT", "code": "DE_VAT", "rate": "19", "country_code": "de"}),
    )
    .await?;
    let location = response.headers()["location"].to_str()?.to_owned();
    let vat = json_with(response, 201).await?;
    assert_eq!(location, format!("/api/v1/taxes/{}", vat["id"]));
    assert_eq!(vat["rate"], "19.00");
    assert_eq!(vat["country_code"], "DE");
    assert_eq!(vat["is_inclusive"], false);
    assert_eq!(vat["is_active"], true);

    let path = format!("/taxes/{}", vat["id"]);
    let response = get(&app, &path).await?;
    assert_eq!(etag(&response), "\"1\"");
    assert_eq!(json_with(response, 200).await?["code"], "DE_VAT");

    // A stale change is refused; a good one closes the open rate.
    let stale = patch_json(&app, &path, Some("\"7\""), &json!({"rate": "7"})).await?;
    assert_eq!(
        assert_problem(stale, 412, "version_mismatch").await?["current_version"],
        1
    );
    let changed = json_with(
        patch_json(&app, &path, Some("\"1\""), &json!({"rate": "7.5"})).await?,
        200,
    )
    .await?;
    assert_eq!(
        (changed["rate"].clone(), changed["version"].clone()),
        (json!("7.50"), json!(2))
    );

    let rates = get_json(&app, &format!("{path}/rates")).await?;
    assert_eq!(rates["total"], 2, "{rates}");
    let (newest, oldest) = (&rates["items"][0], &rates["items"][1]);
    assert_eq!(newest["rate"], "7.50");
    assert!(newest["valid_to"].is_null());
    assert_eq!(oldest["rate"], "19.00");
    assert_eq!(oldest["valid_to"], newest["valid_from"]);
    let page = get_json(&app, &format!("{path}/rates?page=2&per_page=1")).await?;
    assert_eq!(page["items"][0]["rate"], "19.00");
    assert_eq!(
        (page["page"].clone(), page["per_page"].clone()),
        (json!(2), json!(1))
    );

    assert_eq!(total(&app, "/taxes").await?, 1);
    assert_problem(get(&app, "/taxes/999999").await?, 404, "not_found").await?;
    assert_problem(get(&app, "/taxes/999999/rates").await?, 404, "not_found").await?;
    assert_problem(get(&app, "/taxes/abc").await?, 400, "validation_failed").await?;
    Ok(())
}

async fn bad_taxes_are_refused_and_write_nothing(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let vat = create_vat(&app).await?;
    let base = json!({"name": "VAT", "code": "FR_VAT", "rate": "20", "country_code": "FR"});
    let with = |field: &str, value: serde_json::Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("rate", json!("101")), 400, "validation_failed"),
        (with("rate", json!("-1")), 400, "validation_failed"),
        (with("rate", json!("19.12345")), 400, "validation_failed"),
        (with("rate", json!(20)), 400, "validation_failed"),
        (with("country_code", json!("XX")), 400, "validation_failed"),
        (with("code", json!("has space")), 400, "validation_failed"),
        (with("is_active", json!("yes")), 400, "validation_failed"),
        (with("code", json!("DE_VAT")), 409, "already_exists"),
    ];
    for (body, status, code) in cases {
        assert_problem(post_json(&app, "/taxes", &body).await?, status, code).await?;
    }
    let path = format!("/taxes/{}", vat["id"]);
    let response = patch_json(&app, &path, None, &json!({"rate": "300"})).await?;
    assert_problem(response, 400, "validation_failed").await?;

    assert_eq!(total(&app, "/taxes").await?, 1);
    assert_eq!(get_json(&app, &path).await?["version"], 1);
    assert_eq!(total(&app, &format!("{path}/rates")).await?, 1);
    Ok(())
}

test_on_each_backend!(
    taxes_keep_their_rate_history,
    bad_taxes_are_refused_and_write_nothing
);
