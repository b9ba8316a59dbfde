//! Switching the default currency over HTTP: a switch that would put a
//! rebased rate out of range is refused with 409 `invalid_transition`
//! naming the currency, and writes nothing.

use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::json;

use crate::fixtures::{create_currency, get_json, json_with, patch_json, post_json};
use crate::helpers::{assert_problem, spawn_app};

async fn an_out_of_range_rebase_is_refused(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    // EUR is the default the application starts with.
    create_currency(&app, "BHD", "0.00000001").await?;
    create_currency(&app, "JPY", "1000").await?;
    let before = get_json(&app, "/currencies").await?;

    let refused = assert_problem(
        patch_json(&app, "/currencies/BHD", None, &json!({"is_default": true})).await?,
        409,
        "invalid_transition",
    )
    .await?;
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("JPY")),
        "{refused}"
    );
    let created = assert_problem(
        post_json(
            &app,
            "/currencies",
            &json!({"code": "GBP", "name": "Pound", "exchange_rate": "0.00000001", "is_default": true}),
        )
        .await?,
        409,
        "invalid_transition",
    )
    .await?;
    assert!(
        created["detail"]
            .as_str()
            .is_some_and(|d| d.contains("JPY")),
        "{created}"
    );
    assert_eq!(
        get_json(&app, "/currencies").await?,
        before,
        "a refused switch wrote"
    );

    // JPY stays changeable.
    let jpy = json_with(
        patch_json(
            &app,
            "/currencies/JPY",
            None,
            &json!({"exchange_rate": "160"}),
        )
        .await?,
        200,
    )
    .await?;
    assert!(
        jpy["exchange_rate"]
            .as_str()
            .is_some_and(|r| r.starts_with("160")),
        "{jpy}"
    );
    Ok(())
}

test_on_each_backend!(an_out_of_range_rebase_is_refused);
