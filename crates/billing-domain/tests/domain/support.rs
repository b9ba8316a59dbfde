//! Builders of entity models and proptest strategies shared by the modules.

use billing_domain::Numeric;
use billing_domain::entities::{currency, subscription, user_invoice};
use billing_domain::enums::{InvoiceStatus, SubscriptionStatus};
use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;

/// A fixed instant all generated times are relative to.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// A currency row.
pub fn currency(
    code: &str,
    rate: Decimal,
    decimal_places: u32,
    is_default: bool,
) -> currency::Model {
    currency::Model {
        id: 1,
        code: code.to_owned(),
        name: code.to_owned(),
        symbol: None,
        exchange_rate: Numeric(rate),
        decimal_places: i16::try_from(decimal_places).unwrap(),
        is_default,
        is_active: true,
        created_at: epoch(),
        updated_at: epoch(),
        version: 1,
    }
}

/// A pending subscription.
pub fn pending_subscription() -> subscription::Model {
    subscription::Model {
        id: 1,
        user_id: 1,
        tarif_plan_id: 1,
        status: SubscriptionStatus::Pending,
        started_at: None,
        expires_at: None,
        cancelled_at: None,
        paused_at: None,
        created_at: epoch(),
        updated_at: epoch(),
        version: 1,
    }
}

/// A pending invoice of 11.90 EUR that expires at `expires_at`.
pub fn pending_invoice(expires_at: Option<DateTime<Utc>>) -> user_invoice::Model {
    user_invoice::Model {
        id: 1,
        user_id: 1,
        tarif_plan_id: 1,
        subscription_id: None,
        invoice_number: "INV-2026-000001".to_owned(),
        amount: Numeric(Decimal::new(1190, 2)),
        net_amount: Numeric(Decimal::new(1000, 2)),
        tax_amount: Numeric(Decimal::new(190, 2)),
        currency: "EUR".to_owned(),
        status: InvoiceStatus::Pending,
        payment_method: None,
        payment_reference: None,
        invoiced_at: epoch(),
        paid_at: None,
        expires_at,
        fencing_token: None,
        created_at: epoch(),
        updated_at: epoch(),
        version: 1,
    }
}

/// Minor units of a currency: 0 to 4.
pub fn decimal_places() -> impl Strategy<Value = u32> {
    0u32..=4
}

/// A non-negative amount with exactly `decimal_places` decimals, below 10^15.
pub fn amount_at(decimal_places: u32) -> impl Strategy<Value = Decimal> {
    (0i64..1_000_000_000_000_000).prop_map(move |m| Decimal::new(m, decimal_places))
}

/// An amount of either sign with up to 10 decimals, absolute value below 10^12.
pub fn any_amount() -> impl Strategy<Value = Decimal> {
    (0u32..=10).prop_flat_map(|scale| {
        let bound = 10i128.pow(12 + scale);
        (-bound + 1..bound).prop_map(move |m| Decimal::from_i128_with_scale(m, scale))
    })
}

/// A tax rate in percent: 0 to 100 with up to 4 decimals.
pub fn tax_rate() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (0i64..=1_000_000).prop_map(|m| Decimal::new(m, 4)),
        (0i64..=100).prop_map(|m| Decimal::new(m, 0)),
        Just(Decimal::new(19, 0)),
        Just(Decimal::new(77, 1)),
    ]
}
