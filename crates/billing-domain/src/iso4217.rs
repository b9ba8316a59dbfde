//! ISO 4217 currency codes and their minor units.
//!
//! The table holds every code of ISO 4217 list one (as published for
//! 2026-01-01) that has defined minor units: the currencies in circulation and
//! the fund codes (`CLF`, `USN`, `UYW` …). It leaves out the codes without
//! minor units (precious metals `XAU`/`XAG`/`XPD`/`XPT`, the bond-market units
//! `XBA`–`XBD`, `XDR`, `XSU`, `XUA`, the test code `XTS` and `XXX`) and
//! withdrawn codes such as `BGN` (replaced by `EUR` on 2026-01-01), `ANG`
//! (replaced by `XCG`), `HRK`, `SLL`, `ZWL` and `CUC`, so typos and dead
//! currencies are refused. When ISO amends the list, amend [`CURRENCIES`].

use crate::error::DomainError;
use crate::values::CurrencyCode;

/// `(code, minor units)` of every active ISO 4217 code with minor units,
/// sorted by code.
pub const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BOV", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHE", 2),
    ("CHF", 2),
    ("CHW", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("COU", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MXV", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("USN", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAD", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// Upper-cases `code` if it is three ASCII letters.
fn normalise(code: &str) -> Option<[u8; 3]> {
    match code.as_bytes() {
        &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_alphabetic) => Some([
            a.to_ascii_uppercase(),
            b.to_ascii_uppercase(),
            c.to_ascii_uppercase(),
        ]),
        _ => None,
    }
}

/// The table's row of `code`, in any letter case.
pub(crate) fn lookup(code: &str) -> Option<(&'static str, u32)> {
    let key = normalise(code)?;
    CURRENCIES
        .binary_search_by(|(c, _)| c.as_bytes().cmp(&key[..]))
        .ok()
        .and_then(|i| CURRENCIES.get(i).copied())
}

/// The minor units of an active ISO 4217 currency (case-insensitive), the
/// default `decimal_places` of a new currency.
///
/// ```
/// use billing_domain::iso4217::minor_units;
/// assert_eq!(minor_units("EUR"), Some(2));
/// assert_eq!(minor_units("JPY"), Some(0));
/// assert_eq!(minor_units("kwd"), Some(3));
/// assert_eq!(minor_units("XYZ"), None);
/// ```
#[must_use]
pub fn minor_units(code: &str) -> Option<u32> {
    lookup(code).map(|(_, units)| units)
}

/// Whether `code` (case-insensitive) is an active ISO 4217 code.
///
/// ```
/// use billing_domain::iso4217::is_active;
/// assert!(is_active("USD"));
/// assert!(!is_active("HRK")); // withdrawn in 2023
/// ```
#[must_use]
pub fn is_active(code: &str) -> bool {
    lookup(code).is_some()
}

/// Validates a currency code and returns it upper-case: three ASCII letters
/// (lower case accepted) forming an active ISO 4217 code.
///
/// ```
/// use billing_domain::iso4217::validate_currency_code;
/// assert_eq!(validate_currency_code("eur").unwrap(), "EUR");
/// assert!(validate_currency_code("XYZ").is_err());
/// assert!(validate_currency_code("EURO").is_err());
/// ```
pub fn validate_currency_code(code: &str) -> Result<String, DomainError> {
    CurrencyCode::parse(code).map(CurrencyCode::into_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        for pair in CURRENCIES.windows(2) {
            if let [a, b] = pair {
                assert!(a.0 < b.0, "{} must come before {}", a.0, b.0);
            }
        }
        for (code, units) in CURRENCIES {
            assert_eq!(code.len(), 3);
            assert!(code.bytes().all(|b| b.is_ascii_uppercase()), "{code}");
            assert!(*units <= 4, "{code}");
        }
        assert_eq!(CURRENCIES.len(), 165);
    }

    #[test]
    fn minor_units_of_known_currencies() {
        for (code, units) in [
            ("EUR", 2),
            ("USD", 2),
            ("GBP", 2),
            ("CHF", 2),
            ("JPY", 0),
            ("KRW", 0),
            ("ISK", 0),
            ("KWD", 3),
            ("BHD", 3),
            ("TND", 3),
            ("CLF", 4),
            ("AED", 2),
            ("ZWG", 2),
        ] {
            assert_eq!(minor_units(code), Some(units), "{code}");
        }
    }

    #[test]
    fn validation_upper_cases_and_refuses_unknown_or_malformed_codes() {
        assert_eq!(validate_currency_code("EUR"), Ok("EUR".to_owned()));
        assert_eq!(validate_currency_code("jPy"), Ok("JPY".to_owned()));
        for bad in [
            "", "EU", "EURO", "XYZ", "E1R", " EUR", "EUR ", "ÉUR", "XAU", "XXX", "HRK", "BGN",
        ] {
            assert_eq!(
                validate_currency_code(bad),
                Err(DomainError::InvalidCurrencyCode {
                    code: bad.to_owned()
                }),
                "{bad:?}"
            );
        }
    }
}
