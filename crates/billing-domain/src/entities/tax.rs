//! `tax`: a tax (VAT, sales tax …) with its current rate; the history of its
//! rates lives in `tax_rate`.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Numeric;

/// A tax.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "tax")]
pub struct Model {
    /// Identity.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Display name (`German VAT`).
    pub name: String,
    /// Stable code (`DE_VAT`), unique.
    #[sea_orm(unique)]
    pub code: String,
    /// Free text.
    pub description: Option<String>,
    /// The current rate in percent (`19.0000`).
    #[sea_orm(column_type = "Decimal(Some((9, 4)))")]
    pub rate: Numeric,
    /// ISO 3166-1 alpha-2 country code.
    #[sea_orm(indexed)]
    pub country_code: String,
    /// Region within the country (state, canton), if any.
    pub region_code: Option<String>,
    /// Whether it may be applied to new invoices.
    pub is_active: bool,
    /// Whether prices already contain the tax (gross prices).
    pub is_inclusive: bool,
    /// When the row was created.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
    /// Optimistic-lock version, starts at 1.
    pub version: i32,
}

/// Relations of `tax`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Historical rates.
    #[sea_orm(has_many = "super::tax_rate::Entity")]
    TaxRate,
}

impl Related<super::tax_rate::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TaxRate.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
