//! Pricing: the price of a plan in a currency and the amounts of an invoice.
//!
//! A plan's price in a currency is, in this order:
//!
//! 1. its own price, when the currency is the plan's currency;
//! 2. its fixed price for that currency in `prices`, when it has one;
//! 3. otherwise its own price converted plan currency → default currency →
//!    target currency at full precision and **rounded once**, at the end, to
//!    the target's minor units.
//!
//! The invoice amounts then apply the tax in force at the invoice's instant
//! (see [`crate::taxation`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::entities::{currency, tarif_plan, tax, tax_rate};
use crate::error::DomainError;
use crate::iso4217::validate_currency_code;
use crate::money::{self, round_for_customer, validate_storable};
use crate::taxation::{AppliedTax, TaxBreakdown};
use crate::{Numeric, PlanPrices};

/// The price of `plan` in the `target` currency, at the target's minor
/// units.
///
/// `default` must be the default currency and `plan_currency` the currency of
/// `plan.price` (they may be the same row, and either may be `target`). The
/// target must be active. Stored prices are validated, never silently
/// rounded: a fixed price with more decimals than the target allows is an
/// error.
///
/// ```
/// use billing_domain::pricing::plan_price_in;
/// use rust_decimal::Decimal;
/// # use billing_domain::entities::{currency, tarif_plan};
/// # fn cur(code: &str, rate: &str, dp: i16, default: bool) -> currency::Model {
/// #     serde_json::from_value(serde_json::json!({"id": 1, "code": code, "name": code,
/// #         "symbol": null, "exchange_rate": rate, "decimal_places": dp,
/// #         "is_default": default, "is_active": true, "created_at": "2026-01-01T00:00:00Z",
/// #         "updated_at": "2026-01-01T00:00:00Z", "version": 1})).unwrap()
/// # }
/// # let plan: tarif_plan::Model = serde_json::from_value(serde_json::json!({"id": 1,
/// #     "name": "Pro", "slug": "pro", "description": null, "price": "9.99", "currency": "EUR",
/// #     "billing_period": "monthly", "features": {}, "is_active": true, "sort_order": 0,
/// #     "prices": {"USD": "10.99"}, "created_at": "2026-01-01T00:00:00Z",
/// #     "updated_at": "2026-01-01T00:00:00Z", "version": 1})).unwrap();
/// let eur = cur("EUR", "1", 2, true);
/// let usd = cur("USD", "1.08", 2, false);
/// let jpy = cur("JPY", "160.5", 0, false);
/// // plan: 9.99 EUR, fixed price 10.99 USD
/// assert_eq!(plan_price_in(&plan, &eur, &eur, &eur).unwrap(), Decimal::new(999, 2));
/// assert_eq!(plan_price_in(&plan, &usd, &eur, &eur).unwrap(), Decimal::new(1099, 2));
/// // 9.99 × 160.5 = 1603.395 → 1603 JPY
/// assert_eq!(plan_price_in(&plan, &jpy, &eur, &eur).unwrap(), Decimal::new(1603, 0));
/// ```
pub fn plan_price_in(
    plan: &tarif_plan::Model,
    target: &currency::Model,
    default: &currency::Model,
    plan_currency: &currency::Model,
) -> Result<Decimal, DomainError> {
    if plan_currency.code != plan.currency {
        return Err(DomainError::CurrencyMismatch {
            expected: plan.currency.clone(),
            found: plan_currency.code.clone(),
        });
    }
    if !default.is_default {
        return Err(DomainError::NotDefaultCurrency {
            code: default.code.clone(),
        });
    }
    for currency in [plan_currency, target] {
        if currency.is_default && currency.code != default.code {
            return Err(DomainError::CurrencyMismatch {
                expected: default.code.clone(),
                found: currency.code.clone(),
            });
        }
    }
    if !target.is_active {
        return Err(DomainError::CurrencyInactive {
            code: target.code.clone(),
        });
    }
    let target_places = target.minor_units()?;
    let own_price = money::validate_price(plan.price.get(), plan_currency.minor_units()?)?;

    if plan.currency == target.code {
        return Ok(own_price);
    }
    if let Some(fixed) = plan.prices.0.get(&target.code) {
        return money::validate_price(fixed.get(), target_places);
    }

    let in_default = plan_currency.convert_to_default(own_price)?;
    let in_target = target.convert_from_default(in_default)?;
    validate_storable(round_for_customer(in_target, target_places))
}

