//! Currency rules: exchange-rate conversion, rounding, formatting and the
//! validation of a `currency` row.
//!
//! A currency's `exchange_rate` is the number of units of that currency per
//! one unit of the default currency (default EUR, USD at `1.08`: 1 EUR =
//! 1.08 USD). Conversions keep full precision; round once, at the end, with
//! [`currency::Model::round`] (the crate's one rounding rule).

use rust_decimal::{Decimal, RoundingStrategy};

use crate::entities::currency;
use crate::error::DomainError;
use crate::iso4217;
use crate::money::{self, round_for_customer};

/// The exchange-rate column is `NUMERIC(19,8)`: at most 8 decimal places.
pub const MAX_RATE_DECIMALS: u32 = 8;

/// The exchange-rate column is `NUMERIC(19,8)`: below 10^11.
const RATE_LIMIT: Decimal = Decimal::from_parts(0x4876_E800, 0x17, 0, false, 0);

/// Validates an exchange rate: strictly positive, at most 8 decimal places
/// and below 10^11 (`NUMERIC(19,8)`).
///
/// ```
/// use billing_domain::exchange::validate_exchange_rate;
/// use rust_decimal::Decimal;
///
/// assert!(validate_exchange_rate(Decimal::new(108, 2)).is_ok());
/// assert!(validate_exchange_rate(Decimal::ZERO).is_err());
/// assert!(validate_exchange_rate(Decimal::new(1, 9)).is_err());
/// ```
pub fn validate_exchange_rate(rate: Decimal) -> Result<Decimal, DomainError> {
    match rate_problem(rate) {
        None => Ok(rate),
        Some(reason) => Err(DomainError::InvalidExchangeRate { rate, reason }),
    }
}

/// What is wrong with an exchange rate, if anything (see
/// [`validate_exchange_rate`]).
fn rate_problem(rate: Decimal) -> Option<&'static str> {
    if rate.is_sign_negative() || rate.is_zero() {
        return Some("it must be greater than zero");
    }
    if money::significant_decimals(rate) > MAX_RATE_DECIMALS {
        return Some("it may have at most 8 decimal places");
    }
    if rate >= RATE_LIMIT {
        return Some("it must be below 100000000000");
    }
    None
}

/// The currencies as they must be stored once `new_default` (an ISO code
/// among them) is the default currency: it gets rate 1 and the flag, every
/// other currency loses the flag and gets its rate divided by the new
/// default's old rate (units of it per old default), rounded half away from
/// zero to 8 places. Every rebased rate must pass
/// [`validate_exchange_rate`], like a rate a client sends; otherwise the
/// whole switch is refused. The result keeps the order of `currencies`.
///
/// ```
/// use billing_domain::exchange::rebase_rates;
/// # use billing_domain::entities::currency;
/// # fn c(code: &str, rate: &str, is_default: bool) -> currency::Model {
/// #   serde_json::from_value(serde_json::json!({
/// #   "id": 1, "code": code, "name": code, "symbol": null, "exchange_rate": rate,
/// #   "decimal_places": 2, "is_default": is_default, "is_active": true,
/// #   "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "version": 1
/// # })).unwrap() }
/// let rebased = rebase_rates(&[c("EUR", "1", true), c("USD", "1.25", false)], "USD").unwrap();
/// assert_eq!(rebased[0].exchange_rate.get().to_string(), "0.8");
/// assert!(!rebased[0].is_default && rebased[1].is_default);
///
/// // 1000 JPY per EUR with BHD at 0.00000001 would be 10^11 JPY per BHD.
/// let refused = rebase_rates(
///     &[c("EUR", "1", true), c("BHD", "0.00000001", false), c("JPY", "1000", false)],
///     "BHD",
/// );
/// assert!(refused.unwrap_err().to_string().contains("JPY"));
/// ```
///
/// # Errors
/// [`DomainError::UnknownCurrency`] when `new_default` is not among
/// `currencies`; [`DomainError::InvalidExchangeRate`] when its stored rate
/// is invalid; [`DomainError::RebasedRateOutOfRange`] naming the first
/// currency whose rebased rate would be invalid.
pub fn rebase_rates(
    currencies: &[currency::Model],
    new_default: &str,
) -> Result<Vec<currency::Model>, DomainError> {
    let divisor = currencies
        .iter()
        .find(|c| c.code == new_default)
        .ok_or_else(|| DomainError::UnknownCurrency {
            code: new_default.to_owned(),
        })
        .and_then(|c| {
            if c.is_default {
                Ok(Decimal::ONE)
            } else {
                validate_exchange_rate(c.exchange_rate.get())
            }
        })?;
    currencies
        .iter()
        .map(|currency| {
            let mut rebased = currency.clone();
            if currency.code == new_default {
                rebased.is_default = true;
                rebased.exchange_rate = Decimal::ONE.into();
                return Ok(rebased);
            }
            let old = if currency.is_default {
                Decimal::ONE
            } else {
                currency.exchange_rate.get()
            };
            let rate = old
                .checked_div(divisor)
                .ok_or(DomainError::ArithmeticOverflow)?
                .round_dp_with_strategy(MAX_RATE_DECIMALS, RoundingStrategy::MidpointAwayFromZero);
            if let Some(reason) = rate_problem(rate) {
                return Err(DomainError::RebasedRateOutOfRange {
                    new_default: new_default.to_owned(),
                    code: currency.code.clone(),
                    rate,
                    reason,
                });
            }
            rebased.is_default = false;
            rebased.exchange_rate = rate.into();
            Ok(rebased)
        })
        .collect()
}

