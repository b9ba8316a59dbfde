//! `currency`: an ISO 4217 currency, its minor units and its exchange rate
//! against the default currency.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Numeric;

/// A currency. At most one row has `is_default` (a partial unique index).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "currency")]
pub struct Model {
    /// Identity.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// ISO 4217 code, upper-case (`EUR`), unique.
    #[sea_orm(unique)]
    pub code: String,
    /// English name (`Euro`).
    pub name: String,
    /// Symbol (`€`), if the currency has one in use.
    pub symbol: Option<String>,
    /// Units of this currency per one unit of the default currency.
    #[sea_orm(column_type = "Decimal(Some((19, 8)))")]
    pub exchange_rate: Numeric,
    /// Minor units: EUR 2, JPY 0, KWD 3.
    pub decimal_places: i16,
    /// Whether this is the default currency (at most one).
    pub is_default: bool,
    /// Whether new plans and invoices may use it.
    pub is_active: bool,
    /// When the row was created.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
    /// Optimistic-lock version, starts at 1.
    pub version: i32,
}

/// `currency` has no outgoing relations; plans and invoices refer to its code.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
