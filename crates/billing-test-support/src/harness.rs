//! The harness of the use-case tests (feature `billing`): one deployment per
//! test — a migrated database from [`TestDatabase`] and a coordination
//! backend — and [`deployment_test!`](crate::deployment_test), which runs an
//! async test body on both deployments.
//!
//! The embedded deployment is a SQLite file with the in-process coordination
//! backend; the production one is PostgreSQL (`TEST_DATABASE_URL`) with Redis
//! (`TEST_REDIS_URL`, under a key prefix of the test's own) or, when that is
//! unset, the in-process backend.

mod seed;

use billing_concurrency::{Coordination, RedisSettings};
use billing_repository::{DatabaseSettings, connect};
use billing_service::{Billing, BillingSettings};

pub use self::seed::{Seed, dec, plan, seed};
use crate::{Backend, TestDatabase, redis_url, unique_suffix};

/// One deployment under test.
pub struct Harness {
    /// The use cases, on this deployment's database and coordination.
    pub billing: Billing,
    /// Kept alive for the test; dropped (and the database with it) after.
    pub _db: TestDatabase,
}

impl Harness {
    /// SQLite file + in-process coordination, with a pool of at most
    /// `max_connections`.
    ///
    /// # Errors
    /// Fails when the database cannot be opened or migrated.
    pub async fn embedded(max_connections: u32) -> anyhow::Result<Self> {
        let db = TestDatabase::create(Backend::Sqlite)
            .await?
            .ok_or_else(|| anyhow::anyhow!("SQLite is always there"))?;
        Self::on(db, Coordination::embedded(), max_connections).await
    }

    /// PostgreSQL + Redis (Redis only when `TEST_REDIS_URL` is set, else in
    /// process), with a pool of at most `max_connections`; `None` when
    /// `TEST_DATABASE_URL` is unset.
    ///
    /// # Errors
    /// Fails when PostgreSQL cannot create or migrate the database, or when
    /// Redis is set and does not answer a ping.
    pub async fn production(max_connections: u32) -> anyhow::Result<Option<Self>> {
        let Some(db) = TestDatabase::create(Backend::Postgres).await? else {
            return Ok(None);
        };
        let coordination = match redis_url() {
            Some(url) => {
                let settings = RedisSettings::new(url)
                    .with_key_prefix(format!("billing-test-{}", unique_suffix()));
                let coordination = Coordination::redis(settings).await?;
                coordination.ping().await?;
                coordination
            }
            None => Coordination::embedded(),
        };
        Ok(Some(Self::on(db, coordination, max_connections).await?))
    }

    /// The use cases on `db`, migrated, and `coordination`, with a pool of
    /// at most `max_connections`.
    ///
    /// # Errors
    /// Fails when the database cannot be reached or migrated.
    pub async fn on(
        db: TestDatabase,
        coordination: Coordination,
        max_connections: u32,
    ) -> anyhow::Result<Self> {
        let mut settings = DatabaseSettings::new(db.url());
        settings.max_connections = max_connections;
        settings.min_connections = 0;
        let database = connect(&settings).await?;
        billing_migration::up_locked(database.connection()).await?;
        let billing = Billing::new(database, coordination, BillingSettings::default());
        Ok(Self { billing, _db: db })
    }
}

/// Declares `mod name { fn embedded(); fn production(); }` for async test
/// bodies taking a [`Harness`](crate::harness::Harness) whose pool has at
/// most `max_connections`.
///
/// The production variant returns early, passing, only when
/// `TEST_DATABASE_URL` is unset; `.ci/run` sets it, so there it runs.
///
/// ```ignore
/// async fn pays(h: Harness) -> anyhow::Result<()> { ... }
/// billing_test_support::deployment_test!(max_connections = 16; pays);
/// ```
#[macro_export]
macro_rules! deployment_test {
    (max_connections = $pool:expr; $($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn embedded() -> anyhow::Result<()> {
                super::$name($crate::harness::Harness::embedded($pool).await?).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn production() -> anyhow::Result<()> {
                match $crate::harness::Harness::production($pool).await? {
                    Some(harness) => super::$name(harness).await,
                    None => {
                        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL variant not run");
                        Ok(())
                    }
                }
            }
        }
    )+};
}