impl currency::Model {
    /// The currency's minor units as `u32`, checked to be within `0..=4`.
    ///
    /// ```
    /// # use billing_domain::entities::currency;
    /// # fn jpy() -> currency::Model { serde_json::from_value(serde_json::json!({
    /// #   "id": 2, "code": "JPY", "name": "Yen", "symbol": "¥", "exchange_rate": "160",
    /// #   "decimal_places": 0, "is_default": false, "is_active": true,
    /// #   "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "version": 1
    /// # })).unwrap() }
    /// assert_eq!(jpy().minor_units(), Ok(0));
    /// ```
    pub fn minor_units(&self) -> Result<u32, DomainError> {
        money::validate_decimal_places(self.decimal_places)
    }

    /// The rate used for conversion: 1 for the default currency, otherwise the
    /// stored rate, which must be valid.
    fn effective_rate(&self) -> Result<Decimal, DomainError> {
        if self.is_default {
            Ok(Decimal::ONE)
        } else {
            validate_exchange_rate(self.exchange_rate.get())
        }
    }

    /// Converts an amount of the default currency into this currency, at full
    /// precision (not rounded). The default currency converts to itself.
    ///
    /// ```
    /// # use billing_domain::entities::currency;
    /// # use rust_decimal::Decimal;
    /// # fn jpy() -> currency::Model { serde_json::from_value(serde_json::json!({
    /// #   "id": 2, "code": "JPY", "name": "Yen", "symbol": "¥", "exchange_rate": "160.5",
    /// #   "decimal_places": 0, "is_default": false, "is_active": true,
    /// #   "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "version": 1
    /// # })).unwrap() }
    /// let yen = jpy().convert_from_default(Decimal::new(999, 2)).unwrap(); // 9.99 EUR
    /// assert_eq!(yen, Decimal::new(1_603_395, 3)); // 1603.395 JPY, unrounded
    /// assert_eq!(jpy().round(yen).unwrap(), Decimal::new(1603, 0));
    /// ```
    pub fn convert_from_default(&self, amount: Decimal) -> Result<Decimal, DomainError> {
        let rate = self.effective_rate()?;
        amount
            .checked_mul(rate)
            .ok_or(DomainError::ArithmeticOverflow)
    }

    /// Converts an amount of this currency into the default currency, at full
    /// precision (not rounded; a quotient keeps 28 significant digits).
    ///
    /// ```
    /// # use billing_domain::entities::currency;
    /// # use rust_decimal::Decimal;
    /// # fn usd() -> currency::Model { serde_json::from_value(serde_json::json!({
    /// #   "id": 3, "code": "USD", "name": "US Dollar", "symbol": "$", "exchange_rate": "1.25",
    /// #   "decimal_places": 2, "is_default": false, "is_active": true,
    /// #   "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "version": 1
    /// # })).unwrap() }
    /// assert_eq!(usd().convert_to_default(Decimal::new(10, 0)).unwrap(), Decimal::new(8, 0));
    /// ```
    pub fn convert_to_default(&self, amount: Decimal) -> Result<Decimal, DomainError> {
        let rate = self.effective_rate()?;
        amount
            .checked_div(rate)
            .ok_or(DomainError::ArithmeticOverflow)
    }

    /// Rounds an amount to this currency's minor units with the crate's
    /// rounding rule ([`round_for_customer`]: half away from zero).
    pub fn round(&self, amount: Decimal) -> Result<Decimal, DomainError> {
        Ok(round_for_customer(amount, self.minor_units()?))
    }

    /// Validates a price in this currency (see [`money::validate_price`]).
    pub fn validate_price(&self, amount: Decimal) -> Result<Decimal, DomainError> {
        money::validate_price(amount, self.minor_units()?)
    }

