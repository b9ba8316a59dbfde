//! The rules of the input fields, each stated once: the use cases check
//! values with them and an HTTP front end states them in its schema
//! (lengths, patterns, ranges) from the same constants, so the two cannot
//! drift. Every pattern is written in the subset that JSON Schema
//! (ECMA-262), Python's `re` and Rust's `regex` read alike.
//!
//! The rules of the value types (e-mail address, currency, country, tax
//! and region codes, plan slug) are stated beside the types, in
//! `billing_domain::values`; this module names them again for the front
//! ends, and its tests check that each pattern and its parser agree.

use std::sync::OnceLock;

use billing_domain::events::EventType;
use billing_domain::values::{
    CountryCode, CurrencyCode, EmailAddress, RegionCode, Slug, TaxCode, WHITESPACE_CLASS,
};
use regex::Regex;
use rust_decimal::Decimal;

pub use crate::invoices::MAX_PAYMENT_METHOD_CHARS;
pub use crate::users::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
pub use crate::webhooks::MAX_URL_LEN;
pub use billing_domain::money::MAX_DECIMAL_PLACES;

/// The longest name of a currency, tax or plan, in characters.
pub const NAME_MAX_CHARS: usize = 100;
/// The longest plan slug.
pub const SLUG_MAX_CHARS: usize = Slug::MAX_CHARS;
/// The longest tax code.
pub const TAX_CODE_MAX_CHARS: usize = TaxCode::MAX_CHARS;
/// The longest e-mail address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = EmailAddress::MAX_CHARS;
/// The longest currency symbol.
pub const SYMBOL_MAX_CHARS: usize = 8;
/// The longest region code of a tax.
pub const REGION_MAX_CHARS: usize = RegionCode::MAX_CHARS;
/// The longest subject of a support case.
pub const CASE_SUBJECT_MAX_CHARS: usize = 200;
/// The longest text of a support case.
pub const CASE_DESCRIPTION_MAX_CHARS: usize = 20_000;
/// The longest payment provider reference.
pub const PAYMENT_REFERENCE_MAX_CHARS: usize = billing_domain::lifecycle::MAX_PAYMENT_FIELD_CHARS;
/// The longest given or family name in a user's details.
pub const PERSON_NAME_MAX_CHARS: usize = 100;
/// The longest telephone number or tax id in a user's details.
pub const PHONE_MAX_CHARS: usize = 50;
/// The longest company name or address line in a user's details.
pub const ADDRESS_MAX_CHARS: usize = 200;
/// The longest city in a user's details.
pub const CITY_MAX_CHARS: usize = 100;
/// The longest postal code in a user's details.
pub const POSTAL_CODE_MAX_CHARS: usize = 20;

/// Text without NUL characters (which PostgreSQL cannot store): every text
/// field of a request body.
pub const TEXT_PATTERN: &str = r"^[^\u0000]*$";

/// Text without NUL characters and with at least one character that is not
/// whitespace: a required text, which must not be blank.
#[must_use]
pub fn required_text_pattern() -> String {
    format!(r"^[^\u0000]*[^\u0000{WHITESPACE_CLASS}][^\u0000]*$")
}

/// The longest idempotency key, and the longest scope of one, in bytes.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 255;

/// An idempotency key, unanchored: 1 to [`IDEMPOTENCY_KEY_MAX_LEN`] visible
/// ASCII characters (`!` to `~`, no space). A front end that reads the key
/// from a header anchors it with the spaces HTTP allows around a value.
#[must_use]
pub fn idempotency_key_chars() -> String {
    format!("[!-~]{{1,{IDEMPOTENCY_KEY_MAX_LEN}}}")
}

/// Whether `key` is what [`idempotency_key_chars`] states.
#[must_use]
pub fn is_idempotency_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= IDEMPOTENCY_KEY_MAX_LEN
        && key.bytes().all(|b| b.is_ascii_graphic())
}

