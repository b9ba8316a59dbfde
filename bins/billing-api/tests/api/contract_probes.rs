//! The values the contract test sends for a rule of the document: probes
//! at and around its limits ([`probes`]), and whether the document calls
//! a value valid ([`satisfies`]).

use regex::Regex;
use serde_json::{Value, json};

/// The keywords that constrain a value.
pub const CONSTRAINTS: [&str; 7] = [
    "enum",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "propertyNames",
];

pub fn is_constrained(schema: &Value) -> bool {
    CONSTRAINTS.iter().any(|k| schema.get(*k).is_some())
}

/// Whether `value` satisfies the string or integer constraints of `schema`.
pub fn satisfies(schema: &Value, value: &Value) -> bool {
    if let Some(names) = schema.get("enum").and_then(Value::as_array) {
        return names.contains(value);
    }
    match value {
        Value::String(text) => {
            let chars = text.chars().count() as u64;
            let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0);
            let max = schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX);
            let pattern = schema.get("pattern").and_then(Value::as_str).unwrap_or("");
            (min..=max).contains(&chars) && Regex::new(pattern).is_ok_and(|r| r.is_match(text))
        }
        Value::Number(number) => {
            let above = match (
                schema.get("minimum").and_then(Value::as_i64),
                number.as_i64(),
            ) {
                (Some(min), Some(n)) => n >= min,
                (Some(_), None) => number.as_u64().is_some(),
                (None, _) => true,
            };
            let below = match (
                schema.get("maximum").and_then(Value::as_i64),
                number.as_i64(),
            ) {
                (Some(max), Some(n)) => n <= max,
                (Some(_), None) => false,
                (None, _) => true,
            };
            above && below
        }
        Value::Object(map) => {
            let names = schema
                .pointer("/propertyNames/pattern")
                .and_then(Value::as_str);
            let values = schema.get("additionalProperties");
            map.iter().all(|(k, v)| {
                names.is_none_or(|p| Regex::new(p).is_ok_and(|r| r.is_match(k)))
                    && values.is_none_or(|s| satisfies(s, v))
            })
        }
        Value::Null | Value::Bool(_) | Value::Array(_) => true,
    }
}

/// Strings of `length` characters that may match `pattern`: a filler
/// before a seed that matches it.
fn of_length(pattern: &Regex, length: usize) -> Vec<String> {
    let seeds = ["", "a@example.com", "1", "19.99"];
    let mut found = Vec::new();
    for seed in seeds {
        for filler in ['a', 'x', '1', '-'] {
            let pad = length.saturating_sub(seed.chars().count());
            let candidate: String = std::iter::repeat_n(filler, pad)
                .chain(seed.chars())
                .collect();
            if candidate.chars().count() == length && pattern.is_match(&candidate) {
                found.push(candidate);
                return found;
            }
        }
    }
    found
}

/// Values at and around the limits of `schema` (and its example), with a
/// few mutations of each; which are valid is for [`satisfies`] to say.
pub fn probes(schema: &Value) -> Vec<Value> {
    let mut values = Vec::new();
    if let Some(names) = schema.get("propertyNames") {
        let price = schema
            .get("additionalProperties")
            .cloned()
            .unwrap_or(json!({}));
        for code in probes(names) {
            if let Value::String(code) = code {
                for amount in probes(&price).into_iter().take(6) {
                    values.push(json!({code.clone(): amount}));
                }
            }
        }
        return values;
    }
    if let Some(names) = schema.get("enum").and_then(Value::as_array) {
        for name in names.iter().filter_map(Value::as_str) {
            for changed in [
                name.to_owned(),
                name.to_uppercase(),
                format!(" {name}"),
                format!("{name}x"),
                String::new(),
            ] {
                values.push(Value::String(changed));
            }
        }
        return values;
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_i64) {
        values.push(json!(min));
        if let Some(below) = min.checked_sub(1) {
            values.push(json!(below));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_i64) {
        values.push(json!(max));
        match max.checked_add(1) {
            Some(above) => values.push(json!(above)),
            None => values.push(json!(u64::try_from(max).unwrap_or(0) + 1)),
        }
    }
    let Some(pattern) = schema.get("pattern").and_then(Value::as_str) else {
        return values;
    };
    let regex = Regex::new(pattern).expect("the document's patterns compile");
    let mut texts: Vec<String> = Vec::new();
    for key in ["minLength", "maxLength"] {
        if let Some(n) = schema.get(key).and_then(Value::as_u64) {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            for length in [n.saturating_sub(1), n, n + 1] {
                texts.extend(of_length(&regex, length));
            }
        }
    }
    let examples = [
        schema.get("example").and_then(Value::as_str).unwrap_or(""),
        "EUR",
        "eur",
        "DE",
        "de",
        "19.99",
        "0",
        "1",
        "100",
        "a",
        "pro",
        "vat_1",
        "a@b.co",
    ];
    texts.extend(
        examples
            .iter()
            .filter(|e| regex.is_match(e))
            .take(2)
            .map(|e| (*e).to_owned()),
    );
    let mut mutated = Vec::new();
    for text in &texts {
        for changed in [
            format!("{text}9"),
            format!("{text}0"),
            format!("0{text}"),
            format!(" {text}"),
            format!("{text} "),
            format!("-{text}"),
            format!("{text}\u{0}"),
            text.to_uppercase(),
            String::new(),
            " ".to_owned(),
        ] {
            mutated.push(changed);
        }
    }
    texts.extend(mutated);
    texts.sort();
    texts.dedup();
    values.extend(texts.into_iter().map(Value::String));
    values
}
