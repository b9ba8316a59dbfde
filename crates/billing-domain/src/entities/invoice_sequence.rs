//! `invoice_sequence`: the last invoice number issued per year, the counter
//! behind gapless invoice numbers.
//!
//! The counter row is incremented inside the transaction that inserts the
//! invoice, so a rolled-back invoice also rolls back its number.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The invoice counter of one year.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "invoice_sequence")]
pub struct Model {
    /// The calendar year (UTC) the numbers belong to.
    #[sea_orm(primary_key, auto_increment = false)]
    pub year: i32,
    /// The last sequence number issued in that year (0 before the first).
    pub last_number: i64,
    /// When the counter last moved.
    pub updated_at: DateTimeUtc,
}

/// `invoice_sequence` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
