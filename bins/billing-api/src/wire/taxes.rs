//! The bodies of `POST /taxes` and `PATCH /taxes/{code}`.

use billing_service as service;
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::ToSchema;

/// A tax to create; its rate applies from now on.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTax {
    /// Display name.
    pub name: String,
    /// Stable code (`DE_VAT`): letters, digits, `_` and `-`, unique.
    pub code: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Rate in percent (`"19.00"`), 0 to 100, at most 4 decimals.
    #[schema(value_type = String, example = "19.00")]
    #[serde(deserialize_with = "super::decimal::tax_rate")]
    pub rate: Decimal,
    /// ISO 3166-1 alpha-2 country code.
    pub country_code: String,
    /// Region within the country, if any.
    #[serde(default)]
    pub region_code: Option<String>,
    /// Whether prices already contain the tax; `false` when absent.
    #[serde(default)]
    pub is_inclusive: Option<bool>,
    /// Whether it may be applied; `true` when absent.
    #[serde(default)]
    pub is_active: Option<bool>,
}

impl From<NewTax> for service::NewTax {
    fn from(wire: NewTax) -> Self {
        let NewTax {
            name,
            code,
            description,
            rate,
            country_code,
            region_code,
            is_inclusive,
            is_active,
        } = wire;
        Self {
            name,
            code,
            description,
            rate,
            country_code,
            region_code,
            is_inclusive,
            is_active,
        }
    }
}

/// Changes to a tax; absent fields stay as they are. A new `rate` closes the
/// open historical rate now and opens a new one.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxChanges {
    /// New display name.
    #[serde(default)]
    pub name: Option<String>,
    /// New description; an empty string removes it.
    #[serde(default)]
    pub description: Option<String>,
    /// New rate in percent, in force from now on.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "19.00")]
    #[serde(deserialize_with = "super::decimal::option_tax_rate")]
    pub rate: Option<Decimal>,
    /// New country code.
    #[serde(default)]
    pub country_code: Option<String>,
    /// New region code; an empty string removes it.
    #[serde(default)]
    pub region_code: Option<String>,
    /// Whether prices contain the tax.
    #[serde(default)]
    pub is_inclusive: Option<bool>,
    /// Whether it may be applied.
    #[serde(default)]
    pub is_active: Option<bool>,
}

impl From<TaxChanges> for service::TaxChanges {
    fn from(wire: TaxChanges) -> Self {
        let TaxChanges {
            name,
            description,
            rate,
            country_code,
            region_code,
            is_inclusive,
            is_active,
        } = wire;
        Self {
            name,
            description,
            rate,
            country_code,
            region_code,
            is_inclusive,
            is_active,
        }
    }
}