/// A plan slug: lower-case ASCII letters, digits and `-`, not only digits.
pub const SLUG_PATTERN: &str = Slug::PATTERN;

/// A tax code: ASCII letters, digits, `_` and `-`.
pub const TAX_CODE_PATTERN: &str = TaxCode::PATTERN;

/// An e-mail address as the server checks it: a local part, one `@`, a
/// domain with a dot that neither starts nor ends it; no whitespace or
/// control characters anywhere ([`EmailAddress::pattern`]).
#[must_use]
pub fn email_pattern() -> String {
    EmailAddress::pattern()
}

/// Whether `email` matches [`email_pattern`].
#[must_use]
pub fn is_plausible_email(email: &str) -> bool {
    EmailAddress::is_plausible(email)
}

/// A webhook URL: `http://` or `https://`, a host (a dotted-quad IPv4
/// address, or DNS labels of ASCII letters, digits and single hyphens, the
/// last one starting with a letter), an optional port (0 to 65535, no
/// leading zero), then an optional path, query or fragment of visible
/// ASCII. No credentials, no whitespace; every URL it matches parses.
#[must_use]
pub fn webhook_url_pattern() -> String {
    let octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    let label = "[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*";
    let last = "[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*";
    let port = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0)";
    format!(
        "^https?://(?:{octet}(?:\\.{octet}){{3}}|(?:{label}\\.)*{last})(?::{port})?(?:[/?#][!-~]*)?$"
    )
}

/// Whether `url` matches [`webhook_url_pattern`] (at most
/// [`crate::webhooks::MAX_URL_LEN`] characters is checked apart).
#[must_use]
pub fn is_webhook_url(url: &str) -> bool {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN
        .get_or_init(|| Regex::new(&webhook_url_pattern()).expect("the URL pattern compiles"))
        .is_match(url)
}

/// A comma-separated list of event type names (`invoice.paid,invoice.refunded`),
/// no spaces: the `type` filter of the events.
#[must_use]
pub fn event_types_pattern() -> String {
    let one = EventType::ALL
        .iter()
        .map(|t| t.as_str().replace('.', "\\."))
        .collect::<Vec<_>>()
        .join("|");
    format!("^(?:{one})(?:,(?:{one}))*$")
}

/// An active ISO 4217 currency code, in any letter case
/// ([`CurrencyCode::pattern`]).
#[must_use]
pub fn currency_code_pattern() -> String {
    CurrencyCode::pattern()
}

/// An active ISO 4217 currency code in upper case: the keys of a plan's
/// `prices` ([`CurrencyCode::upper_case_pattern`]).
#[must_use]
pub fn upper_case_currency_code_pattern() -> String {
    CurrencyCode::upper_case_pattern()
}

/// An ISO 3166-1 alpha-2 country code, in any letter case
/// ([`CountryCode::pattern`]).
#[must_use]
pub fn country_code_pattern() -> String {
    CountryCode::pattern()
}

/// The shape of a decimal string a field accepts: no sign, no exponent, no
/// leading zeros, at most `whole_digits` digits before the point and
/// `fraction_digits` after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecimalRule {
    /// The most digits before the point.
    pub whole_digits: usize,
    /// The most digits after the point.
    pub fraction_digits: usize,
    /// Whether zero is accepted.
    pub zero: bool,
    /// Whether the value may not exceed 100 (a percentage).
    pub at_most_hundred: bool,
}

/// A price or amount: `NUMERIC(19,4)`, not negative.
pub const PRICE: DecimalRule = DecimalRule {
    whole_digits: 15,
    fraction_digits: 4,
    zero: true,
    at_most_hundred: false,
};

/// An exchange rate: `NUMERIC(19,8)`, greater than zero.
pub const EXCHANGE_RATE: DecimalRule = DecimalRule {
    whole_digits: 11,
    fraction_digits: billing_domain::exchange::MAX_RATE_DECIMALS as usize,
    zero: false,
    at_most_hundred: false,
};

