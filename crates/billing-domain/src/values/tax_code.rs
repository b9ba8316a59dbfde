//! `TaxCode`: the stable code of a tax.

use super::text_value;
use crate::error::DomainError;

/// A tax code (`DE_VAT`): 1 to [`MAX_CHARS`](Self::MAX_CHARS) ASCII
/// letters, digits, `_` and `-`. Parsed as sent: nothing is trimmed and the
/// letter case is kept.
///
/// ```
/// use billing_domain::values::TaxCode;
///
/// assert_eq!(TaxCode::parse("DE_VAT").unwrap().as_str(), "DE_VAT");
/// assert!(TaxCode::parse("DE VAT").is_err());
/// assert!(TaxCode::parse("").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaxCode(String);

impl TaxCode {
    /// The longest tax code, in characters.
    pub const MAX_CHARS: usize = 50;

    /// The rule as a pattern (its length is [`MAX_CHARS`](Self::MAX_CHARS)).
    pub const PATTERN: &'static str = "^[A-Za-z0-9_-]+$";

    /// Parses `text`: it must match [`PATTERN`](Self::PATTERN) and be at
    /// most [`MAX_CHARS`](Self::MAX_CHARS) characters long.
    ///
    /// # Errors
    /// [`DomainError::InvalidTaxCode`] otherwise.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let allowed = text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        // Every allowed character is one byte: `len` counts characters.
        if text.is_empty() || text.len() > Self::MAX_CHARS || !allowed {
            return Err(DomainError::InvalidTaxCode);
        }
        Ok(Self(text.to_owned()))
    }
}

text_value!(TaxCode);
