//! The bodies of `POST /invoices` and of a payment (`POST /invoices/{id}/pay`).

use billing_service as service;
use serde::Deserialize;
use utoipa::ToSchema;

/// An invoice to create.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvoice {
    /// The customer.
    #[serde(deserialize_with = "super::integer::integer")]
    pub user_id: i64,
    /// The plan invoiced.
    #[serde(deserialize_with = "super::integer::integer")]
    pub plan_id: i64,
    /// The subscription it pays for; it must be the user's, for this plan.
    #[serde(default, deserialize_with = "super::integer::option_integer")]
    pub subscription_id: Option<i64>,
    /// ISO 4217 code of the amounts; the plan's currency when absent.
    #[serde(default)]
    pub currency: Option<String>,
    /// Code of the tax to apply at the rate in force now; none when absent.
    #[serde(default)]
    pub tax_code: Option<String>,
}

impl From<NewInvoice> for service::NewInvoice {
    fn from(wire: NewInvoice) -> Self {
        let NewInvoice {
            user_id,
            plan_id,
            subscription_id,
            currency,
            tax_code,
        } = wire;
        Self {
            user_id,
            plan_id,
            subscription_id,
            currency,
            tax_code,
        }
    }
}

/// A payment of an invoice.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    /// How it was paid (`card`, `sepa` …).
    pub payment_method: String,
    /// The payment provider's reference.
    #[serde(default)]
    pub payment_reference: Option<String>,
}

impl From<Payment> for service::Payment {
    fn from(wire: Payment) -> Self {
        let Payment {
            payment_method,
            payment_reference,
        } = wire;
        Self {
            payment_method,
            payment_reference,
        }
    }
}
