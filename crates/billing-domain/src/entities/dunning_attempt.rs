//! `dunning_attempt`: one retry of an unpaid renewal invoice. The pair
//! (`invoice_id`, `attempt`) is unique, so an attempt is claimed once.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::DunningOutcome;

/// One dunning attempt and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "dunning_attempt")]
pub struct Model {
    /// Row id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The renewal invoice retried.
    pub invoice_id: i64,
    /// 1 for the first retry, 2 for the second …
    pub attempt: i32,
    /// How it ended (`started` until it has).
    pub outcome: DunningOutcome,
    /// The provider's reason for a decline or the charger's error, if any.
    pub detail: Option<String>,
    /// When the attempt was made (the cycle's clock).
    pub attempted_at: DateTimeUtc,
}

/// Relations of `dunning_attempt`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The invoice retried.
    #[sea_orm(
        belongs_to = "super::user_invoice::Entity",
        from = "Column::InvoiceId",
        to = "super::user_invoice::Column::Id",
        on_delete = "Cascade"
    )]
    UserInvoice,
}

impl ActiveModelBehavior for ActiveModel {}
