//! Webhook delivery: sends each published billing event to every endpoint
//! registered for it, signed, at least once, in order per resource.
//!
//! [`Dispatcher::run_once`] publishes the committed events (queueing their
//! deliveries), then sends the deliveries that are due under the lease
//! [`DELIVERY_LEASE`] (the coordination backend's `try_lock`, as the billing
//! cycle's), so instances share the work and no delivery is sent by two at
//! once. Each request is a `POST` of the event's JSON with the header
//! `Billing-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
//! `"<t>.<body>"` keyed with the endpoint's secret ([`sign`]); receivers
//! check it with [`verify`]. A 2xx acknowledges; anything else (or no
//! answer within the time-out) is retried with exponential backoff and
//! jitter ([`billing_service::RetryPolicy`]) for up to 3 days, then the
//! delivery is `failed` and the endpoint `failing`.
//!
//! The requests go to the registered URLs only (redirects are not
//! followed, no proxy is read from the environment); operators should
//! still restrict the egress of the process.

mod dispatcher;
mod error;
mod signature;

pub use dispatcher::{
    DELIVERY_LEASE, DispatchReport, DispatchSettings, Dispatcher, install_crypto_provider,
};
pub use error::WebhookError;
pub use signature::{DEFAULT_TOLERANCE, SIGNATURE_HEADER, sign, verify};
