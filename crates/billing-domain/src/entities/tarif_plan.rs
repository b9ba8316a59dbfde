//! `tarif_plan`: a plan customers subscribe to, with its price in its own
//! currency and optional fixed prices in other currencies.

use std::collections::BTreeMap;

use sea_orm::FromJsonQueryResult;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Numeric;
use crate::enums::BillingPeriod;

/// Fixed prices of a plan in currencies other than its own: ISO 4217 code →
/// price. Stored as one JSON object whose values are decimal strings, so the
/// prices stay exact and change together with the plan's `version`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
#[serde(transparent)]
pub struct PlanPrices(pub BTreeMap<String, Numeric>);

/// A tariff plan.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "tarif_plan")]
pub struct Model {
    /// Identity.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Display name.
    pub name: String,
    /// URL name, unique.
    #[sea_orm(unique)]
    pub slug: String,
    /// Free text.
    pub description: Option<String>,
    /// Price per billing period in `currency`.
    pub price: Numeric,
    /// ISO 4217 code of `price`.
    pub currency: String,
    /// How long one payment lasts.
    pub billing_period: BillingPeriod,
    /// Feature flags and limits, free-form JSON.
    #[sea_orm(column_type = "JsonBinary")]
    pub features: Json,
    /// Whether it is offered to new subscribers.
    #[sea_orm(indexed)]
    pub is_active: bool,
    /// Position in listings, ascending.
    pub sort_order: i32,
    /// Fixed prices in other currencies.
    #[sea_orm(column_type = "JsonBinary")]
    pub prices: PlanPrices,
    /// When the row was created.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
    /// Optimistic-lock version, starts at 1.
    pub version: i32,
}

/// Relations of `tarif_plan`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The currency of `price`.
    #[sea_orm(
        belongs_to = "super::currency::Entity",
        from = "Column::Currency",
        to = "super::currency::Column::Code",
        on_delete = "Restrict"
    )]
    Currency,
    /// Subscriptions to this plan.
    #[sea_orm(has_many = "super::subscription::Entity")]
    Subscription,
    /// Invoices for this plan.
    #[sea_orm(has_many = "super::user_invoice::Entity")]
    UserInvoice,
}

impl Related<super::currency::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Currency.def()
    }
}

impl Related<super::subscription::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Subscription.def()
    }
}

impl Related<super::user_invoice::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserInvoice.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
