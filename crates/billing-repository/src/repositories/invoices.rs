//! [`Invoices`]: invoices by number, by user and status, pending ones past
//! their expiry, and gapless per-year invoice numbers.
//!
//! Numbers come from the `invoice_sequence` counter, moved by
//! [`Invoices::insert_numbered_all`] *inside the transaction that inserts
//! the invoices* (the function takes a [`Transaction`], not the pool): the
//! counter row stays locked until that transaction ends, so concurrent
//! creators — in this process or in other API instances — queue behind it
//! and each gets the next numbers; a rolled-back insert rolls its numbers
//! back too. Hence numbers are unique, sequential and without gaps. On
//! PostgreSQL the counter moves in the same statement as the insert, so a
//! transaction that ends right after it holds the row for one round trip.

use billing_domain::InvoiceNumber;
use billing_domain::PageRequest;
use billing_domain::Resource;
use billing_domain::entities::user_invoice;
use billing_domain::enums::InvoiceStatus;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait,
    FromQueryResult, IdenStatic, IntoActiveModel, Iterable, QueryFilter, QueryOrder, QuerySelect,
    Statement, Value,
};

use crate::database::{Backend, Executor, Transaction};
use crate::error::{Op, RepositoryError, map_db_err};
use crate::repository::{
    Page, Repository, context, fetch_all, fetch_one, normalize, now, paginate, query_i64,
};

/// The repository of `user_invoice`.
pub type Invoices = Repository<user_invoice::Entity>;

