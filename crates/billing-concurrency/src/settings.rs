//! Settings of the two backends: [`RedisSettings`] and [`EmbeddedSettings`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{CoordinationError, Result, ttl_millis};

/// How long an idempotent outcome is kept by default: 24 hours.
pub const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long an in-flight idempotency marker blocks its key by default, so a
/// request that crashed does not block its key for a day.
pub const DEFAULT_IN_FLIGHT_TTL: Duration = Duration::from_secs(60);
/// How long [`lock`](crate::Coordination::lock) and
/// [`with_lock`](crate::Coordination::with_lock) wait for a held lock by
/// default.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Settings of the Redis backend.
///
/// Build with [`RedisSettings::new`] (or `Default`, which points at
/// `redis://127.0.0.1:6379`) and adjust fields.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redis://[user:password@]host[:port][/db]`, `rediss://…` for TLS, or
    /// `unix://`. With [`cluster`](Self::cluster), one or more nodes of the
    /// cluster, comma-separated (`redis://a:6379,redis://b:6379`): the
    /// client learns the others from them.
    pub url: String,
    /// The URL names Redis Cluster nodes: keys are spread over the
    /// cluster's masters and the client follows `MOVED`/`ASK` redirections.
    /// Default `false`.
    pub cluster: bool,
    /// A PEM file of the certificate authorities to trust for `rediss://`
    /// instead of the system's roots (a managed Redis with a private CA).
    /// Read once, when the client is built. Default `None`: the system's
    /// roots.
    pub ca_file: Option<PathBuf>,
    /// Number of connections. Each is multiplexed: all tasks share them and
    /// their commands are pipelined, so a few connections serve hundreds of
    /// concurrent tasks; fewer connections pipeline more (fewer system
    /// calls per command). Default 2.
    pub pool_size: usize,
    /// Bound on opening one connection (TCP connect and handshake).
    /// Default 1 s.
    pub connect_timeout: Duration,
    /// Bound on waiting for one reply. Default 1 s. An operation, retries
    /// included, gives up after `connect_timeout + command_timeout`.
    pub command_timeout: Duration,
    /// Namespace of every key this crate writes, e.g. `billing` or
    /// `billing-staging`; keys look like `{key_prefix}:lock:{{name}}`. Must
    /// not be empty nor contain `{` or `}` (they would change the keys'
    /// Redis Cluster hash slots). Default `billing`.
    pub key_prefix: String,
    /// How long a completed idempotent outcome is kept. Default 24 h.
    pub idempotency_ttl: Duration,
    /// How long an in-flight marker lives if its request never completes
    /// nor abandons it. Default 60 s.
    pub in_flight_ttl: Duration,
    /// How long [`lock`](crate::Coordination::lock) and
    /// [`with_lock`](crate::Coordination::with_lock) wait. Default 10 s.
    pub lock_wait: Duration,
}

impl RedisSettings {
    /// Default settings for the Redis server at `url`.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            cluster: false,
            ca_file: None,
            pool_size: 2,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(1),
            key_prefix: "billing".to_owned(),
            idempotency_ttl: DEFAULT_IDEMPOTENCY_TTL,
            in_flight_ttl: DEFAULT_IN_FLIGHT_TTL,
            lock_wait: DEFAULT_LOCK_WAIT,
        }
    }

    /// Replaces the key prefix.
    #[must_use]
    pub fn with_key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.key_prefix = key_prefix.into();
        self
    }

    /// Checks everything but the URL's syntax, which the client parses
    /// when it is built.
    ///
    /// # Errors
    /// [`CoordinationError::InvalidSettings`] naming the field at fault: no
    /// connection (`pool_size` 0), a zero timeout, an empty key prefix or
    /// one with `{` or `}`, several URLs without `cluster`, or a TTL outside
    /// 1 ms – 365 days.
    pub fn validate(&self) -> Result<()> {
        let invalid = |setting: &'static str, reason: String| {
            Err(CoordinationError::InvalidSettings {
                setting,
                reason,
                source: None,
            })
        };
        if self.pool_size == 0 {
            return invalid("pool_size", "must be at least 1".to_owned());
        }
        for (setting, value) in [
            ("connect_timeout", self.connect_timeout),
            ("command_timeout", self.command_timeout),
        ] {
            if value.is_zero() {
                return invalid(setting, "must be longer than zero".to_owned());
            }
        }
        if self.key_prefix.is_empty() {
            return invalid("key_prefix", "must not be empty".to_owned());
        }
        if self.key_prefix.contains(['{', '}']) {
            return invalid(
                "key_prefix",
                format!(
                    "({:?}) must not contain '{{' or '}}': Redis Cluster would read them \
                     as a hash tag and split a lock's keys over two slots",
                    self.key_prefix
                ),
            );
        }
        if self.url.contains(',') && !self.cluster {
            return invalid(
                "cluster",
                format!(
                    "is off but the URL ({}) lists several servers: that is a Redis Cluster",
                    redact_url(&self.url)
                ),
            );
        }
        validate_ttls(self.idempotency_ttl, self.in_flight_ttl)
    }

    /// The time after which one operation, retries included, gives up.
    pub(crate) fn budget(&self) -> Duration {
        self.connect_timeout.saturating_add(self.command_timeout)
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self::new("redis://127.0.0.1:6379")
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &redact_url(&self.url))
            .field("cluster", &self.cluster)
            .field("ca_file", &self.ca_file)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("key_prefix", &self.key_prefix)
            .field("idempotency_ttl", &self.idempotency_ttl)
            .field("in_flight_ttl", &self.in_flight_ttl)
            .field("lock_wait", &self.lock_wait)
            .finish()
    }
}