    /// Formats an amount for display: `€1,234.50`, `¥1,235`, or
    /// `1,234.500 KWD` when the currency has no symbol (see
    /// [`money::format_amount`]). A row with invalid minor units (which
    /// [`validate`](Self::validate) refuses) is shown with at most 4 and at
    /// least 0 decimals.
    ///
    /// ```
    /// # use billing_domain::entities::currency;
    /// # use rust_decimal::Decimal;
    /// # fn kwd() -> currency::Model { serde_json::from_value(serde_json::json!({
    /// #   "id": 4, "code": "KWD", "name": "Kuwaiti Dinar", "symbol": null, "exchange_rate": "0.33",
    /// #   "decimal_places": 3, "is_default": false, "is_active": true,
    /// #   "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "version": 1
    /// # })).unwrap() }
    /// assert_eq!(kwd().format(Decimal::new(12345, 1)), "1,234.500 KWD");
    /// ```
    #[must_use]
    pub fn format(&self, amount: Decimal) -> String {
        let decimal_places = u32::try_from(self.decimal_places.clamp(0, 4)).unwrap_or(0);
        money::format_amount(amount, decimal_places, self.symbol.as_deref(), &self.code)
    }

    /// Checks a currency row before it is written: an active ISO 4217 code in
    /// upper case, minor units within `0..=4`, a valid exchange rate, and a
    /// rate of exactly 1 for the default currency.
    pub fn validate(&self) -> Result<(), DomainError> {
        let code = iso4217::validate_currency_code(&self.code)?;
        if code != self.code {
            return Err(DomainError::InvalidCurrencyCode {
                code: self.code.clone(),
            });
        }
        self.minor_units()?;
        let rate = validate_exchange_rate(self.exchange_rate.get())?;
        if self.is_default && rate != Decimal::ONE {
            return Err(DomainError::InvalidExchangeRate {
                rate,
                reason: "the default currency must have a rate of 1",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::Numeric;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// A currency row for tests.
    pub(crate) fn currency(
        code: &str,
        symbol: Option<&str>,
        rate: &str,
        decimal_places: i16,
        is_default: bool,
    ) -> currency::Model {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        currency::Model {
            id: 1,
            code: code.to_owned(),
            name: code.to_owned(),
            symbol: symbol.map(str::to_owned),
            exchange_rate: Numeric(d(rate)),
            decimal_places,
            is_default,
            is_active: true,
            created_at: at,
            updated_at: at,
            version: 1,
        }
    }

    #[test]
    fn rate_limit_is_ten_to_the_eleventh() {
        assert_eq!(RATE_LIMIT, d("100000000000"));
    }

    #[test]
    fn converts_from_the_default_currency_at_full_precision() {
        let jpy = currency("JPY", Some("¥"), "160.5", 0, false);
        assert_eq!(jpy.convert_from_default(d("9.99")).unwrap(), d("1603.395"));
        assert_eq!(jpy.round(d("1603.395")).unwrap(), d("1603"));
        assert_eq!(jpy.round(d("1603.5")).unwrap(), d("1604"));
        let kwd = currency("KWD", None, "0.3301", 3, false);
        assert_eq!(kwd.convert_from_default(d("100.00")).unwrap(), d("33.01"));
    }

    #[test]
    fn converts_to_the_default_currency_at_full_precision() {
        let usd = currency("USD", Some("$"), "1.08", 2, false);
        let eur = usd.convert_to_default(d("10.80")).unwrap();
        assert_eq!(eur, d("10"));
        let third = usd.convert_to_default(d("1")).unwrap();
        assert_eq!(usd.round(third).unwrap(), d("0.93")); // 0.9259…
        assert!(third.scale() > 20, "kept full precision: {third}");
    }

    #[test]
    fn the_default_currency_converts_to_itself() {
        let eur = currency("EUR", Some("€"), "1", 2, true);
        assert_eq!(eur.convert_from_default(d("12.34")).unwrap(), d("12.34"));
        assert_eq!(eur.convert_to_default(d("12.34")).unwrap(), d("12.34"));
    }

    #[test]
    fn a_zero_or_negative_rate_is_refused_not_divided_by() {
        let broken = currency("USD", Some("$"), "0", 2, false);
        assert!(matches!(
            broken.convert_to_default(d("1")),
            Err(DomainError::InvalidExchangeRate { .. })
        ));
        let negative = currency("USD", Some("$"), "-1.2", 2, false);
        assert!(matches!(
            negative.convert_from_default(d("1")),
            Err(DomainError::InvalidExchangeRate { .. })
        ));
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let big = currency("IDR", Some("Rp"), "99999999999", 2, false);
        assert_eq!(
            big.convert_from_default(Decimal::MAX),
            Err(DomainError::ArithmeticOverflow)
        );
    }

    #[test]
    fn formats_eur_jpy_kwd() {
        let eur = currency("EUR", Some("€"), "1", 2, true);
        let jpy = currency("JPY", Some("¥"), "160", 0, false);
        let kwd = currency("KWD", None, "0.33", 3, false);
        assert_eq!(eur.format(d("1234.5")), "€1,234.50");
        assert_eq!(jpy.format(d("1234.5")), "¥1,235");
        assert_eq!(kwd.format(d("1234.5")), "1,234.500 KWD");
        assert_eq!(eur.format(d("-1")), "-€1.00");
        assert_eq!(eur.format(d("0.005")), "€0.01");
    }

    #[test]
    fn exchange_rate_validation() {
        assert_eq!(validate_exchange_rate(d("1.08")), Ok(d("1.08")));
        assert_eq!(validate_exchange_rate(d("0.00000001")), Ok(d("0.00000001")));
        assert_eq!(
            validate_exchange_rate(d("99999999999.99999999")),
            Ok(d("99999999999.99999999"))
        );
        for bad in ["0", "-1", "0.000000001", "100000000000"] {
            assert!(
                matches!(
                    validate_exchange_rate(d(bad)),
                    Err(DomainError::InvalidExchangeRate { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn row_validation() {
        assert_eq!(currency("EUR", Some("€"), "1", 2, true).validate(), Ok(()));
        assert_eq!(
            currency("JPY", Some("¥"), "160", 0, false).validate(),
            Ok(())
        );
        assert!(matches!(
            currency("eur", Some("€"), "1", 2, true).validate(),
            Err(DomainError::InvalidCurrencyCode { .. })
        ));
        assert!(matches!(
            currency("XYZ", None, "1", 2, false).validate(),
            Err(DomainError::InvalidCurrencyCode { .. })
        ));
        assert_eq!(
            currency("EUR", Some("€"), "1", 5, true).validate(),
            Err(DomainError::InvalidDecimalPlaces { got: 5 })
        );
        assert!(matches!(
            currency("EUR", Some("€"), "1.1", 2, true).validate(),
            Err(DomainError::InvalidExchangeRate { .. })
        ));
        assert!(matches!(
            currency("USD", Some("$"), "0", 2, false).validate(),
            Err(DomainError::InvalidExchangeRate { .. })
        ));
    }

    #[test]
    fn rebasing_divides_every_rate_and_validates_it() {
        let eur = currency("EUR", Some("€"), "1", 2, true);
        let bhd = currency("BHD", None, "0.00000001", 3, false);
        let jpy = currency("JPY", Some("¥"), "1000", 0, false);
        let usd = currency("USD", Some("$"), "1.08", 2, false);
        let rebased = rebase_rates(&[eur.clone(), usd.clone(), jpy.clone()], "USD").unwrap();
        let rates: Vec<_> = rebased
            .iter()
            .map(|c| (c.code.as_str(), c.exchange_rate.get(), c.is_default))
            .collect();
        assert_eq!(
            rates,
            [
                ("EUR", d("0.92592593"), false),
                ("USD", d("1"), true),
                ("JPY", d("925.92592593"), false),
            ]
        );

        // Out of range (10^11) and rounding to zero are both refused.
        let all = [eur.clone(), bhd.clone(), jpy, usd];
        assert_eq!(
            rebase_rates(&all, "BHD"),
            Err(DomainError::RebasedRateOutOfRange {
                new_default: "BHD".into(),
                code: "JPY".into(),
                rate: d("100000000000"),
                reason: "it must be below 100000000000",
            })
        );
        let big = currency("IDR", None, "300000000", 2, false);
        assert!(matches!(
            rebase_rates(&[eur.clone(), bhd, big], "IDR"),
            Err(DomainError::RebasedRateOutOfRange { ref code, .. }) if code == "EUR"
        ));
        assert!(matches!(
            rebase_rates(std::slice::from_ref(&eur), "USD"),
            Err(DomainError::UnknownCurrency { .. })
        ));
        // The default on itself changes nothing.
        assert_eq!(
            rebase_rates(std::slice::from_ref(&eur), "EUR").unwrap(),
            [eur]
        );
    }

    #[test]
    fn validates_prices_with_the_currency_minor_units() {
        let jpy = currency("JPY", Some("¥"), "160", 0, false);
        assert_eq!(jpy.validate_price(d("1000")), Ok(d("1000")));
        assert_eq!(
            jpy.validate_price(d("1000.5")),
            Err(DomainError::TooManyDecimals { allowed: 0, got: 1 })
        );
    }
}
