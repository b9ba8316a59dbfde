//! [`Settings`]: every setting of the binary, read from command-line flags
//! and environment variables (clap, `--help` lists each with its variable),
//! and checked before anything starts.
//!
//! Single values are checked while parsing (a duration or a size that does
//! not parse: clap reports them); the URLs and the token, whose values must
//! not be echoed, and settings that only make sense together are checked by
//! [`Settings::validate`], which names the variable to fix in one line and
//! never prints a password or the token.
//!
//! Values that are set but empty (`REDIS_URL=`) are refused rather than
//! taken as "unset": with money at stake an instance must not fall back to
//! the embedded coordination backend because a template left a variable
//! blank.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use billing_repository::{Backend, DatabaseSettings};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

/// The database used when `DATABASE_URL` is not set: a SQLite file in the
/// working directory, created if missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./billing.db?mode=rwc";
/// The address served when `BILLING_BIND` is not set.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Redis connections per instance when `BILLING_REDIS_POOL_SIZE` is not set.
/// Each connection is multiplexed, so a few serve many concurrent requests.
pub const DEFAULT_REDIS_POOL_SIZE: usize = 4;
/// The namespace of every Redis key when `BILLING_REDIS_KEY_PREFIX` is not
/// set.
pub const DEFAULT_REDIS_KEY_PREFIX: &str = "billing";
/// The largest request body accepted when `BILLING_BODY_LIMIT` is not set:
/// 64 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
/// The longest TTL the coordination backend accepts.
const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Every setting of `billing-api`.
///
/// Parse with [`Settings::parse`] (flags, then environment variables, then
/// defaults), then call [`Settings::validate`]. Tests build one with
/// [`Settings::default`] (the documented defaults, no environment) and
/// change fields.
#[derive(Clone, Debug, PartialEq, Eq, Parser)]
#[command(
    name = "billing-api",
    version,
    about = "The billing HTTP API: users, currencies, taxes, plans, subscriptions and invoices.",
    long_about = "The billing HTTP API: users, currencies, taxes, plans, subscriptions and invoices.\n\n\
        Without DATABASE_URL and REDIS_URL it runs on a SQLite file (./billing.db) and in-process \
        coordination (one instance only). With DATABASE_URL=postgres://... and REDIS_URL=redis://... \
        any number of instances can serve the same data.\n\n\
        Every flag can also be set through the environment variable shown with it; a flag wins over \
        its variable.\n\n\
        Signals: SIGTERM stops accepting connections and lets requests in flight finish \
        (at most BILLING_SHUTDOWN_TIMEOUT); SIGINT and SIGQUIT stop at once."
)]
pub struct Settings {
    /// Database: `postgres://user:password@host:5432/db` or `sqlite://path.db?mode=rwc`.
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "URL",
        default_value = DEFAULT_DATABASE_URL,
        value_parser = DatabaseUrl::unchecked,
        hide_env_values = true
    )]
    pub database_url: DatabaseUrl,

    /// Redis for locks and idempotency keys: `redis://[user:password@]host:6379[/db]`,
    /// `rediss://…` over TLS; with BILLING_REDIS_CLUSTER, one or more cluster
    /// nodes, comma-separated. Unset: in-process coordination, valid for a
    /// single instance only.
    #[arg(
        long,
        env = "REDIS_URL",
        value_name = "URL",
        value_parser = RedisUrl::unchecked,
        hide_env_values = true
    )]
    pub redis_url: Option<RedisUrl>,

    /// Namespace of every Redis key (`<prefix>:lock:…`), to share one Redis
    /// between deployments.
    #[arg(
        long,
        env = "BILLING_REDIS_KEY_PREFIX",
        value_name = "PREFIX",
        default_value = DEFAULT_REDIS_KEY_PREFIX,
        value_parser = parse_non_empty
    )]
    pub redis_key_prefix: String,

    /// Redis connections per instance (each is multiplexed).
    #[arg(
        long,
        env = "BILLING_REDIS_POOL_SIZE",
        value_name = "N",
        default_value_t = DEFAULT_REDIS_POOL_SIZE,
        value_parser = parse_positive_usize
    )]
    pub redis_pool_size: usize,

    /// REDIS_URL names Redis Cluster nodes (one or more, comma-separated):
    /// keys spread over the cluster's masters, `MOVED`/`ASK` are followed.
    #[arg(
        long,
        env = "BILLING_REDIS_CLUSTER",
        value_name = "BOOL",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub redis_cluster: bool,

    /// PEM file of the certificate authorities to trust for `rediss://`
    /// instead of the system's (a managed Redis with a private CA).
    #[arg(long, env = "BILLING_REDIS_CA_FILE", value_name = "PATH")]
    pub redis_ca_file: Option<PathBuf>,

    /// Address and port to listen on. Any address other than loopback
    /// requires BILLING_API_TOKEN.
    #[arg(
        long,
        env = "BILLING_BIND",
        value_name = "ADDR:PORT",
        default_value = DEFAULT_BIND,
        value_parser = parse_bind
    )]
    pub bind: SocketAddr,

    /// Bearer token every `/api/v1` request must present. Unset: the API is
    /// open (allowed on loopback only, with a warning).
    #[arg(
        long,
        env = "BILLING_API_TOKEN",
        value_name = "TOKEN",
        value_parser = ApiToken::unchecked,
        hide_env_values = true
    )]
    pub api_token: Option<ApiToken>,

    /// Most database connections per instance [default: 60 on PostgreSQL, 8 on SQLite].
    #[arg(long, env = "BILLING_DB_MAX_CONNECTIONS", value_name = "N")]
    pub db_max_connections: Option<u32>,

    /// Database connections kept open; the start waits for one, the pool
    /// opens the others in the background [default: 2 on PostgreSQL, 1 on
    /// SQLite].
    #[arg(long, env = "BILLING_DB_MIN_CONNECTIONS", value_name = "N")]
    pub db_min_connections: Option<u32>,

    /// How long a request waits for a database connection before answering
    /// 503 (`5s`, `500ms`, or seconds).
    #[arg(
        long,
        env = "BILLING_DB_ACQUIRE_TIMEOUT",
        value_name = "DURATION",
        default_value = "5s",
        value_parser = parse_duration
    )]
    pub db_acquire_timeout: Duration,

    /// How long the outcome of a request run under an idempotency key is
    /// kept (in the database) and replayed.
    #[arg(
        long,
        env = "BILLING_IDEMPOTENCY_TTL",
        value_name = "DURATION",
        default_value = "24h",
        value_parser = parse_duration
    )]
    pub idempotency_ttl: Duration,

    /// How long an unfinished idempotent request blocks its key if its
    /// instance dies before answering.
    #[arg(
        long,
        env = "BILLING_IDEMPOTENCY_IN_FLIGHT_TTL",
        value_name = "DURATION",
        default_value = "60s",
        value_parser = parse_duration
    )]
    pub idempotency_in_flight_ttl: Duration,

    /// Apply pending database migrations at start (switch off when a
    /// separate job runs `billing-migration up`).
    #[arg(
        long,
        env = "BILLING_MIGRATE_ON_START",
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub migrate_on_start: bool,

    /// Log filter: a level (`info`, `debug`) or per-target directives
    /// (`info,billing_api=debug,sqlx=warn`). Unset: `RUST_LOG` if it is
    /// set, else `info`.
    #[arg(
        long,
        env = "BILLING_LOG",
        value_name = "FILTER",
        default_value = "info",
        value_parser = LogFilter::parse
    )]
    pub log: LogFilter,

    /// Log format: `human` (readable lines) or `json` (one object per line).
    #[arg(
        long,
        env = "BILLING_LOG_FORMAT",
        value_name = "FORMAT",
        value_enum,
        default_value_t = LogFormat::Human
    )]
    pub log_format: LogFormat,

    /// Largest request body accepted (`64KiB`, `1MiB`, or bytes); larger
    /// ones get 413.
    #[arg(
        long,
        env = "BILLING_BODY_LIMIT",
        value_name = "SIZE",
        default_value = "64KiB",
        value_parser = parse_byte_size
    )]
    pub body_limit: usize,

    /// On SIGTERM, how long requests in flight may take to finish before
    /// the server stops anyway (whole seconds, rounded up).
    #[arg(
        long,
        env = "BILLING_SHUTDOWN_TIMEOUT",
        value_name = "DURATION",
        default_value = "30s",
        value_parser = parse_duration
    )]
    pub shutdown_timeout: Duration,

    /// How long `/health/ready` waits for the database and Redis before
    /// reporting them down.
    #[arg(
        long,
        env = "BILLING_HEALTH_TIMEOUT",
        value_name = "DURATION",
        default_value = "1s",
        value_parser = parse_duration
    )]
    pub health_timeout: Duration,

    /// How many password hashes may wait for the hashing thread; beyond
    /// that a registration answers 503 `overloaded` with `Retry-After`
    /// at once instead of queueing.
    #[arg(
        long,
        env = "BILLING_PASSWORD_HASH_QUEUE",
        value_name = "N",
        default_value_t = billing_service::DEFAULT_PASSWORD_HASH_QUEUE,
        value_parser = parse_positive_usize
    )]
    pub password_hash_queue: usize,

    /// Serve plans, currencies and taxes from each instance's catalogue
    /// cache (`false`: every read goes to the database).
    #[arg(
        long,
        env = "BILLING_CATALOGUE_CACHE",
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub catalogue_cache: bool,

    /// Number the invoice creations waiting in this instance together: one
    /// counter update and one multi-row insert per transaction (`false`:
    /// one transaction per creation). Creations under an `Idempotency-Key`
    /// are always written alone.
    #[arg(
        long,
        env = "BILLING_INVOICE_BATCHING",
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub invoice_batching: bool,

    /// The staleness bound of the catalogue cache: a read that starts
    /// longer than this after a plan, currency or tax change was
    /// acknowledged by any instance sees it (the instance that made it sees
    /// it at once). Each instance checks a catalogue's generation in Redis
    /// at most once per this interval.
    #[arg(
        long,
        env = "BILLING_CATALOGUE_REFRESH",
        value_name = "DURATION",
        default_value = "20ms",
        value_parser = parse_duration
    )]
    pub catalogue_refresh: Duration,

    /// HTTP worker threads [default: the number of CPUs].
    #[arg(long, env = "BILLING_WORKERS", value_name = "N")]
    pub workers: Option<NonZeroUsize>,

    /// The billing cycle (`BILLING_CYCLE_*`).
    #[command(flatten)]
    pub cycle: crate::cycle::CycleArgs,

    /// What to do instead of serving; serve when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What `billing-api` does instead of serving (the default).
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// The billing cycle.
    #[command(subcommand)]
    Cycle(crate::cycle::CycleCommand),
    /// Asks the instance listening on BILLING_BIND (on loopback when it
    /// listens on all interfaces) for `GET /health/ready`; exits 0 when it
    /// answers 200, 1 otherwise. For container health checks: the image
    /// has no HTTP client of its own.
    Probe(ProbeArgs),
}

