//! Serde readers for decimal input that refuse anything they would have to
//! round or reinterpret: money and rates arrive as a JSON string of plain
//! digits in the shape of their [`DecimalRule`](billing_service::rules::DecimalRule)
//! (`"19.99"`), never as a float, never with a sign, an exponent or more
//! digits than the column holds.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, de::Error as _};

use billing_service::rules::{DecimalRule, EXCHANGE_RATE, PRICE, TAX_RATE};

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

pub(super) fn price<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    by_rule(PRICE, deserializer)
}

pub(super) fn option_price<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    option_by_rule(PRICE, deserializer)
}

pub(super) fn exchange_rate<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Decimal, D::Error> {
    by_rule(EXCHANGE_RATE, deserializer)
}

pub(super) fn option_exchange_rate<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    option_by_rule(EXCHANGE_RATE, deserializer)
}

pub(super) fn tax_rate<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    by_rule(TAX_RATE, deserializer)
}

pub(super) fn option_tax_rate<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    option_by_rule(TAX_RATE, deserializer)
}

pub(super) fn option_price_map<'de, D: Deserializer<'de>>(
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
    use billing_service::rules::PRICE;

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
