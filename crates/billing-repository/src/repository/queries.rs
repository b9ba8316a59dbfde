//! Running queries with the crate's error mapping: a select as one page
//! with its total, as all rows or as its first row, and a statement that
//! returns one integer.

use billing_domain::{PageRequest, Resource};
use sea_orm::{ConnectionTrait, PaginatorTrait, QuerySelect, Select};

use super::{Page, Versioned, context};
use crate::database::Executor;
use crate::error::{Op, RepositoryError, map_db_err};

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
