//! Test fixtures shared by the workspace: a fresh database per test on
//! SQLite (always) or PostgreSQL (when `TEST_DATABASE_URL` is set), and the
//! Redis URL under test (`TEST_REDIS_URL`), and the Redis Cluster under test
//! (`TEST_REDIS_CLUSTER_URL`), and a Redis over TLS of the test's own
//! ([`TlsRedis`]).
//!
//! Every PostgreSQL test gets its own database, created from the server named
//! by `TEST_DATABASE_URL` and dropped when the [`TestDatabase`] is dropped, so
//! tests run in parallel without seeing each other's rows. When the variable
//! is set and the server is down, creating the database fails and the test
//! fails: nothing is skipped silently.
//!
//! With the feature `billing` (for the dev-dependencies of billing-service
//! and billing-webhooks only), [`harness`] adds the deployment under test of
//! the use-case tests and [`deployment_test!`], which runs a test body on
//! both deployments.

// The futures of the use cases nest deeply: laying out the seed's future
// takes more than the default 128 levels of queries.
#![recursion_limit = "256"]

#[cfg(feature = "billing")]
pub mod harness;
mod tls_redis;

use std::path::PathBuf;

use rand::RngExt;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

pub use crate::tls_redis::TlsRedis;

/// Environment variable naming a PostgreSQL server for tests, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`.
pub const DATABASE_URL_VAR: &str = "TEST_DATABASE_URL";
/// Environment variable naming a Redis server for tests, e.g.
/// `redis://127.0.0.1:6379`.
pub const REDIS_URL_VAR: &str = "TEST_REDIS_URL";

/// Environment variable naming Redis Cluster nodes for tests,
/// comma-separated, e.g. `redis://127.0.0.1:7001,redis://127.0.0.1:7002`
/// (`.ci/redis-cluster` starts a three-master cluster on loopback).
pub const REDIS_CLUSTER_URL_VAR: &str = "TEST_REDIS_CLUSTER_URL";

/// The PostgreSQL server under test, if `TEST_DATABASE_URL` is set.
#[must_use]
pub fn postgres_url() -> Option<String> {
    non_empty_var(DATABASE_URL_VAR)
}

/// The Redis server under test, if `TEST_REDIS_URL` is set.
#[must_use]
pub fn redis_url() -> Option<String> {
    non_empty_var(REDIS_URL_VAR)
}

/// The Redis Cluster under test, if `TEST_REDIS_CLUSTER_URL` is set.
#[must_use]
pub fn redis_cluster_url() -> Option<String> {
    non_empty_var(REDIS_CLUSTER_URL_VAR)
}

fn non_empty_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A random lower-case alphanumeric suffix for names that must not collide
/// between tests running at once (database names, Redis key prefixes).
#[must_use]
pub fn unique_suffix() -> String {
    let mut rng = rand::rng();
    (0..12)
        .map(|_| {
            let n: u8 = rng.random_range(0..36);
            char::from_digit(u32::from(n), 36).unwrap_or('0')
        })
        .collect()
}

/// Which database server a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A new SQLite file in the temporary directory.
    Sqlite,
    /// A new database on the server named by `TEST_DATABASE_URL`.
    Postgres,
}

/// A database created for one test and removed when dropped.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    backend: Backend,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    SqliteFile(PathBuf),
    PostgresDatabase { admin_url: String, name: String },
}

impl TestDatabase {
    /// Creates an empty database on `backend`.
    ///
    /// Returns `Ok(None)` for [`Backend::Postgres`] when `TEST_DATABASE_URL`
    /// is not set.
    ///
    /// # Errors
    /// Fails when the PostgreSQL server cannot be reached or refuses to
    /// create the database.
    pub async fn create(backend: Backend) -> anyhow::Result<Option<Self>> {
        match backend {
            Backend::Sqlite => Ok(Some(Self::sqlite())),
            Backend::Postgres => match postgres_url() {
                Some(admin_url) => Ok(Some(Self::postgres(admin_url).await?)),
                None => Ok(None),
            },
        }
    }

    fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("billing-test-{}.db", unique_suffix()));
        Self {
            url: format!("sqlite://{}?mode=rwc", path.display()),
            backend: Backend::Sqlite,
            cleanup: Cleanup::SqliteFile(path),
        }
    }

    async fn postgres(admin_url: String) -> anyhow::Result<Self> {
        let name = format!("billing_test_{}", unique_suffix());
        let admin = connect_admin(&admin_url).await?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|e| anyhow::anyhow!("cannot create test database {name}: {e}"))?;
        admin.close().await.ok();
        Ok(Self {
            url: replace_database_name(&admin_url, &name)?,
            backend: Backend::Postgres,
            cleanup: Cleanup::PostgresDatabase { admin_url, name },
        })
    }

    /// The connection URL of this database.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server this database lives on.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Opens a plain sea-orm connection to this database.
    ///
    /// # Errors
    /// Fails when the database cannot be reached.
    pub async fn connect(&self) -> anyhow::Result<DatabaseConnection> {
        Ok(Database::connect(&self.url).await?)
    }
}

async fn connect_admin(admin_url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut options = sea_orm::ConnectOptions::new(admin_url.to_owned());
    options
        .max_connections(2)
        .min_connections(0)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_timeout(std::time::Duration::from_secs(5))
        .sqlx_logging(false);
    Database::connect(options).await.map_err(|e| {
        anyhow::anyhow!("cannot reach PostgreSQL at {DATABASE_URL_VAR}={admin_url}: {e}")
    })
}

/// Replaces the database name (the URL path) of a PostgreSQL URL, keeping
/// user, host, port and query parameters.
///
/// # Errors
/// Fails when `url` has no `scheme://` part.
pub fn replace_database_name(url: &str, name: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| anyhow::anyhow!("not a URL: {url}"))?;
    let (authority_and_path, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let authority = authority_and_path
        .split_once('/')
        .map_or(authority_and_path, |(a, _)| a);
    Ok(match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    })
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::PostgresDatabase { admin_url, name } => {
                let admin_url = admin_url.clone();
                let name = name.clone();
                // Drop runs inside the test's runtime, which cannot block on
                // itself: the database is dropped from a thread of its own.
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async {
                        let admin = connect_admin(&admin_url).await?;
                        admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await?;
                        admin.close().await.ok();
                        anyhow::Ok(())
                    })
                })
                .join();
                if let Ok(Err(e)) = dropped {
                    eprintln!("warning: could not drop test database: {e}");
                }
            }
        }
    }
}

/// Declares one test per backend for an async test body taking a
/// [`TestDatabase`]: `mod name { fn sqlite(); fn postgres(); }`.
///
/// The PostgreSQL variant returns early, passing, only when
/// `TEST_DATABASE_URL` is unset; `.ci/run` sets it, so there it runs.
///
/// ```ignore
/// async fn stale_save(db: TestDatabase) -> anyhow::Result<()> { ... }
/// billing_test_support::test_on_each_backend!(stale_save);
/// ```
#[macro_export]
macro_rules! test_on_each_backend {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() -> anyhow::Result<()> {
                let db = $crate::TestDatabase::create($crate::Backend::Sqlite)
                    .await?
                    .expect("SQLite is always available");
                super::$name(db).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() -> anyhow::Result<()> {
                match $crate::TestDatabase::create($crate::Backend::Postgres).await? {
                    Some(db) => super::$name(db).await,
                    None => {
                        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL variant not run");
                        Ok(())
                    }
                }
            }
        }
    )+};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced_and_query_kept() {
        assert_eq!(
            replace_database_name("postgres://u@h:5432/test?sslmode=disable", "x").unwrap(),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(
            replace_database_name("postgres://u@h", "x").unwrap(),
            "postgres://u@h/x"
        );
    }
}
