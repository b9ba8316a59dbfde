//! The HTTP server's settings ([`HttpArgs`]: address, token, limits,
//! timeouts, workers) and the log's ([`LogArgs`]).

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use clap::Args;

use super::secret::ApiToken;
use super::values::{LogFilter, LogFormat, parse_bind, parse_byte_size, parse_duration};
use super::{ConfigError, DEFAULT_BIND};

/// How the API is served.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct HttpArgs {
    /// Address and port to listen on. Any address other than loopback
    /// requires BILLING_API_TOKEN.
    #[arg(
        id = "bind",
        long = "bind",
        env = "BILLING_BIND",
        value_name = "ADDR:PORT",
        default_value = DEFAULT_BIND,
        value_parser = parse_bind
    )]
    pub bind: SocketAddr,

    /// Bearer token every `/api/v1` request must present. Unset: the API is
    /// open (allowed on loopback only, with a warning).
    #[arg(
        id = "api_token",
        long = "api-token",
        env = "BILLING_API_TOKEN",
        value_name = "TOKEN",
        value_parser = ApiToken::unchecked,
        hide_env_values = true
    )]
    pub api_token: Option<ApiToken>,

    /// Largest request body accepted (`64KiB`, `1MiB`, or bytes); larger
    /// ones get 413.
    #[arg(
        id = "body_limit",
        long = "body-limit",
        env = "BILLING_BODY_LIMIT",
        value_name = "SIZE",
        default_value = "64KiB",
        value_parser = parse_byte_size
    )]
    pub body_limit: usize,

    /// On SIGTERM, how long requests in flight may take to finish before
    /// the server stops anyway (whole seconds, rounded up).
    #[arg(
        id = "shutdown_timeout",
        long = "shutdown-timeout",
        env = "BILLING_SHUTDOWN_TIMEOUT",
        value_name = "DURATION",
        default_value = "30s",
        value_parser = parse_duration
    )]
    pub shutdown_timeout: Duration,

    /// How long `/health/ready` waits for the database and Redis before
    /// reporting them down.
    #[arg(
        id = "health_timeout",
        long = "health-timeout",
        env = "BILLING_HEALTH_TIMEOUT",
        value_name = "DURATION",
        default_value = "1s",
        value_parser = parse_duration
    )]
    pub health_timeout: Duration,

    /// HTTP worker threads [default: the number of CPUs].
    #[arg(
        id = "workers",
        long = "workers",
        env = "BILLING_WORKERS",
        value_name = "N"
    )]
    pub workers: Option<NonZeroUsize>,
}

impl HttpArgs {
    /// Checks the token, that a non-loopback address has one, and the
    /// limits.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable to fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
        if self.health_timeout.is_zero() {
            return Err(ConfigError::new(
                "BILLING_HEALTH_TIMEOUT must be longer than zero",
            ));
        }
        if self.body_limit == 0 {
            return Err(ConfigError::new(
                "BILLING_BODY_LIMIT must be at least 1 byte",
            ));
        }
        Ok(())
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

/// What is logged, and how.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct LogArgs {
    /// Log filter: a level (`info`, `debug`) or per-target directives
    /// (`info,billing_api=debug,sqlx=warn`). Unset: `RUST_LOG` if it is
    /// set, else `info`.
    #[arg(
        id = "log",
        long = "log",
        env = "BILLING_LOG",
        value_name = "FILTER",
        default_value = "info",
        value_parser = LogFilter::parse
    )]
    pub filter: LogFilter,

    /// Log format: `human` (readable lines) or `json` (one object per line).
    #[arg(
        id = "log_format",
        long = "log-format",
        env = "BILLING_LOG_FORMAT",
        value_name = "FORMAT",
        value_enum,
        default_value_t = LogFormat::Human
    )]
    pub format: LogFormat,
}
