//! Idempotency keys: [`Idempotency::begin`] claims a key atomically,
//! [`Idempotency::complete`] stores the outcome to replay
//! ([`StoredOutcome`]: opaque bytes, which the embedder encodes and
//! decodes), [`Idempotency::abandon`] frees the key for a retry; plus the
//! request [`fingerprint`].

use std::fmt;

use sha2::{Digest, Sha256};

use crate::backend::{Backend, Token};
use crate::error::{CoordinationError, Result};

/// Longest idempotency key and scope this store accepts, in bytes. Any
/// bytes otherwise: which keys a request may carry is the embedder's rule.
pub const MAX_KEY_LEN: usize = 255;

/// The outcome of a request, stored under an idempotency key and replayed
/// byte for byte: any bytes, in whatever encoding the embedder chose (an
/// HTTP front end may store a response, a job runner its result). This
/// crate never looks inside.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoredOutcome(pub Vec<u8>);

/// What [`Idempotency::begin`] found for a key.
#[derive(Debug)]
#[must_use = "only `Started` may run the request"]
pub enum IdempotencyOutcome {
    /// The key was free: this request owns it and must run, then
    /// [`complete`](Idempotency::complete) or
    /// [`abandon`](Idempotency::abandon) it.
    Started(IdempotencyTicket),
    /// An earlier request with this key and fingerprint completed: answer
    /// with this outcome again, do not run the request.
    Replay(StoredOutcome),
    /// An earlier request with this key and fingerprint is still running
    /// (typically answered with 409 and a `Retry-After`).
    InFlight,
    /// The key was used for a different request (another fingerprint):
    /// a client error (typically 422).
    Mismatch,
}

/// Proof that a request owns an idempotency key, returned by
/// [`Idempotency::begin`].
///
/// Dropping a ticket does not free the key: its request may have had
/// effects before it stopped, so the key stays blocked until the in-flight
/// TTL runs out. Call [`Idempotency::abandon`] to free it at once when the
/// request certainly had no effect.
pub struct IdempotencyTicket {
    pub(crate) scope: String,
    pub(crate) key: String,
    pub(crate) owner: Token,
}

impl IdempotencyTicket {
    /// The key's scope, as given to `begin`.
    #[must_use]
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The idempotency key, as given to `begin`.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Debug for IdempotencyTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyTicket")
            .field("scope", &self.scope)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The idempotency-key operations of a [`Coordination`](crate::Coordination),
/// from [`Coordination::idempotency`](crate::Coordination::idempotency).
#[derive(Clone, Copy, Debug)]
pub struct Idempotency<'a> {
    pub(crate) backend: &'a Backend,
}

impl Idempotency<'_> {
    /// Claims `key` in `scope` (e.g. a user or an API client id) for a
    /// request with this `fingerprint` (see [`fingerprint`]).
    ///
    /// One atomic step: of any number of concurrent `begin`s with one key,
    /// exactly one gets [`IdempotencyOutcome::Started`]. The claim (an
    /// in-flight marker) expires after the in-flight TTL if the request
    /// neither completes nor abandons it.
    ///
    /// # Errors
    /// [`CoordinationError::InvalidArgument`] for an empty key or a key or
    /// scope over [`MAX_KEY_LEN`] bytes;
    /// [`CoordinationError::CorruptRecord`] if the stored record cannot be
    /// read; [`CoordinationError::Unavailable`] /
    /// [`CoordinationError::Rejected`] when Redis fails.
    pub async fn begin(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotencyOutcome> {
        validate_key(scope, key)?;
        let owner = Token::random();
        self.backend.begin(scope, key, fingerprint, owner).await
    }

    /// Stores `outcome` for the ticket's key, to be replayed for the
    /// idempotency TTL (24 h by default).
    ///
    /// Returns `true` if it was stored, `false` if the ticket no longer owns
    /// the key: its in-flight marker expired (and another request may have
    /// claimed the key since) or was abandoned. Calling it again with the
    /// same ticket is harmless: the first stored outcome stays.
    ///
    /// # Errors
    /// [`CoordinationError::Unavailable`] / [`CoordinationError::Rejected`]
    /// when Redis fails; the call can be repeated.
    pub async fn complete(
        &self,
        ticket: &IdempotencyTicket,
        outcome: &StoredOutcome,
    ) -> Result<bool> {
        self.backend.complete(ticket, outcome).await
    }

    /// Frees the ticket's key so that a retry of the request can run: call
    /// it when the request failed without any effect.
    ///
    /// Returns `true` if the key was freed, `false` if the ticket no longer
    /// owned it (expired, completed, or already abandoned).
    ///
    /// # Errors
    /// [`CoordinationError::Unavailable`] / [`CoordinationError::Rejected`]
    /// when Redis fails.
    pub async fn abandon(&self, ticket: &IdempotencyTicket) -> Result<bool> {
        self.backend.abandon(ticket).await
    }
}

fn validate_key(scope: &str, key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || scope.len() > MAX_KEY_LEN {
        return Err(CoordinationError::InvalidArgument {
            reason: format!(
                "an idempotency key must be 1 to {MAX_KEY_LEN} bytes and its scope at most \
                 {MAX_KEY_LEN} bytes (got {} and {})",
                key.len(),
                scope.len()
            ),
        });
    }
    Ok(())
}

/// The fingerprint of a request: SHA-256, as 64 lower-case hex digits, of
/// its scope, method, path and body (each length-prefixed, so no two
/// different requests share an encoding).
///
/// `begin` with a known key and another fingerprint gives
/// [`IdempotencyOutcome::Mismatch`].
#[must_use]
pub fn fingerprint(scope: &str, method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in [scope.as_bytes(), method.as_bytes(), path.as_bytes(), body] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256_hex_of_every_part() {
        let base = fingerprint("user:1", "POST", "/v1/charges", b"{}");
        assert_eq!(base.len(), 64);
        assert!(base.bytes().all(|b| HEX.contains(&b)));
        assert_eq!(base, fingerprint("user:1", "POST", "/v1/charges", b"{}"));
        for other in [
            fingerprint("user:2", "POST", "/v1/charges", b"{}"),
            fingerprint("user:1", "PUT", "/v1/charges", b"{}"),
            fingerprint("user:1", "POST", "/v1/charge", b"{}"),
            fingerprint("user:1", "POST", "/v1/charges", b"{ }"),
            // Moving bytes between parts changes the fingerprint.
            fingerprint("user:1P", "OST", "/v1/charges", b"{}"),
        ] {
            assert_ne!(base, other);
        }
        // SHA-256 of four zero lengths.
        assert_eq!(
            fingerprint("", "", "", b""),
            "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
        );
    }

    #[test]
    fn keys_are_bounded() {
        assert!(validate_key("s", "k").is_ok());
        assert!(validate_key("", "k").is_ok());
        assert!(validate_key("s", "").is_err());
        assert!(validate_key("s", &"k".repeat(256)).is_err());
        assert!(validate_key(&"s".repeat(256), "k").is_err());
    }
}
