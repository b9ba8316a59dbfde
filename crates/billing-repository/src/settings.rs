//! [`DatabaseSettings`]: the database URL and the connection-pool settings,
//! with the defaults of the original service.

use std::time::Duration;

use billing_secrets::redact_url;

use crate::database::Backend;
use crate::error::RepositoryError;

/// How to connect to the database and size the pool.
///
/// [`DatabaseSettings::new`] fills in the defaults for PostgreSQL — at most
/// 60 connections (the original service's `pool_size + max_overflow`),
/// 2 kept open, `pool_pre_ping`, `pool_recycle` 3600 s — and smaller ones for
/// SQLite; every field can be overridden before calling [`crate::connect`]:
///
/// ```
/// use std::time::Duration;
/// use billing_repository::DatabaseSettings;
///
/// let mut settings = DatabaseSettings::new("postgres://billing@db:5432/billing");
/// assert_eq!((settings.min_connections, settings.max_connections), (2, 60));
/// settings.acquire_timeout = Duration::from_secs(2);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatabaseSettings {
    /// `postgres://user:password@host:port/database` or
    /// `sqlite://path/to/file.db` (`sqlite::memory:` for a private in-memory
    /// database).
    pub url: String,
    /// Connections kept open. [`crate::connect`] waits for one of them
    /// only and opens the others in the background. Default: 2 on
    /// PostgreSQL (the original service's pool also opened its 20 on
    /// demand only), 1 on SQLite.
    pub min_connections: u32,
    /// Upper bound of open connections (`pool_size + max_overflow`).
    /// Default: 60 on PostgreSQL, 8 on SQLite.
    pub max_connections: u32,
    /// How long a caller waits for a connection (including opening one)
    /// before getting [`crate::RepositoryError::Unavailable`]. It also bounds
    /// how long [`crate::connect`] tries to reach a database that is down.
    /// Default: 5 s.
    pub acquire_timeout: Duration,
    /// Connections older than this are closed and replaced
    /// (`pool_recycle`). Default: one hour.
    pub max_lifetime: Option<Duration>,
    /// Connections above `min_connections` idle for this long are closed.
    /// Default: 10 minutes.
    pub idle_timeout: Option<Duration>,
    /// Check a connection with a round trip before handing it out
    /// (`pool_pre_ping`), when it has been idle for at least
    /// `test_before_acquire_idle`. Default: `true`.
    pub test_before_acquire: bool,
    /// The idle time from which a connection is checked before use (with
    /// `test_before_acquire`): one in steady use was just seen to work and
    /// is handed out without a round trip, one idle longer may have been
    /// dropped by the server, a proxy or a firewall and is checked (and
    /// replaced if dead). Zero checks every time. Default: 500 ms.
    pub test_before_acquire_idle: Duration,
    /// Open the pool without connecting; the first query connects. By
    /// default (`false`) [`crate::connect`] fails when the database cannot be
    /// reached.
    pub lazy: bool,
    /// PostgreSQL `statement_timeout`; `None` keeps the server's.
    pub statement_timeout: Option<Duration>,
    /// PostgreSQL `application_name`, shown in `pg_stat_activity`.
    pub application_name: Option<String>,
    /// SQLite: how long a writer waits for the database lock before failing
    /// with [`crate::RepositoryError::TransactionConflict`]. Default: 5 s.
    pub sqlite_busy_timeout: Duration,
    /// Log every SQL statement (sqlx statement logging at `INFO`).
    /// Default: `false`.
    pub log_statements: bool,
}

