//! [`Invoices`]: invoices by number, by user and status, pending ones past
//! their expiry, and gapless per-year invoice numbers.
//!
//! Numbers come from the `invoice_sequence` counter, moved by
//! [`Invoices::next_sequence`] *inside the transaction that inserts the
//! invoice* (the function takes a [`Transaction`], not the pool): the
//! counter row stays locked until that transaction ends, so concurrent
//! creators — in this process or in other API instances — queue behind it
//! and each gets the next number; a rolled-back invoice rolls its number
//! back too. Hence numbers are unique, sequential and without gaps.

use billing_domain::InvoiceNumber;
use billing_domain::entities::user_invoice;
use billing_domain::enums::InvoiceStatus;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue, ColumnTrait, DatabaseBackend, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};

use crate::database::{Backend, Executor, Transaction};
use crate::error::RepositoryError;
use crate::repository::{Page, Repository, fetch_all, fetch_one, now, paginate, query_i64};

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
    /// [`RepositoryError::InvalidPage`]; as [`Self::find_by_number`].
    pub async fn by_user<X: Executor>(
        exec: &X,
        user_id: i64,
        status: Option<InvoiceStatus>,
        page: u64,
        per_page: u64,
    ) -> Result<Page<user_invoice::Model>, RepositoryError> {
        let mut select =
            user_invoice::Entity::find().filter(user_invoice::Column::UserId.eq(user_id));
        if let Some(status) = status {
            select = select.filter(user_invoice::Column::Status.eq(status));
        }
        paginate(
            exec,
            select.order_by_desc(user_invoice::Column::Id),
            page,
            per_page,
        )
        .await
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
        query_i64(tx, "invoice_sequence", statement).await
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
            entity: "user_invoice",
            reason: e.to_string(),
        };
        // Refuse an impossible year before moving its counter.
        let year = InvoiceNumber::for_instant(at, 1).map_err(invalid)?.year();
        let sequence = Self::next_sequence(tx, year).await?;
        let sequence = u64::try_from(sequence).map_err(|_| RepositoryError::InvalidValue {
            entity: "invoice_sequence",
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
    /// As [`Self::next_number`] and [`Repository::insert`].
    pub async fn insert_numbered<A>(
        tx: &Transaction,
        invoice: A,
    ) -> Result<user_invoice::Model, RepositoryError>
    where
        A: IntoActiveModel<user_invoice::ActiveModel>,
    {
        let mut active = invoice.into_active_model();
        let invoiced_at = match active.invoiced_at.take() {
            Some(at) => at,
            None => now(),
        };
        active.invoiced_at = ActiveValue::Set(invoiced_at);
        let number = Self::next_number(tx, invoiced_at).await?;
        active.invoice_number = ActiveValue::Set(number.to_string());
        Self::insert(tx, active).await
    }
}
