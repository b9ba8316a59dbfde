//! Tax arithmetic: tax on a net amount, gross from net, net from gross, the
//! split of a price into [`TaxBreakdown`], and the historical rate in force.
//!
//! Rates are in percent (`19` is 19 %), between 0 and 100 with at most four
//! decimal places (`NUMERIC(9,4)`).
//!
//! - **Exclusive** tax: the price is the net. `net = round(price)`,
//!   `tax = round(net × rate / 100)`, `gross = net + tax`.
//! - **Inclusive** tax: the price is the gross (it already contains the tax).
//!   `gross = round(price)`, `net = round(gross × 100 / (100 + rate))`,
//!   `tax = gross − net`.
//!
//! `round` is the crate's rounding rule (half away from zero to the
//! currency's minor units), so `net + tax == gross` holds exactly, and for an
//! amount `x` at the currency's precision `extract_net(calculate_gross(x)) ==
//! x`. All functions work for negative amounts too (rounding is symmetric).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::entities::{tax, tax_rate};
use crate::error::DomainError;
use crate::money::{self, MAX_DECIMAL_PLACES, round_for_customer};

const HUNDRED: Decimal = Decimal::ONE_HUNDRED;

/// An amount split into net, tax and gross, each at the currency's minor
/// units, with `net + tax == gross` exactly.
///
/// ```
/// use billing_domain::taxation::TaxBreakdown;
/// use rust_decimal::Decimal;
///
/// let b = TaxBreakdown::exclusive(Decimal::new(1000, 2), Decimal::new(19, 0), 2).unwrap();
/// assert_eq!((b.net, b.tax, b.gross), (Decimal::new(1000, 2), Decimal::new(190, 2), Decimal::new(1190, 2)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaxBreakdown {
    /// The amount without tax.
    pub net: Decimal,
    /// The tax.
    pub tax: Decimal,
    /// What the customer pays: `net + tax`.
    pub gross: Decimal,
}

impl TaxBreakdown {
    /// No tax: net and gross are the price rounded to the minor units.
    ///
    /// ```
    /// use billing_domain::taxation::TaxBreakdown;
    /// use rust_decimal::Decimal;
    ///
    /// let b = TaxBreakdown::untaxed(Decimal::new(995, 1), 0).unwrap(); // 99.5 JPY
    /// assert_eq!((b.net, b.tax, b.gross), (Decimal::new(100, 0), Decimal::ZERO, Decimal::new(100, 0)));
    /// ```
    pub fn untaxed(price: Decimal, decimal_places: u32) -> Result<Self, DomainError> {
        check_inputs(price, Decimal::ZERO, decimal_places)?;
        let net = round_for_customer(price, decimal_places);
        Ok(Self {
            net,
            tax: round_for_customer(Decimal::ZERO, decimal_places),
            gross: net,
        })
    }

    /// An exclusive tax on a net price: `tax = round(net × rate / 100)`,
    /// `gross = net + tax` (the net is rounded to the minor units first).
    ///
    /// ```
    /// use billing_domain::taxation::TaxBreakdown;
    /// use rust_decimal::Decimal;
    ///
    /// // 19 % of 9.99 EUR = 1.8981 → 1.90
    /// let b = TaxBreakdown::exclusive(Decimal::new(999, 2), Decimal::new(19, 0), 2).unwrap();
    /// assert_eq!(b.tax, Decimal::new(190, 2));
    /// assert_eq!(b.gross, Decimal::new(1189, 2));
    /// ```
    pub fn exclusive(
        net: Decimal,
        rate: Decimal,
        decimal_places: u32,
    ) -> Result<Self, DomainError> {
        check_inputs(net, rate, decimal_places)?;
        let net = round_for_customer(net, decimal_places);
        let exact_tax = net
            .checked_mul(rate)
            .and_then(|t| t.checked_div(HUNDRED))
            .ok_or(DomainError::ArithmeticOverflow)?;
        let tax = round_for_customer(exact_tax, decimal_places);
        let gross = net
            .checked_add(tax)
            .ok_or(DomainError::ArithmeticOverflow)?;
        Ok(Self { net, tax, gross })
    }

