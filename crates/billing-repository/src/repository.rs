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

use billing_domain::entities::{
    currency, subscription, tarif_plan, tax, tax_rate, user, user_case, user_details, user_invoice,
};
use billing_domain::{PageRequest, Resource};
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query, UpdateStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    IdenStatic, IntoActiveModel, Iterable, ModelTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Select, Statement, Value,
};

use crate::database::{Executor, Transaction};
use crate::error::{ErrorContext, Op, RepositoryError, map_db_err};

pub use billing_domain::page::MAX_PER_PAGE;

/// One page of a list: its rows, where it is, and how many rows all pages
/// hold together. How a front end writes it is the front end's concern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// The page number, from 1.
    pub page: u64,
    /// The page size asked for.
    pub per_page: u64,
    /// How many rows all pages hold together.
    pub total: u64,
}

impl<T> Page<T> {
    /// The rows `items` of page `page` of a list of `total` rows.
    #[must_use]
    pub fn of(items: Vec<T>, page: PageRequest, total: u64) -> Self {
        Self {
            items,
            page: page.page(),
            per_page: page.per_page(),
            total,
        }
    }

    /// The same page with every item mapped.
    #[must_use]
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            page: self.page,
            per_page: self.per_page,
            total: self.total,
        }
    }
}

mod sealed {
    /// Only the entities of `billing-domain` listed in this crate.
    pub trait Sealed {}
}

/// An entity of `billing-domain` with the bookkeeping columns `id`
/// (BIGINT), `created_at`, `updated_at` and `version` (INTEGER, from 1).
/// Sealed: implemented for every such entity of the schema.
pub trait Versioned:
    EntityTrait<
        Model: Clone + Send + Sync + IntoActiveModel<Self::ActiveModel>,
        ActiveModel: Send + Sync,
    > + sealed::Sealed
{
    /// What the entity is, as errors name it (its table: `user`,
    /// `user_invoice` …).
    const RESOURCE: Resource;
    /// The primary key column.
    const ID: Self::Column;
    /// The optimistic-lock version column.
    const VERSION: Self::Column;
    /// The creation instant column.
    const CREATED_AT: Self::Column;
    /// The last-change instant column.
    const UPDATED_AT: Self::Column;

    /// The id of a model.
    fn id_of(model: &Self::Model) -> i64;

    /// The version of a model.
    fn version_of(model: &Self::Model) -> i32;
}

macro_rules! versioned {
    ($($module:ident => $resource:ident),+ $(,)?) => {$(
        impl sealed::Sealed for $module::Entity {}

        impl Versioned for $module::Entity {
            const RESOURCE: Resource = Resource::$resource;
            const ID: $module::Column = $module::Column::Id;
            const VERSION: $module::Column = $module::Column::Version;
            const CREATED_AT: $module::Column = $module::Column::CreatedAt;
            const UPDATED_AT: $module::Column = $module::Column::UpdatedAt;

            fn id_of(model: &$module::Model) -> i64 {
                model.id
            }

            fn version_of(model: &$module::Model) -> i32 {
                model.version
            }
        }
    )+};
}

versioned!(
    user => User,
    user_details => UserDetails,
    user_case => Case,
    currency => Currency,
    tax => Tax,
    tax_rate => TaxRate,
    tarif_plan => Plan,
    subscription => Subscription,
    user_invoice => Invoice,
);

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

/// Runs `select` (already filtered and ordered) as one page, with the total.
pub(crate) async fn paginate<E, X>(
    exec: &X,
    select: Select<E>,
    page: PageRequest,
) -> Result<Page<E::Model>, RepositoryError>
where
    E: Versioned,
    X: Executor,
{
    let offset = page.offset();
    let conn = exec.connection();
    let total = select
        .clone()
        .count(conn)
        .await
        .map_err(|e| map_db_err(e, context(exec, E::RESOURCE, Op::Read)))?;
    let items = if offset >= total {
        Vec::new()
    } else {
        select
            .offset(offset)
            .limit(page.limit())
            .all(conn)
            .await
            .map_err(|e| map_db_err(e, context(exec, E::RESOURCE, Op::Read)))?
    };
    Ok(Page::of(items, page, total))
}