/// A tax rate in percent: 0 to 100, at most 4 decimals.
pub const TAX_RATE: DecimalRule = DecimalRule {
    whole_digits: 3,
    fraction_digits: 4,
    zero: true,
    at_most_hundred: true,
};

impl DecimalRule {
    /// The rule as a pattern.
    #[must_use]
    pub fn pattern(&self) -> String {
        let f = self.fraction_digits;
        let fraction = format!(r"(?:\.[0-9]{{1,{f}}})?");
        if self.at_most_hundred {
            return format!(r"^(?:100(?:\.0{{1,{f}}})?|(?:0|[1-9][0-9]?){fraction})$");
        }
        let w = self.whole_digits.saturating_sub(1);
        let positive_whole = format!(r"[1-9][0-9]{{0,{w}}}{fraction}");
        if self.zero {
            return format!(r"^(?:0|{positive_whole}|0\.[0-9]{{1,{f}}})$");
        }
        // A positive fraction below 1: some digit after the point is not 0.
        let small: Vec<String> = (0..f)
            .map(|zeros| {
                let rest = f - zeros - 1;
                format!("0{{{zeros}}}[1-9][0-9]{{0,{rest}}}")
            })
            .collect();
        format!(r"^(?:{positive_whole}|0\.(?:{}))$", small.join("|"))
    }

    /// Parses `text` if it has the rule's shape.
    ///
    /// # Errors
    /// A message naming the rule otherwise.
    pub fn parse(&self, text: &str) -> Result<Decimal, String> {
        let refuse = || Err(self.describe(text));
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || whole.len() > self.whole_digits {
            return refuse();
        }
        if whole.len() > 1 && whole.starts_with('0') {
            return refuse();
        }
        if let Some(fraction) = fraction
            && (!digits(fraction) || fraction.len() > self.fraction_digits)
        {
            return refuse();
        }
        let Ok(value) = Decimal::from_str_exact(text) else {
            return refuse();
        };
        if (!self.zero && value.is_zero()) || (self.at_most_hundred && value > Decimal::ONE_HUNDRED)
        {
            return refuse();
        }
        Ok(value)
    }

    fn describe(&self, text: &str) -> String {
        let range = match (self.zero, self.at_most_hundred) {
            (_, true) => "from 0 to 100".to_owned(),
            (true, false) => format!("from 0, below 10^{}", self.whole_digits),
            (false, false) => format!("above 0, below 10^{}", self.whole_digits),
        };
        format!(
            "{text:?} is not a decimal string such as \"19.99\": digits {range}, at most {} decimals, no sign, exponent or leading zeros",
            self.fraction_digits
        )
    }
}