impl Repository<user_invoice::Entity> {
    /// The invoice with this number.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn find_by_number<X: Executor>(
        exec: &X,
        invoice_number: &str,
    ) -> Result<Option<user_invoice::Model>, RepositoryError> {
        fetch_one(
            exec,
            user_invoice::Entity::find()
                .filter(user_invoice::Column::InvoiceNumber.eq(invoice_number)),
        )
        .await
    }

    /// One page of a user's invoices, optionally only those with `status`,
    /// newest first.
    ///
    /// # Errors
    /// As [`Self::find_by_number`].
    pub async fn by_user<X: Executor>(
        exec: &X,
        user_id: i64,
        status: Option<InvoiceStatus>,
        page: PageRequest,
    ) -> Result<Page<user_invoice::Model>, RepositoryError> {
        let mut select =
            user_invoice::Entity::find().filter(user_invoice::Column::UserId.eq(user_id));
        if let Some(status) = status {
            select = select.filter(user_invoice::Column::Status.eq(status));
        }
        paginate(exec, select.order_by_desc(user_invoice::Column::Id), page).await
    }

    /// Up to `limit` pending invoices whose `expires_at` is before `now`,
    /// oldest expiry first (they can no longer be paid).
    ///
    /// # Errors
    /// As [`Self::find_by_number`].
    pub async fn pending_past_expiry<X: Executor>(
        exec: &X,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<user_invoice::Model>, RepositoryError> {
        fetch_all(
            exec,
            user_invoice::Entity::find()
                .filter(user_invoice::Column::Status.eq(InvoiceStatus::Pending))
                .filter(user_invoice::Column::ExpiresAt.lt(now))
                .order_by_asc(user_invoice::Column::ExpiresAt)
                .order_by_asc(user_invoice::Column::Id)
                .limit(limit),
        )
        .await
    }

    /// Takes the next invoice sequence number of `year` (1 for the first)
    /// in one statement:
    ///
    /// ```sql
    /// INSERT INTO invoice_sequence (year, last_number, updated_at) VALUES ($1, 1, $2)
    /// ON CONFLICT (year) DO UPDATE
    ///   SET last_number = invoice_sequence.last_number + 1, updated_at = excluded.updated_at
    /// RETURNING last_number
    /// ```
    ///
    /// The counter row stays locked until `tx` ends: call this in the
    /// transaction that inserts the invoice (or use
    /// [`Self::insert_numbered`]), and end it soon.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`], [`RepositoryError::TransactionConflict`]
    /// or [`RepositoryError::Database`].
    pub async fn next_sequence(tx: &Transaction, year: i32) -> Result<i64, RepositoryError> {
        let (backend, sql) = match tx.backend() {
            Backend::Postgres => (
                DatabaseBackend::Postgres,
                "INSERT INTO invoice_sequence (year, last_number, updated_at) VALUES ($1, 1, $2) \
                 ON CONFLICT (year) DO UPDATE SET last_number = invoice_sequence.last_number + 1, \
                 updated_at = excluded.updated_at RETURNING last_number",
            ),
            Backend::Sqlite => (
                DatabaseBackend::Sqlite,
                "INSERT INTO invoice_sequence (year, last_number, updated_at) VALUES (?, 1, ?) \
                 ON CONFLICT (year) DO UPDATE SET last_number = invoice_sequence.last_number + 1, \
                 updated_at = excluded.updated_at RETURNING last_number",
            ),
        };
        let statement = Statement::from_sql_and_values(backend, sql, [year.into(), now().into()]);
        query_i64(tx, Resource::InvoiceSequence, statement).await
    }

    /// The next invoice number for an invoice issued at `at`: the next
    /// sequence number of the UTC year of `at` (see [`Self::next_sequence`]).
    ///
    /// # Errors
    /// [`RepositoryError::InvalidValue`] when the year of `at` is outside
    /// what an invoice number can carry (1000..=9999), before the counter is
    /// touched; as [`Self::next_sequence`].
    pub async fn next_number(
        tx: &Transaction,
        at: DateTime<Utc>,
    ) -> Result<InvoiceNumber, RepositoryError> {
        let invalid = |e: billing_domain::DomainError| RepositoryError::InvalidValue {
            entity: Resource::Invoice,
            reason: e.to_string(),
        };
        // Refuse an impossible year before moving its counter.
        let year = InvoiceNumber::for_instant(at, 1).map_err(invalid)?.year();
        let sequence = Self::next_sequence(tx, year).await?;
        let sequence = u64::try_from(sequence).map_err(|_| RepositoryError::InvalidValue {
            entity: Resource::InvoiceSequence,
            reason: format!("negative counter {sequence} for {year}"),
        })?;
        InvoiceNumber::new(year, sequence).map_err(invalid)
    }

    /// Inserts an invoice numbered with the next number of the year of its
    /// `invoiced_at` (set to [`now`] when not given); any `invoice_number`
    /// in `invoice` is replaced. Commit `tx` to keep both the invoice and
    /// its number; roll it back and the number is free again.
    ///
    /// # Errors
    /// As [`Self::insert_numbered_all`].
    pub async fn insert_numbered<A>(
        tx: &Transaction,
        invoice: A,
    ) -> Result<user_invoice::Model, RepositoryError>
    where
        A: IntoActiveModel<user_invoice::ActiveModel>,
    {
        let mut inserted = Self::insert_numbered_all(tx, vec![invoice.into_active_model()]).await?;
        inserted.pop().ok_or_else(|| RepositoryError::Database {
            source: "the numbered insert returned no invoice".into(),
        })
    }

    /// Inserts `invoices`, in this order, numbered with the next numbers of
    /// the year of each one's `invoiced_at` (set to [`now`] when not given),
    /// and returns them in the same order. Every invoice of the crate is
    /// inserted here.
    ///
    /// Per year, the counter moves once, by the number of invoices. On
    /// PostgreSQL that and the insert are **one statement** (a `WITH` of
    /// the counter's `INSERT … ON CONFLICT DO UPDATE … RETURNING` and the
    /// invoices' multi-row `INSERT … SELECT`), so the counter row is locked
    /// from that statement to the end of `tx`: make it the last statement
    /// before `COMMIT`. On SQLite (one writer at a time anyway) the counter
    /// moves first, then the rows are inserted. Roll `tx` back and every
    /// number is free again.
    ///
    /// Every invoice must set the same columns (as models converted with
    /// `into_active_model` do).
    ///
    /// # Errors
    /// [`RepositoryError::InvalidValue`] when a year is outside what an
    /// invoice number can carry (1000..=9999) or the invoices set different
    /// columns, before the counter is touched; as [`Self::next_sequence`]
    /// and [`Repository::insert`] (a row refused by the schema fails the
    /// whole call).
    pub async fn insert_numbered_all(
        tx: &Transaction,
        invoices: Vec<user_invoice::ActiveModel>,
    ) -> Result<Vec<user_invoice::Model>, RepositoryError> {
        let mut by_year: Vec<(i32, Vec<(usize, user_invoice::ActiveModel)>)> = Vec::new();
        for (index, mut active) in invoices.into_iter().enumerate() {
            let invoiced_at = match active.invoiced_at.take() {
                Some(at) => at,
                None => now(),
            };
            active.invoiced_at = ActiveValue::Set(invoiced_at);
            let year = InvoiceNumber::for_instant(invoiced_at, 1)
                .map_err(invalid_number)?
                .year();
            match by_year.iter_mut().find(|(y, _)| *y == year) {
                Some((_, group)) => group.push((index, active)),
                None => by_year.push((year, vec![(index, active)])),
            }
        }
        let mut inserted: Vec<(usize, user_invoice::Model)> = Vec::new();
        for (year, group) in by_year {
            let (indices, rows): (Vec<usize>, Vec<_>) = group.into_iter().unzip();
            let models = match tx.backend() {
                Backend::Postgres => numbered_insert_postgres(tx, year, rows).await?,
                Backend::Sqlite => numbered_insert_sqlite(tx, year, rows).await?,
            };
            inserted.extend(indices.into_iter().zip(models));
        }
        inserted.sort_by_key(|(index, _)| *index);
        Ok(inserted.into_iter().map(|(_, model)| model).collect())
    }
}