/// Runs `select` and returns every row.
pub(crate) async fn fetch_all<E, X>(
    exec: &X,
    select: Select<E>,
) -> Result<Vec<E::Model>, RepositoryError>
where
    E: Versioned,
    X: Executor,
{
    select
        .all(exec.connection())
        .await
        .map_err(|e| map_db_err(e, context(exec, E::RESOURCE, Op::Read)))
}

/// Runs `select` and returns the first row.
pub(crate) async fn fetch_one<E, X>(
    exec: &X,
    select: Select<E>,
) -> Result<Option<E::Model>, RepositoryError>
where
    E: Versioned,
    X: Executor,
{
    select
        .one(exec.connection())
        .await
        .map_err(|e| map_db_err(e, context(exec, E::RESOURCE, Op::Read)))
}

/// What a zero-row `UPDATE`/`DELETE … WHERE id AND version` means.
enum Miss {
    /// Decided: report this error.
    Fail(RepositoryError),
    /// The row holds the expected version now: the statement ran while it
    /// held an older one (the caller expected a version it had not read).
    /// Running the statement again is linearizable.
    Retry,
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

    /// Writes every column of `model` (but `id` and `created_at`) to the row
    /// `model.id` if it still holds `expected_version`, raises its version
    /// by one, sets `updated_at` to [`now`], and returns the row as stored.
    ///
    /// One statement (`UPDATE … WHERE id = ? AND version = ? RETURNING …`),
    /// not a read followed by a write. `model.version` is ignored: the
    /// caller says which version its change is based on.
    ///
    /// # Errors
    /// [`RepositoryError::ConcurrentModification`] when the row holds another
    /// version (nothing was written), [`RepositoryError::NotFound`] when the
    /// row does not exist; as [`Self::insert`].
    pub async fn save<X: Executor>(
        exec: &X,
        model: &E::Model,
        expected_version: i32,
    ) -> Result<E::Model, RepositoryError> {
        Self::save_at(exec, model, expected_version, now()).await
    }

    /// [`Self::save`] with `updated_at` set to `now`.
    pub(crate) async fn save_at<X: Executor>(
        exec: &X,
        model: &E::Model,
        expected_version: i32,
        now: DateTime<Utc>,
    ) -> Result<E::Model, RepositoryError> {
        let id = E::id_of(model);
        let backend = exec.connection().get_database_backend();
        let cx = context(exec, E::RESOURCE, Op::Write);
        // At most two rounds in practice, see `Miss::Retry`; bounded anyway.
        for _ in 0..3 {
            let statement = Self::save_statement(model, expected_version, now, backend);
            let row = exec
                .connection()
                .query_one_raw(statement)
                .await
                .map_err(|e| map_db_err(e, cx))?;
            if let Some(row) = row {
                return E::Model::from_query_result(&row, "").map_err(|e| map_db_err(e, cx));
            }
            match Self::classify_miss(exec, id, expected_version).await? {
                Miss::Fail(e) => return Err(e),
                Miss::Retry => {}
            }
        }
        Self::final_miss(exec, id, expected_version).await
    }