pub(crate) use billing_secrets::redact_url;

/// Settings of the embedded (in-process) backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddedSettings {
    /// How long a completed idempotent outcome is kept. Default 24 h.
    pub idempotency_ttl: Duration,
    /// How long an in-flight marker lives if its request never completes
    /// nor abandons it. Default 60 s.
    pub in_flight_ttl: Duration,
    /// How long [`lock`](crate::Coordination::lock) and
    /// [`with_lock`](crate::Coordination::with_lock) wait. Default 10 s.
    pub lock_wait: Duration,
}

impl EmbeddedSettings {
    /// Checks the TTLs.
    ///
    /// # Errors
    /// [`CoordinationError::InvalidSettings`] naming the field at fault: a
    /// TTL outside 1 ms – 365 days.
    pub fn validate(&self) -> Result<()> {
        validate_ttls(self.idempotency_ttl, self.in_flight_ttl)
    }
}

impl Default for EmbeddedSettings {
    fn default() -> Self {
        Self {
            idempotency_ttl: DEFAULT_IDEMPOTENCY_TTL,
            in_flight_ttl: DEFAULT_IN_FLIGHT_TTL,
            lock_wait: DEFAULT_LOCK_WAIT,
        }
    }
}

fn validate_ttls(idempotency_ttl: Duration, in_flight_ttl: Duration) -> Result<()> {
    for (setting, ttl) in [
        ("idempotency_ttl", idempotency_ttl),
        ("in_flight_ttl", in_flight_ttl),
    ] {
        if ttl_millis(setting, ttl).is_err() {
            return Err(CoordinationError::InvalidSettings {
                setting,
                reason: format!("must be between 1ms and 365 days, got {ttl:?}"),
                source: None,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_redacted() {
        assert_eq!(
            redact_url("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact_url("redis://:secret@host"), "redis://:***@host");
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(
            redact_url("rediss://:a@h1:7000,rediss://:b@h2:7001"),
            "rediss://:***@h1:7000,rediss://:***@h2:7001"
        );
        let debug = format!("{:?}", RedisSettings::new("redis://a:pw@h"));
        assert!(!debug.contains("pw"), "{debug}");
    }

    #[test]
    fn validation_rejects_unusable_settings() {
        assert!(RedisSettings::default().validate().is_ok());
        let zero_pool = RedisSettings {
            pool_size: 0,
            ..RedisSettings::default()
        };
        assert!(zero_pool.validate().is_err());
        assert!(
            RedisSettings::default()
                .with_key_prefix("")
                .validate()
                .is_err()
        );
        let zero_ttl = RedisSettings {
            in_flight_ttl: Duration::ZERO,
            ..RedisSettings::default()
        };
        assert!(zero_ttl.validate().is_err());
        for prefix in ["billing{a}", "a{", "}"] {
            let braces = RedisSettings::default().with_key_prefix(prefix);
            assert!(braces.validate().is_err(), "{prefix}");
        }
        let nodes = RedisSettings::new("redis://a:7000,redis://b:7001");
        assert!(nodes.validate().is_err());
        let cluster = RedisSettings {
            cluster: true,
            ..nodes
        };
        assert!(cluster.validate().is_ok());
        assert!(EmbeddedSettings::default().validate().is_ok());
    }
}
