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

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::error::{ErrorContext, Op, RepositoryError, map_connect_err, map_db_err};
use crate::settings::DatabaseSettings;

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

/// The SQLSTATE of PostgreSQL's `too many clients` (`too_many_connections`).
const TOO_MANY_CONNECTIONS: &str = "53300";

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

    /// Checks that one connection can be had and answers, and says why not
    /// in the terms of the server: on PostgreSQL, a pool that could not
    /// connect within the acquire timeout is diagnosed with one direct
    /// connection attempt, so `too many clients` is reported as
    /// [`RepositoryError::ConnectionLimitReached`] and a refused or failed
    /// connection with the server's own error, rather than as a pool
    /// timeout. The first success also reads PostgreSQL's
    /// `max_connections` ([`Database::server_max_connections`]).
    ///
    /// # Errors
    /// [`RepositoryError::ConnectionLimitReached`] when the server is full;
    /// [`RepositoryError::Unavailable`] when it cannot be reached.
    pub async fn check_connection(&self) -> Result<(), RepositoryError> {
        match self.ping().await {
            Ok(()) => {
                self.read_server_max_connections().await;
                Ok(())
            }
            Err(error) if error.is_unavailable() => Err(self.diagnose().await.unwrap_or(error)),
            Err(error) => Err(error),
        }
    }

    /// Opens connections in the background until the pool holds
    /// [`DatabaseSettings::min_connections`] (each one as a request would,
    /// within the acquire timeout). When the server refuses more, it stops,
    /// logs a warning naming the cause and leaves the pool with what it
    /// has; the pool still grows on demand up to `max_connections`.
    pub fn fill_in_background(&self) {
        let database = self.clone();
        tokio::spawn(async move { database.fill().await });
    }

    /// PostgreSQL's `max_connections`, once a connection has read it.
    #[must_use]
    pub fn server_max_connections(&self) -> Option<u32> {
        self.server_max_connections.get().copied()
    }

    async fn fill(&self) {
        let Backend::Postgres = self.backend else {
            // SQLite's minimum is the one connection the check opened.
            return;
        };
        let pool = self.conn.get_postgres_connection_pool().clone();
        let mut held = Vec::new();
        while pool.size() < self.min_connections && !pool.is_closed() {
            match tokio::time::timeout(self.acquire_timeout, pool.acquire()).await {
                Ok(Ok(connection)) => held.push(connection),
                Ok(Err(_)) | Err(_) => {
                    let cause = match self.diagnose().await {
                        Some(error) => ErrorChainText(&error).to_string(),
                        None => "no connection within the acquire timeout".to_owned(),
                    };
                    tracing::warn!(
                        target_database = %self.target,
                        open = pool.size(),
                        min_connections = self.min_connections,
                        cause = %cause,
                        "the database pool stays below its minimum: the server refuses more connections"
                    );
                    break;
                }
            }
        }
        drop(held);
        tracing::debug!(open = pool.size(), "database pool filled");
    }

    /// Why a new connection to PostgreSQL fails now, from one direct
    /// attempt outside the pool (`None` if it succeeds, or on SQLite).
    async fn diagnose(&self) -> Option<RepositoryError> {
        use sea_orm::sqlx::{ConnectOptions as _, Connection as _};

        let Backend::Postgres = self.backend else {
            return None;
        };
        let options = self.conn.get_postgres_connection_pool().connect_options();
        match tokio::time::timeout(self.acquire_timeout, options.connect()).await {
            Ok(Ok(connection)) => {
                let _closed = connection.close().await;
                None
            }
            Ok(Err(sea_orm::sqlx::Error::Database(error)))
                if error.code().as_deref() == Some(TOO_MANY_CONNECTIONS) =>
            {
                let server_max_connections = self.server_max_connections();
                let reason = match server_max_connections {
                    Some(max) => format!("{} (max_connections = {max})", error.message()),
                    None => error.message().to_owned(),
                };
                Some(RepositoryError::ConnectionLimitReached {
                    target: self.target.to_string(),
                    reason,
                    server_max_connections,
                })
            }
            Ok(Err(error)) => Some(RepositoryError::Unavailable {
                target: self.target.to_string(),
                source: Box::new(error),
            }),
            Err(_elapsed) => None,
        }
    }

    /// Reads PostgreSQL's `max_connections` once (for messages).
    async fn read_server_max_connections(&self) {
        let Backend::Postgres = self.backend else {
            return;
        };
        if self.server_max_connections.get().is_some() {
            return;
        }
        let statement = sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT current_setting('max_connections')::int4 AS max_connections",
        );
        if let Ok(Some(row)) = self.conn.query_one_raw(statement).await
            && let Ok(max) = row.try_get::<i32>("", "max_connections")
            && let Ok(max) = u32::try_from(max)
        {
            let _already = self.server_max_connections.set(max);
        }
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

    /// Begins a transaction: READ COMMITTED on PostgreSQL, `BEGIN IMMEDIATE`
    /// on SQLite. It commits only through [`Transaction::commit`]; dropping
    /// it (an early return, an error, a panic) rolls it back.
    ///
    /// Run every call of the unit of work on the transaction, not on the
    /// pool: on SQLite a write through the pool waits for the transaction's
    /// write lock (and fails after the busy timeout); on PostgreSQL it would
    /// simply not be part of the transaction.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when no connection can be had;
    /// [`RepositoryError::TransactionConflict`] when SQLite's write lock
    /// stays taken beyond the busy timeout.
    pub async fn begin(&self) -> Result<Transaction, RepositoryError> {
        let options = match self.backend {
            // Every connection starts with `default_transaction_isolation`
            // set to READ COMMITTED: a `SET TRANSACTION` per `BEGIN` would
            // be a round trip that changes nothing.
            Backend::Postgres => TransactionOptions {
                isolation_level: None,
                access_mode: None,
                sqlite_transaction_mode: None,
            },
            Backend::Sqlite => TransactionOptions {
                isolation_level: None,
                access_mode: None,
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            },
        };
        let txn = self
            .conn
            .begin_with_options(options)
            .await
            .map_err(|e| map_db_err(e, self.error_context()))?;
        Ok(Transaction {
            txn,
            target: Arc::clone(&self.target),
            backend: self.backend,
        })
    }

    /// Runs `work` in one transaction: commits when it returns `Ok`, rolls
    /// back when it returns `Err` or panics.
    ///
    /// ```no_run
    /// # use billing_repository::{Database, RepositoryError, Users};
    /// # async fn demo(db: &Database) -> Result<(), RepositoryError> {
    /// let email = "ada@example.com".to_owned();
    /// let found = db
    ///     .transaction(|tx| Box::pin(async move { Users::find_by_email(tx, &email).await }))
    ///     .await?;
    /// # let _ = found; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The error of `work`, or (converted) the error of beginning or
    /// committing. A commit that fails with
    /// [`RepositoryError::Unavailable`] leaves the outcome unknown: the
    /// server may or may not have committed before the connection broke.
    pub async fn transaction<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'t> FnOnce(&'t Transaction) -> TransactionFuture<'t, Result<T, E>> + Send,
        T: Send,
        E: From<RepositoryError> + Send,
    {
        let tx = self.begin().await?;
        match work(&tx).await {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(error = %rollback, "rollback after a failed transaction failed");
                }
                Err(e)
            }
        }
    }

    fn error_context(&self) -> ErrorContext<'_> {
        ErrorContext {
            entity: None,
            target: &self.target,
            op: Op::Read,
        }
    }
}

