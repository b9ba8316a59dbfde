//! The bodies of `POST /currencies` and `PATCH /currencies/{code}`.

use billing_service as service;
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::ToSchema;

/// A currency to create.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCurrency {
    /// ISO 4217 code (`EUR`).
    pub code: String,
    /// Name (`Euro`).
    pub name: String,
    /// Symbol (`€`), if any.
    #[serde(default)]
    pub symbol: Option<String>,
    /// Units of this currency per one unit of the default currency.
    #[schema(value_type = String, example = "1.08")]
    #[serde(deserialize_with = "super::decimal::exchange_rate")]
    pub exchange_rate: Decimal,
    /// Minor units; ISO 4217's when absent (EUR 2, JPY 0, KWD 3).
    #[serde(default, deserialize_with = "super::integer::option_integer")]
    pub decimal_places: Option<i16>,
    /// Make it the default currency (rebasing every other rate on it).
    #[serde(default)]
    pub is_default: Option<bool>,
    /// Whether plans and invoices may use it; `true` when absent.
    #[serde(default)]
    pub is_active: Option<bool>,
}

impl From<NewCurrency> for service::NewCurrency {
    fn from(wire: NewCurrency) -> Self {
        let NewCurrency {
            code,
            name,
            symbol,
            exchange_rate,
            decimal_places,
            is_default,
            is_active,
        } = wire;
        Self {
            code,
            name,
            symbol,
            exchange_rate,
            decimal_places,
            is_default,
            is_active,
        }
    }
}

/// Changes to a currency; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CurrencyChanges {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New symbol; an empty string removes it.
    #[serde(default)]
    pub symbol: Option<String>,
    /// New exchange rate against the default currency.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "1.09")]
    #[serde(deserialize_with = "super::decimal::option_exchange_rate")]
    pub exchange_rate: Option<Decimal>,
    /// Whether plans and invoices may use it (the default must stay active).
    #[serde(default)]
    pub is_active: Option<bool>,
    /// `true` makes it the default (every other rate is rebased on it);
    /// `false` is refused on the default: make another currency the default.
    #[serde(default)]
    pub is_default: Option<bool>,
}

impl From<CurrencyChanges> for service::CurrencyChanges {
    fn from(wire: CurrencyChanges) -> Self {
        let CurrencyChanges {
            name,
            symbol,
            exchange_rate,
            is_active,
            is_default,
        } = wire;
        Self {
            name,
            symbol,
            exchange_rate,
            is_active,
            is_default,
        }
    }
}
