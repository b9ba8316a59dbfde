//! The connection pool ([`Database`], opened by [`connect`]), transactions
//! ([`Transaction`], [`Database::transaction`]) and the [`Executor`] trait
//! that lets every repository function run on either.
//!
//! PostgreSQL connections run at READ COMMITTED, set once per connection as
//! its `default_transaction_isolation` startup parameter, so statements and
//! every `BEGIN` of [`Database::begin`] use it whatever the server or
//! database default is, without a `SET TRANSACTION` round trip per
//! transaction.
//!
//! A pooled connection is checked with a round trip before use only when it
//! has been idle for [`DatabaseSettings::test_before_acquire_idle`] or
//! longer.
//!
//! SQLite connections use WAL (readers do not block the writer), foreign
//! keys, a busy timeout and `synchronous = FULL`; transactions start with
//! `BEGIN IMMEDIATE`, so a transaction takes the write lock up front and never
//! fails half-way trying to upgrade a read lock.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseConnection};

use crate::error::{ErrorContext, Op, RepositoryError, map_connect_err, map_db_err};
use crate::settings::DatabaseSettings;

mod capacity;
mod options;
mod transaction;

use options::{configure_postgres, configure_sqlite};
pub use transaction::{Transaction, TransactionFuture};

/// The database server behind a [`Database`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// PostgreSQL (`postgres://` or `postgresql://`).
    Postgres,
    /// SQLite (`sqlite:`).
    Sqlite,
}

impl Backend {
    /// The backend a URL names, if it is one of ours.
    #[must_use]
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else {
            None
        }
    }
}

mod sealed {
    /// Only this crate's connection types are executors.
    pub trait Sealed {}
    impl Sealed for super::Database {}
    impl Sealed for super::Transaction {}
}

/// Something repository functions run on: the pool ([`Database`]) or an open
/// [`Transaction`]. Sealed: only those two implement it.
pub trait Executor: sealed::Sealed + Sync {
    /// The sea-orm connection type underneath.
    type Connection: ConnectionTrait;

    /// The sea-orm connection, for queries this crate does not provide.
    fn connection(&self) -> &Self::Connection;

    /// `host:port` (or the SQLite file) of the database, for error messages.
    fn target(&self) -> &str;

    /// The database server.
    fn backend(&self) -> Backend;
}

/// One executed SQL statement, as reported to a statement observer (see
/// [`Database::with_statement_observer`]).
#[derive(Clone, Copy, Debug)]
pub struct StatementEvent<'a> {
    /// The SQL text with placeholders (no bound values).
    pub sql: &'a str,
    /// How long it took.
    pub elapsed: Duration,
    /// Whether it failed.
    pub failed: bool,
}

/// A pool of connections to the billing database. Cheap to clone; clones
/// share the pool.
#[derive(Clone, Debug)]
pub struct Database {
    conn: DatabaseConnection,
    target: Arc<str>,
    backend: Backend,
    min_connections: u32,
    acquire_timeout: Duration,
    /// PostgreSQL's `max_connections`, read on the first connection that
    /// works.
    server_max_connections: Arc<OnceLock<u32>>,
}

/// Opens a connection pool as `settings` say.
///
/// Unless [`DatabaseSettings::lazy`] is set, this checks that one
/// connection works ([`Database::check_connection`]) and returns; the pool
/// then opens the rest of [`DatabaseSettings::min_connections`] in the
/// background ([`Database::fill_in_background`]), so the start does not wait
/// for them and a server that has room for one connection but not for the
/// minimum still gets a working pool. A database that is down or full at
/// start is reported here, after at most the acquire timeout.
///
/// # Errors
/// [`RepositoryError::InvalidSettings`] for a URL that is neither
/// `postgres://` nor `sqlite:` or cannot be parsed, or impossible pool sizes;
/// [`RepositoryError::ConnectionLimitReached`] when the server refuses new
/// connections (`too many clients`);
/// [`RepositoryError::Unavailable`] (naming `host:port`, never the password)
/// when the database cannot be reached within
/// [`DatabaseSettings::acquire_timeout`].
pub async fn connect(settings: &DatabaseSettings) -> Result<Database, RepositoryError> {
    Database::connect(settings).await
}

