//! The pool's connections against the server's limit: checking the first
//! connection, filling the pool to its minimum in the background, and
//! naming why a server refuses connections.

use sea_orm::ConnectionTrait;

use super::{Backend, Database};
use crate::error::RepositoryError;

/// The SQLSTATE of PostgreSQL's `too many clients` (`too_many_connections`).
const TOO_MANY_CONNECTIONS: &str = "53300";

impl Database {
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
    /// [`DatabaseSettings::min_connections`](crate::DatabaseSettings::min_connections)
    /// (each one as a request would, within the acquire timeout). When the server refuses more, it stops,
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
