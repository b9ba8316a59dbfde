//! The port to a payment provider that dunning charges unpaid renewals through.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use billing_domain::entities::user_invoice;

use crate::BoxError;

/// What a charger is asked to charge.
#[derive(Clone, Copy, Debug)]
pub struct ChargeRequest<'a> {
    /// The unpaid renewal invoice.
    pub invoice: &'a user_invoice::Model,
    /// 1 for the first attempt …
    pub attempt: u32,
    /// The same for every run of this attempt: pass it to the payment
    /// provider so a re-run attempt charges once.
    pub idempotency_key: &'a str,
}

/// How a charge ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// Charged: the invoice is paid with these details.
    Paid {
        /// How it was paid (`card` …).
        payment_method: String,
        /// The provider's reference.
        payment_reference: Option<String>,
    },
    /// The provider declined it.
    Declined {
        /// The provider's reason.
        reason: String,
    },
}

/// The boxed future a [`RenewalCharger`] returns.
pub type ChargeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ChargeOutcome, BoxError>> + Send + 'a>>;

/// The port to a payment provider: an embedder implements it to charge
/// unpaid renewal invoices during dunning. billing has no provider of its
/// own; without a charger an attempt is recorded as awaiting a payment
/// made elsewhere.
pub trait RenewalCharger: Send + Sync + fmt::Debug {
    /// Charges `request.invoice`. An `Err` is a failure to reach a verdict
    /// (counted as a failed attempt, recorded as `errored`).
    fn charge<'a>(&'a self, request: ChargeRequest<'a>) -> ChargeFuture<'a>;
}
