//! The crate's error type, [`CoordinationError`], and its `Result` alias.

use std::time::Duration;

/// Any error that can be the cause of a [`CoordinationError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A `Result` whose error is a [`CoordinationError`].
pub type Result<T, E = CoordinationError> = std::result::Result<T, E>;

/// Why a coordination operation failed.
///
/// Every variant is named by what it means for the caller; the Redis or
/// pool error behind it, if any, is only reachable as the
/// [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
pub enum CoordinationError {
    /// Redis could not be reached or did not answer in time: the server is
    /// down, the connection was refused or dropped, or the command budget
    /// (`connect_timeout + command_timeout`) ran out, after bounded retries.
    ///
    /// The operation may or may not have taken effect; every operation of
    /// this crate can safely be called again.
    #[error("Redis is unavailable: {operation} failed after {attempts} attempt(s) in {elapsed:?}")]
    Unavailable {
        /// The operation that failed, e.g. `"lock acquire"`.
        operation: &'static str,
        /// How many attempts were made.
        attempts: u32,
        /// How long the operation ran before giving up.
        elapsed: Duration,
        /// The last connection, I/O or timeout error.
        #[source]
        source: BoxError,
    },

    /// Redis answered with an error that retrying will not fix (a script
    /// error, a wrong key type, missing permissions, a failed
    /// authentication, an unexpected reply).
    #[error("Redis rejected {operation}")]
    Rejected {
        /// The operation that failed.
        operation: &'static str,
        /// The error Redis or the client reported.
        #[source]
        source: BoxError,
    },

    /// The lock is held by someone else and was not released before the
    /// wait deadline passed.
    #[error("lock {name:?} was not acquired within {waited:?}: it is held elsewhere")]
    LockNotAcquired {
        /// The lock's name.
        name: String,
        /// How long the caller waited.
        waited: Duration,
    },

    /// The settings cannot work: a malformed URL, a zero pool size, an
    /// empty key prefix, a zero timeout.
    #[error("invalid coordination settings: {setting} {reason}")]
    InvalidSettings {
        /// The settings field at fault (`url`, `pool_size`, `ca_file`, …),
        /// for a caller to name the variable or flag it came from.
        setting: &'static str,
        /// What is wrong.
        reason: String,
        /// The parser's error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// An argument is out of range: a TTL under a millisecond or over a
    /// year, an empty or over-long idempotency key.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },

    /// A stored idempotency record could not be read. This means
    /// something other than this version of this crate wrote the record.
    #[error(
        "stored outcome for idempotency key {key:?} in scope {scope:?} is unreadable: {reason}"
    )]
    CorruptRecord {
        /// The scope of the key.
        scope: String,
        /// The idempotency key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl CoordinationError {
    /// Whether this error means the backend could not be reached (as
    /// opposed to a refusal or a bad argument), e.g. for a health endpoint.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::Rejected { .. }
            | Self::LockNotAcquired { .. }
            | Self::InvalidSettings { .. }
            | Self::InvalidArgument { .. }
            | Self::CorruptRecord { .. } => false,
        }
    }
}

/// Converts a TTL to whole milliseconds (rounding up), rejecting zero and
/// anything over a year.
pub(crate) fn ttl_millis(what: &str, ttl: Duration) -> Result<u64> {
    const MAX: Duration = Duration::from_secs(365 * 24 * 60 * 60);
    if ttl.is_zero() || ttl > MAX {
        return Err(CoordinationError::InvalidArgument {
            reason: format!("{what} must be between 1 ms and 365 days, got {ttl:?}"),
        });
    }
    let millis = ttl.as_millis() + u128::from(!ttl.subsec_nanos().is_multiple_of(1_000_000));
    Ok(u64::try_from(millis).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_and_rejects_out_of_range() {
        assert_eq!(ttl_millis("ttl", Duration::from_micros(1)).ok(), Some(1));
        assert_eq!(
            ttl_millis("ttl", Duration::from_millis(150)).ok(),
            Some(150)
        );
        assert_eq!(
            ttl_millis("ttl", Duration::from_micros(150_500)).ok(),
            Some(151)
        );
        assert!(ttl_millis("ttl", Duration::ZERO).is_err());
        assert!(ttl_millis("ttl", Duration::from_secs(400 * 24 * 3600)).is_err());
    }
}
