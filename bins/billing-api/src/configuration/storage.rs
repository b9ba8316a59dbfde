//! Where the data and the coordination live: [`DatabaseArgs`]
//! (`DATABASE_URL`, `BILLING_DB_*`) and [`RedisArgs`] (`REDIS_URL`,
//! `BILLING_REDIS_*`), each turned into its crate's settings, whose own
//! `validate` owns the ranges.

use std::path::PathBuf;
use std::time::Duration;

use billing_repository::{DatabaseSettings, RepositoryError};
use clap::Args;

use super::secret::{DatabaseUrl, RedisUrl};
use super::values::{parse_duration, parse_non_empty, parse_positive_usize};
use super::{
    ConfigError, DEFAULT_DATABASE_URL, DEFAULT_REDIS_KEY_PREFIX, DEFAULT_REDIS_POOL_SIZE,
    naming_variable,
};

/// The variables behind the fields of [`DatabaseSettings`].
const DATABASE_VARIABLES: &[(&str, &str)] = &[
    ("url", "DATABASE_URL"),
    ("max_connections", "BILLING_DB_MAX_CONNECTIONS"),
    ("min_connections", "BILLING_DB_MIN_CONNECTIONS"),
    ("acquire_timeout", "BILLING_DB_ACQUIRE_TIMEOUT"),
];

/// The variables behind the fields of `billing_concurrency::RedisSettings`.
const REDIS_VARIABLES: &[(&str, &str)] = &[
    ("url", "REDIS_URL"),
    ("cluster", "BILLING_REDIS_CLUSTER"),
    ("ca_file", "BILLING_REDIS_CA_FILE"),
    ("pool_size", "BILLING_REDIS_POOL_SIZE"),
    ("key_prefix", "BILLING_REDIS_KEY_PREFIX"),
    ("idempotency_ttl", "BILLING_IDEMPOTENCY_TTL"),
    ("in_flight_ttl", "BILLING_IDEMPOTENCY_IN_FLIGHT_TTL"),
];

/// The database and its connection pool.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct DatabaseArgs {
    /// Database: `postgres://user:password@host:5432/db` or `sqlite://path.db?mode=rwc`.
    #[arg(
        id = "database_url",
        long = "database-url",
        env = "DATABASE_URL",
        value_name = "URL",
        default_value = DEFAULT_DATABASE_URL,
        value_parser = DatabaseUrl::unchecked,
        hide_env_values = true
    )]
    pub url: DatabaseUrl,

    /// Most database connections per instance [default: 60 on PostgreSQL, 8 on SQLite].
    #[arg(
        id = "db_max_connections",
        long = "db-max-connections",
        env = "BILLING_DB_MAX_CONNECTIONS",
        value_name = "N"
    )]
    pub max_connections: Option<u32>,

    /// Database connections kept open; the start waits for one, the pool
    /// opens the others in the background [default: 2 on PostgreSQL, 1 on
    /// SQLite].
    #[arg(
        id = "db_min_connections",
        long = "db-min-connections",
        env = "BILLING_DB_MIN_CONNECTIONS",
        value_name = "N"
    )]
    pub min_connections: Option<u32>,

    /// How long a request waits for a database connection before answering
    /// 503 (`5s`, `500ms`, or seconds).
    #[arg(
        id = "db_acquire_timeout",
        long = "db-acquire-timeout",
        env = "BILLING_DB_ACQUIRE_TIMEOUT",
        value_name = "DURATION",
        default_value = "5s",
        value_parser = parse_duration
    )]
    pub acquire_timeout: Duration,

    /// Apply pending database migrations at start (switch off when a
    /// separate job runs `billing-migration up`).
    #[arg(
        id = "migrate_on_start",
        long = "migrate-on-start",
        env = "BILLING_MIGRATE_ON_START",
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub migrate_on_start: bool,
}

impl DatabaseArgs {
    /// Checks the URL's scheme, then the pool settings through
    /// [`DatabaseSettings::validate`].
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable to fix, never the password.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.url
            .check()
            .map_err(|reason| ConfigError::new(format!("DATABASE_URL {reason}")))?;
        let Err(error) = self.settings().validate() else {
            return Ok(());
        };
        let RepositoryError::InvalidSettings { setting, reason } = &error else {
            return Err(ConfigError::new(error.to_string()));
        };
        Err(naming_variable(DATABASE_VARIABLES, setting, reason))
    }

    /// The settings for `billing_repository::connect`: the backend's
    /// defaults, overridden by what is set here.
    #[must_use]
    pub fn settings(&self) -> DatabaseSettings {
        let mut settings = DatabaseSettings::new(self.url.expose());
        if let Some(max) = self.max_connections {
            settings.max_connections = max;
        }
        if let Some(min) = self.min_connections {
            settings.min_connections = min;
        }
        settings.acquire_timeout = self.acquire_timeout;
        settings.application_name = Some("billing-api".to_owned());
        settings
    }
}

