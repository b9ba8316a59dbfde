//! [`Secret`]: a setting whose value must never reach a log, an error
//! message or `--help` — the database URL, the Redis URL and the API token
//! are each a `Secret` of their own kind.
//!
//! A secret is taken as given while parsing (clap's own error would echo
//! the value) and checked by [`Settings::validate`](super::Settings::validate)
//! through its kind's rule. `Debug` and `Display` show a URL with its
//! passwords hidden ([`redact_url`]) and a token not at all.

use std::fmt;
use std::marker::PhantomData;

use billing_repository::Backend;
use billing_secrets::redact_url;

/// What distinguishes one kind of secret setting from another.
pub trait SecretKind {
    /// The name `Debug` shows.
    const NAME: &'static str;
    /// The value as stored: URLs lose surrounding spaces, a token is kept
    /// exactly as given.
    fn normalise(value: &str) -> String;
    /// Checks the value.
    ///
    /// # Errors
    /// The reason, never containing a password or the token.
    fn check(value: &str) -> Result<(), String>;
    /// The value as logs and messages may show it.
    fn shown(value: &str) -> String;
}

/// A setting that must not be shown; see the module documentation.
pub struct Secret<K> {
    value: String,
    kind: PhantomData<K>,
}

impl<K: SecretKind> Secret<K> {
    /// The value, checked by its kind's rule.
    ///
    /// # Errors
    /// The reason (never the secret) when the check fails.
    pub fn parse(value: &str) -> Result<Self, String> {
        let secret = Self::unchecked_value(value);
        secret.check()?;
        Ok(secret)
    }

    /// The value as given, for clap: [`Settings::validate`](super::Settings::validate)
    /// checks it later, so that no parse error can echo it.
    ///
    /// # Errors
    /// Never.
    pub fn unchecked(value: &str) -> Result<Self, std::convert::Infallible> {
        Ok(Self::unchecked_value(value))
    }

    fn unchecked_value(value: &str) -> Self {
        Self {
            value: K::normalise(value),
            kind: PhantomData,
        }
    }

    /// Checks the value by its kind's rule.
    ///
    /// # Errors
    /// The reason, never containing the secret.
    pub fn check(&self) -> Result<(), String> {
        K::check(&self.value)
    }

    /// The value itself, to connect or compare with.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl<K> Clone for Secret<K> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> PartialEq for Secret<K> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<K> Eq for Secret<K> {}

impl<K: SecretKind> fmt::Debug for Secret<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({:?})", K::NAME, K::shown(&self.value))
    }
}

impl<K: SecretKind> fmt::Display for Secret<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&K::shown(&self.value))
    }
}

/// `DATABASE_URL`: a `postgres://`, `postgresql://` or `sqlite:` URL.
pub type DatabaseUrl = Secret<DatabaseUrlKind>;
/// `REDIS_URL`: a `redis://`, `rediss://`, `unix://` or `redis+unix://`
/// URL, or several comma-separated (Redis Cluster nodes).
pub type RedisUrl = Secret<RedisUrlKind>;
/// `BILLING_API_TOKEN`: at least [`ApiTokenKind::MIN_LEN`] visible ASCII
/// characters.
pub type ApiToken = Secret<ApiTokenKind>;

/// The kind of [`DatabaseUrl`].
#[derive(Debug)]
pub enum DatabaseUrlKind {}

impl SecretKind for DatabaseUrlKind {
    const NAME: &'static str = "DatabaseUrl";

    fn normalise(value: &str) -> String {
        value.trim().to_owned()
    }

    /// The scheme only: the repository parses the rest when connecting.
    fn check(value: &str) -> Result<(), String> {
        if value.is_empty() {
            return Err("is set but empty: unset it for the embedded SQLite default".to_owned());
        }
        match Backend::from_url(value) {
            Some(Backend::Postgres | Backend::Sqlite) => Ok(()),
            None => Err(format!(
                "({}) must start with postgres://, postgresql:// or sqlite:",
                redact_url(value)
            )),
        }
    }

    fn shown(value: &str) -> String {
        redact_url(value)
    }
}

impl DatabaseUrl {
    /// The database server this URL names, if it is one of ours.
    #[must_use]
    pub fn backend(&self) -> Option<Backend> {
        Backend::from_url(self.expose())
    }
}

/// The kind of [`RedisUrl`].
#[derive(Debug)]
pub enum RedisUrlKind {}

impl SecretKind for RedisUrlKind {
    const NAME: &'static str = "RedisUrl";

    fn normalise(value: &str) -> String {
        value.trim().to_owned()
    }

    /// The scheme of each URL: the Redis client parses the rest.
    fn check(value: &str) -> Result<(), String> {
        if value.is_empty() {
            return Err(
                "is set but empty: unset it for in-process coordination (one instance only)"
                    .to_owned(),
            );
        }
        for node in value.split(',') {
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

    fn shown(value: &str) -> String {
        redact_url(value)
    }
}

impl RedisUrl {
    /// Whether the URL (or any of the URLs) connects over TLS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.expose()
            .split(',')
            .any(|node| node.trim().starts_with("rediss://"))
    }
}

/// The kind of [`ApiToken`].
#[derive(Debug)]
pub enum ApiTokenKind {}

impl ApiTokenKind {
    /// The shortest token accepted, in bytes: long enough not to be guessed.
    pub const MIN_LEN: usize = 16;
}

impl SecretKind for ApiTokenKind {
    const NAME: &'static str = "ApiToken";

    fn normalise(value: &str) -> String {
        value.to_owned()
    }

    fn check(value: &str) -> Result<(), String> {
        if value.is_empty() {
            return Err("is set but empty: unset it for an open API on loopback".to_owned());
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "must consist of visible ASCII characters (no spaces or control characters)"
                    .to_owned(),
            );
        }
        if value.len() < Self::MIN_LEN {
            return Err(format!(
                "is too short: use at least {} characters",
                Self::MIN_LEN
            ));
        }
        Ok(())
    }

    fn shown(_value: &str) -> String {
        "***".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_redacted() {
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
        assert!(DatabaseUrl::parse("").is_err());
        let url = DatabaseUrl::parse("postgres://billing:s3cret@db:5432/billing").unwrap();
        assert_eq!(url.backend(), Some(Backend::Postgres));
        assert!(!format!("{url:?} {url}").contains("s3cret"));
        let error = DatabaseUrl::parse("mysql://u:s3cret@h/db").unwrap_err();
        assert!(!error.contains("s3cret"), "{error}");
        let query = DatabaseUrl::parse("postgres://u@h/db?password=s3cret").unwrap();
        assert!(!format!("{query:?} {query}").contains("s3cret"));
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
    fn tokens_are_checked_and_hidden() {
        assert!(ApiToken::parse("").is_err());
        assert!(ApiToken::parse("short").is_err());
        assert!(ApiToken::parse("has a space in the middle").is_err());
        let token = ApiToken::parse("0123456789abcdef").unwrap();
        assert!(!format!("{token:?} {token}").contains("0123"));
        assert_eq!(format!("{token:?}"), "ApiToken(\"***\")");
    }
}