/// The options of `billing-api probe`.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct ProbeArgs {
    /// The path to ask (`/health/ready`, or `/health/live` to check only
    /// that the process serves).
    #[arg(long, value_name = "PATH", default_value = "/health/ready", value_parser = parse_probe_path)]
    pub path: String,
    /// How long to wait for the whole answer.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// A probe path: absolute, printable ASCII without spaces.
fn parse_probe_path(value: &str) -> Result<String, String> {
    if value.starts_with('/') && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(value.to_owned())
    } else {
        Err("must be an absolute path such as /health/ready".to_owned())
    }
}

impl Default for Settings {
    /// The documented defaults, without reading flags or the environment.
    fn default() -> Self {
        Self {
            database_url: DatabaseUrl(DEFAULT_DATABASE_URL.to_owned()),
            redis_url: None,
            redis_key_prefix: DEFAULT_REDIS_KEY_PREFIX.to_owned(),
            redis_pool_size: DEFAULT_REDIS_POOL_SIZE,
            redis_cluster: false,
            redis_ca_file: None,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_token: None,
            db_max_connections: None,
            db_min_connections: None,
            db_acquire_timeout: Duration::from_secs(5),
            idempotency_ttl: Duration::from_secs(24 * 60 * 60),
            idempotency_in_flight_ttl: Duration::from_secs(60),
            migrate_on_start: true,
            log: LogFilter("info".to_owned()),
            log_format: LogFormat::Human,
            body_limit: DEFAULT_BODY_LIMIT,
            shutdown_timeout: Duration::from_secs(30),
            health_timeout: Duration::from_secs(1),
            password_hash_queue: billing_service::DEFAULT_PASSWORD_HASH_QUEUE,
            catalogue_cache: true,
            invoice_batching: true,
            catalogue_refresh: billing_service::DEFAULT_CATALOGUE_REFRESH,
            workers: None,
            cycle: crate::cycle::CycleArgs::default(),
            command: None,
        }
    }
}

