//! `idempotency_record`: the outcome of a request that ran under an
//! idempotency key, written in the same transaction as the request's effect.
//!
//! A row exists exactly when the effect committed, so a request that finds
//! its key here must not run again: it answers with the recorded outcome.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The recorded outcome of one idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "idempotency_record")]
pub struct Model {
    /// Whose key it is (e.g. a hash of the caller's credentials).
    #[sea_orm(primary_key, auto_increment = false)]
    pub scope: String,
    /// The key as the client sent it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// The fingerprint of the request that used the key: the same key with
    /// another request is refused.
    pub fingerprint: String,
    /// What kind of outcome `outcome` holds (e.g. `invoice`), so that a
    /// replay is decoded as what it was recorded as.
    pub outcome_kind: String,
    /// The outcome as JSON.
    pub outcome: String,
    /// The user whose data the outcome holds, if any: erasing the user
    /// erases these records too.
    pub user_id: Option<i64>,
    /// When the effect committed; the record is honoured for the
    /// idempotency TTL after that.
    pub created_at: DateTimeUtc,
}

/// `idempotency_record` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
