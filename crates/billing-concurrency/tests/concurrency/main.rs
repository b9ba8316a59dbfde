//! Integration tests of billing-concurrency: the same test code runs on the
//! embedded backend, on Redis (`TEST_REDIS_URL`) and on a Redis Cluster
//! (`TEST_REDIS_CLUSTER_URL`), one module per feature; `tls` runs a
//! `redis-server` over TLS of its own.
//!
//! When a variable is unset its variants print a note and pass; when it is
//! set and the server does not answer, they fail.

mod cluster;
mod generations;
mod idempotency;
mod locks;
mod proxy;
mod redis_client;
mod tls;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use billing_concurrency::{Coordination, EmbeddedSettings, RedisSettings};

/// The backend a test runs on.
#[derive(Clone, Debug)]
pub enum Harness {
    /// In process.
    Embedded,
    /// The Redis server of `TEST_REDIS_URL`, or the cluster of
    /// `TEST_REDIS_CLUSTER_URL`, under a key prefix of this test's own.
    Redis {
        /// The server, or the cluster's nodes, comma-separated.
        url: String,
        /// This test's namespace.
        prefix: String,
        /// Whether `url` names a Redis Cluster.
        cluster: bool,
    },
}

/// TTLs and waits a test may shorten.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// Kept completed responses.
    pub idempotency_ttl: Duration,
    /// In-flight markers.
    pub in_flight_ttl: Duration,
    /// The wait of `lock` / `with_lock`.
    pub lock_wait: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            idempotency_ttl: Duration::from_secs(24 * 3600),
            in_flight_ttl: Duration::from_secs(60),
            lock_wait: Duration::from_secs(30),
        }
    }
}

impl Harness {
    /// The Redis harness, if `TEST_REDIS_URL` is set.
    pub fn redis() -> Option<Self> {
        billing_test_support::redis_url().map(|url| Self::Redis {
            url,
            prefix: format!("billing-test-{}", billing_test_support::unique_suffix()),
            cluster: false,
        })
    }

    /// The Redis Cluster harness, if `TEST_REDIS_CLUSTER_URL` is set.
    pub fn redis_cluster() -> Option<Self> {
        billing_test_support::redis_cluster_url().map(|url| Self::Redis {
            url,
            prefix: format!("billing-test-{}", billing_test_support::unique_suffix()),
            cluster: true,
        })
    }

    /// Settings for the Redis server under test (panics on the embedded
    /// harness).
    pub fn redis_settings(&self, tuning: Tuning) -> RedisSettings {
        match self {
            Self::Redis {
                url,
                prefix,
                cluster,
            } => RedisSettings {
                cluster: *cluster,
                idempotency_ttl: tuning.idempotency_ttl,
                in_flight_ttl: tuning.in_flight_ttl,
                lock_wait: tuning.lock_wait,
                connect_timeout: Duration::from_secs(2),
                command_timeout: Duration::from_secs(2),
                ..RedisSettings::new(url.clone()).with_key_prefix(prefix.clone())
            },
            Self::Embedded => panic!("not a Redis harness"),
        }
    }

    /// A coordination handle with default TTLs.
    pub async fn coordination(&self) -> anyhow::Result<Coordination> {
        self.open(Tuning::default()).await
    }

    /// A coordination handle with these TTLs. On Redis, every handle of one
    /// test shares the test's namespace, like API instances sharing Redis;
    /// embedded handles share nothing.
    pub async fn open(&self, tuning: Tuning) -> anyhow::Result<Coordination> {
        match self {
            Self::Embedded => Ok(Coordination::embedded_with(EmbeddedSettings {
                idempotency_ttl: tuning.idempotency_ttl,
                in_flight_ttl: tuning.in_flight_ttl,
                lock_wait: tuning.lock_wait,
            })?),
            Self::Redis { url, cluster, .. } => {
                let coordination = Coordination::redis(self.redis_settings(tuning)).await?;
                let variable = if *cluster {
                    billing_test_support::REDIS_CLUSTER_URL_VAR
                } else {
                    billing_test_support::REDIS_URL_VAR
                };
                coordination.ping().await.with_context(|| {
                    format!("{variable}={url} is set but Redis does not answer")
                })?;
                Ok(coordination)
            }
        }
    }

    /// Deletes the keys the test wrote (fencing counters have no TTL): on
    /// every master of a cluster.
    pub async fn cleanup(&self) -> anyhow::Result<()> {
        let Self::Redis {
            url,
            prefix,
            cluster,
        } = self
        else {
            return Ok(());
        };
        if !*cluster {
            return delete_prefixed(url, prefix).await;
        }
        let seed = url.split(',').next().unwrap_or(url);
        for master in cluster_masters(seed).await? {
            delete_prefixed(&master, prefix).await?;
        }
        Ok(())
    }
}

/// The URLs of a cluster's masters, from `CLUSTER NODES` on `seed`.
pub async fn cluster_masters(seed: &str) -> anyhow::Result<Vec<String>> {
    let client = redis::Client::open(seed)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut connection)
        .await?;
    let masters: Vec<String> = nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let address = fields.get(1)?.split('@').next()?;
            let flags = fields.get(2)?;
            flags
                .split(',')
                .any(|flag| flag == "master")
                .then(|| format!("redis://{address}"))
        })
        .collect();
    anyhow::ensure!(!masters.is_empty(), "no master in CLUSTER NODES: {nodes}");
    Ok(masters)
}

/// Deletes the keys under `prefix` on one server, one by one (a cluster
/// node refuses a multi-key `DEL` over several slots).
async fn delete_prefixed(url: &str, prefix: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    // A generous reply timeout: this may run on a busy machine.
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(std::time::Duration::from_secs(30)));
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let pattern = format!("{prefix}:*");
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await?;
        for key in &keys {
            redis::cmd("DEL")
                .arg(key)
                .query_async::<()>(&mut connection)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Whether less than `ttl` has passed since `since`: assertions that only
/// hold within a TTL are checked only then, so a stalled machine makes
/// them skip, not fail.
pub fn within(ttl: Duration, since: Instant) -> bool {
    let fresh = since.elapsed() < ttl;
    if !fresh {
        eprintln!("note: the machine stalled past a {ttl:?} TTL; a timing check was skipped");
    }
    fresh
}

/// Declares `mod name { embedded(); redis(); }` running the async test body
/// `name(harness)` on each backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn embedded() -> anyhow::Result<()> {
                super::$name($crate::Harness::Embedded).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn redis() -> anyhow::Result<()> {
                let Some(harness) = $crate::Harness::redis() else {
                    eprintln!("TEST_REDIS_URL is not set: Redis variant not run");
                    return Ok(());
                };
                let result = super::$name(harness.clone()).await;
                harness.cleanup().await?;
                result
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn redis_cluster() -> anyhow::Result<()> {
                let Some(harness) = $crate::Harness::redis_cluster() else {
                    eprintln!("TEST_REDIS_CLUSTER_URL is not set: Redis Cluster variant not run");
                    return Ok(());
                };
                let result = super::$name(harness.clone()).await;
                harness.cleanup().await?;
                result
            }
        }
    )+};
}

/// Declares a test that runs only on Redis (passing with a note when
/// `TEST_REDIS_URL` is unset).
#[macro_export]
macro_rules! on_redis {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn redis() -> anyhow::Result<()> {
                let Some(harness) = $crate::Harness::redis() else {
                    eprintln!("TEST_REDIS_URL is not set: Redis test not run");
                    return Ok(());
                };
                let result = super::$name(harness.clone()).await;
                harness.cleanup().await?;
                result
            }
        }
    )+};
}
