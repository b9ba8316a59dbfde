//! The generic repository: [`Repository<E>`] gives every versioned entity of
//! `billing-domain` `find_by_id`, `get`, `find_all`, `insert`, `save` and
//! `delete`, with optimistic locking on the `version` column.
//!
//! `save` is one statement:
//!
//! ```sql
//! UPDATE "t" SET <every column but id, created_at, version, updated_at>,
//!                "version" = "version" + 1, "updated_at" = $now
//!  WHERE "t"."id" = $id AND "t"."version" = $expected
//! RETURNING <every column>
//! ```
//!
//! so two writers that read the same version cannot both write: the
//! database lets one `UPDATE` match, the other matches nothing (PostgreSQL
//! re-evaluates the `WHERE` against the winner's committed row; SQLite runs
//! one writer at a time) and gets
//! [`RepositoryError::ConcurrentModification`].
//!
//! The database backs this up: a trigger on every versioned table raises
//! `version` by one and moves `updated_at` on any UPDATE that does not raise
//! `version` itself (`ActiveModel::update`, `update_many`, raw SQL), and never
//! lets it go down. `save` raises it itself, so the trigger leaves it alone.

use std::marker::PhantomData;

use billing_domain::{PageRequest, Resource};
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, IntoActiveModel, Iterable, QueryFilter, QueryOrder, QuerySelect,
    Value,
};

use crate::database::{Executor, Transaction};
use crate::error::{ErrorContext, Op, RepositoryError, map_db_err};

mod optimistic;
mod page;
mod queries;
mod versioned;

pub use billing_domain::page::MAX_PER_PAGE;
pub use page::Page;
pub(crate) use queries::{fetch_all, fetch_one, paginate, query_i64};
pub use versioned::Versioned;

/// The repository of entity `E`: functions taking an [`Executor`] (the
/// [`crate::Database`] pool or a [`crate::Transaction`]).
///
/// Use the aliases: [`crate::Users`], [`crate::Invoices`], … — they also
/// carry the entity's own queries.
#[derive(Debug)]
pub struct Repository<E>(PhantomData<E>);

/// The current instant as it is stored: truncated to microseconds, the
/// precision of PostgreSQL timestamps, so a returned model equals what a
/// later read returns on every backend.
#[must_use]
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Truncates a timestamp value to microseconds (see [`now`]); other values
/// are returned as they are.
/// `at` truncated to microseconds, as both databases store it.
pub(crate) fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

pub(crate) fn normalize(mut value: Value) -> Value {
    if let Value::ChronoDateTimeUtc(Some(t)) = &mut value {
        *t = t.trunc_subsecs(6);
    }
    value
}

pub(crate) fn context<'a, X: Executor>(exec: &'a X, entity: Resource, op: Op) -> ErrorContext<'a> {
    ErrorContext {
        entity: Some(entity),
        target: exec.target(),
        op,
    }
}

impl<E: Versioned> Repository<E> {
    /// The row with this id, if any.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn find_by_id<X: Executor>(
        exec: &X,
        id: i64,
    ) -> Result<Option<E::Model>, RepositoryError> {
        fetch_one(exec, E::find().filter(E::ID.eq(id))).await
    }

    /// The row with this id.
    ///
    /// # Errors
    /// [`RepositoryError::NotFound`] when there is none; as
    /// [`Self::find_by_id`].
    pub async fn get<X: Executor>(exec: &X, id: i64) -> Result<E::Model, RepositoryError> {
        Self::find_by_id(exec, id)
            .await?
            .ok_or(RepositoryError::NotFound {
                entity: E::RESOURCE,
                id,
            })
    }

    /// The row with this id, read in `tx` and kept from changing until `tx`
    /// ends: on PostgreSQL `SELECT … FOR SHARE` (a concurrent update waits
    /// for `tx`, and this read waits for a concurrent update to commit and
    /// then sees its result); on SQLite a write transaction is already
    /// exclusive, and a transaction that read a row another one changed
    /// since cannot commit a write.
    ///
    /// Insert a child row under this read when the parent's state decides
    /// whether the child may exist (e.g. no new personal data for an erased
    /// user).
    ///
    /// # Errors
    /// As [`Self::get`].
    pub async fn get_shared(tx: &Transaction, id: i64) -> Result<E::Model, RepositoryError> {
        fetch_one(tx, E::find().filter(E::ID.eq(id)).lock_shared())
            .await?
            .ok_or(RepositoryError::NotFound {
                entity: E::RESOURCE,
                id,
            })
    }

    /// One page of all rows, ordered by id, and the total number of rows.
    ///
    /// # Errors
    /// As [`Self::find_by_id`].
    pub async fn find_all<X: Executor>(
        exec: &X,
        page: PageRequest,
    ) -> Result<Page<E::Model>, RepositoryError> {
        paginate(exec, E::find().order_by_asc(E::ID), page).await
    }

    /// Inserts a row and returns it as stored (one `INSERT … RETURNING`).
    ///
    /// The id is assigned by the database (an id set in `model` is
    /// ignored); `created_at` and `updated_at` are set to [`now`], `version`
    /// to 1. Timestamps are stored with microsecond precision.
    ///
    /// # Errors
    /// [`RepositoryError::AlreadyExists`] for a taken unique value,
    /// [`RepositoryError::ReferencedRowMissing`] for a foreign key to a
    /// missing row, [`RepositoryError::CheckViolation`]; as
    /// [`Self::find_by_id`].
    pub async fn insert<X, A>(exec: &X, model: A) -> Result<E::Model, RepositoryError>
    where
        X: Executor,
        A: IntoActiveModel<E::ActiveModel>,
    {
        let cx = context(exec, E::RESOURCE, Op::Write);
        let mut active = model.into_active_model();
        for col in E::Column::iter() {
            if let Some(value) = active.get(col).into_value() {
                active
                    .try_set(col, normalize(value))
                    .map_err(|e| map_db_err(e, cx))?;
            }
        }
        active.not_set(E::ID);
        let now = now();
        for (col, value) in [
            (E::CREATED_AT, Value::from(now)),
            (E::UPDATED_AT, Value::from(now)),
            (E::VERSION, Value::from(1_i32)),
        ] {
            active.try_set(col, value).map_err(|e| map_db_err(e, cx))?;
        }
        E::insert(active)
            .exec_with_returning(exec.connection())
            .await
            .map_err(|e| map_db_err(e, cx))
    }

    /// The version the row `id` holds now, or `None` if it does not exist.
    ///
    /// # Errors
    /// As [`Self::find_by_id`].
    pub async fn current_version<X: Executor>(
        exec: &X,
        id: i64,
    ) -> Result<Option<i32>, RepositoryError> {
        E::find()
            .select_only()
            .column(E::VERSION)
            .filter(E::ID.eq(id))
            .into_tuple::<i32>()
            .one(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, E::RESOURCE, Op::Read)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_has_microsecond_precision() {
        assert_eq!(now().timestamp_subsec_nanos() % 1_000, 0);
    }
}
