//! Connection strings made fit for logs and error messages.
//!
//! A database or Redis URL may carry credentials in two places: the
//! userinfo (`scheme://user:password@host`) and the query
//! (`?password=…`, `?sslpassword=…`, `?token=…`). [`redact_url`] hides
//! both, keeps everything an operator needs to tell which server is meant
//! (scheme, user, host, port, path, the other parameters), and accepts the
//! comma-separated node lists of Redis Cluster. Every crate of the
//! workspace that prints a URL prints it through this one function.

use std::borrow::Cow;

/// What replaces a hidden value.
pub const HIDDEN: &str = "***";

/// The URL (or comma-separated URLs) with every password and token replaced
/// by [`HIDDEN`], for logs and messages.
///
/// A query parameter is hidden when its name, in any case, contains
/// `pass`, `secret` or `token`. A string that is not a URL with an
/// authority (`sqlite::memory:`, a file path) comes back unchanged; one
/// that looks like a URL but does not parse loses everything after its
/// scheme rather than risk showing a secret.
#[must_use]
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(redact_one_url)
        .collect::<Vec<_>>()
        .join(",")
}

fn redact_one_url(text: &str) -> Cow<'_, str> {
    let trimmed = text.trim();
    let Some((scheme, _)) = trimmed.split_once("://") else {
        return Cow::Borrowed(text);
    };
    let Ok(mut parsed) = url::Url::parse(trimmed) else {
        return Cow::Owned(format!("{scheme}://{HIDDEN}"));
    };
    let mut changed = false;
    if parsed.password().is_some() && parsed.set_password(Some(HIDDEN)).is_ok() {
        changed = true;
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    if pairs.iter().any(|(name, _)| is_secret_parameter(name)) {
        changed = true;
        let mut query = parsed.query_pairs_mut();
        query.clear();
        for (name, value) in &pairs {
            let shown = if is_secret_parameter(name) {
                HIDDEN
            } else {
                value
            };
            query.append_pair(name, shown);
        }
    }
    if changed {
        // `query_pairs_mut` and `set_password` percent-encode `***`.
        Cow::Owned(parsed.as_str().replace("%2A%2A%2A", HIDDEN))
    } else {
        Cow::Borrowed(text)
    }
}

fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "secret", "token"]
        .iter()
        .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_the_password_of_the_userinfo() {
        assert_eq!(
            redact_url("postgres://billing:s3cret@db:5432/billing"),
            "postgres://billing:***@db:5432/billing"
        );
        assert_eq!(redact_url("redis://:secret@host"), "redis://:***@host");
        assert_eq!(
            redact_url("postgres://u:p%40ss@h/db?sslmode=require"),
            "postgres://u:***@h/db?sslmode=require"
        );
    }

    #[test]
    fn hides_secret_query_parameters() {
        let shown = redact_url(
            "postgres://billing@db/billing?sslmode=require&password=s3cret&sslpassword=k3y",
        );
        assert_eq!(
            shown,
            "postgres://billing@db/billing?sslmode=require&password=***&sslpassword=***"
        );
        let shown = redact_url("rediss://h:6380/0?PASSWORD=a&Token=b&db=1");
        assert!(!shown.contains("=a") && !shown.contains("=b"), "{shown}");
        assert!(shown.contains("db=1"), "{shown}");
    }

    #[test]
    fn leaves_urls_without_secrets_as_they_are() {
        for url in [
            "postgres://u@h/db",
            "sqlite::memory:",
            "sqlite://billing.db?mode=rwc",
            "redis://host:6379",
            "/var/lib/billing.db",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn redacts_every_node_of_a_cluster_list() {
        assert_eq!(
            redact_url("rediss://:a@h1:7000,rediss://:b@h2:7001"),
            "rediss://:***@h1:7000,rediss://:***@h2:7001"
        );
    }

    #[test]
    fn an_unparsable_url_shows_no_credentials() {
        let shown = redact_url("postgres://u:s3cret@[::1");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.starts_with("postgres://"), "{shown}");
    }
}
