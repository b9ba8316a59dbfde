//! The patterns and limits of the value types, as the schema states them,
//! against the types' parsers (which check the same rules by hand): on a
//! table of edge cases and on generated text, a value parses exactly when
//! the schema accepts it.

use std::sync::LazyLock;

use billing_domain::values::{CountryCode, CurrencyCode, EmailAddress, RegionCode, Slug, TaxCode};
use proptest::prelude::*;
use regex::Regex;

use super::{
    MAX_EMAIL_CHARS, REGION_MAX_CHARS, SLUG_MAX_CHARS, SLUG_PATTERN, TAX_CODE_MAX_CHARS,
    TAX_CODE_PATTERN, TEXT_PATTERN, country_code_pattern, currency_code_pattern, email_pattern,
    upper_case_currency_code_pattern,
};

/// A rule as the schema states it: a pattern and a length range in
/// characters.
struct Stated {
    pattern: Regex,
    min_chars: usize,
    max_chars: usize,
}

impl Stated {
    fn new(pattern: &str, min_chars: usize, max_chars: usize) -> Self {
        Self {
            pattern: Regex::new(pattern).expect("the pattern compiles"),
            min_chars,
            max_chars,
        }
    }

    fn accepts(&self, text: &str) -> bool {
        let chars = text.chars().count();
        (self.min_chars..=self.max_chars).contains(&chars) && self.pattern.is_match(text)
    }
}

/// Each value type's stated rule and whether its parser accepts a text.
type Rule = (&'static str, Stated, fn(&str) -> bool);

/// Every value type's rule, compiled once.
static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        (
            "email",
            Stated::new(&email_pattern(), 0, MAX_EMAIL_CHARS),
            |t| EmailAddress::parse(t).is_ok(),
        ),
        ("slug", Stated::new(SLUG_PATTERN, 1, SLUG_MAX_CHARS), |t| {
            Slug::parse(t).is_ok()
        }),
        (
            "tax code",
            Stated::new(TAX_CODE_PATTERN, 1, TAX_CODE_MAX_CHARS),
            |t| TaxCode::parse(t).is_ok(),
        ),
        (
            "currency",
            Stated::new(&currency_code_pattern(), 0, usize::MAX),
            |t| CurrencyCode::parse(t).is_ok(),
        ),
        (
            "price key",
            Stated::new(&upper_case_currency_code_pattern(), 0, usize::MAX),
            |t| CurrencyCode::parse_upper_case(t).is_ok(),
        ),
        (
            "country",
            Stated::new(&country_code_pattern(), 0, usize::MAX),
            |t| CountryCode::parse(t).is_ok(),
        ),
        // Blank is no region; NUL characters are refused in every text by
        // the HTTP front end, before any use case (`TEXT_PATTERN`).
        (
            "region",
            Stated::new(TEXT_PATTERN, 0, REGION_MAX_CHARS),
            |t| !t.contains('\0') && RegionCode::parse_optional(t).is_ok(),
        ),
    ]
});

fn assert_agreement(text: &str) -> Result<(), TestCaseError> {
    for (name, stated, parses) in RULES.iter() {
        prop_assert_eq!(
            stated.accepts(text),
            parses(text),
            "the {} rule and its parser disagree on {:?}",
            name,
            text
        );
    }
    Ok(())
}

#[test]
fn patterns_and_parsers_agree_on_edge_cases() {
    let long = |n: usize, c: &str| c.repeat(n);
    let samples = [
        String::new(),
        " ".into(),
        "a".into(),
        "0".into(),
        "-".into(),
        "pro".into(),
        "pro-2026".into(),
        "2026".into(),
        "Pro".into(),
        "pro_2026".into(),
        "DE_VAT".into(),
        "de-vat-1".into(),
        "DE VAT".into(),
        "EUR".into(),
        "eUr".into(),
        "EURO".into(),
        "XYZ".into(),
        "HRK".into(),
        "DE".into(),
        "de".into(),
        "UK".into(),
        "BY".into(),
        " BY ".into(),
        "CA-QC".into(),
        "a@b.c".into(),
        "A@EXAMPLE.COM".into(),
        "a@b".into(),
        "@b.c".into(),
        "a@.b.c".into(),
        "a@b.c.".into(),
        "a b@c.d".into(),
        "a@b@c.d".into(),
        "a@\u{85}.c".into(),
        "ä@ö.ü".into(),
        "a@b.c\u{0}".into(),
        "\u{0}".into(),
        long(SLUG_MAX_CHARS, "a"),
        long(SLUG_MAX_CHARS + 1, "a"),
        long(TAX_CODE_MAX_CHARS, "A"),
        long(TAX_CODE_MAX_CHARS + 1, "A"),
        long(REGION_MAX_CHARS, "é"),
        long(REGION_MAX_CHARS + 1, "é"),
        long(REGION_MAX_CHARS + 1, " "),
        format!("{}@example.com", long(MAX_EMAIL_CHARS - 12, "é")),
        format!("{}@example.com", long(MAX_EMAIL_CHARS - 11, "é")),
    ];
    for sample in &samples {
        assert_agreement(sample).unwrap();
    }
}

#[test]
fn only_an_address_that_outgrows_the_limit_when_lower_cased_is_refused_beyond_the_pattern() {
    // `İ` lower-cases to two characters: 320 as sent, 321 as stored.
    let grows = format!("{}@example.com", "İ".repeat(MAX_EMAIL_CHARS - 12));
    assert!(Stated::new(&email_pattern(), 0, MAX_EMAIL_CHARS).accepts(&grows));
    assert!(EmailAddress::parse(&grows).is_err());
}

/// Short texts of characters near every rule's edges.
fn near_miss() -> impl Strategy<Value = String> {
    let interesting = prop::sample::select(vec![
        'a', 'e', 'u', 'r', 'd', 'z', 'E', 'U', 'R', 'D', 'Z', '0', '9', '-', '_', '.', '@', ' ',
        '\t', '\n', '\u{0}', '\u{1f}', '\u{7f}', '\u{85}', '\u{a0}', '\u{3000}', 'é', 'ß', '/',
    ]);
    prop::collection::vec(interesting, 0..14).prop_map(String::from_iter)
}

/// A table code in a random letter case.
fn table_code() -> impl Strategy<Value = String> {
    let codes: Vec<&'static str> = billing_domain::iso4217::CURRENCIES
        .iter()
        .map(|(code, _)| *code)
        .chain(billing_domain::iso3166::COUNTRIES.iter().copied())
        .collect();
    (prop::sample::select(codes), any::<u8>()).prop_map(|(code, case)| {
        code.chars()
            .enumerate()
            .map(|(i, c)| {
                if case & (1 << i) == 0 {
                    c
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn patterns_and_parsers_agree(
        text in prop_oneof![
            near_miss(),
            table_code(),
            "[A-Za-z]{2,4}",
            "[a-z0-9-]{95,105}",
            "[A-Za-z0-9_-]{45,55}",
            "[a-zé ]{8,12}",
            "[a-zA-Z]{290,310}@[a-z]{1,5}\\.[a-zA-Z]{1,10}",
        ],
    ) {
        assert_agreement(&text)?;
    }
}
