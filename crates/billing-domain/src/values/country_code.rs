//! `CountryCode`: an ISO 3166-1 alpha-2 country code.

use super::{case_insensitive_alternatives, text_value};
use crate::error::DomainError;
use crate::iso3166;

/// An ISO 3166-1 alpha-2 country code ([`iso3166::COUNTRIES`]: the
/// assigned codes and `XK`), upper-case. Any letter case is parsed.
///
/// ```
/// use billing_domain::values::CountryCode;
///
/// assert_eq!(CountryCode::parse("de").unwrap().as_str(), "DE");
/// assert!(CountryCode::parse("UK").is_err()); // the United Kingdom is GB
/// assert!(CountryCode::parse("DEU").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode(&'static str);

impl CountryCode {
    /// Parses `text`: two ASCII letters, in any case, that form an accepted
    /// code ([`pattern`](Self::pattern)).
    ///
    /// # Errors
    /// [`DomainError::InvalidCountryCode`] otherwise.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        iso3166::lookup(text)
            .map(Self)
            .ok_or_else(|| DomainError::InvalidCountryCode {
                code: text.to_owned(),
            })
    }

    /// Every code [`parse`](Self::parse) accepts, in any letter case, as a
    /// pattern.
    #[must_use]
    pub fn pattern() -> String {
        case_insensitive_alternatives(iso3166::COUNTRIES.iter().copied())
    }
}

text_value!(CountryCode);
