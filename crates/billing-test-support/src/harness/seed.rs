//! The usual catalogue of the use-case tests: currencies, a tax, a plan and
//! a user, created through the use cases.

use std::str::FromStr;

use billing_domain::entities::{currency, tarif_plan, tax, user};
use billing_domain::enums::BillingPeriod;
use billing_service::{Billing, NewCurrency, NewPlan, NewTax, NewUser};
use rust_decimal::Decimal;

/// `s` as a decimal, for literals in tests.
///
/// # Panics
/// When `s` is not a decimal number.
#[must_use]
pub fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("test decimal")
}

/// The usual catalogue: EUR (default), USD at 1.08, JPY at 160, a 19 % VAT
/// and a monthly plan `pro` at 10.00 EUR.
pub struct Seed {
    /// EUR, the default currency.
    pub eur: currency::Model,
    /// USD at 1.08.
    pub usd: currency::Model,
    /// German VAT at 19 %.
    pub vat: tax::Model,
    /// The monthly plan `pro` at 10.00 EUR.
    pub plan: tarif_plan::Model,
    /// Ada, a user.
    pub user: user::Model,
}

/// Creates the usual catalogue ([`Seed`]; JPY at 160 too) and a user.
///
/// # Errors
/// Fails when a use case refuses.
pub async fn seed(billing: &Billing) -> anyhow::Result<Seed> {
    let eur = billing
        .create_currency(NewCurrency {
            code: "EUR".into(),
            name: "Euro".into(),
            symbol: Some("€".into()),
            exchange_rate: Decimal::ONE,
            decimal_places: None,
            is_default: Some(true),
            is_active: None,
        })
        .await?;
    let usd = billing
        .create_currency(NewCurrency {
            code: "usd".into(),
            name: "US Dollar".into(),
            symbol: Some("$".into()),
            exchange_rate: dec("1.08"),
            decimal_places: None,
            is_default: None,
            is_active: None,
        })
        .await?;
    billing
        .create_currency(NewCurrency {
            code: "JPY".into(),
            name: "Yen".into(),
            symbol: Some("¥".into()),
            exchange_rate: dec("160"),
            decimal_places: None,
            is_default: None,
            is_active: None,
        })
        .await?;
    let vat = billing
        .create_tax(NewTax {
            name: "German VAT".into(),
            code: "DE_VAT".into(),
            description: None,
            rate: dec("19.00"),
            country_code: "de".into(),
            region_code: None,
            is_inclusive: None,
            is_active: None,
        })
        .await?;
    let plan = billing
        .create_plan(plan("pro", "10.00", BillingPeriod::Monthly))
        .await?;
    let user = billing
        .register_user(NewUser {
            email: "Ada@Example.com".into(),
            password: "correct horse battery".into(),
            role: None,
        })
        .await?;
    Ok(Seed {
        eur,
        usd,
        vat,
        plan,
        user,
    })
}

/// A plan `slug` (named after it in capitals) at `price` EUR, billed every
/// `period`.
///
/// # Panics
/// When `price` is not a decimal number.
#[must_use]
pub fn plan(slug: &str, price: &str, period: BillingPeriod) -> NewPlan {
    NewPlan {
        name: slug.to_uppercase(),
        slug: slug.into(),
        description: None,
        price: dec(price),
        currency: "EUR".into(),
        billing_period: period,
        features: None,
        is_active: None,
        sort_order: None,
        prices: None,
    }
}
