//! Properties of the value types: every text their pattern generates
//! parses, parsing the value's own text gives the value back, and text
//! outside the rule is refused. (That a pattern accepts nothing more than
//! its parser is checked with a regex engine, in `billing_service::rules`.)

use billing_domain::DomainError;
use billing_domain::values::{CountryCode, CurrencyCode, EmailAddress, RegionCode, Slug, TaxCode};
use proptest::prelude::*;
use proptest::string::string_regex;

/// Texts that `pattern` (`^…$`, unbounded repetitions up to 32) matches.
fn matching(pattern: &str) -> impl Strategy<Value = String> {
    let inner = pattern
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix('$'))
        .expect("an anchored pattern");
    string_regex(inner).expect("a pattern proptest can generate from")
}

/// Short texts of characters near every rule's edges: the classes' members,
/// the separators, whitespace, control characters, letters that change
/// length when lower-cased, and others.
fn near_miss() -> impl Strategy<Value = String> {
    let interesting = prop::sample::select(vec![
        'a', 'z', 'A', 'Z', '0', '9', '-', '_', '.', '@', ' ', '\t', '\n', '\u{0}', '\u{1f}',
        '\u{7f}', '\u{85}', '\u{a0}', '\u{3000}', 'é', 'İ', 'K', 'ß', '/', '+',
    ]);
    prop::collection::vec(interesting, 0..16).prop_map(String::from_iter)
}

/// A currency or country code in a random letter case.
fn any_case(code: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<bool>(), code.len()).prop_map(move |upper| {
        code.chars()
            .zip(upper)
            .map(|(c, up)| {
                if up {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

proptest! {
    /// Every address the pattern generates parses, lower-cased, and parses
    /// again to itself.
    #[test]
    fn generated_emails_parse_to_themselves(text in matching(&EmailAddress::pattern())) {
        let email = EmailAddress::parse(&text).unwrap();
        prop_assert_eq!(email.as_str(), text.to_lowercase());
        prop_assert_eq!(EmailAddress::parse(email.as_str()), Ok(email.clone()));
    }

    /// Whatever parses as an address parses again to itself; the rest is
    /// refused with `InvalidEmail`.
    #[test]
    fn emails_round_trip_or_are_refused(text in near_miss()) {
        match EmailAddress::parse(&text) {
            Ok(email) => prop_assert_eq!(EmailAddress::parse(email.as_str()), Ok(email.clone())),
            Err(error) => prop_assert_eq!(error, DomainError::InvalidEmail),
        }
    }

    /// Generated slugs parse as sent.
    #[test]
    fn generated_slugs_parse_as_sent(text in matching(Slug::PATTERN)) {
        let slug = Slug::parse(&text).unwrap();
        prop_assert_eq!(slug.as_str(), text.as_str());
        prop_assert_eq!(Slug::parse(slug.as_str()), Ok(slug.clone()));
    }

    /// Generated tax codes parse as sent.
    #[test]
    fn generated_tax_codes_parse_as_sent(text in matching(TaxCode::PATTERN)) {
        let code = TaxCode::parse(&text).unwrap();
        prop_assert_eq!(code.as_str(), text.as_str());
        prop_assert_eq!(TaxCode::parse(code.as_str()), Ok(code.clone()));
    }

    /// Slugs and tax codes longer than their limit are refused.
    #[test]
    fn over_long_codes_are_refused(
        slug in matching("^[a-z]{101,140}$"),
        tax in matching("^[A-Z]{51,80}$"),
    ) {
        prop_assert_eq!(Slug::parse(&slug), Err(DomainError::InvalidSlug));
        prop_assert_eq!(TaxCode::parse(&tax), Err(DomainError::InvalidTaxCode));
    }

    /// Slugs, tax codes and region codes round-trip or are refused with
    /// their own error.
    #[test]
    fn codes_round_trip_or_are_refused(text in near_miss()) {
        match Slug::parse(&text) {
            Ok(slug) => prop_assert_eq!(Slug::parse(slug.as_str()), Ok(slug.clone())),
            Err(error) => prop_assert_eq!(error, DomainError::InvalidSlug),
        }
        match TaxCode::parse(&text) {
            Ok(code) => prop_assert_eq!(TaxCode::parse(code.as_str()), Ok(code.clone())),
            Err(error) => prop_assert_eq!(error, DomainError::InvalidTaxCode),
        }
        match RegionCode::parse_optional(&text) {
            Ok(Some(region)) => {
                prop_assert_eq!(region.as_str(), text.trim());
                prop_assert_eq!(RegionCode::parse(region.as_str()), Ok(region.clone()));
            }
            Ok(None) => prop_assert!(text.trim().is_empty()),
            Err(error) => {
                prop_assert!(text.chars().count() > RegionCode::MAX_CHARS);
                prop_assert_eq!(error, DomainError::RegionCodeTooLong);
            }
        }
    }

    /// Every table code parses in any letter case, to its upper case.
    #[test]
    fn table_codes_parse_in_any_case(
        currency in prop::sample::select(billing_domain::iso4217::CURRENCIES)
            .prop_flat_map(|(code, _)| (Just(code), any_case(code))),
        country in prop::sample::select(billing_domain::iso3166::COUNTRIES)
            .prop_flat_map(|code| (Just(code), any_case(code))),
    ) {
        let (canonical, sent) = currency;
        let code = CurrencyCode::parse(&sent).unwrap();
        prop_assert_eq!(code.as_str(), canonical);
        prop_assert_eq!(CurrencyCode::parse(code.as_str()), Ok(code));
        prop_assert_eq!(CurrencyCode::parse_upper_case(&sent).is_ok(), sent == canonical);
        let (canonical, sent) = country;
        let code = CountryCode::parse(&sent).unwrap();
        prop_assert_eq!(code.as_str(), canonical);
        prop_assert_eq!(CountryCode::parse(code.as_str()), Ok(code));
    }

    /// Codes that are not in the tables are refused, as sent.
    #[test]
    fn other_codes_are_refused(text in near_miss()) {
        if !billing_domain::iso4217::is_active(&text) {
            prop_assert_eq!(
                CurrencyCode::parse(&text),
                Err(DomainError::InvalidCurrencyCode { code: text.clone() })
            );
        }
        if !billing_domain::iso3166::is_assigned(&text) {
            prop_assert_eq!(
                CountryCode::parse(&text),
                Err(DomainError::InvalidCountryCode { code: text.clone() })
            );
        }
    }
}
