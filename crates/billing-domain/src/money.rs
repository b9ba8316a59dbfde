//! Money: the rounding rule, amount validation and display formatting.
//!
//! Amounts are [`Decimal`]s, never floats. The one rounding rule of the crate
//! is [`round_for_customer`]: **round half away from zero to the currency's
//! minor units**. It is applied only to amounts a customer sees or pays
//! (prices, converted prices, tax, net and gross); every intermediate result
//! keeps full precision.
//!
//! Stored amounts are `NUMERIC(19,4)`: at most four decimal places and an
//! absolute value below 10^15. [`validate_price`] and [`validate_storable`]
//! enforce that before anything reaches the database.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::error::DomainError;

/// The most minor units a currency may have: amounts are stored with four
/// decimal places (`NUMERIC(19,4)`).
pub const MAX_DECIMAL_PLACES: u32 = 4;

/// The smallest absolute value that no longer fits `NUMERIC(19,4)`
/// (15 integer digits): 10^15.
///
/// ```
/// use billing_domain::money::AMOUNT_LIMIT;
/// assert_eq!(AMOUNT_LIMIT.to_string(), "1000000000000000");
/// ```
pub const AMOUNT_LIMIT: Decimal = Decimal::from_parts(0xA4C6_8000, 0x0003_8D7E, 0, false, 0);

/// The rounding strategy of [`round_for_customer`]: half away from zero.
pub const CUSTOMER_ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

/// Rounds an amount the way it is shown to and charged from customers: half
/// away from zero, to `decimal_places` decimals.
///
/// The result has exactly `decimal_places` decimals (so it prints as `19.90`,
/// not `19.9`) and is never a negative zero. This is the only rounding rule of
/// the crate; intermediate results are never rounded.
///
/// ```
/// use billing_domain::money::round_for_customer;
/// use rust_decimal::Decimal;
///
/// let d = |s: &str| s.parse::<Decimal>().unwrap();
/// assert_eq!(round_for_customer(d("2.345"), 2).to_string(), "2.35");
/// assert_eq!(round_for_customer(d("-2.345"), 2).to_string(), "-2.35");
/// assert_eq!(round_for_customer(d("1234.5"), 0).to_string(), "1235");
/// assert_eq!(round_for_customer(d("19.9"), 2).to_string(), "19.90");
/// assert_eq!(round_for_customer(d("-0.001"), 2).to_string(), "0.00");
/// ```
#[must_use]
pub fn round_for_customer(amount: Decimal, decimal_places: u32) -> Decimal {
    let mut rounded = amount.round_dp_with_strategy(decimal_places, CUSTOMER_ROUNDING);
    if rounded.scale() < decimal_places {
        // Only pads with zeros; never changes the value.
        rounded.rescale(decimal_places);
    }
    if rounded.is_zero() {
        rounded.set_sign_positive(true);
    }
    rounded
}

/// The smallest amount of a currency with `decimal_places` minor units:
/// `0.01` for 2, `1` for 0.
///
/// ```
/// use billing_domain::money::minor_unit;
/// assert_eq!(minor_unit(2).to_string(), "0.01");
/// assert_eq!(minor_unit(0).to_string(), "1");
/// ```
#[must_use]
pub fn minor_unit(decimal_places: u32) -> Decimal {
    Decimal::new(1, decimal_places.min(Decimal::MAX_SCALE))
}

/// Checks the minor units of a currency (`0..=4`) and returns them as `u32`.
///
/// ```
/// use billing_domain::money::validate_decimal_places;
/// assert_eq!(validate_decimal_places(2), Ok(2));
/// assert!(validate_decimal_places(5).is_err());
/// assert!(validate_decimal_places(-1).is_err());
/// ```
pub fn validate_decimal_places(decimal_places: i16) -> Result<u32, DomainError> {
    match u32::try_from(decimal_places) {
        Ok(dp) if dp <= MAX_DECIMAL_PLACES => Ok(dp),
        Ok(_) | Err(_) => Err(DomainError::InvalidDecimalPlaces {
            got: i64::from(decimal_places),
        }),
    }
}

