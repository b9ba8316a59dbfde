//! Idempotency keys: [`Idempotency::begin`] claims a key atomically,
//! [`Idempotency::complete`] stores the response to replay,
//! [`Idempotency::abandon`] frees the key for a retry; plus the request
//! [`fingerprint`] and the byte-exact encoding of [`StoredResponse`].

use std::fmt;

use sha2::{Digest, Sha256};

use crate::backend::{Backend, Token};
use crate::error::{CoordinationError, Result};

/// Longest accepted idempotency key and scope, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// A response stored under an idempotency key and replayed byte for byte.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StoredResponse {
    /// HTTP status code.
    pub status: u16,
    /// The headers worth replaying (e.g. `content-type`, `location`), in
    /// order; names may repeat.
    pub headers: Vec<(String, String)>,
    /// The body, any bytes.
    pub body: Vec<u8>,
}

/// What [`Idempotency::begin`] found for a key.
#[derive(Debug)]
#[must_use = "only `Started` may run the request"]
pub enum IdempotencyOutcome {
    /// The key was free: this request owns it and must run, then
    /// [`complete`](Idempotency::complete) or
    /// [`abandon`](Idempotency::abandon) it.
    Started(IdempotencyTicket),
    /// An earlier request with this key and fingerprint completed: send this
    /// response again, do not run the request.
    Replay(StoredResponse),
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
    /// [`CoordinationError::CorruptRecord`] if the stored response cannot
    /// be decoded; [`CoordinationError::Unavailable`] /
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

    /// Stores `response` for the ticket's key, to be replayed for the
    /// idempotency TTL (24 h by default).
    ///
    /// Returns `true` if it was stored, `false` if the ticket no longer owns
    /// the key: its in-flight marker expired (and another request may have
    /// claimed the key since) or was abandoned. Calling it again with the
    /// same ticket is harmless: the first stored response stays.
    ///
    /// # Errors
    /// [`CoordinationError::Unavailable`] / [`CoordinationError::Rejected`]
    /// when Redis fails; the call can be repeated.
    pub async fn complete(
        &self,
        ticket: &IdempotencyTicket,
        response: &StoredResponse,
    ) -> Result<bool> {
        self.backend.complete(ticket, response).await
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

/// Encodes headers as, per header, a big-endian `u32` length and the bytes
/// of the name, then the same for the value.
pub(crate) fn encode_headers(headers: &[(String, String)]) -> Vec<u8> {
    let size = headers.iter().map(|(n, v)| 8 + n.len() + v.len()).sum();
    let mut out = Vec::with_capacity(size);
    for (name, value) in headers {
        for part in [name, value] {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
    out
}

/// Decodes what [`encode_headers`] wrote.
pub(crate) fn decode_headers(mut bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    fn take_str(bytes: &mut &[u8]) -> Result<String, String> {
        let (len, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or("truncated header length")?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|e| e.to_string())?;
        if rest.len() < len {
            return Err("truncated header".to_owned());
        }
        let (text, rest) = rest.split_at(len);
        *bytes = rest;
        String::from_utf8(text.to_vec()).map_err(|_| "header is not UTF-8".to_owned())
    }
    let mut headers = Vec::new();
    while !bytes.is_empty() {
        let name = take_str(&mut bytes)?;
        let value = take_str(&mut bytes)?;
        headers.push((name, value));
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_exactly() {
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("set-cookie".to_owned(), "a=1".to_owned()),
            ("set-cookie".to_owned(), String::new()),
            (String::new(), "é\u{0}\n".to_owned()),
        ];
        let encoded = encode_headers(&headers);
        assert_eq!(decode_headers(&encoded), Ok(headers));
        assert_eq!(decode_headers(&[]), Ok(vec![]));
        assert!(decode_headers(&encoded[..encoded.len() - 1]).is_err());
        assert!(decode_headers(&[0, 0, 0]).is_err());
    }

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