    /// An inclusive tax in a gross price: `net = round(gross × 100 / (100 +
    /// rate))`, `tax = gross − net` (the gross is rounded to the minor units
    /// first).
    ///
    /// ```
    /// use billing_domain::taxation::TaxBreakdown;
    /// use rust_decimal::Decimal;
    ///
    /// let b = TaxBreakdown::inclusive(Decimal::new(11900, 2), Decimal::new(19, 0), 2).unwrap();
    /// assert_eq!((b.net, b.tax), (Decimal::new(10000, 2), Decimal::new(1900, 2)));
    /// ```
    pub fn inclusive(
        gross: Decimal,
        rate: Decimal,
        decimal_places: u32,
    ) -> Result<Self, DomainError> {
        check_inputs(gross, rate, decimal_places)?;
        let gross = round_for_customer(gross, decimal_places);
        let divisor = HUNDRED
            .checked_add(rate)
            .ok_or(DomainError::ArithmeticOverflow)?;
        let exact_net = gross
            .checked_mul(HUNDRED)
            .and_then(|g| g.checked_div(divisor))
            .ok_or(DomainError::ArithmeticOverflow)?;
        let net = round_for_customer(exact_net, decimal_places);
        let tax = gross
            .checked_sub(net)
            .ok_or(DomainError::ArithmeticOverflow)?;
        Ok(Self { net, tax, gross })
    }
}

/// A tax as applied to one invoice: its rate in percent and whether prices
/// contain it. It can be serialised but not deserialised: every value went
/// through [`validate_tax_rate`].
///
/// ```
/// use billing_domain::taxation::AppliedTax;
/// use rust_decimal::Decimal;
///
/// let vat = AppliedTax::new(Decimal::new(19, 0), true).unwrap();
/// let b = vat.breakdown(Decimal::new(11900, 2), 2).unwrap();
/// assert_eq!(b.net, Decimal::new(10000, 2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct AppliedTax {
    /// Rate in percent, validated by [`validate_tax_rate`].
    rate: Decimal,
    /// Whether prices already contain the tax.
    inclusive: bool,
}

impl AppliedTax {
    /// A tax with a validated rate.
    pub fn new(rate: Decimal, inclusive: bool) -> Result<Self, DomainError> {
        Ok(Self {
            rate: validate_tax_rate(rate)?,
            inclusive,
        })
    }

    /// The tax with its current rate (`tax.rate`). The tax must be active.
    pub fn current(tax: &tax::Model) -> Result<Self, DomainError> {
        check_active(tax)?;
        Self::new(tax.rate.get(), tax.is_inclusive)
    }

    /// The tax with the rate in force at `at` according to its history.
    /// Rows of other taxes in `history` are ignored; an empty history or a gap
    /// at `at` is [`DomainError::NoRateInForce`]. The tax must be active.
    pub fn in_force(
        tax: &tax::Model,
        history: &[tax_rate::Model],
        at: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        check_active(tax)?;
        let own: Vec<tax_rate::Model> = history
            .iter()
            .filter(|r| r.tax_id == tax.id)
            .cloned()
            .collect();
        Self::new(rate_in_force(&own, at)?, tax.is_inclusive)
    }

    /// The rate in percent.
    #[must_use]
    pub const fn rate(&self) -> Decimal {
        self.rate
    }

    /// Whether prices already contain the tax.
    #[must_use]
    pub const fn is_inclusive(&self) -> bool {
        self.inclusive
    }

    /// Splits a price: the gross for an inclusive tax, the net otherwise.
    pub fn breakdown(
        &self,
        price: Decimal,
        decimal_places: u32,
    ) -> Result<TaxBreakdown, DomainError> {
        if self.inclusive {
            TaxBreakdown::inclusive(price, self.rate, decimal_places)
        } else {
            TaxBreakdown::exclusive(price, self.rate, decimal_places)
        }
    }
}

fn check_active(tax: &tax::Model) -> Result<(), DomainError> {
    if tax.is_active {
        Ok(())
    } else {
        Err(DomainError::TaxInactive {
            code: tax.code.clone(),
        })
    }
}

/// Refuses inputs that could overflow or that cannot be stored: the amount
/// must fit `NUMERIC(19,4)` in absolute value, the rate must be valid and the
/// minor units at most 4.
fn check_inputs(amount: Decimal, rate: Decimal, decimal_places: u32) -> Result<(), DomainError> {
    if decimal_places > MAX_DECIMAL_PLACES {
        return Err(DomainError::InvalidDecimalPlaces {
            got: i64::from(decimal_places),
        });
    }
    if amount.abs() >= money::AMOUNT_LIMIT {
        return Err(DomainError::AmountOutOfRange { amount });
    }
    validate_tax_rate(rate)?;
    Ok(())
}

