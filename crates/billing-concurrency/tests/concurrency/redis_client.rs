//! The Redis client: settings validation, a clear `Unavailable` error
//! within the timeout when Redis is unreachable or silent, recovery after
//! dropped connections, namespaces, and instances sharing locks.

use std::error::Error as _;
use std::time::{Duration, Instant};

use billing_concurrency::{
    BackendKind, Coordination, CoordinationError, IdempotencyOutcome, RedisSettings,
};

use crate::proxy::{Proxy, SilentServer};
use crate::{Harness, Tuning, on_redis};

const TIMEOUT: Duration = Duration::from_millis(500);
/// Slack for a loaded machine on top of the configured budget.
const SLACK: Duration = Duration::from_secs(2);

fn settings(url: String) -> RedisSettings {
    RedisSettings {
        connect_timeout: TIMEOUT,
        command_timeout: TIMEOUT,
        ..RedisSettings::new(url).with_key_prefix("billing-test-unreachable")
    }
}

fn assert_unavailable<T: std::fmt::Debug>(
    result: Result<T, CoordinationError>,
    started: Instant,
) -> anyhow::Result<()> {
    let elapsed = started.elapsed();
    let budget = TIMEOUT * 2;
    match result {
        Err(error @ CoordinationError::Unavailable { .. }) => {
            assert!(error.is_unavailable());
            assert!(
                error.to_string().contains("Redis is unavailable"),
                "{error}"
            );
            assert!(error.source().is_some(), "the cause must be kept");
            eprintln!(
                "got, after {elapsed:?}: {error} (cause: {:?})",
                error.source()
            );
        }
        other => anyhow::bail!("expected Unavailable, got {other:?}"),
    }
    assert!(
        elapsed < budget + SLACK,
        "the error must arrive within the timeout, took {elapsed:?}"
    );
    Ok(())
}

/// Nothing listens on port 1: construction succeeds, every operation fails
/// with `Unavailable` within the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_fails_fast_and_clearly() -> anyhow::Result<()> {
    let coordination = Coordination::redis(settings("redis://127.0.0.1:1".to_owned())).await?;
    assert_eq!(coordination.backend_kind(), BackendKind::Redis);

    let started = Instant::now();
    assert_unavailable(coordination.ping().await, started)?;
    let started = Instant::now();
    assert_unavailable(
        coordination.lock("x", Duration::from_secs(1)).await,
        started,
    )?;
    let started = Instant::now();
    let begin = coordination.idempotency().begin("s", "k", "fp").await;
    assert_unavailable(
        begin.map(|o| matches!(o, IdempotencyOutcome::Started(_))),
        started,
    )?;
    Ok(())
}

/// A server that accepts and never answers: `Unavailable` within the
/// timeout, never a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_times_out() -> anyhow::Result<()> {
    let server = SilentServer::start().await?;
    let coordination = Coordination::redis(settings(server.url())).await?;
    let started = Instant::now();
    assert_unavailable(coordination.ping().await, started)?;
    let started = Instant::now();
    assert_unavailable(
        coordination
            .try_lock("x", Duration::from_secs(1), Duration::ZERO)
            .await,
        started,
    )?;
    Ok(())
}

/// Unusable settings are refused at construction.
#[tokio::test]
async fn invalid_settings_are_refused() -> anyhow::Result<()> {
    for bad in [
        RedisSettings::new("http://127.0.0.1:6379"),
        RedisSettings::new("not a url"),
        RedisSettings {
            pool_size: 0,
            ..RedisSettings::default()
        },
        RedisSettings {
            command_timeout: Duration::ZERO,
            ..RedisSettings::default()
        },
        RedisSettings::default().with_key_prefix(""),
        RedisSettings {
            idempotency_ttl: Duration::ZERO,
            ..RedisSettings::default()
        },
    ] {
        let result = Coordination::redis(bad.clone()).await;
        assert!(
            matches!(result, Err(CoordinationError::InvalidSettings { .. })),
            "{bad:?} gave {result:?}"
        );
    }
    assert_eq!(
        Coordination::embedded().backend_kind(),
        BackendKind::Embedded
    );
    Coordination::embedded().ping().await?;
    Ok(())
}

/// Connections cut under the client (a Redis restart, a network blip) are
/// replaced: the following operations succeed.
async fn recovers_after_connections_drop(harness: Harness) -> anyhow::Result<()> {
    let Harness::Redis { url, .. } = &harness else {
        return Ok(());
    };
    let proxy = Proxy::start(url).await?;
    let settings = RedisSettings {
        url: proxy.url(),
        ..harness.redis_settings(Tuning::default())
    };
    let coordination = Coordination::redis(settings).await?;
    for _ in 0..8 {
        coordination.ping().await?;
    }
    for round in 0..3 {
        proxy.cut_connections();
        // Give the client a moment to see the close, or not: both paths
        // must recover.
        if round == 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for _ in 0..8 {
            coordination.ping().await?;
            let guard = coordination
                .lock("after-cut", Duration::from_secs(5))
                .await?;
            assert!(guard.release().await?);
        }
    }
    Ok(())
}

/// Two handles on one Redis and namespace behave as two API instances:
/// one's lock excludes the other; another namespace is independent.
async fn instances_share_locks_namespaces_do_not(harness: Harness) -> anyhow::Result<()> {
    let first = harness.coordination().await?;
    let second = harness.coordination().await?;
    let held = first.lock("shared", Duration::from_secs(30)).await?;
    let result = second
        .try_lock("shared", Duration::from_secs(30), Duration::ZERO)
        .await;
    assert!(
        matches!(result, Err(CoordinationError::LockNotAcquired { .. })),
        "{result:?}"
    );

    let Harness::Redis { prefix, .. } = &harness else {
        return Ok(());
    };
    let other_namespace = Coordination::redis(RedisSettings {
        key_prefix: format!("{prefix}:other"),
        ..harness.redis_settings(Tuning::default())
    })
    .await?;
    let independent = other_namespace
        .try_lock("shared", Duration::from_secs(30), Duration::ZERO)
        .await?;
    assert!(independent.release().await?);
    assert!(held.release().await?);
    let now_free = second
        .try_lock("shared", Duration::from_secs(30), Duration::ZERO)
        .await?;
    assert!(now_free.release().await?);
    Ok(())
}

on_redis!(
    recovers_after_connections_drop,
    instances_share_locks_namespaces_do_not
);
