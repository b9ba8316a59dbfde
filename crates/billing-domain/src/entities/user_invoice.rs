//! `user_invoice`: an invoice for a plan, its amounts and its payment.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Numeric;
use crate::enums::InvoiceStatus;

/// An invoice. `amount == net_amount + tax_amount`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "user_invoice")]
pub struct Model {
    /// Identity.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The customer.
    #[sea_orm(indexed)]
    pub user_id: i64,
    /// The plan invoiced.
    pub tarif_plan_id: i64,
    /// The subscription it pays for, if any.
    pub subscription_id: Option<i64>,
    /// `INV-<year>-<6-digit sequence>`, unique, gapless per year.
    #[sea_orm(unique)]
    pub invoice_number: String,
    /// Gross amount (net + tax).
    pub amount: Numeric,
    /// Net amount.
    pub net_amount: Numeric,
    /// Tax amount.
    pub tax_amount: Numeric,
    /// ISO 4217 code of the amounts.
    pub currency: String,
    /// Where the invoice stands.
    #[sea_orm(indexed)]
    pub status: InvoiceStatus,
    /// How it was paid (`card`, `sepa` …).
    pub payment_method: Option<String>,
    /// The payment provider's reference.
    pub payment_reference: Option<String>,
    /// When it was issued; the tax rate in force then applies.
    pub invoiced_at: DateTimeUtc,
    /// When it was paid.
    pub paid_at: Option<DateTimeUtc>,
    /// After this instant a pending invoice can no longer be paid.
    pub expires_at: Option<DateTimeUtc>,
    /// The fencing token of the distributed lock under which the invoice was
    /// last paid or refunded: a writer holding an older token outlived its
    /// lock and must not write.
    pub fencing_token: Option<i64>,
    /// When the row was created.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
    /// Optimistic-lock version, starts at 1.
    pub version: i32,
}

/// Relations of `user_invoice`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The customer.
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
    /// The subscription.
    #[sea_orm(
        belongs_to = "super::subscription::Entity",
        from = "Column::SubscriptionId",
        to = "super::subscription::Column::Id",
        on_delete = "SetNull"
    )]
    Subscription,
    /// The currency of the amounts.
    #[sea_orm(
        belongs_to = "super::currency::Entity",
        from = "Column::Currency",
        to = "super::currency::Column::Code",
        on_delete = "Restrict"
    )]
    Currency,
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

impl Related<super::subscription::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Subscription.def()
    }
}

impl Related<super::currency::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Currency.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