/// Validates a tax rate in percent: between 0 and 100 inclusive, at most four
/// decimal places (`NUMERIC(9,4)`). A rate above 100 % is refused as almost
/// certainly a typo (`1900` for `19.00`).
///
/// ```
/// use billing_domain::taxation::validate_tax_rate;
/// use rust_decimal::Decimal;
///
/// assert!(validate_tax_rate(Decimal::new(1900, 2)).is_ok());
/// assert!(validate_tax_rate(Decimal::new(-1, 0)).is_err());
/// assert!(validate_tax_rate(Decimal::new(101, 0)).is_err());
/// assert!(validate_tax_rate(Decimal::new(1, 5)).is_err());
/// ```
pub fn validate_tax_rate(rate: Decimal) -> Result<Decimal, DomainError> {
    let negative = rate.is_sign_negative() && !rate.is_zero();
    if negative || rate > HUNDRED || money::significant_decimals(rate) > 4 {
        return Err(DomainError::InvalidTaxRate { rate });
    }
    Ok(rate)
}

/// The tax on a net amount for an exclusive tax of `rate` percent:
/// `round(round(net) × rate / 100)`.
///
/// ```
/// use billing_domain::taxation::calculate_tax;
/// use rust_decimal::Decimal;
///
/// assert_eq!(calculate_tax(Decimal::new(1000, 2), Decimal::new(19, 0), 2).unwrap(), Decimal::new(190, 2));
/// ```
pub fn calculate_tax(
    net: Decimal,
    rate: Decimal,
    decimal_places: u32,
) -> Result<Decimal, DomainError> {
    Ok(TaxBreakdown::exclusive(net, rate, decimal_places)?.tax)
}

/// The gross of a net amount: `round(net) + calculate_tax(net)`.
///
/// ```
/// use billing_domain::taxation::calculate_gross;
/// use rust_decimal::Decimal;
///
/// assert_eq!(calculate_gross(Decimal::new(10000, 2), Decimal::new(19, 0), 2).unwrap(), Decimal::new(11900, 2));
/// ```
pub fn calculate_gross(
    net: Decimal,
    rate: Decimal,
    decimal_places: u32,
) -> Result<Decimal, DomainError> {
    Ok(TaxBreakdown::exclusive(net, rate, decimal_places)?.gross)
}

/// The net contained in a gross amount: `round(gross × 100 / (100 + rate))`.
///
/// ```
/// use billing_domain::taxation::extract_net;
/// use rust_decimal::Decimal;
///
/// assert_eq!(extract_net(Decimal::new(11900, 2), Decimal::new(19, 0), 2).unwrap(), Decimal::new(10000, 2));
/// ```
pub fn extract_net(
    gross: Decimal,
    rate: Decimal,
    decimal_places: u32,
) -> Result<Decimal, DomainError> {
    Ok(TaxBreakdown::inclusive(gross, rate, decimal_places)?.net)
}

impl tax::Model {
    /// The tax on a net amount at this tax's current rate (see
    /// [`calculate_tax`]); `is_inclusive` plays no part.
    pub fn calculate(&self, net: Decimal, decimal_places: u32) -> Result<Decimal, DomainError> {
        calculate_tax(net, self.rate.get(), decimal_places)
    }

    /// The gross of a net amount at this tax's current rate (see
    /// [`calculate_gross`]).
    pub fn calculate_gross(
        &self,
        net: Decimal,
        decimal_places: u32,
    ) -> Result<Decimal, DomainError> {
        calculate_gross(net, self.rate.get(), decimal_places)
    }

    /// The net contained in a gross amount at this tax's current rate (see
    /// [`extract_net`]).
    pub fn extract_net(&self, gross: Decimal, decimal_places: u32) -> Result<Decimal, DomainError> {
        extract_net(gross, self.rate.get(), decimal_places)
    }

    /// Splits a price at the current rate: the price is the gross when the
    /// tax is inclusive, the net otherwise. Does not look at `is_active`; use
    /// [`AppliedTax::current`] or [`AppliedTax::in_force`] for new invoices.
    pub fn breakdown(
        &self,
        price: Decimal,
        decimal_places: u32,
    ) -> Result<TaxBreakdown, DomainError> {
        AppliedTax::new(self.rate.get(), self.is_inclusive)?.breakdown(price, decimal_places)
    }

