//! [`Outbox`]: the `event` table. Events are appended in the transaction of
//! the change they describe and published (given a `position`) after they
//! committed, so a reader paging by position never skips one.
//!
//! Why positions: an `id` is drawn when a row is inserted, not when its
//! transaction commits. On PostgreSQL a transaction that drew id 10 may
//! commit after one that drew id 11; a reader that saw 11 and asks for
//! "after 11" would never see 10. [`Outbox::publish`] gives the committed,
//! unpublished events positions above every position given so far, in id
//! order, one publisher at a time (a transaction-scoped advisory lock on
//! PostgreSQL; SQLite runs one writer at a time anyway). An event still in
//! flight is invisible to it and gets a later position when it commits.
//!
//! Per resource, positions follow commit order: a change's event is inserted
//! after the versioned update of its row, which holds the row's lock to the
//! commit, so the next change's event is inserted (and drawn an id) only
//! after the previous one committed, and is never published before it.

use billing_domain::Resource;
use billing_domain::entities::event::{self, Column, Entity};
use billing_domain::events::{EventType, ResourceKind};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Statement,
};

use crate::database::{Backend, Executor, Transaction};
use crate::error::{Op, RepositoryError, map_db_err};
use crate::repository::context;

const NAME: Resource = Resource::Event;

/// The advisory lock key of the publisher on PostgreSQL ("billing-events").
const PUBLISH_LOCK_KEY: i64 = 0x6576_656e_7473;

/// An event to append: what changed and its state after the change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// What happened.
    pub event_type: EventType,
    /// The resource's id.
    pub resource_id: i64,
    /// The resource's version after the change.
    pub resource_version: i32,
    /// The resource's state after the change, as JSON.
    pub data: String,
    /// When the change was made.
    pub occurred_at: DateTime<Utc>,
}

/// What to list of the published events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events after this position.
    pub after_position: Option<i64>,
    /// Only these types (all when empty).
    pub types: Vec<EventType>,
    /// Only events of this kind of resource.
    pub resource_kind: Option<ResourceKind>,
    /// Only events of resources with this id (of `resource_kind`, if set).
    pub resource_id: Option<i64>,
}

/// The queries of `event`.
#[derive(Clone, Copy, Debug)]
pub struct Outbox;

impl Outbox {
    /// Appends `events` in `tx`, with one multi-row insert. Call it after
    /// the versioned update of each event's row, in the same transaction,
    /// so that a rollback takes the events with it.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn append(tx: &Transaction, events: Vec<NewEvent>) -> Result<(), RepositoryError> {
        if events.is_empty() {
            return Ok(());
        }
        Self::insert_many(events)
            .exec_without_returning(tx.connection())
            .await
            .map(drop)
            .map_err(|e| map_db_err(e, context(tx, NAME, Op::Write)))
    }

    /// The insert of `events` (not empty), for a statement that writes
    /// them together with the change they describe.
    pub(crate) fn insert_statement(events: Vec<NewEvent>) -> sea_orm::sea_query::InsertStatement {
        Self::insert_many(events).into_query()
    }

    fn insert_many(events: Vec<NewEvent>) -> sea_orm::InsertMany<event::ActiveModel> {
        let rows = events.into_iter().map(|new| event::ActiveModel {
            id: ActiveValue::NotSet,
            position: ActiveValue::Set(None),
            event_type: ActiveValue::Set(new.event_type),
            resource_kind: ActiveValue::Set(new.event_type.resource_kind()),
            resource_id: ActiveValue::Set(new.resource_id),
            resource_version: ActiveValue::Set(new.resource_version),
            data: ActiveValue::Set(new.data),
            occurred_at: ActiveValue::Set(crate::repository::truncate(new.occurred_at)),
        });
        Entity::insert_many(rows)
    }

    /// Publishes the committed events that have no position yet: gives
    /// them positions above every given one, in id order, and returns them
    /// by position. Run it in a transaction of its own (the deliveries of
    /// the events may be inserted in it too); publishers run one at a time.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn publish(tx: &Transaction) -> Result<Vec<event::Model>, RepositoryError> {
        let cx = || context(tx, NAME, Op::Write);
        match tx.backend() {
            Backend::Postgres => {
                tx.connection()
                    .execute_raw(Statement::from_sql_and_values(
                        DatabaseBackend::Postgres,
                        "SELECT pg_advisory_xact_lock($1)",
                        [PUBLISH_LOCK_KEY.into()],
                    ))
                    .await
                    .map_err(|e| map_db_err(e, cx()))?;
            }
            // The UPDATE below takes SQLite's one write lock.
            Backend::Sqlite => {}
        }
        // One statement, one snapshot: what it positions and the numbers it
        // counts from are the same committed rows.
        let mut published = Entity::update_many()
            .col_expr(
                Column::Position,
                Expr::cust(
                    "id - (SELECT MIN(id) FROM event WHERE position IS NULL) + 1 \
                     + (SELECT COALESCE(MAX(position), 0) FROM event)",
                ),
            )
            .filter(Column::Position.is_null())
            .exec_with_returning(tx.connection())
            .await
            .map_err(|e| map_db_err(e, cx()))?;
        published.sort_by_key(|event| event.position);
        Ok(published)
    }

    /// Up to `limit` published events matching `filter`, by position.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn list<X: Executor>(
        exec: &X,
        filter: &EventFilter,
        limit: u64,
    ) -> Result<Vec<event::Model>, RepositoryError> {
        let mut select = Entity::find().filter(Column::Position.is_not_null());
        if let Some(after) = filter.after_position {
            select = select.filter(Column::Position.gt(after));
        }
        if !filter.types.is_empty() {
            select = select.filter(Column::EventType.is_in(filter.types.clone()));
        }
        if let Some(kind) = filter.resource_kind {
            select = select.filter(Column::ResourceKind.eq(kind));
        }
        if let Some(id) = filter.resource_id {
            select = select.filter(Column::ResourceId.eq(id));
        }
        select
            .order_by_asc(Column::Position)
            .limit(limit)
            .all(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, NAME, Op::Read)))
    }

    /// Event `id`, published or not.
    ///
    /// # Errors
    /// [`RepositoryError::NotFound`], [`RepositoryError::Unavailable`] or
    /// [`RepositoryError::Database`].
    pub async fn get<X: Executor>(exec: &X, id: i64) -> Result<event::Model, RepositoryError> {
        Entity::find_by_id(id)
            .one(exec.connection())
            .await
            .map_err(|e| map_db_err(e, context(exec, NAME, Op::Read)))?
            .ok_or(RepositoryError::NotFound { entity: NAME, id })
    }

    /// Rewrites the stored state of every event of resource `kind` `id`
    /// with `scrub` (erasing personal data), in `tx`; returns how many
    /// changed.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn scrub(
        tx: &Transaction,
        kind: ResourceKind,
        id: i64,
        scrub: impl Fn(&str) -> String + Send + Sync,
    ) -> Result<u64, RepositoryError> {
        let events = Entity::find()
            .filter(Column::ResourceKind.eq(kind))
            .filter(Column::ResourceId.eq(id))
            .all(tx.connection())
            .await
            .map_err(|e| map_db_err(e, context(tx, NAME, Op::Read)))?;
        let mut changed = 0;
        for event in events {
            let data = scrub(&event.data);
            if data == event.data {
                continue;
            }
            Entity::update_many()
                .col_expr(Column::Data, Expr::value(data))
                .filter(Column::Id.eq(event.id))
                .exec(tx.connection())
                .await
                .map_err(|e| map_db_err(e, context(tx, NAME, Op::Write)))?;
            changed += 1;
        }
        Ok(changed)
    }
}
