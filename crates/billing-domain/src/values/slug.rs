//! `Slug`: the URL name of a tariff plan.

use super::text_value;
use crate::error::DomainError;

/// A plan slug: 1 to [`MAX_CHARS`](Self::MAX_CHARS) lower-case ASCII
/// letters, digits and `-`, not only digits (so a slug is never mistaken
/// for an id). Parsed as sent: nothing is trimmed or lower-cased.
///
/// ```
/// use billing_domain::values::Slug;
///
/// assert_eq!(Slug::parse("pro-2026").unwrap().as_str(), "pro-2026");
/// assert!(Slug::parse("2026").is_err());
/// assert!(Slug::parse("Pro").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slug(String);

impl Slug {
    /// The longest slug, in characters.
    pub const MAX_CHARS: usize = 100;

    /// The rule as a pattern (its length is [`MAX_CHARS`](Self::MAX_CHARS)).
    pub const PATTERN: &'static str = "^[a-z0-9-]*[a-z-][a-z0-9-]*$";

    /// Parses `text`: it must match [`PATTERN`](Self::PATTERN) and be at
    /// most [`MAX_CHARS`](Self::MAX_CHARS) characters long.
    ///
    /// # Errors
    /// [`DomainError::InvalidSlug`] otherwise.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let allowed = text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let only_digits = text.bytes().all(|b| b.is_ascii_digit());
        // Every allowed character is one byte: `len` counts characters.
        if text.is_empty() || text.len() > Self::MAX_CHARS || !allowed || only_digits {
            return Err(DomainError::InvalidSlug);
        }
        Ok(Self(text.to_owned()))
    }
}

text_value!(Slug);
