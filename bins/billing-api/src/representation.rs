//! How domain values are written in response bodies.
//!
//! - Money is a decimal **string** with at least the currency's minor
//!   units and every significant digit the stored value has
//!   ([`billing_domain::money::canonical`], which never rounds): PostgreSQL
//!   returns `NUMERIC(19,4)` as `10.0000` and SQLite keeps `10.00`; both
//!   are written `"10.00"` (`"1600"` in JPY).
//! - Exchange rates and tax rates are decimal strings with at least two
//!   decimals: `"1.08"`, `"19.00"`, `"0.92592593"`.
//! - Timestamps are RFC 3339 in UTC with `Z` (chrono's serde format for
//!   `DateTime<Utc>`), with the stored microseconds when there are any:
//!   `"2026-11-24T10:00:00.123456Z"`.

use billing_domain::Numeric;
use billing_domain::{iso4217, money};

/// Decimals a rate is written with at least.
const RATE_DECIMALS: u32 = 2;

/// Decimals assumed for a currency that ISO 4217 does not list (never
/// fewer digits than stored are written, whatever this is).
const FALLBACK_MINOR_UNITS: u32 = 2;

/// An amount in `currency` (ISO 4217 code), as written in responses.
#[must_use]
pub fn money(amount: Numeric, currency: &str) -> String {
    let places = iso4217::minor_units(currency).unwrap_or(FALLBACK_MINOR_UNITS);
    money::canonical(amount.get(), places).to_string()
}

/// An exchange rate or a tax rate (percent), as written in responses.
#[must_use]
pub fn rate(rate: Numeric) -> String {
    money::canonical(rate.get(), RATE_DECIMALS).to_string()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};
    use rust_decimal::Decimal;

    use super::*;

    fn n(text: &str) -> Numeric {
        text.parse().unwrap()
    }

    #[test]
    fn money_has_the_minor_units_of_its_currency_and_never_rounds() {
        assert_eq!(money(n("10.0000"), "EUR"), "10.00");
        assert_eq!(money(n("10.00"), "EUR"), "10.00");
        assert_eq!(money(n("10"), "EUR"), "10.00");
        assert_eq!(money(n("1600.0000"), "JPY"), "1600");
        assert_eq!(money(n("1.5000"), "KWD"), "1.500");
        assert_eq!(money(n("10.1234"), "EUR"), "10.1234");
        assert_eq!(money(n("0.0000"), "EUR"), "0.00");
        assert_eq!(money(n("7.1"), "XXZ"), "7.10");
    }

    #[test]
    fn rates_have_at_least_two_decimals() {
        assert_eq!(rate(n("19.0000")), "19.00");
        assert_eq!(rate(n("1.08000000")), "1.08");
        assert_eq!(rate(n("0.92592593")), "0.92592593");
        assert_eq!(rate(Numeric(Decimal::ONE)), "1.00");
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_z() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap();
        assert_eq!(
            serde_json::to_value(at).unwrap(),
            serde_json::json!("2026-11-24T10:00:00Z")
        );
        let micros: DateTime<Utc> = at + chrono::TimeDelta::microseconds(123_456);
        assert_eq!(
            serde_json::to_value(micros).unwrap(),
            serde_json::json!("2026-11-24T10:00:00.123456Z")
        );
    }
}