/// Validates the fixed prices of a plan before they are written and returns
/// them normalised: codes upper-case, prices with exactly their currency's
/// minor units.
///
/// Each code must be a valid ISO 4217 code of one of `currencies` (the
/// configured ones; [`DomainError::UnknownCurrency`] otherwise), must not be
/// the plan's own currency `own_currency` (whose price is `plan.price`) and
/// must appear once (`usd` and `USD` are the same); each price must pass
/// [`money::validate_price`] for that currency. Whether the currencies are
/// active is not checked here: that is decided when a price is used
/// ([`plan_price_in`]).
///
/// ```
/// use billing_domain::pricing::validate_plan_prices;
/// use billing_domain::{DomainError, PlanPrices};
/// # use billing_domain::entities::currency;
/// # fn cur(code: &str, dp: i16) -> currency::Model {
/// #     serde_json::from_value(serde_json::json!({"id": 1, "code": code, "name": code,
/// #         "symbol": null, "exchange_rate": "1", "decimal_places": dp,
/// #         "is_default": false, "is_active": true, "created_at": "2026-01-01T00:00:00Z",
/// #         "updated_at": "2026-01-01T00:00:00Z", "version": 1})).unwrap()
/// # }
/// let currencies = [cur("EUR", 2), cur("USD", 2), cur("JPY", 0)];
/// let input: PlanPrices = serde_json::from_str(r#"{"usd": "10.9", "JPY": "1500"}"#).unwrap();
/// let prices = validate_plan_prices(&input, "EUR", &currencies).unwrap();
/// assert_eq!(serde_json::to_string(&prices).unwrap(), r#"{"JPY":"1500","USD":"10.90"}"#);
///
/// let bad: PlanPrices = serde_json::from_str(r#"{"JPY": "1500.5"}"#).unwrap();
/// assert_eq!(
///     validate_plan_prices(&bad, "EUR", &currencies),
///     Err(DomainError::TooManyDecimals { allowed: 0, got: 1 })
/// );
/// ```
pub fn validate_plan_prices(
    prices: &PlanPrices,
    own_currency: &str,
    currencies: &[currency::Model],
) -> Result<PlanPrices, DomainError> {
    let mut normalised = BTreeMap::new();
    for (code, price) in &prices.0 {
        let code = validate_currency_code(code)?;
        if code.eq_ignore_ascii_case(own_currency) {
            return Err(DomainError::InvalidField {
                field: "prices",
                reason: "must not contain the plan's own currency; its price is `price`",
            });
        }
        let currency = currencies
            .iter()
            .find(|c| c.code == code)
            .ok_or_else(|| DomainError::UnknownCurrency { code: code.clone() })?;
        let price = money::validate_price(price.get(), currency.minor_units()?)?;
        if normalised.insert(code, Numeric(price)).is_some() {
            return Err(DomainError::InvalidField {
                field: "prices",
                reason: "must not list a currency twice",
            });
        }
    }
    Ok(PlanPrices(normalised))
}

impl tarif_plan::Model {
    /// Checks a plan row before it is written: its currency is one of
    /// `currencies` (upper-case), its price is valid in that currency, and
    /// its fixed `prices` are already in the normalised form
    /// [`validate_plan_prices`] returns.
    pub fn validate(&self, currencies: &[currency::Model]) -> Result<(), DomainError> {
        let code = validate_currency_code(&self.currency)?;
        let own = currencies
            .iter()
            .find(|c| c.code == code)
            .ok_or_else(|| DomainError::UnknownCurrency { code: code.clone() })?;
        if code != self.currency {
            return Err(DomainError::InvalidCurrencyCode {
                code: self.currency.clone(),
            });
        }
        money::validate_price(self.price.get(), own.minor_units()?)?;
        let normalised = validate_plan_prices(&self.prices, &self.currency, currencies)?;
        let canonical = normalised.0.len() == self.prices.0.len()
            && normalised.0.keys().eq(self.prices.0.keys());
        if canonical {
            Ok(())
        } else {
            Err(DomainError::InvalidField {
                field: "prices",
                reason: "must use upper-case currency codes",
            })
        }
    }
}

