//! Bearer-token authentication of `/api/v1`.

use billing_api::{Application, StartupError};
use billing_test_support::{TestDatabase, test_on_each_backend};
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::json;

use crate::helpers::{TestOptions, assert_problem, spawn_app, spawn_app_with, test_settings};

async fn requests_without_a_token_are_refused(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let response = app
        .client
        .get(app.url("/api/v1/test/items/1"))
        .send()
        .await?;
    let challenge = response.headers().get(WWW_AUTHENTICATE).cloned();
    assert_problem(response, 401, "unauthorized").await?;
    assert_eq!(challenge.unwrap(), r#"Bearer realm="billing""#);

    // Unknown routes under /api/v1 are refused too: nothing is revealed.
    let response = app
        .client
        .get(app.url("/api/v1/nothing-here"))
        .send()
        .await?;
    assert_problem(response, 401, "unauthorized").await?;
    Ok(())
}

async fn a_wrong_token_is_refused(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let token = app.token.clone().unwrap();
    for wrong in [
        format!("{token}x"),
        token[..token.len() - 1].to_owned(),
        "x".repeat(64),
    ] {
        let response = app
            .client
            .get(app.url("/api/v1/test/items/1"))
            .bearer_auth(wrong)
            .send()
            .await?;
        let challenge = response.headers().get(WWW_AUTHENTICATE).cloned();
        assert_problem(response, 401, "unauthorized").await?;
        assert_eq!(
            challenge.unwrap(),
            r#"Bearer realm="billing", error="invalid_token""#
        );
    }
    let basic = app
        .client
        .get(app.url("/api/v1/test/items/1"))
        .header("Authorization", format!("Basic {token}"))
        .send()
        .await?;
    assert_problem(basic, 401, "unauthorized").await?;
    Ok(())
}

async fn the_right_token_is_let_in(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let response = app
        .api_client
        .get(app.url("/api/v1/test/items/7"))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await?,
        json!({"id": 7})
    );
    // The scheme is case-insensitive.
    let token = app.token.clone().unwrap();
    let response = app
        .client
        .get(app.url("/api/v1/test/items/7"))
        .header("Authorization", format!("bearer {token}"))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    Ok(())
}

async fn without_a_token_the_api_is_open_on_loopback(db: TestDatabase) -> anyhow::Result<()> {
    let options = TestOptions {
        token: None,
        ..TestOptions::default()
    };
    let app = spawn_app_with(db, options).await?;
    let response = app
        .client
        .get(app.url("/api/v1/test/items/3"))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    Ok(())
}

async fn an_open_api_refuses_a_public_address(db: TestDatabase) -> anyhow::Result<()> {
    let options = TestOptions {
        token: None,
        ..TestOptions::default()
    };
    let mut settings = test_settings(&db, &options)?;
    settings.http.bind = "0.0.0.0:0".parse()?;
    let error = Application::build(settings).await.unwrap_err();
    assert!(matches!(error, StartupError::Configuration(_)), "{error:?}");
    assert!(error.to_string().contains("BILLING_API_TOKEN"), "{error}");
    Ok(())
}

test_on_each_backend!(
    requests_without_a_token_are_refused,
    a_wrong_token_is_refused,
    the_right_token_is_let_in,
    without_a_token_the_api_is_open_on_loopback,
    an_open_api_refuses_a_public_address
);