/// Redis, when the coordination is not in process.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct RedisArgs {
    /// Redis for locks and idempotency keys: `redis://[user:password@]host:6379[/db]`,
    /// `rediss://…` over TLS; with BILLING_REDIS_CLUSTER, one or more cluster
    /// nodes, comma-separated. Unset: in-process coordination, valid for a
    /// single instance only.
    #[arg(
        id = "redis_url",
        long = "redis-url",
        env = "REDIS_URL",
        value_name = "URL",
        value_parser = RedisUrl::unchecked,
        hide_env_values = true
    )]
    pub url: Option<RedisUrl>,

    /// Namespace of every Redis key (`<prefix>:lock:…`), to share one Redis
    /// between deployments.
    #[arg(
        id = "redis_key_prefix",
        long = "redis-key-prefix",
        env = "BILLING_REDIS_KEY_PREFIX",
        value_name = "PREFIX",
        default_value = DEFAULT_REDIS_KEY_PREFIX,
        value_parser = parse_non_empty
    )]
    pub key_prefix: String,

    /// Redis connections per instance (each is multiplexed).
    #[arg(
        id = "redis_pool_size",
        long = "redis-pool-size",
        env = "BILLING_REDIS_POOL_SIZE",
        value_name = "N",
        default_value_t = DEFAULT_REDIS_POOL_SIZE,
        value_parser = parse_positive_usize
    )]
    pub pool_size: usize,

    /// REDIS_URL names Redis Cluster nodes (one or more, comma-separated):
    /// keys spread over the cluster's masters, `MOVED`/`ASK` are followed.
    #[arg(
        id = "redis_cluster",
        long = "redis-cluster",
        env = "BILLING_REDIS_CLUSTER",
        value_name = "BOOL",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub cluster: bool,

    /// PEM file of the certificate authorities to trust for `rediss://`
    /// instead of the system's (a managed Redis with a private CA).
    #[arg(
        id = "redis_ca_file",
        long = "redis-ca-file",
        env = "BILLING_REDIS_CA_FILE",
        value_name = "PATH"
    )]
    pub ca_file: Option<PathBuf>,
}

impl RedisArgs {
    /// Checks the URL, that the cluster switch and the CA file fit it, and
    /// the rest through `RedisSettings::validate` (with the idempotency
    /// TTLs the coordination backend is given).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable to fix, never a password.
    pub fn validate(&self, idempotency: &super::rules::IdempotencyArgs) -> Result<(), ConfigError> {
        if let Some(url) = &self.url {
            url.check()
                .map_err(|reason| ConfigError::new(format!("REDIS_URL {reason}")))?;
        }
        self.validate_topology()?;
        let Some(settings) = self.settings(idempotency) else {
            return Ok(());
        };
        settings.validate().map_err(|error| {
            let billing_concurrency::CoordinationError::InvalidSettings {
                setting, reason, ..
            } = &error
            else {
                return ConfigError::new(error.to_string());
            };
            naming_variable(REDIS_VARIABLES, setting, reason)
        })
    }

    /// `BILLING_REDIS_CLUSTER` and `BILLING_REDIS_CA_FILE` against
    /// `REDIS_URL`.
    fn validate_topology(&self) -> Result<(), ConfigError> {
        let url = self.url.as_ref();
        let several = url.is_some_and(|url| url.expose().contains(','));
        if several && !self.cluster {
            return Err(ConfigError::new(
                "REDIS_URL lists several servers: set BILLING_REDIS_CLUSTER=true for a Redis Cluster",
            ));
        }
        if self.cluster && url.is_none() {
            return Err(ConfigError::new(
                "BILLING_REDIS_CLUSTER=true needs REDIS_URL, the cluster's nodes (comma-separated)",
            ));
        }
        let Some(ca_file) = &self.ca_file else {
            return Ok(());
        };
        let Some(url) = url else {
            return Err(ConfigError::new(
                "BILLING_REDIS_CA_FILE is set but REDIS_URL is not",
            ));
        };
        if !url.is_tls() {
            return Err(ConfigError::new(format!(
                "BILLING_REDIS_CA_FILE is set but REDIS_URL ({url}) is not rediss://"
            )));
        }
        if let Err(error) = std::fs::metadata(ca_file) {
            return Err(ConfigError::new(format!(
                "BILLING_REDIS_CA_FILE ({}) cannot be read: {error}",
                ca_file.display()
            )));
        }
        Ok(())
    }

    /// The settings for `Coordination::redis`, if `REDIS_URL` is set.
    #[must_use]
    pub fn settings(
        &self,
        idempotency: &super::rules::IdempotencyArgs,
    ) -> Option<billing_concurrency::RedisSettings> {
        self.url.as_ref().map(|url| {
            let mut settings = billing_concurrency::RedisSettings::new(url.expose())
                .with_key_prefix(self.key_prefix.clone());
            settings.pool_size = self.pool_size;
            settings.cluster = self.cluster;
            settings.ca_file.clone_from(&self.ca_file);
            settings.idempotency_ttl = idempotency.ttl;
            settings.in_flight_ttl = idempotency.in_flight_ttl;
            settings
        })
    }
}
