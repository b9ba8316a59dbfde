//! `/currencies`: the seeded default, creating, reading, changing, making
//! another currency the default, and bad input that writes nothing.

use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::json;

use crate::fixtures::{
    create_currency, etag, get, get_json, json_with, patch_json, post_json, total,
};
use crate::helpers::{assert_problem, spawn_app};

async fn currencies_are_created_read_and_changed(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let list = get_json(&app, "/currencies").await?;
    assert_eq!(
        (
            list["page"].clone(),
            list["per_page"].clone(),
            list["total"].clone()
        ),
        (json!(1), json!(20), json!(1))
    );
    let eur = &list["items"][0];
    assert_eq!(eur["code"], "EUR");
    assert_eq!(eur["exchange_rate"], "1.00");
    assert_eq!(eur["decimal_places"], 2);
    assert_eq!(eur["is_default"], true);

    let response = post_json(
        &app,
        "/currencies",
        &json!({"code": "usd", "name": "US Dollar", "symbol": "$", "exchange_rate": "1.08"}),
    )
    .await?;
    assert_eq!(response.headers()["location"], "/api/v1/currencies/USD");
    assert_eq!(etag(&response), "\"1\"");
    let usd = json_with(response, 201).await?;
    assert_eq!(usd["code"], "USD");
    assert_eq!(usd["exchange_rate"], "1.08");
    assert_eq!(usd["is_default"], false);
    let created_at = usd["created_at"].as_str().unwrap();
    assert!(created_at.ends_with('Z'), "{created_at}");
    chrono::DateTime::parse_from_rfc3339(created_at)?;

    let jpy = create_currency(&app, "JPY", "160").await?;
    assert_eq!(
        (jpy["decimal_places"].clone(), jpy["exchange_rate"].clone()),
        (json!(0), json!("160.00"))
    );

    // Read case-insensitively, with its ETag.
    let response = get(&app, "/currencies/usd").await?;
    assert_eq!(etag(&response), "\"1\"");
    assert_eq!(json_with(response, 200).await?["name"], "US Dollar");

    // A change with the right version, then a stale one.
    let response = patch_json(
        &app,
        "/currencies/USD",
        Some("\"1\""),
        &json!({"exchange_rate": "1.10"}),
    )
    .await?;
    assert_eq!(etag(&response), "\"2\"");
    let changed = json_with(response, 200).await?;
    assert_eq!(
        (changed["exchange_rate"].clone(), changed["version"].clone()),
        (json!("1.10"), json!(2))
    );
    let stale = patch_json(
        &app,
        "/currencies/USD",
        Some("\"1\""),
        &json!({"name": "Dollar"}),
    )
    .await?;
    let body = assert_problem(stale, 412, "version_mismatch").await?;
    assert_eq!(body["current_version"], 2);
    assert_eq!(
        get_json(&app, "/currencies/USD").await?["name"],
        "US Dollar"
    );

    // Making USD the default rebases every rate on it.
    let response = patch_json(
        &app,
        "/currencies/USD",
        None,
        &json!({"is_default": true, "exchange_rate": "1.08"}),
    )
    .await?;
    let usd = json_with(response, 200).await?;
    assert_eq!(
        (usd["is_default"].clone(), usd["exchange_rate"].clone()),
        (json!(true), json!("1.00"))
    );
    let eur = get_json(&app, "/currencies/EUR").await?;
    assert_eq!(
        (eur["is_default"].clone(), eur["exchange_rate"].clone()),
        (json!(false), json!("0.92592593"))
    );

    for missing in ["/currencies/GBP", "/currencies/EURO", "/currencies/%00"] {
        assert_problem(get(&app, missing).await?, 404, "not_found").await?;
    }
    let response = patch_json(&app, "/currencies/GBP", None, &json!({"name": "Pound"})).await?;
    assert_problem(response, 404, "not_found").await?;
    Ok(())
}

async fn bad_currencies_are_refused_and_write_nothing(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let cases = [
        (
            json!({"code": "XYZ", "name": "X", "exchange_rate": "1"}),
            400,
            "validation_failed",
        ),
        (
            json!({"code": "GBP", "name": "Pound", "exchange_rate": "-1"}),
            400,
            "validation_failed",
        ),
        (
            json!({"code": "GBP", "name": "Pound", "exchange_rate": "0"}),
            400,
            "validation_failed",
        ),
        (
            json!({"code": "GBP", "name": "Pound", "exchange_rate": 0.85}),
            400,
            "validation_failed",
        ),
        (
            json!({"code": "GBP", "name": "Pound", "exchange_rate": "0.1234567891"}),
            400,
            "validation_failed",
        ),
        (
            json!({"code": "GBP", "name": "Pound", "exchange_rate": "0.85", "decimal_places": 9}),
            400,
            "validation_failed",
        ),
        (
            json!({"code": "GBP", "name": "Pound", "exchange_rate": "0.85", "extra": 1}),
            400,
            "validation_failed",
        ),
        (
            json!({"code": "GBP", "name": "", "exchange_rate": "0.85"}),
            400,
            "validation_failed",
        ),
        (
            json!({"code": "GBP", "exchange_rate": "0.85"}),
            400,
            "validation_failed",
        ),
        (
            json!({"code": "EUR", "name": "Euro", "exchange_rate": "1"}),
            409,
            "already_exists",
        ),
    ];
    for (body, status, code) in cases {
        let response = post_json(&app, "/currencies", &body).await?;
        assert_problem(response, status, code).await?;
    }
    // A change that breaks a rule writes nothing either.
    // The default must stay active: a rule of the stored state, not of the body.
    let response = patch_json(&app, "/currencies/EUR", None, &json!({"is_active": false})).await?;
    assert_problem(response, 409, "invalid_transition").await?;
    let response = patch_json(&app, "/currencies/EUR", Some("one"), &json!({"name": "E"})).await?;
    assert_problem(response, 400, "validation_failed").await?;

    assert_eq!(total(&app, "/currencies").await?, 1);
    let eur = get_json(&app, "/currencies/EUR").await?;
    assert_eq!(
        (eur["version"].clone(), eur["is_active"].clone()),
        (json!(1), json!(true))
    );
    Ok(())
}

test_on_each_backend!(
    currencies_are_created_read_and_changed,
    bad_currencies_are_refused_and_write_nothing
);
