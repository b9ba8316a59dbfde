//! [`IdempotencyRecords`]: the outcomes of requests that ran under an
//! idempotency key.
//!
//! A record is written by [`IdempotencyRecords::record`] *inside the
//! transaction of the request's effect* (it takes a [`Transaction`], not the
//! pool), so it exists exactly when the effect committed: whatever moment a
//! process dies at, a retry either finds the record (and must not run
//! again) or finds none (and nothing happened).

use billing_domain::Resource;
use billing_domain::entities::idempotency_record::{self, Column, Entity};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::database::{Executor, Transaction};
use crate::error::{Op, RepositoryError, map_db_err};
use crate::repository::context;

const NAME: Resource = Resource::IdempotencyRecord;

/// The queries of `idempotency_record`.
#[derive(Debug)]
pub struct IdempotencyRecords;

impl IdempotencyRecords {
    /// The record of `key` in `scope` written at or after `not_before`
    /// (older records have expired and are treated as absent).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn find_live<X: Executor>(
        exec: &X,
        scope: &str,
        key: &str,
        not_before: DateTime<Utc>,
    ) -> Result<Option<idempotency_record::Model>, RepositoryError> {
        Entity::find()
            .filter(Column::Scope.eq(scope))
            .filter(Column::Key.eq(key))
            .filter(Column::CreatedAt.gte(not_before))
            .one(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, NAME, Op::Read)))
    }

    /// Writes `record` in `tx`, replacing an expired record of the same key
    /// (one written before `not_before`).
    ///
    /// Returns `false`, writing nothing, when a live record of the key
    /// exists: another request with the key committed first (on PostgreSQL
    /// a concurrent writer of the same key is waited for), so the caller
    /// must roll its effect back.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn record(
        tx: &Transaction,
        record: idempotency_record::Model,
        not_before: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        let replace_expired = Self::replace_expired(not_before);
        let active: idempotency_record::ActiveModel = record.into();
        let result = Entity::insert(active)
            .on_conflict(replace_expired)
            .exec_without_returning(tx.connection())
            .await
            .map_err(|e| map_db_err(e, context(tx, NAME, Op::Write)))?;
        Ok(result == 1)
    }

    /// The `ON CONFLICT` of a record's insert: a record of the same key
    /// written before `not_before` (expired) is replaced; a live one is not.
    pub(crate) fn replace_expired(not_before: DateTime<Utc>) -> OnConflict {
        OnConflict::columns([Column::Scope, Column::Key])
            .update_columns([
                Column::Fingerprint,
                Column::OutcomeKind,
                Column::Outcome,
                Column::UserId,
                Column::CreatedAt,
            ])
            .action_and_where(Expr::col((Entity, Column::CreatedAt)).lt(not_before))
            .to_owned()
    }

    /// Deletes every record that holds data of user `user_id` (when the
    /// user's personal data is erased).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn delete_for_user<X: Executor>(
        exec: &X,
        user_id: i64,
    ) -> Result<u64, RepositoryError> {
        Entity::delete_many()
            .filter(Column::UserId.eq(user_id))
            .exec(exec.connection())
            .await
            .map(|result| result.rows_affected)
            .map_err(|e| map_db_err(e, context(exec, NAME, Op::Delete)))
    }

    /// Deletes the records written before `not_before` (expired); returns
    /// how many.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn purge_expired<X: Executor>(
        exec: &X,
        not_before: DateTime<Utc>,
    ) -> Result<u64, RepositoryError> {
        Entity::delete_many()
            .filter(Column::CreatedAt.lt(not_before))
            .exec(exec.connection())
            .await
            .map(|result| result.rows_affected)
            .map_err(|e| map_db_err(e, context(exec, NAME, Op::Delete)))
    }
}
