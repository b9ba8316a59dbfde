//! `subscription_renewal`: the renewal invoice issued for one period of a
//! subscription. The pair (`subscription_id`, `period_start`) is unique, so
//! the database itself refuses a second renewal invoice for a period.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One renewal: the invoice that pays for the period starting at
/// `period_start` (the subscription's `expires_at` when it was issued).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "subscription_renewal")]
pub struct Model {
    /// Row id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The subscription renewed.
    pub subscription_id: i64,
    /// The start of the period the invoice pays for.
    pub period_start: DateTimeUtc,
    /// The renewal invoice.
    #[sea_orm(unique)]
    pub invoice_id: i64,
    /// When the renewal was issued.
    pub created_at: DateTimeUtc,
}

/// Relations of `subscription_renewal`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The subscription renewed.
    #[sea_orm(
        belongs_to = "super::subscription::Entity",
        from = "Column::SubscriptionId",
        to = "super::subscription::Column::Id",
        on_delete = "Cascade"
    )]
    Subscription,
    /// The renewal invoice.
    #[sea_orm(
        belongs_to = "super::user_invoice::Entity",
        from = "Column::InvoiceId",
        to = "super::user_invoice::Column::Id",
        on_delete = "Cascade"
    )]
    UserInvoice,
}

impl ActiveModelBehavior for ActiveModel {}
