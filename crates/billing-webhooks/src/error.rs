//! `WebhookError`: what went wrong sending webhooks or checking a signature.

use billing_concurrency::CoordinationError;
use billing_service::BillingError;

/// The error of this crate.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// A use case failed (the database is down, …).
    #[error(transparent)]
    Billing(#[from] BillingError),

    /// The coordination backend (the lease) failed.
    #[error("the delivery lease could not be taken or kept")]
    Coordination(#[from] CoordinationError),

    /// The lease passed to another instance during a pass: it stopped.
    #[error("the delivery lease passed to another instance")]
    LeaseLost,

    /// The HTTP client could not be built.
    #[error("the webhook HTTP client could not be built")]
    Client(#[source] reqwest::Error),

    /// A signature header that is not `t=<seconds>,v1=<hex>[,v1=…]`.
    #[error("malformed signature header: {reason}")]
    SignatureMalformed {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The signature's timestamp is further from now than the tolerance:
    /// a replay, or a clock far off.
    #[error("the signature is {age_secs} s away from now, beyond the tolerance")]
    SignatureExpired {
        /// How far, in seconds.
        age_secs: i64,
    },

    /// No `v1` signature matches the body and the secret.
    #[error("the signature does not match")]
    SignatureMismatch,
}