/// An error and its sources on one line (`outer: inner: root`).
struct ErrorChainText<'a>(&'a RepositoryError);

impl std::fmt::Display for ErrorChainText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = std::error::Error::source(self.0);
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// The future a [`Database::transaction`] closure returns:
/// `Box::pin(async move { … })`.
pub type TransactionFuture<'t, T> = Pin<Box<dyn Future<Output = T> + Send + 't>>;

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

/// An open transaction. Repository functions take it like a [`Database`];
/// [`Transaction::commit`] makes their writes visible together, and dropping
/// it without committing rolls everything back.
#[derive(Debug)]
pub struct Transaction {
    txn: DatabaseTransaction,
    target: Arc<str>,
    backend: Backend,
}

impl Transaction {
    /// Commits every write of the transaction.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the connection broke (the
    /// outcome is then unknown); a constraint error of a deferred check.
    pub async fn commit(self) -> Result<(), RepositoryError> {
        let cx = ErrorContext {
            entity: None,
            target: &self.target,
            op: Op::Write,
        };
        self.txn.commit().await.map_err(|e| map_db_err(e, cx))
    }

    /// Rolls back every write of the transaction.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the connection broke (the
    /// server then rolls back on its own).
    pub async fn rollback(self) -> Result<(), RepositoryError> {
        let cx = ErrorContext {
            entity: None,
            target: &self.target,
            op: Op::Write,
        };
        self.txn.rollback().await.map_err(|e| map_db_err(e, cx))
    }