    /// Deletes the row `id` if it still holds `expected_version` (one
    /// `DELETE … WHERE id = ? AND version = ?`).
    ///
    /// # Errors
    /// [`RepositoryError::ConcurrentModification`] when the row holds another
    /// version (nothing was deleted), [`RepositoryError::NotFound`] when it
    /// does not exist, [`RepositoryError::StillReferenced`] when other rows
    /// refer to it; as [`Self::find_by_id`].
    pub async fn delete<X: Executor>(
        exec: &X,
        id: i64,
        expected_version: i32,
    ) -> Result<(), RepositoryError> {
        let cx = context(exec, E::RESOURCE, Op::Delete);
        for _ in 0..3 {
            let deleted = E::delete_many()
                .filter(E::ID.eq(id))
                .filter(E::VERSION.eq(expected_version))
                .exec(exec.connection())
                .await
                .map_err(|e| map_db_err(e, cx))?;
            if deleted.rows_affected > 0 {
                return Ok(());
            }
            match Self::classify_miss(exec, id, expected_version).await? {
                Miss::Fail(e) => return Err(e),
                Miss::Retry => {}
            }
        }
        Self::final_miss(exec, id, expected_version)
            .await
            .map(|_| ())
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

    /// The single `UPDATE … RETURNING` of [`Self::save`].
    fn save_statement(
        model: &E::Model,
        expected_version: i32,
        now: DateTime<Utc>,
        backend: DbBackend,
    ) -> Statement {
        let mut query = Self::save_query(model, expected_version, now);
        // The same RETURNING list sea-orm's `exec_with_returning` uses.
        query.returning(
            Query::returning()
                .exprs(E::Column::iter().map(|c| c.select_as(c.into_returning_expr(backend)))),
        );
        backend.build(&query)
    }

    /// The `UPDATE … WHERE id = ? AND version = ?` of [`Self::save`],
    /// without `RETURNING`, setting `updated_at` to `now`.
    pub(crate) fn save_query(
        model: &E::Model,
        expected_version: i32,
        now: DateTime<Utc>,
    ) -> UpdateStatement {
        let bookkeeping = [
            E::ID.as_str(),
            E::CREATED_AT.as_str(),
            E::UPDATED_AT.as_str(),
            E::VERSION.as_str(),
        ];
        let mut update = E::update_many();
        for col in E::Column::iter() {
            if !bookkeeping.contains(&col.as_str()) {
                let value = normalize(model.get(col));
                update = update.col_expr(col, col.save_as(Expr::val(value)));
            }
        }
        update
            .col_expr(E::VERSION, Expr::col(E::VERSION).add(1))
            .col_expr(E::UPDATED_AT, Expr::val(now))
            .filter(E::ID.eq(E::id_of(model)))
            .filter(E::VERSION.eq(expected_version))
            .into_query()
    }

    /// `model` as [`Self::save`] stores it when it saves it at `now` over
    /// `read_version`: every value normalised as written, the version one
    /// up, `updated_at` at `now`. What a write that returns no row (e.g.
    /// inside a larger statement) answers.
    ///
    /// # Errors
    /// [`RepositoryError::Database`] if a column cannot be set (a bug).
    pub fn as_saved(
        model: &E::Model,
        read_version: i32,
        now: DateTime<Utc>,
    ) -> Result<E::Model, RepositoryError> {
        let mut saved = model.clone();
        let fail = |e: sea_orm::DbErr| RepositoryError::Database { source: e.into() };
        for col in E::Column::iter() {
            saved
                .try_set(col, normalize(model.get(col)))
                .map_err(fail)?;
        }
        saved
            .try_set(E::VERSION, Value::from(read_version + 1))
            .map_err(fail)?;
        saved
            .try_set(E::UPDATED_AT, Value::from(now))
            .map_err(fail)?;
        Ok(saved)
    }

    /// Decides what an `UPDATE`/`DELETE … WHERE id = ? AND version = ?` that
    /// matched no row means, by reading the row's version afterwards.
    ///
    /// Why this is race-free although it is a second statement: the write
    /// matched nothing because, when it ran, the row either did not exist or
    /// held a version other than `expected` (on PostgreSQL the `WHERE` is
    /// re-checked against the latest committed row after waiting for any
    /// concurrent writer). Ids are never reused and versions only ever grow
    /// (every write sets `version = version + 1`; the schema's version
    /// triggers enforce it for writes that bypass this repository too), so:
    ///
    /// - no row now: it does not exist (never did, or was deleted) —
    ///   `NotFound` is true now and stays true;
    /// - a row with version `v != expected`: the caller's version is stale
    ///   now and forever (`v` can only grow further) —
    ///   `ConcurrentModification { actual: v }` is true whatever happens
    ///   next;
    /// - a row with version `v == expected`: only possible when the row held
    ///   an *older* version during the write, i.e. the caller expected a
    ///   version it never read (e.g. an `If-Match` from the future) that was
    ///   reached in between. Running the write again is correct (it is
    ///   linearized at the second attempt) — `Retry`.
    ///
    /// Neither answer depends on the timing of other writers between the two
    /// statements.
    async fn classify_miss<X: Executor>(
        exec: &X,
        id: i64,
        expected: i32,
    ) -> Result<Miss, RepositoryError> {
        Ok(match Self::current_version(exec, id).await? {
            None => Miss::Fail(RepositoryError::NotFound {
                entity: E::RESOURCE,
                id,
            }),
            Some(actual) if actual != expected => {
                Miss::Fail(RepositoryError::ConcurrentModification {
                    entity: E::RESOURCE,
                    id,
                    expected,
                    actual,
                })
            }
            Some(_) => Miss::Retry,
        })
    }

    /// The error after the retries of a miss ran out (the row kept reaching
    /// the expected version just after each write): reported as a
    /// concurrent modification.
    async fn final_miss<X: Executor>(
        exec: &X,
        id: i64,
        expected: i32,
    ) -> Result<E::Model, RepositoryError> {
        Err(match Self::current_version(exec, id).await? {
            None => RepositoryError::NotFound {
                entity: E::RESOURCE,
                id,
            },
            Some(actual) => RepositoryError::ConcurrentModification {
                entity: E::RESOURCE,
                id,
                expected,
                actual,
            },
        })
    }
}

/// Runs a query that returns a single integer (e.g. `RETURNING n`).
pub(crate) async fn query_i64<X: Executor>(
    exec: &X,
    entity: Resource,
    statement: sea_orm::Statement,
) -> Result<i64, RepositoryError> {
    let cx = context(exec, entity, Op::Write);
    let row = exec
        .connection()
        .query_one_raw(statement)
        .await
        .map_err(|e| map_db_err(e, cx))?;
    let Some(row) = row else {
        return Err(RepositoryError::Database {
            source: format!("the statement on {} returned no row", entity.table()).into(),
        });
    };
    row.try_get_by_index::<i64>(0)
        .map_err(|e| map_db_err(e, cx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use billing_domain::PasswordHash;
    use billing_domain::enums::{UserRole, UserStatus};
    use chrono::TimeZone;

    #[test]
    fn save_is_one_update_returning_statement() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap();
        let model = user::Model {
            id: 7,
            email: "ada@example.com".into(),
            password_hash: PasswordHash("h".into()),
            status: UserStatus::Active,
            role: UserRole::User,
            created_at: at,
            updated_at: at,
            version: 3,
        };
        let statement =
            Repository::<user::Entity>::save_statement(&model, 3, at, DbBackend::Postgres);
        assert_eq!(
            statement.sql,
            r#"UPDATE "user" SET "email" = $1, "password_hash" = $2, "status" = $3, "role" = $4, "version" = "version" + $5, "updated_at" = $6 WHERE "user"."id" = $7 AND "user"."version" = $8 RETURNING "id", "email", "password_hash", "status", "role", "created_at", "updated_at", "version""#
        );
        let sql = statement.to_string();
        assert!(sql.contains(r#""status" = 'active'"#), "{sql}");
        assert!(sql.contains(r#""version" = "version" + 1"#), "{sql}");
        assert!(
            sql.contains(r#"WHERE "user"."id" = 7 AND "user"."version" = 3"#),
            "{sql}"
        );
        let sqlite = Repository::<user::Entity>::save_statement(&model, 3, at, DbBackend::Sqlite);
        assert!(
            sqlite.sql.starts_with(r#"UPDATE "user" SET "email" = ?"#),
            "{}",
            sqlite.sql
        );
        assert!(sqlite.sql.contains(" RETURNING "), "{}", sqlite.sql);
    }

    /// The page bounds themselves are tested with `PageRequest`.
    #[test]
    fn pages_carry_their_request() {
        let request = PageRequest::new(3, 100).unwrap();
        let page = Page::of(vec![1, 2], request, 202);
        assert_eq!((page.page, page.per_page, page.total), (3, 100, 202));
        assert_eq!(request.offset(), 200);
    }

    /// Each versioned entity's [`Resource`] names its table.
    #[test]
    fn resources_name_the_tables() {
        fn check<E: Versioned>() {
            assert_eq!(E::RESOURCE.table(), E::default().table_name());
        }
        check::<user::Entity>();
        check::<user_details::Entity>();
        check::<user_case::Entity>();
        check::<currency::Entity>();
        check::<tax::Entity>();
        check::<tax_rate::Entity>();
        check::<tarif_plan::Entity>();
        check::<subscription::Entity>();
        check::<user_invoice::Entity>();
    }

    #[test]
    fn now_has_microsecond_precision() {
        assert_eq!(now().timestamp_subsec_nanos() % 1_000, 0);
    }
}