/// A combination of settings that cannot work. Its message names the
/// variable to change and fits on one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl Settings {
    /// The settings from the command line and the environment, as
    /// [`Settings::parse`] reads them, except that the log filter falls back
    /// to `RUST_LOG` when neither `--log` nor `BILLING_LOG` is given (and
    /// `RUST_LOG` is set and not empty).
    ///
    /// # Errors
    /// clap's error for a flag or variable that does not parse (also for
    /// `--help` and `--version`, which clap renders), or an
    /// [`clap::error::ErrorKind::InvalidValue`] naming `RUST_LOG` when it is
    /// not a log filter.
    pub fn from_command_line() -> Result<Self, clap::Error> {
        let matches = Self::command().try_get_matches()?;
        let mut settings = Self::from_arg_matches(&matches)?;
        if matches.value_source("log") == Some(ValueSource::DefaultValue)
            && let Some(rust_log) = std::env::var("RUST_LOG")
                .ok()
                .filter(|value| !value.trim().is_empty())
        {
            settings.log = LogFilter::parse(&rust_log).map_err(|reason| {
                Self::command().error(
                    clap::error::ErrorKind::InvalidValue,
                    format!("RUST_LOG (used as BILLING_LOG is not set) {reason}"),
                )
            })?;
        }
        Ok(settings)
    }

    /// Checks the settings that only make sense together. [`Settings::parse`]
    /// has already checked each value on its own.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first problem: a database or Redis URL
    /// with another scheme or empty, a token too short or with spaces, a
    /// non-loopback
    /// `BILLING_BIND` without `BILLING_API_TOKEN`, more minimum than maximum
    /// database connections, a zero size or duration, a TTL over a year or
    /// an in-flight TTL longer than the idempotency TTL.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.database_url
            .check()
            .map_err(|reason| ConfigError::new(format!("DATABASE_URL {reason}")))?;
        if let Some(url) = &self.redis_url {
            url.check()
                .map_err(|reason| ConfigError::new(format!("REDIS_URL {reason}")))?;
        }
        self.validate_redis_topology()?;
        if let Some(token) = &self.api_token {
            token
                .check()
                .map_err(|reason| ConfigError::new(format!("BILLING_API_TOKEN {reason}")))?;
        }
        if self.api_token.is_none() && !self.bind.ip().is_loopback() {
            return Err(ConfigError::new(format!(
                "BILLING_BIND={} is not a loopback address and BILLING_API_TOKEN is not set: \
                 set a token or bind to 127.0.0.1",
                self.bind
            )));
        }
        let database = self.database_settings();
        if database.max_connections == 0 {
            return Err(ConfigError::new(
                "BILLING_DB_MAX_CONNECTIONS must be at least 1",
            ));
        }
        if database.min_connections > database.max_connections {
            return Err(ConfigError::new(format!(
                "BILLING_DB_MIN_CONNECTIONS ({}) exceeds BILLING_DB_MAX_CONNECTIONS ({})",
                database.min_connections, database.max_connections
            )));
        }
        for (name, value) in [
            ("BILLING_DB_ACQUIRE_TIMEOUT", self.db_acquire_timeout),
            ("BILLING_HEALTH_TIMEOUT", self.health_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(format!("{name} must be longer than zero")));
            }
        }
        for (name, ttl) in [
            ("BILLING_IDEMPOTENCY_TTL", self.idempotency_ttl),
            (
                "BILLING_IDEMPOTENCY_IN_FLIGHT_TTL",
                self.idempotency_in_flight_ttl,
            ),
        ] {
            if ttl < Duration::from_millis(1) || ttl > MAX_TTL {
                return Err(ConfigError::new(format!(
                    "{name} must be between 1ms and 365 days, got {}",
                    humantime::format_duration(ttl)
                )));
            }
        }
        if self.idempotency_in_flight_ttl > self.idempotency_ttl {
            return Err(ConfigError::new(
                "BILLING_IDEMPOTENCY_IN_FLIGHT_TTL must not exceed BILLING_IDEMPOTENCY_TTL",
            ));
        }
        if self.body_limit == 0 {
            return Err(ConfigError::new(
                "BILLING_BODY_LIMIT must be at least 1 byte",
            ));
        }
        if self.password_hash_queue == 0 {
            return Err(ConfigError::new(
                "BILLING_PASSWORD_HASH_QUEUE must be at least 1",
            ));
        }
        if self.redis_pool_size == 0 {
            return Err(ConfigError::new(
                "BILLING_REDIS_POOL_SIZE must be at least 1",
            ));
        }
        self.cycle.validate()?;
        Ok(())
    }

    /// `BILLING_REDIS_CLUSTER` and `BILLING_REDIS_CA_FILE` against
    /// `REDIS_URL`.
    fn validate_redis_topology(&self) -> Result<(), ConfigError> {
        let url = self.redis_url.as_ref();
        let several = url.is_some_and(|url| url.expose().contains(','));
        if several && !self.redis_cluster {
            return Err(ConfigError::new(
                "REDIS_URL lists several servers: set BILLING_REDIS_CLUSTER=true for a Redis Cluster",
            ));
        }
        if self.redis_cluster && url.is_none() {
            return Err(ConfigError::new(
                "BILLING_REDIS_CLUSTER=true needs REDIS_URL, the cluster's nodes (comma-separated)",
            ));
        }
        let Some(ca_file) = &self.redis_ca_file else {
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

    /// The settings for `billing_repository::connect`: the backend's
    /// defaults, overridden by what is set here.
    #[must_use]
    pub fn database_settings(&self) -> DatabaseSettings {
        let mut settings = DatabaseSettings::new(self.database_url.expose());
        if let Some(max) = self.db_max_connections {
            settings.max_connections = max;
        }
        if let Some(min) = self.db_min_connections {
            settings.min_connections = min;
        }
        settings.acquire_timeout = self.db_acquire_timeout;
        settings.application_name = Some("billing-api".to_owned());
        settings
    }

    /// The settings for `Coordination::redis`, if `REDIS_URL` is set.
    #[must_use]
    pub fn redis_settings(&self) -> Option<billing_concurrency::RedisSettings> {
        self.redis_url.as_ref().map(|url| {
            let mut settings = billing_concurrency::RedisSettings::new(url.expose())
                .with_key_prefix(self.redis_key_prefix.clone());
            settings.pool_size = self.redis_pool_size;
            settings.cluster = self.redis_cluster;
            settings.ca_file.clone_from(&self.redis_ca_file);
            settings.idempotency_ttl = self.idempotency_ttl;
            settings.in_flight_ttl = self.idempotency_in_flight_ttl;
            settings
        })
    }

    /// The settings of the use cases: the idempotency TTLs and the password
    /// hashing queue set here, the defaults for the rest.
    #[must_use]
    pub fn billing_settings(&self) -> billing_service::BillingSettings {
        billing_service::BillingSettings {
            idempotency_ttl: self.idempotency_ttl,
            idempotency_in_flight_ttl: self.idempotency_in_flight_ttl,
            password_hash_queue: self.password_hash_queue,
            catalogue_cache: self.catalogue_cache,
            catalogue_refresh: self.catalogue_refresh,
            invoice_batching: self.invoice_batching,
            ..billing_service::BillingSettings::default()
        }
    }

    /// The settings for `Coordination::embedded_with`.
    #[must_use]
    pub fn embedded_coordination_settings(&self) -> billing_concurrency::EmbeddedSettings {
        billing_concurrency::EmbeddedSettings {
            idempotency_ttl: self.idempotency_ttl,
            in_flight_ttl: self.idempotency_in_flight_ttl,
            ..billing_concurrency::EmbeddedSettings::default()
        }
    }

    /// `BILLING_SHUTDOWN_TIMEOUT` in whole seconds, rounded up (what the
    /// HTTP server takes).
    #[must_use]
    pub fn shutdown_timeout_secs(&self) -> u64 {
        let secs = self.shutdown_timeout.as_secs();
        if self.shutdown_timeout.subsec_nanos() > 0 {
            secs.saturating_add(1)
        } else {
            secs
        }
    }
}

/// `DATABASE_URL`: a `postgres://`, `postgresql://` or `sqlite:` URL. Its
/// `Debug` and `Display` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL, checked: see [`Self::check`].
    ///
    /// # Errors
    /// The reason (without the password) when the check fails.
    pub fn parse(value: &str) -> Result<Self, String> {
        let url = Self(value.trim().to_owned());
        url.check()?;
        Ok(url)
    }

    /// The URL as given; [`Settings::validate`] checks it. (clap's own
    /// message would echo the value, password included.)
    ///
    /// # Errors
    /// Never.
    pub fn unchecked(value: &str) -> Result<Self, std::convert::Infallible> {
        Ok(Self(value.trim().to_owned()))
    }

    /// Checks the scheme (the repository parses the rest when connecting).
    ///
    /// # Errors
    /// The reason, without the password, when the URL is empty or names
    /// another scheme.
    pub fn check(&self) -> Result<(), String> {
        if self.0.is_empty() {
            return Err("is set but empty: unset it for the embedded SQLite default".to_owned());
        }
        match self.backend() {
            Some(Backend::Postgres | Backend::Sqlite) => Ok(()),
            None => Err(format!(
                "({}) must start with postgres://, postgresql:// or sqlite:",
                redact_url(&self.0)
            )),
        }
    }

    /// The database server this URL names, if it is one of ours.
    #[must_use]
    pub fn backend(&self) -> Option<Backend> {
        Backend::from_url(&self.0)
    }

    /// The URL with its password, to connect with.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// `REDIS_URL`: a `redis://`, `rediss://`, `unix://` or `redis+unix://`
/// URL, or several comma-separated (Redis Cluster nodes). Its `Debug` and
/// `Display` hide the passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// The URL, checked: see [`Self::check`].
    ///
    /// # Errors
    /// The reason (without the password) when the check fails.
    pub fn parse(value: &str) -> Result<Self, String> {
        let url = Self(value.trim().to_owned());
        url.check()?;
        Ok(url)
    }

    /// The URL as given; [`Settings::validate`] checks it.
    ///
    /// # Errors
    /// Never.
    pub fn unchecked(value: &str) -> Result<Self, std::convert::Infallible> {
        Ok(Self(value.trim().to_owned()))
    }

    /// Checks the scheme of each URL (the Redis client parses the rest).
    ///
    /// # Errors
    /// The reason, without the password, when the URL is empty or one of
    /// the URLs names another scheme.
    pub fn check(&self) -> Result<(), String> {
        if self.0.is_empty() {
            return Err(
                "is set but empty: unset it for in-process coordination (one instance only)"
                    .to_owned(),
            );
        }
        for node in self.0.split(',') {
            let known = ["redis://", "rediss://", "unix://", "redis+unix://"]
                .iter()
                .any(|scheme| node.trim().starts_with(scheme));
            if !known {
                return Err(format!(
                    "({}) must start with redis://, rediss://, unix:// or redis+unix://",
                    redact_url(node.trim())
                ));
            }
        }
        Ok(())
    }

    /// Whether the URL (or any of the URLs) connects over TLS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.0
            .split(',')
            .any(|node| node.trim().starts_with("rediss://"))
    }

    /// The URL with its password, to connect with.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// `BILLING_API_TOKEN`: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// The shortest token accepted, in bytes: long enough not to be guessed.
    pub const MIN_LEN: usize = 16;

    /// The token, checked: see [`Self::check`].
    ///
    /// # Errors
    /// The reason (never the token) when the check fails.
    pub fn parse(value: &str) -> Result<Self, String> {
        let token = Self(value.to_owned());
        token.check()?;
        Ok(token)
    }

    /// The token as given; [`Settings::validate`] checks it. (clap's own
    /// message would echo the value.)
    ///
    /// # Errors
    /// Never.
    pub fn unchecked(value: &str) -> Result<Self, std::convert::Infallible> {
        Ok(Self(value.to_owned()))
    }

    /// Checks the token: at least [`Self::MIN_LEN`] visible ASCII
    /// characters.
    ///
    /// # Errors
    /// The reason, never containing the token.
    pub fn check(&self) -> Result<(), String> {
        if self.0.is_empty() {
            return Err("is set but empty: unset it for an open API on loopback".to_owned());
        }
        if !self.0.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "must consist of visible ASCII characters (no spaces or control characters)"
                    .to_owned(),
            );
        }
        if self.0.len() < Self::MIN_LEN {
            return Err(format!(
                "is too short: use at least {} characters",
                Self::MIN_LEN
            ));
        }
        Ok(())
    }

    /// The token itself, to compare against.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

