//! A plan's `features` as sent: every number kept with its value or
//! refused, never silently altered.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// `features` as sent, refusing any number that would not be stored and
/// returned with the same value.
///
/// Without serde_json's `arbitrary_precision` (which would change how every
/// crate of the workspace reads numbers, `rust_decimal`'s serde included),
/// a JSON number is held as an `i64`, a `u64` or an `f64`: an integer
/// beyond 64 bits, or a decimal no `f64` holds exactly, would silently
/// become another number (`18446744073709551616` → `1.8446744073709552e19`).
/// The value is therefore read as raw text first, and every number in it is
/// checked by [`exact_number`] before it is parsed.
pub(super) fn exact_features<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    let Some(raw) = Option::<Box<RawValue>>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let exact = exact_numbers(raw.get()).map_err(D::Error::custom)?;
    serde_json::from_str(&exact)
        .map(Some)
        .map_err(D::Error::custom)
}

/// A step into a JSON value, to name where a number is.
enum Step {
    /// In an object, at the member named so far (none before the first).
    Member(Option<String>),
    /// In an array, at this index.
    Element(usize),
}

/// Checks every number of `json` (valid JSON text) with [`exact_number`],
/// after writing an integral number in integer notation (`2.0` → `2`,
/// `1e3` → `1000`: JSON Schema's integers, which must lie within the
/// integer range); returns the text so rewritten. The error names the
/// number's path (`features.limits.seats`) and why. Iterative, so nesting
/// depth costs no stack.
fn exact_numbers(json: &str) -> Result<String, String> {
    let mut out = String::with_capacity(json.len());
    let mut copied = 0;
    let bytes = json.as_bytes();
    let mut path: Vec<Step> = Vec::new();
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'{' => path.push(Step::Member(None)),
            b'[' => path.push(Step::Element(0)),
            b'}' | b']' => {
                path.pop();
            }
            b',' => {
                if let Some(Step::Element(index)) = path.last_mut() {
                    *index += 1;
                }
            }
            b'"' => {
                let end = string_end(bytes, at);
                let after = bytes[end..]
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .map(|offset| bytes[end + offset]);
                if after == Some(b':')
                    && let Some(Step::Member(name)) = path.last_mut()
                {
                    let text = &json[at..end];
                    *name = Some(serde_json::from_str(text).unwrap_or_else(|_| text.to_owned()));
                }
                at = end;
                continue;
            }
            b'-' | b'0'..=b'9' => {
                let end = bytes[at..]
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .map_or(bytes.len(), |offset| at + offset);
                let number = &json[at..end];
                let integral = integral_text(number);
                if let Some(integer) = &integral {
                    out.push_str(&json[copied..at]);
                    out.push_str(integer);
                    copied = end;
                }
                exact_number(integral.as_deref().unwrap_or(number)).map_err(|reason| {
                    format!("{}: the number {number} {reason}", path_name(&path))
                })?;
                at = end;
                continue;
            }
            _ => {}
        }
        at += 1;
    }
    out.push_str(&json[copied..]);
    Ok(out)
}

/// A number written with a fraction or an exponent whose value is a
/// non-zero integer (`2.0`, `1e3`, `-9.2e18`), in integer notation; `None`
/// otherwise (and for an absurd exponent).
fn integral_text(text: &str) -> Option<String> {
    if !text.contains(['.', 'e', 'E']) {
        return None;
    }
    let (negative, digits, exponent) = decimal_value(text)?;
    if digits.is_empty() || !(0..=1000).contains(&exponent) {
        return None;
    }
    let zeros = "0".repeat(usize::try_from(exponent).ok()?);
    let sign = if negative { "-" } else { "" };
    Some(format!("{sign}{digits}{zeros}"))
}

/// The index just past the string that starts at `start` (a `"`).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// `features.limits.seats`, `features.tiers[2]`.
fn path_name(path: &[Step]) -> String {
    let mut name = String::from("features");
    for step in path {
        match step {
            Step::Member(Some(member)) => {
                name.push('.');
                name.push_str(member);
            }
            Step::Member(None) => {}
            Step::Element(index) => name.push_str(&format!("[{index}]")),
        }
    }
    name
}

/// Whether the JSON number `text` is stored and returned with its value:
/// the number serde_json holds (`i64`, `u64` or `f64`) must be written back
/// as the same decimal value, and read back as the same number both from
/// that text (SQLite keeps it) and from PostgreSQL's `jsonb` rendering of
/// it (plain decimal notation).
///
/// # Errors
/// Why not, for the caller.
fn exact_number(text: &str) -> Result<(), String> {
    const REFUSED: &str = "cannot be stored exactly: integers must lie within \
        -9223372036854775808..=18446744073709551615 and other numbers must be \
        exact as 64-bit floats; send it as a string";
    let integer = !text.contains(['.', 'e', 'E']);
    if integer && text.parse::<i64>().is_err() && text.parse::<u64>().is_err() {
        return Err(format!("is out of range; {REFUSED}"));
    }
    let held: serde_json::Value =
        serde_json::from_str(text).map_err(|_| format!("is out of range; {REFUSED}"))?;
    let written = held.to_string();
    if decimal_value(text).is_none() || decimal_value(text) != decimal_value(&written) {
        return Err(format!("would become {written}; {REFUSED}"));
    }
    let read_back = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
    let same = |other: Option<serde_json::Value>| match (other, held.as_f64()) {
        (Some(other), _) if other == held => true,
        // A float may come back as an integer (`150.0` as `150`) or as
        // `0.0` for `-0.0`: the same value.
        (Some(other), Some(float)) if held.is_f64() => other.as_f64() == Some(float),
        (Some(_) | None, _) => false,
    };
    if same(read_back(&written)) && same(plain_decimal(&written).as_deref().and_then(read_back)) {
        Ok(())
    } else {
        Err(format!("would not read back as {written}; {REFUSED}"))
    }
}