    /// Checks a tax row before it is written: a valid rate and an ISO 3166-1
    /// alpha-2 country code in upper case.
    pub fn validate(&self) -> Result<(), DomainError> {
        validate_tax_rate(self.rate.get())?;
        let country = crate::iso3166::validate_country_code(&self.country_code)?;
        if country != self.country_code {
            return Err(DomainError::InvalidCountryCode {
                code: self.country_code.clone(),
            });
        }
        Ok(())
    }
}

pub use crate::rate_history::{rate_in_force, validate_rate_history};

#[cfg(test)]
pub(crate) mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::Numeric;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn at(y: i32, m: u32, day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, day, 0, 0, 0).unwrap()
    }

    pub(crate) fn tax(rate: &str, is_inclusive: bool) -> tax::Model {
        tax::Model {
            id: 1,
            name: "German VAT".to_owned(),
            code: "DE_VAT".to_owned(),
            description: None,
            rate: Numeric(d(rate)),
            country_code: "DE".to_owned(),
            region_code: None,
            is_active: true,
            is_inclusive,
            created_at: at(2026, 1, 1),
            updated_at: at(2026, 1, 1),
            version: 1,
        }
    }

    pub(crate) fn row(
        id: i64,
        rate: &str,
        from: DateTime<Utc>,
        to: Option<DateTime<Utc>>,
    ) -> tax_rate::Model {
        tax_rate::Model {
            id,
            tax_id: 1,
            rate: Numeric(d(rate)),
            valid_from: from,
            valid_to: to,
            created_at: from,
            updated_at: from,
            version: 1,
        }
    }

    #[test]
    fn exclusive_19_percent_of_10_eur() {
        let b = TaxBreakdown::exclusive(d("10.00"), d("19"), 2).unwrap();
        assert_eq!(b.net, d("10.00"));
        assert_eq!(b.tax, d("1.90"));
        assert_eq!(b.gross, d("11.90"));
        assert_eq!(b.tax.to_string(), "1.90");
    }

    #[test]
    fn exclusive_tax_rounds_half_away_from_zero() {
        // 7 % of 0.50 = 0.035 → 0.04
        assert_eq!(calculate_tax(d("0.50"), d("7"), 2).unwrap(), d("0.04"));
        // 19 % of 0.05 = 0.0095 → 0.01
        assert_eq!(calculate_tax(d("0.05"), d("19"), 2).unwrap(), d("0.01"));
        // 7.7 % of 99.90 = 7.6923 → 7.69
        assert_eq!(calculate_tax(d("99.90"), d("7.7"), 2).unwrap(), d("7.69"));
        // 10 % of 1235 JPY = 123.5 → 124
        assert_eq!(calculate_tax(d("1235"), d("10"), 0).unwrap(), d("124"));
        // 5 % of 1.005 KWD = 0.05025 → 0.050
        assert_eq!(calculate_tax(d("1.005"), d("5"), 3).unwrap(), d("0.050"));
    }

    #[test]
    fn exclusive_rounds_an_over_precise_net_first() {
        let b = TaxBreakdown::exclusive(d("10.005"), d("19"), 2).unwrap();
        assert_eq!(b.net, d("10.01"));
        assert_eq!(b.tax, d("1.90"));
        assert_eq!(b.gross, d("11.91"));
    }

    #[test]
    fn inclusive_19_percent_of_119_eur() {
        let b = TaxBreakdown::inclusive(d("119.00"), d("19"), 2).unwrap();
        assert_eq!(b.net, d("100.00"));
        assert_eq!(b.tax, d("19.00"));
        assert_eq!(b.gross, d("119.00"));
    }

    #[test]
    fn inclusive_with_rounding() {
        // 9.99 / 1.19 = 8.3949… → 8.39, tax 1.60
        let b = TaxBreakdown::inclusive(d("9.99"), d("19"), 2).unwrap();
        assert_eq!((b.net, b.tax, b.gross), (d("8.39"), d("1.60"), d("9.99")));
        // 1000 JPY incl. 10 % = 909.09… → 909, tax 91
        let b = TaxBreakdown::inclusive(d("1000"), d("10"), 0).unwrap();
        assert_eq!((b.net, b.tax, b.gross), (d("909"), d("91"), d("1000")));
    }

    #[test]
    fn zero_rate_and_zero_amount() {
        let b = TaxBreakdown::exclusive(d("12.34"), d("0"), 2).unwrap();
        assert_eq!((b.net, b.tax, b.gross), (d("12.34"), d("0"), d("12.34")));
        assert_eq!(b.tax.to_string(), "0.00");
        let b = TaxBreakdown::inclusive(d("0"), d("19"), 2).unwrap();
        assert_eq!((b.net, b.tax, b.gross), (d("0"), d("0"), d("0")));
        let b = TaxBreakdown::untaxed(d("5"), 2).unwrap();
        assert_eq!(b.gross.to_string(), "5.00");
        assert_eq!(b.tax.to_string(), "0.00");
    }

    #[test]
    fn hundred_percent_rate() {
        let b = TaxBreakdown::inclusive(d("10.01"), d("100"), 2).unwrap();
        // 10.01 / 2 = 5.005 → 5.01 net, 5.00 tax
        assert_eq!((b.net, b.tax), (d("5.01"), d("5.00")));
    }

    #[test]
    fn gross_and_net_round_trip() {
        let gross = calculate_gross(d("100.00"), d("19"), 2).unwrap();
        assert_eq!(gross, d("119.00"));
        assert_eq!(extract_net(gross, d("19"), 2).unwrap(), d("100.00"));
        let gross = calculate_gross(d("0.01"), d("19"), 2).unwrap();
        assert_eq!(gross, d("0.01"));
        assert_eq!(extract_net(gross, d("19"), 2).unwrap(), d("0.01"));
    }

    #[test]
    fn negative_amounts_are_symmetric() {
        let b = TaxBreakdown::exclusive(d("-10.00"), d("19"), 2).unwrap();
        assert_eq!(
            (b.net, b.tax, b.gross),
            (d("-10.00"), d("-1.90"), d("-11.90"))
        );
    }

    #[test]
    fn invalid_inputs_are_refused() {
        assert_eq!(
            TaxBreakdown::exclusive(d("1"), d("-1"), 2),
            Err(DomainError::InvalidTaxRate { rate: d("-1") })
        );
        assert_eq!(
            TaxBreakdown::inclusive(d("1"), d("-100"), 2),
            Err(DomainError::InvalidTaxRate { rate: d("-100") })
        );
        assert_eq!(
            TaxBreakdown::exclusive(d("1"), d("19.00001"), 2),
            Err(DomainError::InvalidTaxRate {
                rate: d("19.00001")
            })
        );
        assert_eq!(
            TaxBreakdown::exclusive(d("1000000000000000"), d("19"), 2),
            Err(DomainError::AmountOutOfRange {
                amount: d("1000000000000000")
            })
        );
        assert_eq!(
            TaxBreakdown::exclusive(d("1"), d("19"), 5),
            Err(DomainError::InvalidDecimalPlaces { got: 5 })
        );
        assert!(TaxBreakdown::exclusive(Decimal::MAX, d("19"), 2).is_err());
    }

    #[test]
    fn largest_storable_amounts_do_not_overflow() {
        let max = d("999999999999999.9999");
        let b = TaxBreakdown::exclusive(max, d("100"), 4).unwrap();
        assert_eq!(b.net + b.tax, b.gross);
        let b = TaxBreakdown::inclusive(max, d("0.0001"), 4).unwrap();
        assert_eq!(b.net + b.tax, b.gross);
    }

    #[test]
    fn model_methods_use_rate_and_inclusiveness() {
        let exclusive = tax("19.0000", false);
        assert_eq!(exclusive.calculate(d("10.00"), 2).unwrap(), d("1.90"));
        assert_eq!(
            exclusive.calculate_gross(d("10.00"), 2).unwrap(),
            d("11.90")
        );
        assert_eq!(exclusive.extract_net(d("11.90"), 2).unwrap(), d("10.00"));
        let b = exclusive.breakdown(d("100.00"), 2).unwrap();
        assert_eq!(
            (b.net, b.tax, b.gross),
            (d("100.00"), d("19.00"), d("119.00"))
        );

        let inclusive = tax("19.0000", true);
        let b = inclusive.breakdown(d("119.00"), 2).unwrap();
        assert_eq!(
            (b.net, b.tax, b.gross),
            (d("100.00"), d("19.00"), d("119.00"))
        );
    }

    #[test]
    fn applied_tax_needs_an_active_tax() {
        let mut vat = tax("19", false);
        assert_eq!(AppliedTax::current(&vat).unwrap().rate(), d("19"));
        vat.is_active = false;
        assert_eq!(
            AppliedTax::current(&vat),
            Err(DomainError::TaxInactive {
                code: "DE_VAT".to_owned()
            })
        );
    }

    #[test]
    fn applied_tax_uses_the_historical_rate_and_ignores_other_taxes() {
        let vat = tax("19", false);
        let mut other = row(9, "50", at(2000, 1, 1), None);
        other.tax_id = 2;
        let history = [
            row(1, "19", at(2007, 1, 1), Some(at(2020, 7, 1))),
            row(2, "16", at(2020, 7, 1), Some(at(2021, 1, 1))),
            row(3, "19", at(2021, 1, 1), None),
            other,
        ];
        let applied = AppliedTax::in_force(&vat, &history, at(2020, 8, 1)).unwrap();
        assert_eq!(applied.rate(), d("16"));
        assert!(!applied.is_inclusive());
        assert_eq!(
            AppliedTax::in_force(&vat, &history, at(2001, 1, 1)),
            Err(DomainError::NoRateInForce { at: at(2001, 1, 1) })
        );
        assert!(AppliedTax::in_force(&vat, &[], at(2026, 1, 1)).is_err());
    }

    #[test]
    fn rate_in_force_uses_half_open_intervals() {
        let history = [
            row(1, "19", at(2007, 1, 1), Some(at(2020, 7, 1))),
            row(2, "16", at(2020, 7, 1), Some(at(2021, 1, 1))),
        ];
        let just_before = at(2020, 7, 1) - chrono::TimeDelta::nanoseconds(1);
        assert_eq!(rate_in_force(&history, just_before).unwrap(), d("19"));
        assert_eq!(rate_in_force(&history, at(2020, 7, 1)).unwrap(), d("16"));
        assert_eq!(
            rate_in_force(&history, at(2021, 1, 1)),
            Err(DomainError::NoRateInForce { at: at(2021, 1, 1) })
        );
        assert_eq!(
            rate_in_force(&history, at(2006, 12, 31)),
            Err(DomainError::NoRateInForce {
                at: at(2006, 12, 31)
            })
        );
    }

    #[test]
    fn rate_in_force_refuses_to_guess_between_overlapping_rates() {
        let history = [
            row(2, "16", at(2020, 7, 1), None),
            row(1, "19", at(2007, 1, 1), None),
        ];
        assert_eq!(
            rate_in_force(&history, at(2021, 1, 1)),
            Err(DomainError::OverlappingTaxRates {
                first_id: 1,
                second_id: 2
            })
        );
    }

    #[test]
    fn history_validation() {
        let good = [
            row(3, "19", at(2021, 1, 1), None),
            row(1, "19", at(2007, 1, 1), Some(at(2020, 7, 1))),
            row(2, "16", at(2020, 7, 1), Some(at(2021, 1, 1))),
        ];
        assert_eq!(validate_rate_history(&good), Ok(()));
        assert_eq!(validate_rate_history(&[]), Ok(()));

        let with_gap = [
            row(1, "19", at(2007, 1, 1), Some(at(2010, 1, 1))),
            row(2, "16", at(2011, 1, 1), None),
        ];
        assert_eq!(validate_rate_history(&with_gap), Ok(()));

        let overlapping = [
            row(1, "19", at(2007, 1, 1), Some(at(2020, 7, 2))),
            row(2, "16", at(2020, 7, 1), None),
        ];
        assert_eq!(
            validate_rate_history(&overlapping),
            Err(DomainError::OverlappingTaxRates {
                first_id: 1,
                second_id: 2
            })
        );

        let empty_interval = [row(1, "19", at(2007, 1, 1), Some(at(2007, 1, 1)))];
        assert_eq!(
            validate_rate_history(&empty_interval),
            Err(DomainError::InvalidRateInterval { id: 1 })
        );

        let bad_rate = [row(1, "190", at(2007, 1, 1), None)];
        assert!(matches!(
            validate_rate_history(&bad_rate),
            Err(DomainError::InvalidTaxRate { .. })
        ));

        // Open rows of two different taxes do not overlap each other.
        let mut other = row(5, "20", at(2007, 1, 1), None);
        other.tax_id = 2;
        let two_taxes = [row(1, "19", at(2007, 1, 1), None), other];
        assert_eq!(validate_rate_history(&two_taxes), Ok(()));
    }

    #[test]
    fn tax_row_validation() {
        assert_eq!(tax("19", false).validate(), Ok(()));
        let mut bad = tax("19", false);
        bad.country_code = "de".to_owned();
        assert!(matches!(
            bad.validate(),
            Err(DomainError::InvalidCountryCode { .. })
        ));
        assert!(matches!(
            tax("119", false).validate(),
            Err(DomainError::InvalidTaxRate { .. })
        ));
    }
}