impl Database {
    /// Opens a connection pool; see [`connect`].
    ///
    /// # Errors
    /// As [`connect`].
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, RepositoryError> {
        let backend = settings.validate()?;

        let mut options = ConnectOptions::new(settings.url.clone());
        options
            .max_connections(settings.max_connections)
            .min_connections(settings.min_connections)
            .acquire_timeout(settings.acquire_timeout)
            .idle_timeout(settings.idle_timeout)
            .max_lifetime(settings.max_lifetime)
            // Never wait for `min_connections` here: sqlx would open them
            // one by one before returning and fail the whole start when the
            // server has room for fewer. The first connection is checked
            // below; the rest are opened in the background.
            .connect_lazy(true)
            .sqlx_logging(settings.log_statements);
        if !settings.test_before_acquire {
            options.test_before_acquire(false);
        } else if settings.test_before_acquire_idle.is_zero() {
            options.test_before_acquire(true);
        } else {
            // A round trip only for a connection idle long enough to be
            // suspect (a bypass window, as HikariCP's), not per checkout.
            options.test_before_acquire_if_idle_for(settings.test_before_acquire_idle);
        }

        let target = match backend {
            Backend::Postgres => configure_postgres(&mut options, settings)?,
            Backend::Sqlite => configure_sqlite(&mut options, settings)?,
        };

        tracing::debug!(%target, ?backend, "opening the database pool");
        let conn = sea_orm::Database::connect(options)
            .await
            .map_err(|e| map_connect_err(e, &target))?;
        let database = Self {
            conn,
            target: target.into(),
            backend,
            min_connections: settings.min_connections,
            acquire_timeout: settings.acquire_timeout,
            server_max_connections: Arc::new(OnceLock::new()),
        };
        if !settings.lazy {
            database.check_connection().await?;
            database.fill_in_background();
        }
        Ok(database)
    }

    /// The database server.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// `host:port` (or the SQLite file) of the database.
    #[must_use]
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The sea-orm connection pool, e.g. for `billing_migration::up_locked`.
    #[must_use]
    pub fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Reports every statement this handle (and transactions begun from it)
    /// executes to `observer`, e.g. for metrics. Clones made before this call
    /// are not affected.
    #[must_use]
    pub fn with_statement_observer<F>(mut self, observer: F) -> Self
    where
        F: Fn(&StatementEvent<'_>) + Send + Sync + 'static,
    {
        self.conn.set_metric_callback(move |info| {
            observer(&StatementEvent {
                sql: &info.statement.sql,
                elapsed: info.elapsed,
                failed: info.failed,
            });
        });
        self
    }

    /// Checks that a connection can be had and answers (for
    /// `/health/ready`).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the database cannot be reached
    /// within the acquire timeout.
    pub async fn ping(&self) -> Result<(), RepositoryError> {
        self.conn
            .ping()
            .await
            .map_err(|e| map_db_err(e, self.error_context()))
    }

    /// Closes every connection of the pool (of all clones). Later calls fail
    /// with [`RepositoryError::Unavailable`].
    ///
    /// # Errors
    /// Never in practice; reserved for drivers whose close can fail.
    pub async fn close(&self) -> Result<(), RepositoryError> {
        self.conn
            .close_by_ref()
            .await
            .map_err(|e| map_db_err(e, self.error_context()))
    }

    fn error_context(&self) -> ErrorContext<'_> {
        ErrorContext {
            entity: None,
            target: &self.target,
            op: Op::Read,
        }
    }
}

impl Executor for Database {
    type Connection = DatabaseConnection;

    fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn backend(&self) -> Backend {
        self.backend
    }
}
