//! `EmailAddress`: a syntactically plausible e-mail address, lower-cased.

use super::{WHITESPACE_CLASS, text_value};
use crate::error::DomainError;

/// An e-mail address as the service accepts one: a local part, one `@`, a
/// domain with a dot that neither starts nor ends it; no whitespace or
/// control characters anywhere; at most [`MAX_CHARS`](Self::MAX_CHARS)
/// characters. It is kept lower-case, as users are stored (an address is
/// unique case-insensitively).
///
/// ```
/// use billing_domain::values::EmailAddress;
///
/// let email = EmailAddress::parse("Ada@Example.COM").unwrap();
/// assert_eq!(email.as_str(), "ada@example.com");
/// assert!(EmailAddress::parse("ada@example").is_err());
/// assert!(EmailAddress::parse("ada lovelace@example.com").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// The longest address accepted, in characters (the RFC 5321 path
    /// limit), as sent and once lower-cased.
    pub const MAX_CHARS: usize = 320;

    /// Parses `text`: it must match [`pattern`](Self::pattern) and be at
    /// most [`MAX_CHARS`](Self::MAX_CHARS) characters long; the address is
    /// lower-cased.
    ///
    /// # Errors
    /// [`DomainError::InvalidEmail`] otherwise.
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        if text.chars().count() > Self::MAX_CHARS || !Self::is_plausible(text) {
            return Err(DomainError::InvalidEmail);
        }
        let lower = text.to_lowercase();
        // A few characters lower-case to two (`İ` to `i̇`): the stored
        // address must fit the column too.
        if lower.chars().count() > Self::MAX_CHARS {
            return Err(DomainError::InvalidEmail);
        }
        Ok(Self(lower))
    }

    /// Whether `text` matches [`pattern`](Self::pattern) (its length is
    /// checked apart).
    #[must_use]
    pub fn is_plausible(text: &str) -> bool {
        let excluded = |c: char| c == '@' || c.is_whitespace() || c.is_control();
        let Some((local, domain)) = text.split_once('@') else {
            return false;
        };
        !local.is_empty()
            && !local.chars().any(excluded)
            && !domain.chars().any(excluded)
            && domain.len() >= 3
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
    }

    /// The rule as a pattern: what [`is_plausible`](Self::is_plausible)
    /// accepts.
    #[must_use]
    pub fn pattern() -> String {
        // Whitespace, control characters and, outside the one separator, `@`.
        let x = format!(r"@\u0000-\u001f\u007f-\u009f{WHITESPACE_CLASS}");
        format!(r"^[^{x}]+@[^.{x}][^{x}]*\.[^{x}]*[^.{x}]$")
    }
}

text_value!(EmailAddress);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_lower_cased_and_checked_as_sent() {
        assert_eq!(
            EmailAddress::parse("A.B@Example.Org").map(EmailAddress::into_string),
            Ok("a.b@example.org".to_owned())
        );
        let longest = format!("{}@example.com", "a".repeat(EmailAddress::MAX_CHARS - 12));
        assert!(EmailAddress::parse(&longest).is_ok());
        let too_long = format!("a{longest}");
        assert_eq!(
            EmailAddress::parse(&too_long),
            Err(DomainError::InvalidEmail)
        );
        for bad in ["", "a", "a@b", "@b.c", "a@.b", "a@b.", " a@b.c", "a@b.c\n"] {
            assert_eq!(
                EmailAddress::parse(bad),
                Err(DomainError::InvalidEmail),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_address_that_grows_when_lower_cased_must_still_fit() {
        let grows = format!("{}@example.com", "İ".repeat(EmailAddress::MAX_CHARS - 12));
        assert_eq!(EmailAddress::parse(&grows), Err(DomainError::InvalidEmail));
    }
}