/// The number of decimal places of `amount`, trailing zeros ignored
/// (`1.50` has 1).
#[must_use]
pub fn significant_decimals(amount: Decimal) -> u32 {
    amount.normalize().scale()
}

/// Checks that an amount fits the storage type `NUMERIC(19,4)`: absolute
/// value below 10^15 and at most four decimal places (trailing zeros ignored).
/// Negative amounts pass; use [`validate_price`] for prices.
///
/// ```
/// use billing_domain::money::validate_storable;
/// use rust_decimal::Decimal;
///
/// let d = |s: &str| s.parse::<Decimal>().unwrap();
/// assert!(validate_storable(d("999999999999999.9999")).is_ok());
/// assert!(validate_storable(d("1000000000000000")).is_err());
/// assert!(validate_storable(d("0.00001")).is_err());
/// assert!(validate_storable(d("0.10000")).is_ok());
/// ```
pub fn validate_storable(amount: Decimal) -> Result<Decimal, DomainError> {
    if amount.abs() >= AMOUNT_LIMIT {
        return Err(DomainError::AmountOutOfRange { amount });
    }
    let got = significant_decimals(amount);
    if got > MAX_DECIMAL_PLACES {
        return Err(DomainError::TooManyDecimals {
            allowed: MAX_DECIMAL_PLACES,
            got,
        });
    }
    Ok(amount)
}

/// Validates a price in a currency with `decimal_places` minor units: not
/// negative, no more decimals than the currency allows (trailing zeros
/// ignored), and storable in `NUMERIC(19,4)`.
///
/// Returns the price with exactly `decimal_places` decimals (`19.9` →
/// `19.90`); the value is never changed, so nothing is rounded away silently.
///
/// ```
/// use billing_domain::DomainError;
/// use billing_domain::money::validate_price;
/// use rust_decimal::Decimal;
///
/// let d = |s: &str| s.parse::<Decimal>().unwrap();
/// assert_eq!(validate_price(d("19.9"), 2).unwrap().to_string(), "19.90");
/// assert_eq!(validate_price(d("1000.000"), 0).unwrap().to_string(), "1000");
/// assert_eq!(
///     validate_price(d("19.999"), 2),
///     Err(DomainError::TooManyDecimals { allowed: 2, got: 3 })
/// );
/// assert!(matches!(validate_price(d("-1"), 2), Err(DomainError::NegativeAmount { .. })));
/// ```
pub fn validate_price(amount: Decimal, decimal_places: u32) -> Result<Decimal, DomainError> {
    if decimal_places > MAX_DECIMAL_PLACES {
        return Err(DomainError::InvalidDecimalPlaces {
            got: i64::from(decimal_places),
        });
    }
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(DomainError::NegativeAmount { amount });
    }
    let got = significant_decimals(amount);
    if got > decimal_places {
        return Err(DomainError::TooManyDecimals {
            allowed: decimal_places,
            got,
        });
    }
    validate_storable(amount)?;
    Ok(round_for_customer(amount, decimal_places))
}

/// An amount in its canonical written form: at least `decimal_places`
/// decimals, and every significant decimal it has beyond them. It never
/// rounds, so it is safe for any stored value; it makes the same amount read
/// the same whether the database kept it as `10.0000` (PostgreSQL
/// `NUMERIC(19,4)`) or as `10.00` (SQLite text).
///
/// ```
/// use billing_domain::money::canonical;
/// use rust_decimal::Decimal;
///
/// let d = |s: &str| s.parse::<Decimal>().unwrap();
/// assert_eq!(canonical(d("10.0000"), 2).to_string(), "10.00");
/// assert_eq!(canonical(d("1600.0000"), 0).to_string(), "1600");
/// assert_eq!(canonical(d("10.1234"), 2).to_string(), "10.1234");
/// assert_eq!(canonical(d("19"), 2).to_string(), "19.00");
/// ```
#[must_use]
pub fn canonical(amount: Decimal, decimal_places: u32) -> Decimal {
    let significant = amount.normalize().scale();
    let mut written = amount;
    written.rescale(decimal_places.max(significant));
    written
}

