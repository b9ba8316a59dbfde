//! The API over the Redis a hosting provider sells: a Redis Cluster
//! (`BILLING_REDIS_CLUSTER`, `TEST_REDIS_CLUSTER_URL`) shared by three
//! instances, and a Redis reached over TLS only (`rediss://` with
//! `BILLING_REDIS_CA_FILE`, a server of the test's own).
//!
//! They need PostgreSQL (`TEST_DATABASE_URL`); the cluster test also needs
//! `TEST_REDIS_CLUSTER_URL` and the TLS test `TEST_REDIS_URL` (Redis tests
//! on), `redis-server` and `openssl`. With `TEST_DATABASE_URL` set and the
//! cluster variable missing, the cluster test fails rather than skip.

use anyhow::Context as _;
use billing_test_support::{Backend, TestDatabase, TlsRedis};
use serde_json::{Value, json};

use crate::fixtures::{billed, json_with, pay};
use crate::helpers::{TestOptions, spawn_app_with, spawn_instances};
use crate::instances::{paid_once, pay_concurrently, tally};

/// Three instances on one Redis Cluster: 60 concurrent payments of one
/// invoice with one key run once; 60 more with 60 keys on a second invoice
/// pay it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payments_run_once_across_instances_on_a_redis_cluster() -> anyhow::Result<()> {
    let Some(db) = TestDatabase::create(Backend::Postgres).await? else {
        eprintln!("TEST_DATABASE_URL is not set: the Redis Cluster test needs PostgreSQL");
        return Ok(());
    };
    let nodes = billing_test_support::redis_cluster_url().context(
        "TEST_REDIS_CLUSTER_URL must be set with TEST_DATABASE_URL (.ci/redis-cluster start)",
    )?;
    let options = TestOptions {
        redis_url: Some(nodes),
        redis_cluster: true,
        db_max_connections: Some(10),
        ..TestOptions::default()
    };
    let apps = spawn_instances(db, 3, options).await?;
    for app in &apps {
        let ready = app.client.get(app.url("/health/ready")).send().await?;
        assert_eq!(
            json_with(ready, 200).await?,
            json!({"status": "ok", "database": "ok", "redis": "ok"})
        );
    }

    let one = billed(&apps[0], "cluster-one@example.com", "pro").await?;
    let outcomes =
        pay_concurrently(&apps, &one.invoice["id"], 60, |_| "cluster-key".to_owned()).await?;
    eprintln!("one key over the cluster: {:?}", tally(&outcomes));
    let fresh = outcomes
        .iter()
        .filter(|(status, _, replayed)| *status == 200 && !replayed)
        .count();
    assert_eq!(fresh, 1, "exactly one payment ran: {outcomes:?}");
    for outcome in &outcomes {
        match outcome {
            (200, None, _) => {}
            (409, Some(code), false) if code == "idempotency_in_flight" => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    paid_once(&apps[1], &one.invoice["id"], &one.subscription["id"]).await?;

    let many = billed(&apps[1], "cluster-many@example.com", "basic").await?;
    let outcomes =
        pay_concurrently(&apps, &many.invoice["id"], 60, |i| format!("cluster-{i}")).await?;
    eprintln!("many keys over the cluster: {:?}", tally(&outcomes));
    let paid = outcomes
        .iter()
        .filter(|(status, _, _)| *status == 200)
        .count();
    assert_eq!(paid, 1, "exactly one payment: {outcomes:?}");
    paid_once(&apps[2], &many.invoice["id"], &many.subscription["id"]).await
}

/// An instance on a TLS-only Redis with a private CA: ready, and a payment
/// retried with its key is replayed, not charged again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_runs_on_redis_over_tls() -> anyhow::Result<()> {
    let Some(db) = TestDatabase::create(Backend::Postgres).await? else {
        eprintln!("TEST_DATABASE_URL is not set: the Redis TLS test needs PostgreSQL");
        return Ok(());
    };
    if billing_test_support::redis_url().is_none() {
        eprintln!("TEST_REDIS_URL is not set: Redis TLS test not run");
        return Ok(());
    }
    let server = TlsRedis::start()?;
    let options = TestOptions {
        redis_url: Some(server.url()),
        redis_ca_file: Some(server.ca_file()),
        ..TestOptions::default()
    };
    let app = spawn_app_with(db, options).await?;
    assert!(app.uses_redis);
    let ready = app.client.get(app.url("/health/ready")).send().await?;
    assert_eq!(
        json_with(ready, 200).await?,
        json!({"status": "ok", "database": "ok", "redis": "ok"})
    );
    let set = billed(&app, "tls@example.com", "pro").await?;
    let first = pay(&app, &set.invoice["id"], "tls-key").await?;
    assert_eq!(first.headers().get("idempotent-replayed"), None);
    let first: Value = json_with(first, 200).await?;
    let again = pay(&app, &set.invoice["id"], "tls-key").await?;
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(json_with(again, 200).await?, first);
    paid_once(&app, &set.invoice["id"], &set.subscription["id"]).await
}
