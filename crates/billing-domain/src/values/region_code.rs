//! `RegionCode`: the region of a tax within its country.

use super::text_value;
use crate::error::DomainError;

/// The region of a tax within its country (`BY`, `CA-QC`): free text of at
/// most [`MAX_CHARS`](Self::MAX_CHARS) characters as sent, kept trimmed,
/// never blank. A blank region is no region
/// ([`parse_optional`](Self::parse_optional)).
///
/// ```
/// use billing_domain::values::RegionCode;
///
/// assert_eq!(RegionCode::parse(" BY ").unwrap().as_str(), "BY");
/// assert_eq!(RegionCode::parse_optional("  ").unwrap(), None);
/// assert!(RegionCode::parse("ABCDEFGHIJK").is_err());
/// assert!(RegionCode::parse("").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionCode(String);

impl RegionCode {
    /// The longest region code, in characters as sent.
    pub const MAX_CHARS: usize = 10;

    /// Parses `text`: at most [`MAX_CHARS`](Self::MAX_CHARS) characters,
    /// not blank; kept trimmed.
    ///
    /// # Errors
    /// [`DomainError::RegionCodeTooLong`], or [`DomainError::InvalidField`]
    /// when `text` is blank.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        Self::parse_optional(text)?.ok_or(DomainError::InvalidField {
            field: "region_code",
            reason: "must not be blank",
        })
    }

    /// Parses `text` as [`parse`](Self::parse) does, except that blank text
    /// is no region (`None`).
    ///
    /// # Errors
    /// [`DomainError::RegionCodeTooLong`].
    pub fn parse_optional(text: &str) -> Result<Option<Self>, DomainError> {
        if text.chars().count() > Self::MAX_CHARS {
            return Err(DomainError::RegionCodeTooLong);
        }
        let trimmed = text.trim();
        Ok((!trimmed.is_empty()).then(|| Self(trimmed.to_owned())))
    }
}

text_value!(RegionCode);
