//! Generation counters: every handle on one backend sees every bump, names
//! are independent, and a Redis that does not answer is an error, never a
//! made-up generation.

use std::time::Duration;

use anyhow::ensure;
use billing_concurrency::{Coordination, CoordinationError, RedisSettings};

use crate::proxy::SilentServer;
use crate::{Harness, on_both_backends, on_redis};

/// A bump on one handle is seen by the other handles of the backend (on
/// Redis: another instance; embedded: clones), and changes the value each
/// time; another name is unaffected.
async fn bumps_are_seen_by_every_handle(harness: Harness) -> anyhow::Result<()> {
    let writer = harness.coordination().await?;
    let reader = match &harness {
        Harness::Embedded => writer.clone(),
        Harness::Redis { .. } => harness.coordination().await?,
    };
    ensure!(reader.generation("plans").await? == 0, "fresh counter is 0");
    let mut seen = vec![0];
    for _ in 0..3 {
        let bumped = writer.bump_generation("plans").await?;
        let read = reader.generation("plans").await?;
        ensure!(
            read == bumped,
            "reader saw {read}, writer bumped to {bumped}"
        );
        ensure!(!seen.contains(&read), "generation {read} came back");
        seen.push(read);
    }
    ensure!(
        reader.generation("currencies").await? == 0,
        "another name moved with plans"
    );
    Ok(())
}

/// A bump never lands at a value read before, even when the counter
/// restarts from nothing (a Redis restart, a new process): it starts at the
/// clock in microseconds.
async fn generations_start_from_the_clock(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness.coordination().await?;
    let before = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_micros(),
    )?;
    let first = coordination.bump_generation("taxes").await?;
    ensure!(
        first >= before.saturating_sub(Duration::from_secs(60).as_micros() as u64),
        "first generation {first} is not near the clock {before}"
    );
    let second = coordination.bump_generation("taxes").await?;
    ensure!(second > first, "{second} after {first}");
    Ok(())
}

/// A Redis that accepts connections but never answers: reading the
/// generation fails within the configured timeouts, it does not hang or
/// answer 0.
async fn silent_redis_is_an_error(_harness: Harness) -> anyhow::Result<()> {
    let silent = SilentServer::start().await?;
    let coordination = Coordination::redis(RedisSettings {
        connect_timeout: Duration::from_millis(200),
        command_timeout: Duration::from_millis(200),
        ..RedisSettings::new(silent.url())
    })
    .await?;
    let read =
        tokio::time::timeout(Duration::from_secs(10), coordination.generation("plans")).await?;
    ensure!(
        matches!(read, Err(CoordinationError::Unavailable { .. })),
        "expected Unavailable, got {read:?}"
    );
    let bump = tokio::time::timeout(
        Duration::from_secs(10),
        coordination.bump_generation("plans"),
    )
    .await?;
    ensure!(
        bump.is_err(),
        "a bump on a silent Redis succeeded: {bump:?}"
    );
    Ok(())
}

on_both_backends!(
    bumps_are_seen_by_every_handle,
    generations_start_from_the_clock
);
on_redis!(silent_redis_is_an_error);
