//! `webhook_delivery`: one event owed to one endpoint, until it is
//! acknowledged or given up.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::DeliveryStatus;
use crate::events::{EventType, ResourceKind};

/// One delivery. The pair (`endpoint_id`, `event_id`) is unique.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "webhook_delivery")]
pub struct Model {
    /// Identity.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The endpoint.
    pub endpoint_id: i64,
    /// The event.
    pub event_id: i64,
    /// The event's position (deliveries of one resource go out in this
    /// order).
    pub event_position: i64,
    /// The event's type.
    pub event_type: EventType,
    /// The event's resource kind.
    pub resource_kind: ResourceKind,
    /// The event's resource id.
    pub resource_id: i64,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// How many attempts were made.
    pub attempts: i32,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<DateTimeUtc>,
    /// The HTTP status of the last attempt, if one was answered.
    pub last_status_code: Option<i32>,
    /// When the row was created (the first attempt's deadline counts from
    /// here).
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
}

/// `webhook_delivery` has no relations the code follows.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