/// The amounts of an invoice for a price already in the invoice currency:
/// untaxed, or split by the applied tax (the price is the gross for an
/// inclusive tax, the net otherwise). All three amounts are at
/// `decimal_places`, `net + tax == gross`, and each fits `NUMERIC(19,4)`.
///
/// ```
/// use billing_domain::pricing::invoice_amounts;
/// use billing_domain::taxation::AppliedTax;
/// use rust_decimal::Decimal;
///
/// let vat = AppliedTax::new(Decimal::new(19, 0), false).unwrap();
/// let b = invoice_amounts(Decimal::new(1000, 2), Some(vat), 2).unwrap();
/// assert_eq!((b.net, b.tax, b.gross), (Decimal::new(1000, 2), Decimal::new(190, 2), Decimal::new(1190, 2)));
/// let b = invoice_amounts(Decimal::new(1000, 2), None, 2).unwrap();
/// assert_eq!(b.gross, Decimal::new(1000, 2));
/// ```
pub fn invoice_amounts(
    price: Decimal,
    tax: Option<AppliedTax>,
    decimal_places: u32,
) -> Result<TaxBreakdown, DomainError> {
    let breakdown = match tax {
        None => TaxBreakdown::untaxed(price, decimal_places)?,
        Some(tax) => tax.breakdown(price, decimal_places)?,
    };
    validate_storable(breakdown.net)?;
    validate_storable(breakdown.tax)?;
    validate_storable(breakdown.gross)?;
    Ok(breakdown)
}