impl fmt::Display for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `BILLING_LOG`: a `tracing-subscriber` `EnvFilter` directive, checked when
/// parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFilter(String);

impl LogFilter {
    /// Checks the directives.
    ///
    /// # Errors
    /// The filter parser's message when a directive is malformed.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err("is empty: use a level such as info".to_owned());
        }
        tracing_subscriber::EnvFilter::builder()
            .parse(value)
            .map_err(|e| format!("is not a log filter: {e}"))?;
        Ok(Self(value.to_owned()))
    }

    /// The directives as given.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `BILLING_LOG_FORMAT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines, for a terminal.
    Human,
    /// One JSON object per line, for a log collector.
    Json,
}

/// A duration: `humantime` syntax (`5s`, `1m 30s`, `500ms`, `24h`) or a
/// plain number of seconds.
///
/// # Errors
/// A message for clap when neither form parses.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(value)
        .map_err(|e| format!("is not a duration ({e}); write e.g. 5s, 500ms, 2m or 24h"))
}

/// A size in bytes: a number with an optional unit `B`, `KB`/`KiB`,
/// `MB`/`MiB` (`K` and `M` alone count as KiB and MiB; all units are
/// binary, 1 KB = 1024 bytes, and case-insensitive).
///
/// # Errors
/// A message for clap for anything else or an overflow.
pub fn parse_byte_size(value: &str) -> Result<usize, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| "is not a size; write e.g. 65536, 64KiB or 1MiB".to_owned())?;
    let multiplier: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        other => {
            return Err(format!("has an unknown unit {other:?}; use B, KiB or MiB"));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| "is too large".to_owned())
}

