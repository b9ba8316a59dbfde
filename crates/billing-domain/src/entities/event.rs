//! `event`: the outbox. One row per change of a user, a subscription or an
//! invoice, written in the transaction of the change.
//!
//! `id` is drawn when the row is inserted; `position` is given after the
//! row committed, in commit order (see the repository's `Outbox`), and is
//! what readers page by.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::events::{EventType, ResourceKind};

/// One event.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "event")]
pub struct Model {
    /// Identity; what receivers deduplicate by.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The place in the published order, given after commit; `None` until
    /// then.
    #[sea_orm(unique)]
    pub position: Option<i64>,
    /// What happened.
    pub event_type: EventType,
    /// The kind of the resource that changed.
    pub resource_kind: ResourceKind,
    /// Its id.
    pub resource_id: i64,
    /// Its version after the change.
    pub resource_version: i32,
    /// Its state after the change, as JSON (never a password hash).
    pub data: String,
    /// When the change was made.
    pub occurred_at: DateTimeUtc,
}

/// `event` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