/// The amounts of an invoice for `plan` in `target` issued at `at`: the
/// plan's price in the target currency ([`plan_price_in`]) with the tax rate
/// in force at `at` ([`AppliedTax::in_force`]), if a tax applies.
///
/// `tax` is the tax with its rate history (rows of other taxes are ignored).
pub fn plan_invoice_amounts(
    plan: &tarif_plan::Model,
    target: &currency::Model,
    default: &currency::Model,
    plan_currency: &currency::Model,
    tax: Option<(&tax::Model, &[tax_rate::Model])>,
    at: DateTime<Utc>,
) -> Result<TaxBreakdown, DomainError> {
    let price = plan_price_in(plan, target, default, plan_currency)?;
    let applied = tax
        .map(|(tax, history)| AppliedTax::in_force(tax, history, at))
        .transpose()?;
    invoice_amounts(price, applied, target.minor_units()?)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::enums::BillingPeriod;
    use crate::exchange::tests::currency;
    use crate::taxation::tests::{row, tax};

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn at(y: i32, m: u32, day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, day, 0, 0, 0).unwrap()
    }

    fn plan(price: &str, code: &str, prices: &[(&str, &str)]) -> tarif_plan::Model {
        tarif_plan::Model {
            id: 1,
            name: "Pro".to_owned(),
            slug: "pro".to_owned(),
            description: None,
            price: Numeric(d(price)),
            currency: code.to_owned(),
            billing_period: BillingPeriod::Monthly,
            features: serde_json::json!({}),
            is_active: true,
            sort_order: 0,
            prices: PlanPrices(
                prices
                    .iter()
                    .map(|(c, p)| ((*c).to_owned(), Numeric(d(p))))
                    .collect(),
            ),
            created_at: at(2026, 1, 1),
            updated_at: at(2026, 1, 1),
            version: 1,
        }
    }

    fn eur() -> currency::Model {
        currency("EUR", Some("€"), "1", 2, true)
    }
    fn usd() -> currency::Model {
        currency("USD", Some("$"), "1.08", 2, false)
    }
    fn jpy() -> currency::Model {
        currency("JPY", Some("¥"), "160.5", 0, false)
    }
    fn kwd() -> currency::Model {
        currency("KWD", None, "0.3301", 3, false)
    }

    #[test]
    fn own_price_in_own_currency() {
        let p = plan("9.99", "EUR", &[]);
        assert_eq!(
            plan_price_in(&p, &eur(), &eur(), &eur()).unwrap(),
            d("9.99")
        );
        let p = plan("10", "USD", &[]);
        let price = plan_price_in(&p, &usd(), &eur(), &usd()).unwrap();
        assert_eq!(price.to_string(), "10.00");
    }

    #[test]
    fn fixed_price_wins_over_conversion() {
        let p = plan("9.99", "EUR", &[("USD", "10.99"), ("JPY", "1500")]);
        assert_eq!(
            plan_price_in(&p, &usd(), &eur(), &eur()).unwrap(),
            d("10.99")
        );
        assert_eq!(
            plan_price_in(&p, &jpy(), &eur(), &eur()).unwrap(),
            d("1500")
        );
    }

    #[test]
    fn converts_from_the_default_currency_and_rounds_once() {
        let p = plan("9.99", "EUR", &[]);
        // 9.99 × 160.5 = 1603.395 → 1603
        assert_eq!(
            plan_price_in(&p, &jpy(), &eur(), &eur()).unwrap(),
            d("1603")
        );
        // 9.99 × 1.08 = 10.7892 → 10.79
        assert_eq!(
            plan_price_in(&p, &usd(), &eur(), &eur()).unwrap(),
            d("10.79")
        );
        // 9.99 × 0.3301 = 3.297699 → 3.298
        let price = plan_price_in(&p, &kwd(), &eur(), &eur()).unwrap();
        assert_eq!(price.to_string(), "3.298");
    }

    #[test]
    fn converts_through_the_default_currency() {
        let p = plan("10.01", "USD", &[]);
        // 10.01 / 1.08 = 9.268518518… EUR; × 160.5 = 1487.597… → 1488
        // (rounding the EUR amount first would give 9.27 × 160.5 = 1487.835 → 1488, same here)
        assert_eq!(
            plan_price_in(&p, &jpy(), &eur(), &usd()).unwrap(),
            d("1488")
        );
        // 0.05 USD → KWD: 0.05 / 1.08 × 0.3301 = 0.015282… → 0.015
        // (rounding to EUR cents first: 0.05 EUR → 0.016505 → 0.017, which is wrong)
        let p = plan("0.05", "USD", &[]);
        assert_eq!(
            plan_price_in(&p, &kwd(), &eur(), &usd()).unwrap(),
            d("0.015")
        );
        // To the default currency itself.
        let p = plan("10.80", "USD", &[]);
        assert_eq!(
            plan_price_in(&p, &eur(), &eur(), &usd()).unwrap(),
            d("10.00")
        );
    }

    #[test]
    fn inconsistent_arguments_are_refused() {
        let p = plan("9.99", "EUR", &[]);
        assert_eq!(
            plan_price_in(&p, &usd(), &eur(), &usd()),
            Err(DomainError::CurrencyMismatch {
                expected: "EUR".to_owned(),
                found: "USD".to_owned()
            })
        );
        assert_eq!(
            plan_price_in(&p, &usd(), &usd(), &eur()),
            Err(DomainError::NotDefaultCurrency {
                code: "USD".to_owned()
            })
        );
        let mut second_default = usd();
        second_default.is_default = true;
        assert!(matches!(
            plan_price_in(&p, &second_default, &eur(), &eur()),
            Err(DomainError::CurrencyMismatch { .. })
        ));
        let mut inactive = usd();
        inactive.is_active = false;
        assert_eq!(
            plan_price_in(&p, &inactive, &eur(), &eur()),
            Err(DomainError::CurrencyInactive {
                code: "USD".to_owned()
            })
        );
    }

    #[test]
    fn invalid_stored_prices_are_reported_not_rounded() {
        let p = plan("9.99", "EUR", &[("JPY", "1500.5")]);
        assert_eq!(
            plan_price_in(&p, &jpy(), &eur(), &eur()),
            Err(DomainError::TooManyDecimals { allowed: 0, got: 1 })
        );
        let p = plan("-1", "EUR", &[]);
        assert!(matches!(
            plan_price_in(&p, &usd(), &eur(), &eur()),
            Err(DomainError::NegativeAmount { .. })
        ));
    }

    #[test]
    fn a_converted_price_beyond_storage_is_refused() {
        let p = plan("999999999999.99", "EUR", &[]);
        let idr = currency("IDR", Some("Rp"), "17000", 2, false);
        assert!(matches!(
            plan_price_in(&p, &idr, &eur(), &eur()),
            Err(DomainError::AmountOutOfRange { .. })
        ));
    }

    fn prices(json: &str) -> PlanPrices {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn plan_prices_are_normalised() {
        let currencies = [eur(), usd(), jpy(), kwd()];
        let out = validate_plan_prices(
            &prices(r#"{"usd": "10.9", "JPY": "1500.000", "Kwd": "3.5"}"#),
            "EUR",
            &currencies,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"JPY":"1500","KWD":"3.500","USD":"10.90"}"#
        );
        assert_eq!(
            validate_plan_prices(&PlanPrices::default(), "EUR", &currencies),
            Ok(PlanPrices::default())
        );
    }

    #[test]
    fn plan_prices_are_refused_when_wrong() {
        let currencies = [eur(), usd(), jpy()];
        let check = |json: &str| validate_plan_prices(&prices(json), "EUR", &currencies);
        assert_eq!(
            check(r#"{"XYZ": "1"}"#),
            Err(DomainError::InvalidCurrencyCode {
                code: "XYZ".to_owned()
            })
        );
        assert_eq!(
            check(r#"{"GBP": "1"}"#),
            Err(DomainError::UnknownCurrency {
                code: "GBP".to_owned()
            })
        );
        assert!(matches!(
            check(r#"{"USD": "-1"}"#),
            Err(DomainError::NegativeAmount { .. })
        ));
        assert_eq!(
            check(r#"{"USD": "1.001"}"#),
            Err(DomainError::TooManyDecimals { allowed: 2, got: 3 })
        );
        assert!(matches!(
            check(r#"{"USD": "1000000000000000"}"#),
            Err(DomainError::AmountOutOfRange { .. })
        ));
        assert!(matches!(
            check(r#"{"eur": "1"}"#),
            Err(DomainError::InvalidField {
                field: "prices",
                ..
            })
        ));
        assert!(matches!(
            check(r#"{"usd": "1", "USD": "2"}"#),
            Err(DomainError::InvalidField {
                field: "prices",
                ..
            })
        ));
    }

    #[test]
    fn plan_row_validation() {
        let currencies = [eur(), usd(), jpy()];
        assert_eq!(
            plan("9.99", "EUR", &[("USD", "10.99")]).validate(&currencies),
            Ok(())
        );
        assert!(matches!(
            plan("9.999", "EUR", &[]).validate(&currencies),
            Err(DomainError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            plan("9.99", "eur", &[]).validate(&currencies),
            Err(DomainError::InvalidCurrencyCode { .. })
        ));
        assert!(matches!(
            plan("9.99", "GBP", &[]).validate(&currencies),
            Err(DomainError::UnknownCurrency { .. })
        ));
        assert!(matches!(
            plan("9.99", "EUR", &[("usd", "10.99")]).validate(&currencies),
            Err(DomainError::InvalidField {
                field: "prices",
                ..
            })
        ));
    }

    #[test]
    fn invoice_amounts_with_and_without_tax() {
        let b = invoice_amounts(d("10.00"), None, 2).unwrap();
        assert_eq!((b.net, b.tax, b.gross), (d("10.00"), d("0"), d("10.00")));

        let exclusive = AppliedTax::new(d("19"), false).unwrap();
        let b = invoice_amounts(d("10.00"), Some(exclusive), 2).unwrap();
        assert_eq!((b.net, b.tax, b.gross), (d("10.00"), d("1.90"), d("11.90")));

        let inclusive = AppliedTax::new(d("19"), true).unwrap();
        let b = invoice_amounts(d("119.00"), Some(inclusive), 2).unwrap();
        assert_eq!(
            (b.net, b.tax, b.gross),
            (d("100.00"), d("19.00"), d("119.00"))
        );

        let hundred = AppliedTax::new(d("100"), false).unwrap();
        assert!(matches!(
            invoice_amounts(d("600000000000000"), Some(hundred), 2),
            Err(DomainError::AmountOutOfRange { .. })
        ));
    }

    #[test]
    fn plan_invoice_amounts_use_the_rate_in_force_at_the_instant() {
        let p = plan("100.00", "EUR", &[]);
        let vat = tax("19", false);
        let history = [
            row(1, "19", at(2007, 1, 1), Some(at(2020, 7, 1))),
            row(2, "16", at(2020, 7, 1), Some(at(2021, 1, 1))),
            row(3, "19", at(2021, 1, 1), None),
        ];
        let b = plan_invoice_amounts(
            &p,
            &eur(),
            &eur(),
            &eur(),
            Some((&vat, &history)),
            at(2020, 8, 1),
        )
        .unwrap();
        assert_eq!(
            (b.net, b.tax, b.gross),
            (d("100.00"), d("16.00"), d("116.00"))
        );
        let b = plan_invoice_amounts(
            &p,
            &eur(),
            &eur(),
            &eur(),
            Some((&vat, &history)),
            at(2026, 1, 1),
        )
        .unwrap();
        assert_eq!(b.tax, d("19.00"));
        // JPY: 100 EUR → 16050 JPY, 10 % inclusive → net 14591, tax 1459
        let jct = tax("10", true);
        let jct_history = [row(1, "10", at(2019, 10, 1), None)];
        let b = plan_invoice_amounts(
            &p,
            &jpy(),
            &eur(),
            &eur(),
            Some((&jct, &jct_history)),
            at(2026, 1, 1),
        )
        .unwrap();
        assert_eq!((b.net, b.tax, b.gross), (d("14591"), d("1459"), d("16050")));
        // No tax.
        let b = plan_invoice_amounts(&p, &eur(), &eur(), &eur(), None, at(2026, 1, 1)).unwrap();
        assert_eq!(b.gross, d("100.00"));
        // No rate in force.
        assert_eq!(
            plan_invoice_amounts(
                &p,
                &eur(),
                &eur(),
                &eur(),
                Some((&vat, &history)),
                at(2000, 1, 1)
            ),
            Err(DomainError::NoRateInForce { at: at(2000, 1, 1) })
        );
    }
}
