//! The bodies of `POST /plans` and `PATCH /plans/{id_or_slug}`.

use std::collections::BTreeMap;

use billing_domain::enums::BillingPeriod;
use billing_service as service;
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::ToSchema;

/// A plan to create.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    /// Display name.
    pub name: String,
    /// URL name: lower-case letters, digits and `-`, not only digits; unique.
    pub slug: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Price per billing period in `currency`.
    #[schema(value_type = String, example = "19.99")]
    #[serde(deserialize_with = "super::decimal::price")]
    pub price: Decimal,
    /// ISO 4217 code of `price`; an existing, active currency.
    pub currency: String,
    /// How long one payment lasts.
    #[schema(value_type = crate::wire::enums::BillingPeriod)]
    pub billing_period: BillingPeriod,
    /// Features and limits: a JSON object; `{}` when absent. Every number
    /// in it is kept exactly as sent, or refused: integers from
    /// -9223372036854775808 to 18446744073709551615, other numbers only
    /// when a 64-bit float holds their decimal value exactly (`0.5`,
    /// `19.99`, `1e3`); larger or more precise ones must be sent as strings.
    #[serde(default, deserialize_with = "super::features::exact_features")]
    #[schema(value_type = Option<Object>)]
    pub features: Option<serde_json::Value>,
    /// Whether it is offered; `true` when absent.
    #[serde(default)]
    pub is_active: Option<bool>,
    /// Position in listings; 0 when absent.
    #[serde(default, deserialize_with = "super::integer::option_integer")]
    pub sort_order: Option<i32>,
    /// Fixed prices in other currencies: code → price.
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    #[serde(deserialize_with = "super::decimal::option_price_map")]
    pub prices: Option<BTreeMap<String, Decimal>>,
}

impl From<NewPlan> for service::NewPlan {
    fn from(wire: NewPlan) -> Self {
        let NewPlan {
            name,
            slug,
            description,
            price,
            currency,
            billing_period,
            features,
            is_active,
            sort_order,
            prices,
        } = wire;
        Self {
            name,
            slug,
            description,
            price,
            currency,
            billing_period,
            features,
            is_active,
            sort_order,
            prices,
        }
    }
}

/// Changes to a plan; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanChanges {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New slug.
    #[serde(default)]
    pub slug: Option<String>,
    /// New description; an empty string removes it.
    #[serde(default)]
    pub description: Option<String>,
    /// New price.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "24.99")]
    #[serde(deserialize_with = "super::decimal::option_price")]
    pub price: Option<Decimal>,
    /// New currency of `price`.
    #[serde(default)]
    pub currency: Option<String>,
    /// New billing period (applies to payments from now on).
    #[serde(default)]
    #[schema(value_type = Option<crate::wire::enums::BillingPeriod>)]
    pub billing_period: Option<BillingPeriod>,
    /// New features object; its numbers are kept exactly or refused, as on
    /// creation.
    #[serde(default, deserialize_with = "super::features::exact_features")]
    #[schema(value_type = Option<Object>)]
    pub features: Option<serde_json::Value>,
    /// Whether it is offered.
    #[serde(default)]
    pub is_active: Option<bool>,
    /// New position in listings.
    #[serde(default, deserialize_with = "super::integer::option_integer")]
    pub sort_order: Option<i32>,
    /// New fixed prices (replacing all of them).
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    #[serde(deserialize_with = "super::decimal::option_price_map")]
    pub prices: Option<BTreeMap<String, Decimal>>,
}

impl From<PlanChanges> for service::PlanChanges {
    fn from(wire: PlanChanges) -> Self {
        let PlanChanges {
            name,
            slug,
            description,
            price,
            currency,
            billing_period,
            features,
            is_active,
            sort_order,
            prices,
        } = wire;
        Self {
            name,
            slug,
            description,
            price,
            currency,
            billing_period,
            features,
            is_active,
            sort_order,
            prices,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<NewPlan, serde_json::Error> {
        serde_json::from_str(body)
    }

    #[test]
    fn money_must_be_an_exact_decimal_string() {
        let ok = r#"{"name":"P","slug":"p","price":"19.99","currency":"EUR","billing_period":"monthly","prices":{"USD":"21.50"}}"#;
        let plan = parse(ok).unwrap();
        assert_eq!(plan.price.to_string(), "19.99");
        assert_eq!(plan.prices.unwrap()["USD"].to_string(), "21.50");
        for bad in [
            r#"{"name":"P","slug":"p","price":19.99,"currency":"EUR","billing_period":"monthly"}"#,
            r#"{"name":"P","slug":"p","price":"1.00000000000000000000000000001","currency":"EUR","billing_period":"monthly"}"#,
            r#"{"name":"P","slug":"p","price":"1e2","currency":"EUR","billing_period":"monthly"}"#,
            r#"{"name":"P","slug":"p","price":"1","currency":"EUR","billing_period":"monthly","prices":{"USD":21.5}}"#,
        ] {
            assert!(parse(bad).is_err(), "accepted {bad}");
        }
    }
}
