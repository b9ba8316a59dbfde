//! Writes under optimistic locking: [`Repository::save`] (one
//! `UPDATE … WHERE id AND version … RETURNING`), [`Repository::delete`],
//! and what such a write that matched no row means.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query, UpdateStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, FromQueryResult, IdenStatic, Iterable, ModelTrait,
    QueryFilter, QueryTrait, Statement, Value,
};

use super::{Repository, Versioned, context, normalize, now};
use crate::database::Executor;
use crate::error::{Op, RepositoryError, map_db_err};

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

#[cfg(test)]
mod tests {
    use super::*;
    use billing_domain::PasswordHash;
    use billing_domain::entities::user;
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
}
