//! Parsers of single setting values (durations, sizes, addresses, counts)
//! and the log settings' value types; clap reports a value that does not
//! parse, naming its flag and variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::ValueEnum;

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

/// A duration (as [`parse_duration`]) to add to a date, such as a payment
/// window.
///
/// # Errors
/// A message for clap when it does not parse or is too long for a date.
pub fn parse_date_offset(value: &str) -> Result<chrono::TimeDelta, String> {
    chrono::TimeDelta::from_std(parse_duration(value)?)
        .map_err(|_| "is too long to add to a date".to_owned())
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

pub(super) fn parse_bind(value: &str) -> Result<SocketAddr, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "is not an address:port such as 127.0.0.1:8080 or [::1]:8080".to_owned())
}

pub(super) fn parse_positive_usize(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err("is not a whole number".to_owned()),
    }
}

pub(super) fn parse_positive_u32(value: &str) -> Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err("is not a whole number".to_owned()),
    }
}

pub(super) fn parse_non_empty(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(value.to_owned())
    }
}

/// A probe path: absolute, printable ASCII without spaces.
pub(super) fn parse_probe_path(value: &str) -> Result<String, String> {
    if value.starts_with('/') && value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(value.to_owned())
    } else {
        Err("must be an absolute path such as /health/ready".to_owned())
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
}