impl DatabaseSettings {
    /// PostgreSQL: connections kept open. Small, so that many instances
    /// fit a server's `max_connections` while idle; the pool grows on
    /// demand.
    pub const POSTGRES_MIN_CONNECTIONS: u32 = 2;
    /// PostgreSQL: the most connections (`pool_size + max_overflow`, 20 + 40).
    pub const POSTGRES_MAX_CONNECTIONS: u32 = 60;
    /// SQLite: connections kept open.
    pub const SQLITE_MIN_CONNECTIONS: u32 = 1;
    /// SQLite: the most connections (one writer at a time, several readers).
    pub const SQLITE_MAX_CONNECTIONS: u32 = 8;
    /// Checks the settings that [`crate::connect`] relies on and returns the
    /// backend the URL names.
    ///
    /// # Errors
    /// [`RepositoryError::InvalidSettings`] naming the field at fault: a URL
    /// that is neither `postgres://`/`postgresql://` nor `sqlite:`, no
    /// connection allowed (`max_connections` 0), more connections kept
    /// than allowed (`min_connections` above `max_connections`), or a zero
    /// `acquire_timeout` or `sqlite_busy_timeout`.
    pub fn validate(&self) -> Result<Backend, RepositoryError> {
        let invalid = |setting: &'static str, reason: String| {
            Err(RepositoryError::InvalidSettings { setting, reason })
        };
        let Some(backend) = Backend::from_url(&self.url) else {
            return invalid(
                "url",
                format!(
                    "({}) must start with postgres://, postgresql:// or sqlite:",
                    redact_url(&self.url)
                ),
            );
        };
        if self.max_connections == 0 {
            return invalid("max_connections", "must be at least 1".to_owned());
        }
        if self.min_connections > self.max_connections {
            return invalid(
                "min_connections",
                format!(
                    "({}) exceeds max_connections ({})",
                    self.min_connections, self.max_connections
                ),
            );
        }
        for (setting, value) in [
            ("acquire_timeout", self.acquire_timeout),
            ("sqlite_busy_timeout", self.sqlite_busy_timeout),
        ] {
            if value.is_zero() {
                return invalid(setting, "must be longer than zero".to_owned());
            }
        }
        Ok(backend)
    }

    /// Default acquire timeout.
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default connection lifetime (`pool_recycle`).
    pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(3600);
    /// Default idle timeout of connections above the minimum.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
    /// Default of [`Self::test_before_acquire_idle`].
    pub const DEFAULT_TEST_BEFORE_ACQUIRE_IDLE: Duration = Duration::from_millis(500);
    /// Default SQLite busy timeout.
    pub const DEFAULT_SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

    /// Settings for `url` with the defaults of its backend (PostgreSQL
    /// unless the URL starts with `sqlite:`).
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let (min_connections, max_connections) = if Backend::from_url(&url) == Some(Backend::Sqlite)
        {
            (Self::SQLITE_MIN_CONNECTIONS, Self::SQLITE_MAX_CONNECTIONS)
        } else {
            (
                Self::POSTGRES_MIN_CONNECTIONS,
                Self::POSTGRES_MAX_CONNECTIONS,
            )
        };
        Self {
            url,
            min_connections,
            max_connections,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
            max_lifetime: Some(Self::DEFAULT_MAX_LIFETIME),
            idle_timeout: Some(Self::DEFAULT_IDLE_TIMEOUT),
            test_before_acquire: true,
            test_before_acquire_idle: Self::DEFAULT_TEST_BEFORE_ACQUIRE_IDLE,
            lazy: false,
            statement_timeout: None,
            application_name: None,
            sqlite_busy_timeout: Self::DEFAULT_SQLITE_BUSY_TIMEOUT,
            log_statements: false,
        }
    }
}

/// The password of the URL is redacted.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &redact_url(&self.url))
            .field("min_connections", &self.min_connections)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("idle_timeout", &self.idle_timeout)
            .field("test_before_acquire", &self.test_before_acquire)
            .field("test_before_acquire_idle", &self.test_before_acquire_idle)
            .field("lazy", &self.lazy)
            .field("statement_timeout", &self.statement_timeout)
            .field("application_name", &self.application_name)
            .field("sqlite_busy_timeout", &self.sqlite_busy_timeout)
            .field("log_statements", &self.log_statements)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_backend() {
        let pg = DatabaseSettings::new("postgres://u:p@h:5432/db");
        assert_eq!((pg.min_connections, pg.max_connections), (2, 60));
        assert_eq!(pg.max_lifetime, Some(Duration::from_secs(3600)));
        assert!(pg.test_before_acquire);
        let sqlite = DatabaseSettings::new("sqlite://billing.db");
        assert_eq!((sqlite.min_connections, sqlite.max_connections), (1, 8));
    }

    #[test]
    fn debug_redacts_the_password() {
        let s = DatabaseSettings::new("postgres://billing:s3cret@db:5432/billing");
        let text = format!("{s:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("billing:***@db:5432/billing"), "{text}");
    }
}