fn parse_bind(value: &str) -> Result<SocketAddr, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "is not an address:port such as 127.0.0.1:8080 or [::1]:8080".to_owned())
}

fn parse_positive_usize(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err("is not a whole number".to_owned()),
    }
}

fn parse_non_empty(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(value.to_owned())
    }
}

/// `scheme://user:***@host/…`: a URL with its password hidden, for logs and
/// messages.
#[must_use]
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(redact_one_url)
        .collect::<Vec<_>>()
        .join(",")
}

fn redact_one_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_both_forms() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("five").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_byte_size("65536"), Ok(65_536));
        assert_eq!(parse_byte_size("64KiB"), Ok(65_536));
        assert_eq!(parse_byte_size("64 kb"), Ok(65_536));
        assert_eq!(parse_byte_size("1MiB"), Ok(1_048_576));
        assert_eq!(parse_byte_size("2M"), Ok(2_097_152));
        assert!(parse_byte_size("1GiB").is_err());
        assert!(parse_byte_size("KiB").is_err());
        assert!(parse_byte_size("99999999999999999999999M").is_err());
    }

    #[test]
    fn urls_are_checked_and_redacted() {
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
        assert!(DatabaseUrl::parse("").is_err());
        let url = DatabaseUrl::parse("postgres://billing:s3cret@db:5432/billing").unwrap();
        assert_eq!(url.backend(), Some(Backend::Postgres));
        assert!(!format!("{url:?} {url}").contains("s3cret"));
        let error = DatabaseUrl::parse("mysql://u:s3cret@h/db").unwrap_err();
        assert!(!error.contains("s3cret"), "{error}");
        assert!(RedisUrl::parse("redis://:pw@127.0.0.1:6379").is_ok());
        assert!(RedisUrl::parse("http://127.0.0.1").is_err());
        assert!(RedisUrl::parse(" ").is_err());
        let nodes = RedisUrl::parse("rediss://:pw1@a:7000,rediss://:pw2@b:7001").unwrap();
        assert!(nodes.is_tls());
        assert_eq!(
            nodes.to_string(),
            "rediss://:***@a:7000,rediss://:***@b:7001"
        );
        assert!(RedisUrl::parse("redis://a:7000,http://b:7001").is_err());
    }

    #[test]
    fn redis_cluster_and_ca_file_must_match_redis_url() {
        let with = |url: Option<&str>, cluster: bool, ca_file: Option<&str>| Settings {
            redis_url: url.map(|url| RedisUrl::parse(url).unwrap()),
            redis_cluster: cluster,
            redis_ca_file: ca_file.map(PathBuf::from),
            ..Settings::default()
        };
        let refused = |settings: Settings, expected: &str| {
            let error = settings.validate().unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        };
        let nodes = "redis://a:7000,redis://b:7001";
        refused(with(Some(nodes), false, None), "BILLING_REDIS_CLUSTER=true");
        assert!(with(Some(nodes), true, None).validate().is_ok());
        assert!(with(Some("redis://a:7000"), true, None).validate().is_ok());
        refused(with(None, true, None), "needs REDIS_URL");
        refused(with(None, false, Some("/etc/hosts")), "REDIS_URL is not");
        refused(
            with(Some("redis://a:6379"), false, Some("/etc/hosts")),
            "is not rediss://",
        );
        refused(
            with(Some("rediss://a:6379"), false, Some("/nonexistent/ca.pem")),
            "cannot be read",
        );
        let settings = with(Some("rediss://a:6379"), true, Some("/etc/hosts"));
        assert!(settings.validate().is_ok());
        let redis = settings.redis_settings().unwrap();
        assert!(redis.cluster);
        assert_eq!(redis.ca_file, Some(PathBuf::from("/etc/hosts")));
    }

    #[test]
    fn tokens_are_checked_and_hidden() {
        assert!(ApiToken::parse("").is_err());
        assert!(ApiToken::parse("short").is_err());
        assert!(ApiToken::parse("has a space in the middle").is_err());
        let token = ApiToken::parse("0123456789abcdef").unwrap();
        assert!(!format!("{token:?} {token}").contains("0123"));
        let settings = Settings {
            api_token: Some(token),
            ..Settings::default()
        };
        assert!(!format!("{settings:?}").contains("0123"));
    }

    #[test]
    fn defaults_match_the_command_line_defaults() {
        // Every flag given explicitly would defeat the point: parse with no
        // flags, but only the settings no environment variable of the test
        // process can influence are compared (the integration tests run
        // the binary with a clean environment).
        let parsed = Settings::try_parse_from(["billing-api"]).unwrap();
        let defaults = Settings::default();
        if std::env::vars()
            .all(|(k, _)| !k.starts_with("BILLING_") && k != "DATABASE_URL" && k != "REDIS_URL")
        {
            assert_eq!(parsed, defaults);
        }
    }

    #[test]
    fn validation_names_the_variable() {
        assert_eq!(Settings::default().validate(), Ok(()));
        let open_on_all_interfaces = Settings {
            bind: "0.0.0.0:8080".parse().unwrap(),
            ..Settings::default()
        };
        let error = open_on_all_interfaces.validate().unwrap_err().to_string();
        assert!(error.contains("BILLING_API_TOKEN"), "{error}");
        let with_token = Settings {
            api_token: Some(ApiToken::parse("0123456789abcdef").unwrap()),
            ..open_on_all_interfaces
        };
        assert_eq!(with_token.validate(), Ok(()));
        let pools = Settings {
            db_min_connections: Some(10),
            db_max_connections: Some(5),
            ..Settings::default()
        };
        assert!(
            pools
                .validate()
                .unwrap_err()
                .to_string()
                .contains("BILLING_DB_MIN_CONNECTIONS")
        );
        let ttl = Settings {
            idempotency_ttl: Duration::from_secs(30),
            ..Settings::default()
        };
        assert!(
            ttl.validate()
                .unwrap_err()
                .to_string()
                .contains("IN_FLIGHT")
        );
        let mysql = Settings {
            database_url: DatabaseUrl::unchecked("mysql://u:s3cret@h/db").unwrap(),
            ..Settings::default()
        };
        let error = mysql.validate().unwrap_err().to_string();
        assert!(
            error.contains("DATABASE_URL") && !error.contains("s3cret"),
            "{error}"
        );
        let short = Settings {
            api_token: Some(ApiToken::unchecked("abc").unwrap()),
            ..Settings::default()
        };
        let error = short.validate().unwrap_err().to_string();
        assert!(
            error.contains("BILLING_API_TOKEN") && !error.contains("abc"),
            "{error}"
        );
    }

    #[test]
    fn pool_defaults_follow_the_backend() {
        let sqlite = Settings::default().database_settings();
        assert_eq!((sqlite.min_connections, sqlite.max_connections), (1, 8));
        let postgres = Settings {
            database_url: DatabaseUrl::parse("postgres://u@h/db").unwrap(),
            ..Settings::default()
        };
        let pg = postgres.database_settings();
        assert_eq!((pg.min_connections, pg.max_connections), (2, 60));
    }
}
