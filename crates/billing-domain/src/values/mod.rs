//! Value types parsed from input text: a value of one of these types has
//! passed its rule, so whatever takes it needs no check of its own.
//!
//! Each type has `parse(&str) -> Result<Self, DomainError>` (and `FromStr`),
//! `as_str`, `into_string`, `Display` and `AsRef<str>`, and states its rule
//! beside it as constants or pattern functions: the limits and patterns an
//! HTTP front end writes into its schema. Every pattern is written in the
//! subset that JSON Schema (ECMA-262), Python's `re` and Rust's `regex` read
//! alike; the parsers check the same rule by hand (this crate has no regex
//! engine), and `billing_service::rules`' tests hold the two together.
//!
//! - [`EmailAddress`] — an e-mail address, lower-cased;
//! - [`CurrencyCode`] — an active ISO 4217 code, upper-cased;
//! - [`CountryCode`] — an ISO 3166-1 alpha-2 code, upper-cased;
//! - [`Slug`] — a plan slug;
//! - [`TaxCode`] — a tax code;
//! - [`RegionCode`] — the region of a tax within its country.

mod country_code;
mod currency_code;
mod email;
mod region_code;
mod slug;
mod tax_code;

pub use country_code::CountryCode;
pub use currency_code::CurrencyCode;
pub use email::EmailAddress;
pub use region_code::RegionCode;
pub use slug::Slug;
pub use tax_code::TaxCode;

/// The characters Rust's `char::is_whitespace` (Unicode `White_Space`)
/// matches, as the inside of a pattern's character class.
pub const WHITESPACE_CLASS: &str =
    r"\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// A pattern that matches exactly `codes`, each in any letter case.
fn case_insensitive_alternatives<'a>(codes: impl Iterator<Item = &'a str>) -> String {
    let alternatives: Vec<String> = codes
        .map(|code| {
            code.chars()
                .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase()))
                .collect()
        })
        .collect();
    format!("^(?:{})$", alternatives.join("|"))
}

/// The accessors and conversions every value type shares: `as_str`,
/// `into_string`, `Display`, `AsRef<str>`, `From<_> for String` and
/// `FromStr` (its `parse`).
macro_rules! text_value {
    ($name:ident) => {
        impl $name {
            /// The value as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The value as an owned `String` (an entity's column).
            #[must_use]
            pub fn into_string(self) -> String {
                self.0.into()
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.into_string()
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::error::DomainError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }
    };
}
use text_value;
