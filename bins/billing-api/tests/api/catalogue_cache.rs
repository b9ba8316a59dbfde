//! The catalogue cache over HTTP: two instances on one PostgreSQL database
//! and one Redis (one of them through a proxy that can make Redis hang for
//! it): a plan change made on one is read on the other once the bound
//! (`BILLING_CATALOGUE_REFRESH`, 20 ms) has passed, and while Redis does
//! not answer the other reads the database instead of its copy. On the
//! embedded default (SQLite, one instance) a change is read at once.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use billing_test_support::{Backend, TestDatabase};
use serde_json::{Value, json};

use crate::fixtures::{create_plan, get_json, json_with, patch_json};
use crate::helpers::{
    HangingProxy, TestApp, TestOptions, replace_host_port, socket_address, spawn_app,
    spawn_instance,
};

/// Longer than the default bound of 20 ms, with room for a busy machine.
const PAST_REFRESH: Duration = Duration::from_millis(60);

/// The price of plan `id` as `app` answers it.
async fn price(app: &TestApp, id: &Value) -> anyhow::Result<String> {
    let plan = get_json(app, &format!("/plans/{id}")).await?;
    plan["price"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no price in {plan}"))
}

/// Sets the price of plan `id` on `app`.
async fn set_price(app: &TestApp, id: &Value, price: &str) -> anyhow::Result<()> {
    let response = patch_json(app, &format!("/plans/{id}"), None, &json!({"price": price})).await?;
    json_with(response, 200).await?;
    Ok(())
}

/// The value of the metric line starting with `series` on `app`.
async fn metric(app: &TestApp, series: &str) -> anyhow::Result<f64> {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let line = text
        .lines()
        .find(|line| line.starts_with(series))
        .with_context(|| format!("no {series} in\n{text}"))?;
    Ok(line.rsplit(' ').next().unwrap_or_default().parse()?)
}

const HITS: &str = r#"billing_catalogue_reads_total{outcome="hit"}"#;
const BYPASSES: &str = r#"billing_catalogue_reads_total{outcome="bypass"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_reaches_the_other_instance_and_a_hung_redis_is_bypassed() -> anyhow::Result<()> {
    let Some(db) = TestDatabase::create(Backend::Postgres).await? else {
        eprintln!("TEST_DATABASE_URL is not set: the two-instance cache test needs PostgreSQL");
        return Ok(());
    };
    let redis_url = billing_test_support::redis_url()
        .context("TEST_REDIS_URL must be set with TEST_DATABASE_URL")?;
    let db = Arc::new(db);
    let proxy = HangingProxy::start(socket_address(&redis_url, 6379).await?).await?;
    let options = TestOptions {
        redis_key_prefix: Some(format!(
            "billing-test-{}",
            billing_test_support::unique_suffix()
        )),
        ..TestOptions::default()
    };
    let a = spawn_instance(Arc::clone(&db), options.clone()).await?;
    let b = spawn_instance(
        db,
        TestOptions {
            redis_url: Some(replace_host_port(&redis_url, proxy.address())?),
            ..options
        },
    )
    .await?;
    assert!(a.uses_redis && b.uses_redis);

    let plan = create_plan(&a, "pro", "10.00").await?;
    let id = &plan["id"];
    assert_eq!(price(&b, id).await?, "10.00");
    assert_eq!(price(&b, id).await?, "10.00");
    assert!(metric(&b, HITS).await? >= 1.0, "b serves from memory");

    // A change on a: a reads it at once, b after the bound.
    set_price(&a, id, "12.50").await?;
    assert_eq!(price(&a, id).await?, "12.50");
    tokio::time::sleep(PAST_REFRESH).await;
    assert_eq!(price(&b, id).await?, "12.50");
    assert!(metric(&b, "billing_catalogue_invalidations_total").await? >= 1.0);

    // Redis hangs for b: b cannot learn of changes, so it reads the
    // database rather than its copy.
    proxy.set_hung(true);
    set_price(&a, id, "13.00").await?;
    tokio::time::sleep(PAST_REFRESH).await;
    let bypassed = metric(&b, BYPASSES).await?;
    assert_eq!(price(&b, id).await?, "13.00");
    assert_eq!(price(&b, id).await?, "13.00");
    assert!(
        metric(&b, BYPASSES).await? > bypassed,
        "b read the database"
    );
    assert!(metric(&b, "billing_catalogue_channel_failures_total").await? >= 1.0);

    // Redis answers again: b serves from memory again, and fresh.
    proxy.set_hung(false);
    set_price(&a, id, "14.00").await?;
    tokio::time::sleep(PAST_REFRESH).await;
    let hits = metric(&b, HITS).await?;
    let mut served_from_memory = false;
    for _ in 0..100 {
        assert_eq!(price(&b, id).await?, "14.00");
        if metric(&b, HITS).await? > hits {
            served_from_memory = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served_from_memory, "b never used its cache again");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_embedded_default_caches_and_reads_its_own_changes_at_once() -> anyhow::Result<()> {
    let db = TestDatabase::create(Backend::Sqlite)
        .await?
        .expect("SQLite is always available");
    let app = spawn_app(db).await?;
    assert!(!app.uses_redis);
    let plan = create_plan(&app, "pro", "10.00").await?;
    let id = &plan["id"];
    assert_eq!(price(&app, id).await?, "10.00");
    assert_eq!(price(&app, id).await?, "10.00");
    assert!(metric(&app, HITS).await? >= 1.0, "served from memory");
    set_price(&app, id, "12.50").await?;
    assert_eq!(price(&app, id).await?, "12.50");
    let list = get_json(&app, "/plans").await?;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["price"], "12.50", "{list}");
    assert!(metric(&app, "billing_catalogue_hit_ratio").await? > 0.0);
    Ok(())
}