/// Formats an amount for display: rounded by [`round_for_customer`], `,`
/// between thousands, `.` before the decimals, exactly `decimal_places`
/// decimals; the symbol in front when there is one, otherwise the code after
/// the amount. A minus sign goes first: `-€1.00`.
///
/// ```
/// use billing_domain::money::format_amount;
/// use rust_decimal::Decimal;
///
/// let d = |s: &str| s.parse::<Decimal>().unwrap();
/// assert_eq!(format_amount(d("1234.5"), 2, Some("€"), "EUR"), "€1,234.50");
/// assert_eq!(format_amount(d("1234.5"), 0, Some("¥"), "JPY"), "¥1,235");
/// assert_eq!(format_amount(d("1234.5"), 3, None, "KWD"), "1,234.500 KWD");
/// assert_eq!(format_amount(d("-1"), 2, Some("€"), "EUR"), "-€1.00");
/// ```
#[must_use]
pub fn format_amount(
    amount: Decimal,
    decimal_places: u32,
    symbol: Option<&str>,
    code: &str,
) -> String {
    let decimal_places = decimal_places.min(Decimal::MAX_SCALE);
    let rounded = round_for_customer(amount, decimal_places);
    let negative = rounded.is_sign_negative() && !rounded.is_zero();
    let precision = usize::try_from(decimal_places).unwrap_or(0);
    let digits = format!("{:.precision$}", rounded.abs());
    let (integer, fraction) = match digits.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (digits.as_str(), None),
    };

    let mut out = String::with_capacity(digits.len() + integer.len() / 3 + 8);
    if negative {
        out.push('-');
    }
    let symbol = symbol.map(str::trim).filter(|s| !s.is_empty());
    if let Some(symbol) = symbol {
        out.push_str(symbol);
    }
    let len = integer.len();
    for (i, c) in integer.chars().enumerate() {
        if i > 0 && (len - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(fraction) = fraction {
        out.push('.');
        out.push_str(fraction);
    }
    if symbol.is_none() {
        out.push(' ');
        out.push_str(code);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn amount_limit_is_ten_to_the_fifteenth() {
        assert_eq!(AMOUNT_LIMIT, d("1000000000000000"));
        assert_eq!(AMOUNT_LIMIT.scale(), 0);
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(round_for_customer(d("0.005"), 2), d("0.01"));
        assert_eq!(round_for_customer(d("0.015"), 2), d("0.02"));
        assert_eq!(round_for_customer(d("0.025"), 2), d("0.03")); // not banker's 0.02
        assert_eq!(round_for_customer(d("-0.005"), 2), d("-0.01"));
        assert_eq!(round_for_customer(d("0.0049999"), 2), d("0.00"));
        assert_eq!(round_for_customer(d("2.5"), 0), d("3"));
        assert_eq!(round_for_customer(d("-2.5"), 0), d("-3"));
        assert_eq!(round_for_customer(d("1.23456"), 3), d("1.235"));
        assert_eq!(round_for_customer(d("1.00005"), 4), d("1.0001"));
    }

    #[test]
    fn rounding_pads_to_the_minor_units_and_drops_negative_zero() {
        assert_eq!(round_for_customer(d("10"), 2).to_string(), "10.00");
        assert_eq!(round_for_customer(d("-0.004"), 2).to_string(), "0.00");
        assert_eq!(round_for_customer(d("0.4"), 0).to_string(), "0");
        assert_eq!(round_for_customer(d("-0.4"), 0).to_string(), "0");
    }

    #[test]
    fn rounding_is_idempotent() {
        let once = round_for_customer(d("123.4567"), 2);
        assert_eq!(round_for_customer(once, 2), once);
    }

    #[test]
    fn minor_units_of_common_currencies() {
        assert_eq!(minor_unit(0), d("1"));
        assert_eq!(minor_unit(2), d("0.01"));
        assert_eq!(minor_unit(3), d("0.001"));
    }

    #[test]
    fn decimal_places_must_be_zero_to_four() {
        assert_eq!(validate_decimal_places(0), Ok(0));
        assert_eq!(validate_decimal_places(4), Ok(4));
        assert_eq!(
            validate_decimal_places(5),
            Err(DomainError::InvalidDecimalPlaces { got: 5 })
        );
        assert_eq!(
            validate_decimal_places(-1),
            Err(DomainError::InvalidDecimalPlaces { got: -1 })
        );
    }

    #[test]
    fn price_validation_accepts_valid_prices() {
        assert_eq!(validate_price(d("0"), 2).unwrap().to_string(), "0.00");
        assert_eq!(validate_price(d("19.99"), 2).unwrap(), d("19.99"));
        assert_eq!(
            validate_price(d("19.990000"), 2).unwrap().to_string(),
            "19.99"
        );
        assert_eq!(validate_price(d("1235"), 0).unwrap().to_string(), "1235");
        assert_eq!(validate_price(d("1.234"), 3).unwrap().to_string(), "1.234");
        assert_eq!(
            validate_price(d("999999999999999.99"), 2).unwrap(),
            d("999999999999999.99")
        );
        // A negative zero is zero.
        assert_eq!(validate_price(d("-0.00"), 2).unwrap().to_string(), "0.00");
    }

    #[test]
    fn price_validation_rejects_negative_prices() {
        assert_eq!(
            validate_price(d("-0.01"), 2),
            Err(DomainError::NegativeAmount { amount: d("-0.01") })
        );
    }

    #[test]
    fn price_validation_rejects_too_many_decimals() {
        assert_eq!(
            validate_price(d("10.001"), 2),
            Err(DomainError::TooManyDecimals { allowed: 2, got: 3 })
        );
        assert_eq!(
            validate_price(d("1234.5"), 0),
            Err(DomainError::TooManyDecimals { allowed: 0, got: 1 })
        );
        assert_eq!(
            validate_price(d("0.00001"), 4),
            Err(DomainError::TooManyDecimals { allowed: 4, got: 5 })
        );
        // The currency's limit is reported, not the storage limit.
        assert_eq!(
            validate_price(d("10.00001"), 2),
            Err(DomainError::TooManyDecimals { allowed: 2, got: 5 })
        );
    }

    #[test]
    fn price_validation_rejects_amounts_beyond_numeric_19_4() {
        assert_eq!(
            validate_price(d("1000000000000000"), 2),
            Err(DomainError::AmountOutOfRange {
                amount: d("1000000000000000")
            })
        );
        assert!(validate_price(Decimal::MAX, 0).is_err());
    }

    #[test]
    fn price_validation_rejects_impossible_minor_units() {
        assert_eq!(
            validate_price(d("1"), 5),
            Err(DomainError::InvalidDecimalPlaces { got: 5 })
        );
    }

    #[test]
    fn formats_with_symbol_grouping_and_minor_units() {
        assert_eq!(format_amount(d("1234.5"), 2, Some("€"), "EUR"), "€1,234.50");
        assert_eq!(format_amount(d("1234.5"), 0, Some("¥"), "JPY"), "¥1,235");
        assert_eq!(format_amount(d("1234.5"), 3, None, "KWD"), "1,234.500 KWD");
        assert_eq!(format_amount(d("0"), 2, Some("$"), "USD"), "$0.00");
        assert_eq!(format_amount(d("999"), 2, Some("$"), "USD"), "$999.00");
        assert_eq!(format_amount(d("1000"), 2, Some("$"), "USD"), "$1,000.00");
        assert_eq!(
            format_amount(d("1234567.891"), 2, Some("£"), "GBP"),
            "£1,234,567.89"
        );
        assert_eq!(
            format_amount(d("999999999999999.9999"), 4, None, "CLF"),
            "999,999,999,999,999.9999 CLF"
        );
    }

    #[test]
    fn formats_negative_amounts_with_the_sign_first() {
        assert_eq!(format_amount(d("-1"), 2, Some("€"), "EUR"), "-€1.00");
        assert_eq!(
            format_amount(d("-1234.5"), 3, None, "KWD"),
            "-1,234.500 KWD"
        );
        assert_eq!(format_amount(d("-0.001"), 2, Some("€"), "EUR"), "€0.00");
    }

    #[test]
    fn a_blank_symbol_counts_as_none() {
        assert_eq!(format_amount(d("5"), 2, Some(" "), "CHF"), "5.00 CHF");
    }
}
