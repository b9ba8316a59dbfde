//! ISO 3166-1 alpha-2 country codes.
//!
//! The table holds the 249 officially assigned codes plus `XK` (Kosovo), a
//! user-assigned code that the European Commission and payment providers use
//! and that tax rules need. Reserved and withdrawn codes (`UK`, `EU`, `AN` …)
//! are refused.

use crate::error::DomainError;
use crate::values::CountryCode;

/// Every accepted alpha-2 code, sorted.
pub const COUNTRIES: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "XK", "YE", "YT", "ZA", "ZM", "ZW",
];

/// The table's code `code` names, in any letter case.
pub(crate) fn lookup(code: &str) -> Option<&'static str> {
    let key = match code.as_bytes() {
        &[a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            [a.to_ascii_uppercase(), b.to_ascii_uppercase()]
        }
        _ => return None,
    };
    COUNTRIES
        .binary_search_by(|c| c.as_bytes().cmp(&key[..]))
        .ok()
        .and_then(|i| COUNTRIES.get(i).copied())
}

/// Whether `code` (case-insensitive) is an accepted country code.
///
/// ```
/// use billing_domain::iso3166::is_assigned;
/// assert!(is_assigned("DE"));
/// assert!(!is_assigned("UK")); // the United Kingdom is GB
/// ```
#[must_use]
pub fn is_assigned(code: &str) -> bool {
    lookup(code).is_some()
}

/// Validates an ISO 3166-1 alpha-2 country code and returns it upper-case.
///
/// ```
/// use billing_domain::iso3166::validate_country_code;
/// assert_eq!(validate_country_code("de").unwrap(), "DE");
/// assert!(validate_country_code("DEU").is_err());
/// assert!(validate_country_code("ZZ").is_err());
/// ```
pub fn validate_country_code(code: &str) -> Result<String, DomainError> {
    CountryCode::parse(code).map(CountryCode::into_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_complete() {
        for pair in COUNTRIES.windows(2) {
            if let [a, b] = pair {
                assert!(a < b, "{a} must come before {b}");
            }
        }
        // 249 officially assigned codes + XK.
        assert_eq!(COUNTRIES.len(), 250);
        assert!(
            COUNTRIES
                .iter()
                .all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()))
        );
    }

    #[test]
    fn accepts_assigned_codes_in_any_case() {
        for (input, expected) in [("DE", "DE"), ("at", "AT"), ("Gb", "GB"), ("xk", "XK")] {
            assert_eq!(validate_country_code(input), Ok(expected.to_owned()));
        }
    }

    #[test]
    fn refuses_malformed_reserved_and_unassigned_codes() {
        for bad in [
            "", "D", "DEU", "D1", "UK", "EU", "AN", "ZZ", "AA", " DE", "ÄT",
        ] {
            assert_eq!(
                validate_country_code(bad),
                Err(DomainError::InvalidCountryCode {
                    code: bad.to_owned()
                }),
                "{bad:?}"
            );
        }
    }
}
