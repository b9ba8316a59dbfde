//! `subscription`: a user's subscription to a plan and its lifecycle
//! timestamps.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::SubscriptionStatus;

/// A subscription.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "subscription")]
pub struct Model {
    /// Identity.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The subscriber.
    #[sea_orm(indexed)]
    pub user_id: i64,
    /// The plan.
    pub tarif_plan_id: i64,
    /// Where the subscription stands.
    #[sea_orm(indexed)]
    pub status: SubscriptionStatus,
    /// First activation; set once.
    pub started_at: Option<DateTimeUtc>,
    /// End of the paid time; `None` for lifetime plans and before activation.
    #[sea_orm(indexed)]
    pub expires_at: Option<DateTimeUtc>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTimeUtc>,
    /// When the current pause began.
    pub paused_at: Option<DateTimeUtc>,
    /// When the row was created.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
    /// Optimistic-lock version, starts at 1.
    pub version: i32,
}

/// Relations of `subscription`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The subscriber.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
    /// The plan.
    #[sea_orm(
        belongs_to = "super::tarif_plan::Entity",
        from = "Column::TarifPlanId",
        to = "super::tarif_plan::Column::Id",
        on_delete = "Restrict"
    )]
    TarifPlan,
    /// Invoices for this subscription.
    #[sea_orm(has_many = "super::user_invoice::Entity")]
    UserInvoice,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::tarif_plan::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TarifPlan.def()
    }
}

impl Related<super::user_invoice::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserInvoice.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