/// The value of a JSON number as `(negative, significant digits, exponent)`
/// with no leading or trailing zero digit (zero is `(false, "", 0)`);
/// `None` when the exponent does not fit an `i64`.
fn decimal_value(text: &str) -> Option<(bool, String, i64)> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    let trimmed = digits.trim_end_matches('0');
    if trimmed.is_empty() {
        return Some((false, String::new(), 0));
    }
    let fraction_len = i64::try_from(fraction.len()).ok()?;
    let trailing = i64::try_from(digits.len() - trimmed.len()).ok()?;
    let exponent = exponent.checked_sub(fraction_len)?.checked_add(trailing)?;
    Some((negative, trimmed.to_owned(), exponent))
}

/// A JSON number in plain decimal notation with the digits it was written
/// with, as PostgreSQL renders a `jsonb` number (`1e300` → `1` and 300
/// zeros, `1.5e-7` → `0.00000015`); `None` for an absurd exponent.
fn plain_decimal(text: &str) -> Option<String> {
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        return Some(text.to_owned());
    };
    let exponent: i64 = exponent.parse().ok()?;
    if exponent.unsigned_abs() > 1000 {
        return None;
    }
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    // The position of the decimal point within `digits`.
    let point = i64::try_from(whole.len()).ok()? + exponent;
    let len = i64::try_from(digits.len()).ok()?;
    let plain = if point <= 0 {
        let zeros = usize::try_from(-point).ok()?;
        format!("0.{}{digits}", "0".repeat(zeros))
    } else if point >= len {
        let zeros = usize::try_from(point - len).ok()?;
        format!("{digits}{}", "0".repeat(zeros))
    } else {
        let point = usize::try_from(point).ok()?;
        format!("{}.{}", &digits[..point], &digits[point..])
    };
    Some(format!("{sign}{plain}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::NewPlan;

    fn features(json: &str) -> Result<serde_json::Value, String> {
        let body = format!(
            r#"{{"name":"P","slug":"p","price":"1","currency":"EUR","billing_period":"monthly","features":{json}}}"#
        );
        serde_json::from_str::<NewPlan>(&body)
            .map(|plan| plan.features.unwrap_or_default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn feature_numbers_are_kept_exactly_or_refused_by_path() {
        for kept in [
            r#"{"seats":10}"#,
            r#"{"seats":18446744073709551615}"#,
            r#"{"floor":-9223372036854775808}"#,
            r#"{"ratio":0.5,"price":19.99,"tiny":1e-7,"third":0.3333333333333333}"#,
            r#"{"nested":{"list":[1,2.5,{"x":-0.0}]},"text":"18446744073709551616"}"#,
        ] {
            let value = features(kept).unwrap_or_else(|e| panic!("{kept}: {e}"));
            // What is kept is written back with the same numbers.
            let sent: serde_json::Value = serde_json::from_str(kept).unwrap();
            assert_eq!(value, sent, "{kept}");
        }
        for (refused, path) in [
            (r#"{"seats":18446744073709551616}"#, "features.seats"),
            (r#"{"floor":-9223372036854775809}"#, "features.floor"),
            (
                r#"{"a":{"b":[1,2,0.1000000000000000000001]}}"#,
                "features.a.b[2]",
            ),
            (r#"{"huge":1e400}"#, "features.huge"),
            (r#"{"big":1e300}"#, "features.big"),
            (r#"{"big":-9.3e18}"#, "features.big"),
            (r#"{"x":123456789012345678901234567890}"#, "features.x"),
        ] {
            let error = features(refused).unwrap_err();
            assert!(error.contains(path), "{refused}: {error}");
            assert!(error.contains("send it as a string"), "{refused}: {error}");
        }
    }

    #[test]
    fn integral_numbers_are_kept_as_integers() {
        for (sent, kept) in [
            (r#"{"n":9007199254740993.0}"#, r#"{"n":9007199254740993}"#),
            (
                r#"{"n":-9.223372036854775e+18}"#,
                r#"{"n":-9223372036854775000}"#,
            ),
            (r#"{"n":[1e3, 2.50e1]}"#, r#"{"n":[1000, 25]}"#),
            // Read exactly (serde_json's `float_roundtrip`), so kept as sent.
            (
                r#"{"n":3.758720996455826e-300}"#,
                r#"{"n":3.758720996455826e-300}"#,
            ),
        ] {
            let kept: serde_json::Value = serde_json::from_str(kept).unwrap();
            assert_eq!(features(sent), Ok(kept), "{sent}");
        }
    }

    #[test]
    fn decimal_values_compare_by_value() {
        assert_eq!(decimal_value("1.50e1"), decimal_value("15"));
        assert_eq!(decimal_value("-0.0"), decimal_value("0"));
        assert_ne!(
            decimal_value("18446744073709551616"),
            decimal_value("1.8446744073709552e19")
        );
        assert_eq!(plain_decimal("1.5e-7").as_deref(), Some("0.00000015"));
        assert_eq!(plain_decimal("1.5e2").as_deref(), Some("150"));
        assert_eq!(plain_decimal("-1.25e1").as_deref(), Some("-12.5"));
        assert_eq!(plain_decimal("1e3").as_deref(), Some("1000"));
    }
}
