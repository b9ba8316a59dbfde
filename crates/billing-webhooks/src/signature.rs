//! The signature of a webhook request: HMAC-SHA256 keyed with the
//! endpoint's secret over `"<timestamp>.<body>"`, sent as
//! `Billing-Signature: t=<timestamp>,v1=<hex>` (the scheme Stripe uses).

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::WebhookError;

/// The name of the signature header.
pub const SIGNATURE_HEADER: &str = "Billing-Signature";

/// How far a signature's timestamp may be from the receiver's clock by
/// default: five minutes, as Stripe's libraries.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Billing-Signature` header value for `body` sent at `timestamp`
/// (Unix seconds) to an endpoint with `secret`.
#[must_use]
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Checks a `Billing-Signature` header: its timestamp is within
/// `tolerance` of `now` (Unix seconds) and one of its `v1` signatures is
/// the HMAC of `"<t>.<body>"` with `secret` (compared in constant time).
///
/// # Errors
/// [`WebhookError::SignatureMalformed`], [`WebhookError::SignatureExpired`]
/// or [`WebhookError::SignatureMismatch`].
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), WebhookError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(WebhookError::SignatureMalformed {
                reason: "a part is not key=value",
            })?;
        match key {
            "t" => {
                timestamp =
                    Some(
                        value
                            .parse::<i64>()
                            .map_err(|_| WebhookError::SignatureMalformed {
                                reason: "t is not a number",
                            })?,
                    );
            }
            "v1" => signatures.push(hex::decode(value).map_err(|_| {
                WebhookError::SignatureMalformed {
                    reason: "v1 is not hexadecimal",
                }
            })?),
            // Other schemes (v0, a future v2) are ignored, as Stripe does.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::SignatureMalformed { reason: "no t" })?;
    if signatures.is_empty() {
        return Err(WebhookError::SignatureMalformed { reason: "no v1" });
    }
    let age = now.saturating_sub(timestamp);
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if age.saturating_abs() > tolerance {
        return Err(WebhookError::SignatureExpired { age_secs: age });
    }
    let expected = mac(secret, timestamp, body);
    if signatures
        .iter()
        .any(|signature| expected.clone().verify_slice(signature).is_ok())
    {
        Ok(())
    } else {
        Err(WebhookError::SignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let body = br#"{"id":1}"#;
        let header = sign(SECRET, 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        verify(SECRET, &header, body, 1_700_000_010, DEFAULT_TOLERANCE).unwrap();
        assert!(matches!(
            verify(
                SECRET,
                &header,
                br#"{"id":2}"#,
                1_700_000_010,
                DEFAULT_TOLERANCE
            ),
            Err(WebhookError::SignatureMismatch)
        ));
        assert!(matches!(
            verify(
                "whsec_other",
                &header,
                body,
                1_700_000_010,
                DEFAULT_TOLERANCE
            ),
            Err(WebhookError::SignatureMismatch)
        ));
        // Another timestamp with the same signature: refused.
        let forged = header.replace("t=1700000000", "t=1700000001");
        assert!(verify(SECRET, &forged, body, 1_700_000_010, DEFAULT_TOLERANCE).is_err());
    }

    #[test]
    fn an_old_or_future_timestamp_is_refused() {
        let body = b"{}";
        let header = sign(SECRET, 1_700_000_000, body);
        assert!(matches!(
            verify(SECRET, &header, body, 1_700_000_301, DEFAULT_TOLERANCE),
            Err(WebhookError::SignatureExpired { age_secs: 301 })
        ));
        assert!(matches!(
            verify(SECRET, &header, body, 1_699_999_699, DEFAULT_TOLERANCE),
            Err(WebhookError::SignatureExpired { age_secs: -301 })
        ));
        verify(SECRET, &header, body, 1_700_000_300, DEFAULT_TOLERANCE).unwrap();
    }

    #[test]
    fn malformed_headers_are_refused() {
        for header in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz", "garbage"] {
            assert!(
                matches!(
                    verify(SECRET, header, b"{}", 1, DEFAULT_TOLERANCE),
                    Err(WebhookError::SignatureMalformed { .. })
                ),
                "{header}"
            );
        }
    }

    #[test]
    fn a_known_vector() {
        // HMAC-SHA256 with key "key" over "1.body", from Python's hmac.
        assert_eq!(
            sign("key", 1, b"body"),
            "t=1,v1=91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5"
        );
    }
}
