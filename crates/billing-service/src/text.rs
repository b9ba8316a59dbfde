//! The rules for free-text input: trimmed, bounded, empty meaning absent.

use crate::BillingError;

/// `value` trimmed, refused when blank or longer than `max_chars` as sent
/// (the schema's `maxLength` and [`crate::rules::required_text_pattern`]).
pub(crate) fn valid_text(
    field: &str,
    value: &str,
    max_chars: usize,
) -> Result<String, BillingError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || value.chars().count() > max_chars {
        return Err(BillingError::invalid(format!(
            "{field} must be 1 to {max_chars} characters, not blank"
        )));
    }
    Ok(trimmed.to_owned())
}

/// `value` trimmed; `None` when absent or blank.
pub(crate) fn optional_text(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `value` trimmed; `None` when absent or blank; refused when longer than
/// `max_chars` (the column's length) as sent.
pub(crate) fn optional_bounded_text(
    field: &str,
    value: Option<&str>,
    max_chars: usize,
) -> Result<Option<String>, BillingError> {
    match value {
        Some(sent) if sent.chars().count() > max_chars => Err(BillingError::invalid(format!(
            "{field} must be at most {max_chars} characters"
        ))),
        Some(_) | None => Ok(optional_text(value)),
    }
}

/// Serde readers for decimal input that refuse anything they would have to
/// round or reinterpret: money and rates arrive as a JSON string of plain
/// digits in the shape of their [`DecimalRule`](crate::rules::DecimalRule)
/// (`"19.99"`), never as a float, never with a sign, an exponent or more
/// digits than the column holds.
pub(crate) mod exact {
    use std::collections::BTreeMap;

    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, de::Error as _};

    use crate::rules::{DecimalRule, EXCHANGE_RATE, PRICE, TAX_RATE};

    fn by_rule<'de, D: Deserializer<'de>>(
        rule: DecimalRule,
        deserializer: D,
    ) -> Result<Decimal, D::Error> {
        let text = String::deserialize(deserializer)?;
        rule.parse(&text).map_err(D::Error::custom)
    }

    fn option_by_rule<'de, D: Deserializer<'de>>(
        rule: DecimalRule,
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| rule.parse(&text).map_err(D::Error::custom))
            .transpose()
    }

    pub(crate) fn price<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        by_rule(PRICE, deserializer)
    }

    pub(crate) fn option_price<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        option_by_rule(PRICE, deserializer)
    }

    pub(crate) fn exchange_rate<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Decimal, D::Error> {
        by_rule(EXCHANGE_RATE, deserializer)
    }

    pub(crate) fn option_exchange_rate<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        option_by_rule(EXCHANGE_RATE, deserializer)
    }

    pub(crate) fn tax_rate<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Decimal, D::Error> {
        by_rule(TAX_RATE, deserializer)
    }

    pub(crate) fn option_tax_rate<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        option_by_rule(TAX_RATE, deserializer)
    }

    pub(crate) fn option_price_map<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<BTreeMap<String, Decimal>>, D::Error> {
        Option::<BTreeMap<String, String>>::deserialize(deserializer)?
            .map(|map| {
                map.into_iter()
                    .map(|(code, text)| {
                        PRICE
                            .parse(&text)
                            .map(|d| (code, d))
                            .map_err(D::Error::custom)
                    })
                    .collect()
            })
            .transpose()
    }

    #[cfg(test)]
    mod tests {
        use crate::rules::PRICE;

        #[test]
        fn plain_decimals_only() {
            assert_eq!(PRICE.parse("19.99").unwrap().to_string(), "19.99");
            assert_eq!(PRICE.parse("0").unwrap().to_string(), "0");
            for refused in [
                "", "1.", ".5", "1e3", "1_000", "+1", " 1", "0x10", "1.2.3", "NaN", "-1", "01",
                "1.00000",
            ] {
                assert!(PRICE.parse(refused).is_err(), "{refused:?} was accepted");
            }
        }
    }
}

/// Serde readers for integers that accept every JSON number JSON Schema
/// calls an integer: `2` and `2.0` alike (not `2.5`), within the type's
/// range.
pub(crate) mod integer {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{self, Deserializer, Visitor};

    struct Integral<T>(PhantomData<T>);

    impl<T: TryFrom<i64> + TryFrom<u64>> Visitor<'_> for Integral<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
            // An integral float within i64 converts exactly; any other is refused.
            let whole = format!("{v:.0}");
            match whole.parse::<i64>() {
                Ok(n)
                    if whole
                        .parse::<f64>()
                        .is_ok_and(|w| w.to_bits() == v.to_bits()) =>
                {
                    self.visit_i64(n)
                }
                Ok(_) | Err(_) => Err(E::custom(format!("{v} is not an integer"))),
            }
        }
    }

    struct OptionalIntegral<T>(PhantomData<T>);

    impl<'de, T: TryFrom<i64> + TryFrom<u64>> Visitor<'de> for OptionalIntegral<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
            d.deserialize_any(Integral(PhantomData)).map(Some)
        }
    }

    pub(crate) fn integer<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64> + TryFrom<u64>,
    {
        deserializer.deserialize_any(Integral(PhantomData))
    }

    pub(crate) fn option_integer<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<i64> + TryFrom<u64>,
    {
        deserializer.deserialize_option(OptionalIntegral(PhantomData))
    }

    #[cfg(test)]
    mod tests {
        use serde::Deserialize;

        #[derive(Deserialize)]
        struct Sample {
            #[serde(deserialize_with = "super::integer")]
            id: i64,
            #[serde(default, deserialize_with = "super::option_integer")]
            places: Option<i16>,
        }

        fn read(json: &str) -> Result<(i64, Option<i16>), String> {
            serde_json::from_str::<Sample>(json)
                .map(|s| (s.id, s.places))
                .map_err(|e| e.to_string())
        }

        #[test]
        fn integral_numbers_are_integers() {
            assert_eq!(read(r#"{"id": 2}"#), Ok((2, None)));
            assert_eq!(read(r#"{"id": 500.0, "places": 2.0}"#), Ok((500, Some(2))));
            assert_eq!(read(r#"{"id": -3, "places": null}"#), Ok((-3, None)));
            assert!(read(r#"{"id": 2.5}"#).is_err());
            assert!(read(r#"{"id": 1e300}"#).is_err());
            assert!(read(r#"{"id": "2"}"#).is_err());
            assert!(read(r#"{"id": 1, "places": 40000}"#).is_err());
            assert!(read(r#"{"id": 18446744073709551615}"#).is_err());
        }
    }
}