    /// The database server.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The sea-orm transaction, for queries this crate does not provide.
    #[must_use]
    pub fn connection(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl Executor for Transaction {
    type Connection = DatabaseTransaction;

    fn connection(&self) -> &DatabaseTransaction {
        &self.txn
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn backend(&self) -> Backend {
        self.backend
    }
}

/// Applies the PostgreSQL options; returns the `host:port` target.
fn configure_postgres(
    options: &mut ConnectOptions,
    settings: &DatabaseSettings,
) -> Result<String, RepositoryError> {
    let parsed = PgConnectOptions::from_str(&settings.url).map_err(|e| {
        RepositoryError::InvalidSettings {
            setting: "url",
            reason: format!("cannot be parsed as a PostgreSQL URL: {e}"),
        }
    })?;
    let host = parsed.get_host();
    let target = match parsed.get_socket() {
        Some(socket) => socket.display().to_string(),
        None if host.starts_with('/') => host.to_owned(),
        None if host.contains(':') => format!("[{host}]:{}", parsed.get_port()),
        None => format!("{host}:{}", parsed.get_port()),
    };
    if let Some(timeout) = settings.statement_timeout {
        options.statement_timeout(timeout);
    }
    if let Some(name) = &settings.application_name {
        options.set_application_name(name.clone());
    }
    // Explicit READ COMMITTED for every statement of every connection; a
    // startup parameter overrides server-, database- and role-level
    // defaults. (sea-orm applies `statement_timeout` through the same
    // `options` parameter before this hook runs; `options()` appends.)
    options.map_sqlx_postgres_opts(|o| {
        o.options([("default_transaction_isolation", "read committed")])
    });
    Ok(target)
}

/// Applies the SQLite options; returns the file name as target.
fn configure_sqlite(
    options: &mut ConnectOptions,
    settings: &DatabaseSettings,
) -> Result<String, RepositoryError> {
    let parsed = SqliteConnectOptions::from_str(&settings.url).map_err(|e| {
        RepositoryError::InvalidSettings {
            setting: "url",
            reason: format!("cannot be parsed as a SQLite URL: {e}"),
        }
    })?;
    let in_memory = settings.url.contains(":memory:") || settings.url.contains("mode=memory");
    let target = if in_memory {
        ":memory:".to_owned()
    } else {
        parsed.get_filename().display().to_string()
    };
    if in_memory {
        // Every connection to `:memory:` is a database of its own, and the
        // database dies with its last connection: one connection, forever.
        options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    }
    let busy_timeout = settings.sqlite_busy_timeout;
    options.map_sqlx_sqlite_opts(move |o| {
        let o = o
            .foreign_keys(true)
            .busy_timeout(busy_timeout)
            .synchronous(SqliteSynchronous::Full);
        if in_memory {
            o
        } else {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
        }
    });
    Ok(target)
}
