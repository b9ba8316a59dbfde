//! Redis Cluster (`TEST_REDIS_CLUSTER_URL`): given a single node, the client
//! finds the others and serves locks and idempotency keys whose slots live
//! on every master; each lock's keys share a slot.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use billing_concurrency::{Coordination, IdempotencyOutcome, RedisSettings, fingerprint};

use crate::{Harness, Tuning, cluster_masters};

const LONG: Duration = Duration::from_secs(30);

/// 24 lock names and idempotency keys through a client that was given one
/// node only: they land on more than one master (so commands were routed
/// to nodes the client was not told about), and every lock works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_seed_node_reaches_every_master() -> anyhow::Result<()> {
    let Some(harness) = Harness::redis_cluster() else {
        eprintln!("TEST_REDIS_CLUSTER_URL is not set: Redis Cluster test not run");
        return Ok(());
    };
    let result = reaches_every_master(&harness).await;
    harness.cleanup().await?;
    result
}

async fn reaches_every_master(harness: &Harness) -> anyhow::Result<()> {
    let Harness::Redis { url, prefix, .. } = harness else {
        anyhow::bail!("not a Redis harness");
    };
    let seed = url.split(',').next().unwrap_or(url).to_owned();
    let coordination = Coordination::redis(RedisSettings {
        url: seed.clone(),
        ..harness.redis_settings(Tuning::default())
    })
    .await?;
    coordination
        .ping()
        .await
        .with_context(|| format!("the cluster node {seed} does not answer"))?;
    for i in 0..24 {
        let name = format!("invoice:{i}");
        let guard = coordination.lock(&name, LONG).await?;
        let again = coordination.try_lock(&name, LONG, Duration::ZERO).await;
        ensure!(again.is_err(), "{name} was taken twice: {again:?}");
        ensure!(guard.release().await?, "{name} was lost");
        let key = format!("key-{i}");
        let print = fingerprint("user:1", "POST", "/pay", key.as_bytes());
        let outcome = coordination
            .idempotency()
            .begin("user:1", &key, &print)
            .await?;
        ensure!(
            matches!(outcome, IdempotencyOutcome::Started(_)),
            "{key}: {outcome:?}"
        );
    }

    let masters = cluster_masters(&seed).await?;
    let mut holding = 0;
    for master in &masters {
        let client = redis::Client::open(master.as_str())?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        let (_, fences): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(0)
            .arg("MATCH")
            .arg(format!("{prefix}:fence:*"))
            .arg("COUNT")
            .arg(100_000)
            .query_async(&mut connection)
            .await?;
        if !fences.is_empty() {
            holding += 1;
        }
        eprintln!("{master}: {} fencing counters", fences.len());
    }
    ensure!(
        holding >= 2,
        "the 24 locks should spread over the {} masters, {holding} hold any",
        masters.len()
    );
    Ok(())
}

/// A cluster whose nodes do not answer is `Unavailable` within the budget,
/// like a single Redis, not `Rejected`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_cluster_is_unavailable() -> anyhow::Result<()> {
    let timeout = Duration::from_millis(500);
    let coordination = Coordination::redis(RedisSettings {
        cluster: true,
        connect_timeout: timeout,
        command_timeout: timeout,
        ..RedisSettings::new("redis://127.0.0.1:1,redis://127.0.0.1:2")
    })
    .await?;
    let started = std::time::Instant::now();
    let result = coordination.ping().await;
    let elapsed = started.elapsed();
    ensure!(
        matches!(result, Err(ref error) if error.is_unavailable()),
        "expected Unavailable, got {result:?}"
    );
    ensure!(
        elapsed < timeout * 2 + Duration::from_secs(2),
        "took {elapsed:?}"
    );
    Ok(())
}
