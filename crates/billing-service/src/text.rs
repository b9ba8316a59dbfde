//! The rules for free-text input: trimmed, bounded, empty meaning absent.

use crate::BillingError;

/// `value` trimmed, refused when empty or longer than `max_chars`.
pub(crate) fn valid_text(
    field: &str,
    value: &str,
    max_chars: usize,
) -> Result<String, BillingError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max_chars {
        return Err(BillingError::invalid(format!(
            "{field} must be 1 to {max_chars} characters"
        )));
    }
    Ok(value.to_owned())
}

/// `value` trimmed; `None` when absent or blank.
pub(crate) fn optional_text(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `value` trimmed; `None` when absent or blank; refused when longer than
/// `max_chars` (the column's length).
pub(crate) fn optional_bounded_text(
    field: &str,
    value: Option<&str>,
    max_chars: usize,
) -> Result<Option<String>, BillingError> {
    match optional_text(value) {
        Some(text) if text.chars().count() > max_chars => Err(BillingError::invalid(format!(
            "{field} must be at most {max_chars} characters"
        ))),
        text @ (Some(_) | None) => Ok(text),
    }
}

/// Serde readers for decimal input that refuse anything they would have to
/// round or reinterpret: money arrives as a JSON string of plain digits
/// (`"19.99"`, `"-1"`), never as a float, never with more digits than a
/// decimal can hold exactly.
pub(crate) mod exact {
    use std::collections::BTreeMap;

    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, de::Error as _};

    /// Parses `"-123.45"`-shaped text exactly.
    pub(crate) fn parse(text: &str) -> Result<Decimal, String> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let plain = !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.bytes().all(|b| b.is_ascii_digit())
            && !(digits.contains('.') && fraction.is_empty());
        if !plain {
            return Err(format!(
                "{text:?} is not a decimal number such as \"19.99\""
            ));
        }
        Decimal::from_str_exact(text)
            .map_err(|_| format!("{text:?} has more digits than can be stored exactly"))
    }

    pub(crate) fn decimal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(D::Error::custom)
    }

    pub(crate) fn option_decimal<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| parse(&text).map_err(D::Error::custom))
            .transpose()
    }

    pub(crate) fn option_decimal_map<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<BTreeMap<String, Decimal>>, D::Error> {
        Option::<BTreeMap<String, String>>::deserialize(deserializer)?
            .map(|map| {
                map.into_iter()
                    .map(|(code, text)| parse(&text).map(|d| (code, d)).map_err(D::Error::custom))
                    .collect()
            })
            .transpose()
    }

    #[cfg(test)]
    mod tests {
        use super::parse;

        #[test]
        fn plain_decimals_only() {
            assert_eq!(parse("19.99").unwrap().to_string(), "19.99");
            assert_eq!(parse("-1").unwrap().to_string(), "-1");
            for refused in [
                "", "1.", ".5", "1e3", "1_000", "+1", " 1", "0x10", "1.2.3", "NaN",
            ] {
                assert!(parse(refused).is_err(), "{refused:?} was accepted");
            }
            assert!(
                parse("1.00000000000000000000000000001").is_err(),
                "rounded silently"
            );
        }
    }
}
