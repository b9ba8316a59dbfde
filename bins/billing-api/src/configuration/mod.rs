//! [`Settings`]: every setting of the binary, grouped by component (HTTP,
//! database, Redis, idempotency, billing rules, log, billing cycle, webhook
//! delivery), read
//! from command-line flags and environment variables (clap, `--help` lists
//! each with its variable), and checked before anything starts.
//!
//! Single values are checked while parsing (a duration or a size that does
//! not parse: clap reports them). The URLs and the token, whose values must
//! not be echoed, and settings that only make sense together are checked by
//! [`Settings::validate`]: each group checks its own, handing the ranges to
//! the `validate` of the crate whose settings it fills, and the first
//! problem is reported in one line naming the variable to fix, never a
//! password or the token.
//!
//! Values that are set but empty (`REDIS_URL=`) are refused rather than
//! taken as "unset": with money at stake an instance must not fall back to
//! the embedded coordination backend because a template left a variable
//! blank.

mod http;
mod rules;
mod secret;
mod storage;
mod values;

use std::time::Duration;

use billing_repository::DatabaseSettings;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};

pub use billing_secrets::redact_url;
pub use http::{HttpArgs, LogArgs};
pub use rules::{BillingRulesArgs, IdempotencyArgs};
pub use secret::{
    ApiToken, ApiTokenKind, DatabaseUrl, DatabaseUrlKind, RedisUrl, RedisUrlKind, Secret,
    SecretKind,
};
pub use storage::{DatabaseArgs, RedisArgs};
pub use values::{LogFilter, LogFormat, parse_byte_size, parse_date_offset, parse_duration};

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

/// Every setting of `billing-api`.
///
/// Parse with [`Settings::from_command_line`] (flags, then environment
/// variables, then defaults), then call [`Settings::validate`]. Tests build
/// one with [`Settings::default`] (the documented defaults, no environment)
/// and change fields.
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
    /// The HTTP server (`BILLING_BIND`, `BILLING_API_TOKEN`, limits).
    #[command(flatten, next_help_heading = "HTTP")]
    pub http: HttpArgs,

    /// The database (`DATABASE_URL`, `BILLING_DB_*`).
    #[command(flatten, next_help_heading = "Database")]
    pub database: DatabaseArgs,

    /// Redis (`REDIS_URL`, `BILLING_REDIS_*`).
    #[command(flatten, next_help_heading = "Redis")]
    pub redis: RedisArgs,

    /// Idempotency keys (`BILLING_IDEMPOTENCY_*`).
    #[command(flatten, next_help_heading = "Idempotency keys")]
    pub idempotency: IdempotencyArgs,

    /// The billing rules (payment window, locks, retries, hashing queue,
    /// catalogue cache).
    #[command(flatten, next_help_heading = "Billing rules")]
    pub rules: BillingRulesArgs,

    /// The log (`BILLING_LOG`, `BILLING_LOG_FORMAT`).
    #[command(flatten, next_help_heading = "Log")]
    pub log: LogArgs,

    /// The billing cycle (`BILLING_CYCLE_*`).
    #[command(flatten, next_help_heading = "Billing cycle")]
    pub cycle: crate::cycle::CycleArgs,

    /// Webhook delivery (`BILLING_WEBHOOK_*`).
    #[command(flatten, next_help_heading = "Webhook delivery")]
    pub webhooks: crate::webhook_delivery::WebhookArgs,

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
    #[arg(long, value_name = "PATH", default_value = "/health/ready", value_parser = values::parse_probe_path)]
    pub path: String,
    /// How long to wait for the whole answer.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl Default for Settings {
    /// The documented defaults: the command line's own, parsed from no
    /// flags with every environment variable ignored, so there is one
    /// source for each default.
    fn default() -> Self {
        let command = Self::command().mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from(["billing-api"])
            .unwrap_or_else(|error| panic!("the defaults of the command line parse: {error}"));
        Self::from_arg_matches(&matches)
            .unwrap_or_else(|error| panic!("the defaults of the command line parse: {error}"))
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

/// A crate's settings error as the operator sees it: each field name the
/// table knows, in `setting` and in `reason`, replaced by its variable.
fn naming_variable(variables: &[(&str, &str)], setting: &str, reason: &str) -> ConfigError {
    let variable_of = |word: &str| {
        variables
            .iter()
            .find(|(field, _)| *field == word)
            .map_or(word, |(_, variable)| *variable)
            .to_owned()
    };
    let mut shown = String::with_capacity(reason.len());
    let mut word = String::new();
    for c in reason.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            shown.push_str(&variable_of(&word));
            word.clear();
            shown.push(c);
        }
    }
    shown.push_str(&variable_of(&word));
    ConfigError::new(format!("{} {shown}", variable_of(setting)))
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
            settings.log.filter = LogFilter::parse(&rust_log).map_err(|reason| {
                Self::command().error(
                    clap::error::ErrorKind::InvalidValue,
                    format!("RUST_LOG (used as BILLING_LOG is not set) {reason}"),
                )
            })?;
        }
        Ok(settings)
    }

    /// Checks the settings that only make sense together, group by group.
    /// Parsing has already checked each value on its own.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first problem: a database or Redis URL
    /// with another scheme or empty, a token too short or with spaces, a
    /// non-loopback `BILLING_BIND` without `BILLING_API_TOKEN`, more
    /// minimum than maximum database connections, a zero size or duration,
    /// a TTL over a year or an in-flight TTL longer than the idempotency
    /// TTL, a cycle setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate()?;
        self.redis.validate(&self.idempotency)?;
        self.http.validate()?;
        self.rules.validate(&self.idempotency)?;
        self.cycle.validate()?;
        self.webhooks.validate()
    }

    /// The settings for `billing_repository::connect`.
    #[must_use]
    pub fn database_settings(&self) -> DatabaseSettings {
        self.database.settings()
    }

    /// The settings for `Coordination::redis`, if `REDIS_URL` is set.
    #[must_use]
    pub fn redis_settings(&self) -> Option<billing_concurrency::RedisSettings> {
        self.redis.settings(&self.idempotency)
    }

    /// The settings of the use cases.
    #[must_use]
    pub fn billing_settings(&self) -> billing_service::BillingSettings {
        self.rules.settings(&self.idempotency)
    }

    /// The settings for `Coordination::embedded_with`.
    #[must_use]
    pub fn embedded_coordination_settings(&self) -> billing_concurrency::EmbeddedSettings {
        self.idempotency.embedded_coordination_settings()
    }
}

#[cfg(test)]
mod tests;
