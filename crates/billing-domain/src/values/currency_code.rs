//! `CurrencyCode`: an active ISO 4217 currency code.

use super::{case_insensitive_alternatives, text_value};
use crate::error::DomainError;
use crate::iso4217;

/// An active ISO 4217 currency code with minor units
/// ([`iso4217::CURRENCIES`]), upper-case. Any letter case is parsed.
///
/// ```
/// use billing_domain::values::CurrencyCode;
///
/// let eur = CurrencyCode::parse("eUr").unwrap();
/// assert_eq!(eur.as_str(), "EUR");
/// assert_eq!(eur.minor_units(), 2);
/// assert!(CurrencyCode::parse("XYZ").is_err());
/// assert!(CurrencyCode::parse("EURO").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CurrencyCode(&'static str);

impl CurrencyCode {
    /// Parses `text`: three ASCII letters, in any case, that form an active
    /// ISO 4217 code ([`pattern`](Self::pattern)).
    ///
    /// # Errors
    /// [`DomainError::InvalidCurrencyCode`] otherwise.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        iso4217::lookup(text)
            .map(|(code, _)| Self(code))
            .ok_or_else(|| DomainError::InvalidCurrencyCode {
                code: text.to_owned(),
            })
    }

    /// Parses `text` only in its canonical, upper-case form (the keys of a
    /// plan's `prices`: [`upper_case_pattern`](Self::upper_case_pattern)).
    ///
    /// # Errors
    /// [`DomainError::InvalidCurrencyCode`] otherwise.
    pub fn parse_upper_case(text: &str) -> Result<Self, DomainError> {
        match Self::parse(text) {
            Ok(code) if code.as_str() == text => Ok(code),
            Ok(_) | Err(_) => Err(DomainError::InvalidCurrencyCode {
                code: text.to_owned(),
            }),
        }
    }

    /// The currency's minor units (EUR 2, JPY 0, KWD 3): the default
    /// `decimal_places` of a new currency.
    #[must_use]
    pub fn minor_units(self) -> u32 {
        iso4217::minor_units(self.0).unwrap_or(0)
    }

    /// Every code [`parse`](Self::parse) accepts, in any letter case, as a
    /// pattern.
    #[must_use]
    pub fn pattern() -> String {
        case_insensitive_alternatives(iso4217::CURRENCIES.iter().map(|(code, _)| *code))
    }

    /// Every code [`parse_upper_case`](Self::parse_upper_case) accepts, as a
    /// pattern.
    #[must_use]
    pub fn upper_case_pattern() -> String {
        let codes: Vec<&str> = iso4217::CURRENCIES.iter().map(|(code, _)| *code).collect();
        format!("^(?:{})$", codes.join("|"))
    }
}

text_value!(CurrencyCode);