fn invalid_number(e: billing_domain::DomainError) -> RepositoryError {
    RepositoryError::InvalidValue {
        entity: Resource::Invoice,
        reason: e.to_string(),
    }
}

/// The numbers `last - n + 1 ..= last` of `year`, as strings, in order.
fn numbers_ending_at(year: i32, last: i64, n: usize) -> Result<Vec<String>, RepositoryError> {
    let n = i64::try_from(n).map_err(|_| RepositoryError::InvalidValue {
        entity: Resource::InvoiceSequence,
        reason: "too many invoices in one insert".to_owned(),
    })?;
    (last - n + 1..=last)
        .map(|sequence| {
            let sequence = u64::try_from(sequence).map_err(|_| RepositoryError::InvalidValue {
                entity: Resource::InvoiceSequence,
                reason: format!("negative counter {sequence} for {year}"),
            })?;
            Ok(InvoiceNumber::new(year, sequence)
                .map_err(invalid_number)?
                .to_string())
        })
        .collect()
}

/// The columns an inserted invoice sets (all but the bookkeeping ones and
/// the number) and their values, row by row, normalised like
/// [`Repository::insert`] does.
fn insert_values(
    rows: &[user_invoice::ActiveModel],
) -> Result<(Vec<user_invoice::Column>, Vec<Vec<Value>>), RepositoryError> {
    use user_invoice::Column;
    let skipped = [
        Column::Id,
        Column::InvoiceNumber,
        Column::CreatedAt,
        Column::UpdatedAt,
        Column::Version,
    ]
    .map(|c| c.as_str());
    let inserted = || Column::iter().filter(|c| !skipped.contains(&c.as_str()));
    let columns: Vec<Column> = inserted()
        .filter(|c| rows.first().is_some_and(|row| !row.get(*c).is_not_set()))
        .collect();
    let names: Vec<&str> = columns.iter().map(|c| c.as_str()).collect();
    let mut values = Vec::with_capacity(rows.len());
    for row in rows {
        let mut row_values = Vec::with_capacity(columns.len() + 3);
        for column in inserted() {
            match (
                names.contains(&column.as_str()),
                row.get(column).into_value(),
            ) {
                (true, Some(value)) => row_values.push(normalize(value)),
                (false, None) => {}
                (true, None) | (false, Some(_)) => {
                    return Err(RepositoryError::InvalidValue {
                        entity: Resource::Invoice,
                        reason: "invoices inserted together must set the same columns".to_owned(),
                    });
                }
            }
        }
        values.push(row_values);
    }
    Ok((columns, values))
}

/// One statement: the counter of `year` moves by `rows.len()` and the rows
/// are inserted with the numbers it gave, in order.
async fn numbered_insert_postgres(
    tx: &Transaction,
    year: i32,
    rows: Vec<user_invoice::ActiveModel>,
) -> Result<Vec<user_invoice::Model>, RepositoryError> {
    let statement = numbered_insert_statement(year, &rows)?;
    let cx = context(tx, Resource::Invoice, Op::Write);
    let returned = tx
        .connection()
        .query_all_raw(statement)
        .await
        .map_err(|e| map_db_err(e, cx))?;
    let mut by_number = std::collections::HashMap::with_capacity(returned.len());
    let mut last = None;
    for row in &returned {
        let model =
            user_invoice::Model::from_query_result(row, "").map_err(|e| map_db_err(e, cx))?;
        last = Some(
            row.try_get::<i64>("", "last_number_of_year")
                .map_err(|e| map_db_err(e, cx))?,
        );
        by_number.insert(model.invoice_number.clone(), model);
    }
    let last = last.ok_or_else(|| RepositoryError::Database {
        source: "the numbered insert returned no row".into(),
    })?;
    let expected = numbers_ending_at(year, last, returned.len())?;
    if expected.len() != by_number.len() {
        return Err(RepositoryError::Database {
            source: "the numbered insert returned another count of rows".into(),
        });
    }
    expected
        .iter()
        .map(|number| {
            by_number
                .remove(number)
                .ok_or_else(|| RepositoryError::Database {
                    source: format!("the numbered insert did not return invoice {number}").into(),
                })
        })
        .collect()
}

