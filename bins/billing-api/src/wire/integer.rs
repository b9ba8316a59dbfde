//! Serde readers for integers that accept every JSON number JSON Schema
//! calls an integer: `2` and `2.0` alike (not `2.5`), within the type's
//! range.

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

pub(super) fn integer<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    deserializer.deserialize_any(Integral(PhantomData))
}

pub(super) fn option_integer<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
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
