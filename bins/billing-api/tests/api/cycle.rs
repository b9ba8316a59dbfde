//! The billing cycle in the binary: the background task renews a due
//! subscription and counts it in `/metrics`; `billing-api cycle run-once`
//! makes one pass, prints it and exits 0; its settings are checked.

use std::process::Command;
use std::time::{Duration, Instant};

use billing_api::cycle::CycleArgs;
use billing_test_support::{Backend, TestDatabase, test_on_each_backend};
use serde_json::Value;

use crate::fixtures::{billed, get_json, json_with, pay};
use crate::helpers::{TestApp, TestOptions, spawn_app, spawn_app_with};

const BINARY: &str = env!("CARGO_BIN_EXE_billing-api");

/// A lead longer than a month: a subscription paid now is due at once.
fn due_at_once() -> CycleArgs {
    CycleArgs {
        renewal_lead: Duration::from_secs(40 * 24 * 60 * 60),
        interval: Duration::from_millis(100),
        ..CycleArgs::default()
    }
}

/// An active monthly subscription; returns (user id, subscription id).
async fn active_subscription(app: &TestApp, email: &str) -> anyhow::Result<(Value, Value)> {
    let set = billed(app, email, "pro").await?;
    json_with(pay(app, &set.invoice["id"], "pay-1").await?, 200).await?;
    Ok((set.user["id"].clone(), set.subscription["id"].clone()))
}

async fn invoices_of(app: &TestApp, user: &Value) -> anyhow::Result<Vec<Value>> {
    let page = get_json(app, &format!("/users/{user}/invoices")).await?;
    Ok(page["items"].as_array().cloned().unwrap_or_default())
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|value| value.parse().ok())
}

async fn the_server_runs_the_cycle(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app_with(
        db,
        TestOptions {
            cycle: Some(due_at_once()),
            ..TestOptions::default()
        },
    )
    .await?;
    let (user, subscription) = active_subscription(&app, "cy@example.com").await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let renewal = loop {
        let invoices = invoices_of(&app, &user).await?;
        if let Some(renewal) = invoices.iter().find(|i| i["status"] == "pending") {
            break renewal.clone();
        }
        assert!(Instant::now() < deadline, "no renewal issued: {invoices:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(renewal["subscription_id"], subscription);
    assert_eq!(renewal["amount"], "10.00");
    // Later passes issue nothing more for the period.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(invoices_of(&app, &user).await?.len(), 2);

    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(
        metric(&text, "billing_cycle_renewals_issued_total"),
        Some(1.0),
        "{text}"
    );
    assert!(
        metric(&text, "billing_cycle_passes_total{result=\"completed\"}").is_some_and(|n| n >= 2.0),
        "{text}"
    );
    assert!(
        text.contains("billing_cycle_pass_duration_seconds_count"),
        "{text}"
    );
    assert!(
        text.contains("billing_cycle_subscriptions_expired_total 0"),
        "{text}"
    );
    Ok(())
}

/// The report: the last line of stdout (logs may come before it).
fn last_line_json(stdout: &[u8]) -> anyhow::Result<Value> {
    let text = std::str::from_utf8(stdout)?;
    let line = text.lines().last().unwrap_or_default();
    Ok(serde_json::from_str(line)?)
}

async fn run_once_makes_one_pass_and_exits(db: TestDatabase) -> anyhow::Result<()> {
    let url = db.url().to_owned();
    let backend = db.backend();
    // The server does not run the cycle here (the default of the tests).
    let app = spawn_app(db).await?;
    let (user, _) = active_subscription(&app, "once@example.com").await?;
    let run = || {
        let mut command = Command::new(BINARY);
        command
            .env_clear()
            .args(["cycle", "run-once"])
            .env("DATABASE_URL", &url)
            .env("BILLING_CYCLE_RENEWAL_LEAD", "40days")
            .env("BILLING_LOG", "warn");
        match backend {
            Backend::Postgres => {
                command
                    .env("BILLING_DB_MAX_CONNECTIONS", "2")
                    .env("BILLING_DB_MIN_CONNECTIONS", "1");
            }
            Backend::Sqlite => {}
        }
        command.output()
    };
    let first = run()?;
    assert!(first.status.success(), "{first:?}");
    let report = last_line_json(&first.stdout)?;
    assert_eq!(report["renewals_issued"], 1, "{report}");
    assert_eq!(report["lease_held_elsewhere"], false, "{report}");
    assert_eq!(invoices_of(&app, &user).await?.len(), 2);
    let second = run()?;
    assert!(second.status.success(), "{second:?}");
    let report = last_line_json(&second.stdout)?;
    assert_eq!(report["renewals_issued"], 0, "{report}");
    assert_eq!(invoices_of(&app, &user).await?.len(), 2);
    Ok(())
}

test_on_each_backend!(the_server_runs_the_cycle, run_once_makes_one_pass_and_exits);

#[test]
fn bad_cycle_settings_are_refused_in_one_line() -> anyhow::Result<()> {
    for (variable, value) in [
        ("BILLING_CYCLE_DUNNING_SCHEDULE", "5days,1day"),
        ("BILLING_CYCLE_BATCH_SIZE", "0"),
        ("BILLING_CYCLE_INTERVAL", "0s"),
        ("BILLING_CYCLE_DUNNING_FINAL_ACTION", "refund"),
    ] {
        let output = Command::new(BINARY)
            .env_clear()
            .args(["cycle", "run-once"])
            .env("DATABASE_URL", "sqlite://never-created.db?mode=rwc")
            .env(variable, value)
            .output()?;
        assert_eq!(output.status.code(), Some(1), "{variable}={value}");
        let stderr = String::from_utf8(output.stderr)?;
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(variable), "{variable}: {stderr}");
        assert!(
            output.stdout.is_empty(),
            "{variable}: wrote {:?}",
            output.stdout
        );
    }
    assert!(!std::path::Path::new("never-created.db").exists());
    Ok(())
}