/// The statement of [`numbered_insert_postgres`] and its binds: `$1` the
/// year, `$2` the count of rows, `$3` the instant, `$4` the year as the
/// number writes it, then each row's values.
fn numbered_insert_statement(
    year: i32,
    rows: &[user_invoice::ActiveModel],
) -> Result<Statement, RepositoryError> {
    let (columns, rows) = insert_values(rows)?;
    let n = i64::try_from(rows.len()).map_err(|_| RepositoryError::InvalidValue {
        entity: Resource::InvoiceSequence,
        reason: "too many invoices in one insert".to_owned(),
    })?;
    let stamp = now();
    let mut values: Vec<Value> = vec![
        year.into(),
        n.into(),
        stamp.into(),
        format!("{year:04}").into(),
    ];
    let names: Vec<&str> = columns.iter().map(|c| c.as_str()).collect();
    let mut tuples = Vec::with_capacity(rows.len());
    for (ordinal, row) in rows.into_iter().enumerate() {
        let mut placeholders = Vec::with_capacity(row.len() + 3);
        for value in row
            .into_iter()
            .chain([stamp.into(), stamp.into(), 1_i32.into()])
        {
            values.push(value);
            placeholders.push(format!("${}", values.len()));
        }
        placeholders.push((ordinal + 1).to_string());
        tuples.push(format!("({})", placeholders.join(", ")));
    }
    let listed = names.join(", ");
    let picked: Vec<String> = names.iter().map(|name| format!("v.{name}")).collect();
    let sql = format!(
        "WITH seq AS (INSERT INTO invoice_sequence (year, last_number, updated_at) \
         VALUES ($1, $2, $3) ON CONFLICT (year) DO UPDATE \
         SET last_number = invoice_sequence.last_number + excluded.last_number, \
         updated_at = excluded.updated_at RETURNING last_number), \
         numbered AS (SELECT v.*, seq.last_number - $2 + v.ord AS sequence FROM seq, \
         (VALUES {tuples}) AS v ({listed}, created_at, updated_at, version, ord)), \
         ins AS (INSERT INTO user_invoice ({listed}, created_at, updated_at, version, invoice_number) \
         SELECT {picked}, v.created_at, v.updated_at, v.version, 'INV-' || $4 || '-' || \
         CASE WHEN v.sequence < 1000000 THEN lpad(v.sequence::text, 6, '0') ELSE v.sequence::text END \
         FROM numbered AS v RETURNING *) \
         SELECT ins.*, (SELECT last_number FROM seq) AS last_number_of_year FROM ins",
        tuples = tuples.join(", "),
        picked = picked.join(", "),
    );
    Ok(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        sql,
        values,
    ))
}

/// The counter of `year` moves by `rows.len()`, then each row is inserted
/// with its number (SQLite holds one writer at a time: the counter is not
/// a point of contention there).
async fn numbered_insert_sqlite(
    tx: &Transaction,
    year: i32,
    rows: Vec<user_invoice::ActiveModel>,
) -> Result<Vec<user_invoice::Model>, RepositoryError> {
    let n = i64::try_from(rows.len()).map_err(|_| RepositoryError::InvalidValue {
        entity: Resource::InvoiceSequence,
        reason: "too many invoices in one insert".to_owned(),
    })?;
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Sqlite,
        "INSERT INTO invoice_sequence (year, last_number, updated_at) VALUES (?, ?, ?) \
         ON CONFLICT (year) DO UPDATE SET last_number = invoice_sequence.last_number + \
         excluded.last_number, updated_at = excluded.updated_at RETURNING last_number",
        [year.into(), n.into(), now().into()],
    );
    let last = query_i64(tx, Resource::InvoiceSequence, statement).await?;
    let numbers = numbers_ending_at(year, last, rows.len())?;
    let mut inserted = Vec::with_capacity(rows.len());
    for (mut active, number) in rows.into_iter().zip(numbers) {
        active.invoice_number = ActiveValue::Set(number);
        inserted.push(Invoices::insert(tx, active).await?);
    }
    Ok(inserted)
}
