//! `webhook_attempt`: one HTTP request of a delivery and how it ended.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One attempt.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "webhook_attempt")]
pub struct Model {
    /// Identity.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The delivery.
    pub delivery_id: i64,
    /// When the request was sent.
    pub attempted_at: DateTimeUtc,
    /// The HTTP status answered, if any.
    pub status_code: Option<i32>,
    /// Why it failed when no status was answered (time-out, refused, …).
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
}

/// `webhook_attempt` has no relations the code follows.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
