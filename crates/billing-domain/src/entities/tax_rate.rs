//! `tax_rate`: one historical rate of a tax, in force on the half-open
//! interval `[valid_from, valid_to)`.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Numeric;

/// A rate of a tax over a period; `valid_to = None` is the open, current one.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "tax_rate")]
pub struct Model {
    /// Identity.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The tax.
    #[sea_orm(indexed)]
    pub tax_id: i64,
    /// Rate in percent.
    #[sea_orm(column_type = "Decimal(Some((9, 4)))")]
    pub rate: Numeric,
    /// First instant the rate applies.
    pub valid_from: DateTimeUtc,
    /// First instant it no longer applies; `None` while open.
    pub valid_to: Option<DateTimeUtc>,
    /// When the row was created.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
    /// Optimistic-lock version, starts at 1.
    pub version: i32,
}

/// Relations of `tax_rate`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The tax.
    #[sea_orm(
        belongs_to = "super::tax::Entity",
        from = "Column::TaxId",
        to = "super::tax::Column::Id",
        on_delete = "Cascade"
    )]
    Tax,
}

impl Related<super::tax::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tax.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