#[cfg(test)]
mod agreement;

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, text: &str) -> bool {
        regex::Regex::new(pattern).unwrap().is_match(text)
    }

    #[test]
    fn every_webhook_url_the_pattern_accepts_parses_with_its_host() {
        let accepted = [
            "http://127.0.0.1:8080/events",
            "https://example.com",
            "https://a-b.example.co.uk:443/p?q=1#f",
            "http://localhost:0/",
            "http://1a.b2:65535",
            "https://example.com/%zz\\x?a=[1]",
        ];
        let refused = [
            "ftp://example.com/",
            "HTTP://example.com/",
            "http://999.1.1.1/",
            "http://1.2.3.4.5/",
            "http://0x7f/",
            "http://example.1/",
            "http://xn--a.com/",
            "http://a--b.com/",
            "http://-a.com/",
            "http://a:65536/",
            "http://a:080/",
            "http://user:secret@example.com/",
            " http://example.com/",
            "http://example.com/ ",
            "http://example.com/a b",
            "http://example.com.",
            "http://",
            "http:example.com",
        ];
        for url in accepted {
            assert!(is_webhook_url(url), "{url}");
            let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(parsed.host_str().is_some_and(|h| !h.is_empty()), "{url}");
            assert!(parsed.username().is_empty() && parsed.password().is_none());
        }
        for url in refused {
            assert!(!is_webhook_url(url), "{url}");
        }
    }

    #[test]
    fn the_event_types_pattern_matches_lists_of_known_types() {
        let pattern = event_types_pattern();
        for list in ["invoice.paid", "user.created,invoice.paid,user.created"] {
            assert!(matches(&pattern, list), "{list}");
        }
        for list in [
            "",
            "invoice.paid,",
            "invoice paid",
            "invoiceXpaid",
            "user.created, invoice.paid",
        ] {
            assert!(!matches(&pattern, list), "{list}");
        }
    }

    #[test]
    fn decimal_patterns_agree_with_the_parsers() {
        let samples = [
            "0",
            "00",
            "0.0",
            "0.00000000",
            "0.000000001",
            "0.00000001",
            "1",
            "01",
            "1.",
            ".5",
            "-1",
            "+1",
            "1e3",
            "19.99",
            "19.999",
            "19.9999",
            "19.99999",
            "100",
            "100.0",
            "100.01",
            "99.9999",
            "101",
            "999",
            "1000",
            "999999999999999",
            "1000000000000000",
            "999999999999999.9999",
            "99999999999",
            "100000000000",
            "99999999999.99999999",
            " 1",
            "1 ",
            "1.2.3",
            "",
            "0.10",
            "10.0000",
        ];
        for rule in [PRICE, EXCHANGE_RATE, TAX_RATE] {
            let pattern = rule.pattern();
            for sample in samples {
                assert_eq!(
                    matches(&pattern, sample),
                    rule.parse(sample).is_ok(),
                    "{rule:?} disagrees with {pattern} on {sample:?}"
                );
            }
        }
    }

    #[test]
    fn the_idempotency_key_pattern_agrees_with_the_check() {
        let pattern = format!("^{}$", idempotency_key_chars());
        let longest = "k".repeat(IDEMPOTENCY_KEY_MAX_LEN);
        let too_long = "k".repeat(IDEMPOTENCY_KEY_MAX_LEN + 1);
        for key in [
            "pay-42-1",
            "!~",
            longest.as_str(),
            "",
            "has space",
            "tab\t",
            "é",
            too_long.as_str(),
        ] {
            assert_eq!(is_idempotency_key(key), matches(&pattern, key), "{key:?}");
        }
    }

    #[test]
    fn text_patterns_agree_with_the_checks() {
        let required = required_text_pattern();
        for sample in ["a", " a ", " ", "\u{3000}", "\t\n", "\u{1c}", "a\u{0}", ""] {
            let blank = sample.trim().is_empty() || sample.contains('\0');
            assert_eq!(matches(&required, sample), !blank, "{sample:?}");
        }
        let email = email_pattern();
        for sample in [
            "a@b.c",
            "a@b",
            "@b.c",
            "a@.b.c",
            "a@b.c.",
            "a b@c.d",
            "a@b@c.d",
            "a@b..c",
            "a@\u{85}.c",
            "A@EXAMPLE.COM",
            "a@b.c\u{0}",
            "ä@ö.ü",
        ] {
            assert_eq!(
                matches(&email, sample),
                is_plausible_email(sample),
                "{sample:?}"
            );
        }
    }

    #[test]
    fn code_patterns_name_the_tables() {
        let currency = currency_code_pattern();
        assert!(matches(&currency, "EUR") && matches(&currency, "eUr"));
        assert!(!matches(&currency, "XYZ") && !matches(&currency, "EURO"));
        let upper = upper_case_currency_code_pattern();
        assert!(matches(&upper, "EUR") && !matches(&upper, "eur") && !matches(&upper, "XYZ"));
        let country = country_code_pattern();
        assert!(matches(&country, "DE") && matches(&country, "de"));
        assert!(!matches(&country, "UK") && !matches(&country, " DE"));
    }
}
