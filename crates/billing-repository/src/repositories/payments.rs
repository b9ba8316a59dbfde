//! [`PaymentWrite`]: the writes of a payment — the invoice, its
//! subscription, the idempotency key's record and the change's events —
//! as one statement on PostgreSQL (a `WITH` of the two versioned `UPDATE`s,
//! the record's `INSERT … ON CONFLICT`, each running only if the earlier
//! ones matched, and the events' `INSERT`, which the rollback of a missed
//! write takes back), as consecutive statements on SQLite.
//!
//! The events' ids are drawn in the statement that updates their rows; a
//! later change of the same row must read the committed state first, so
//! its events draw later ids (the order the outbox publishes them in).

use billing_domain::Resource;
use billing_domain::entities::{idempotency_record, subscription, user_invoice};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{
    CommonTableExpression, Expr, InsertStatement, Query, SelectStatement, WithClause,
};
use sea_orm::{ConnectionTrait, DatabaseBackend, Iterable, ModelTrait, Statement};

use crate::database::{Backend, Transaction};
use crate::error::{Op, RepositoryError, map_db_err};
use crate::repositories::events::{NewEvent, Outbox};
use crate::repositories::idempotency_records::IdempotencyRecords;
use crate::repository::{Repository, context, normalize};

/// What a payment writes: the invoice and, when it has one, its
/// subscription, each over the version it was read at, and the key's
/// record when the payment runs under an idempotency key.
#[derive(Clone, Debug)]
pub struct PaymentWrite {
    /// The invoice as it must be stored.
    pub invoice: user_invoice::Model,
    /// The version the invoice was read at.
    pub invoice_version: i32,
    /// The subscription as it must be stored, and the version it was read at.
    pub subscription: Option<(subscription::Model, i32)>,
    /// The key's record, and the oldest creation instant of a live record
    /// (an older record of the key is replaced).
    pub record: Option<(idempotency_record::Model, DateTime<Utc>)>,
    /// The events of the change (the outbox rows), written with it.
    pub events: Vec<NewEvent>,
    /// The `updated_at` of both rows.
    pub now: DateTime<Utc>,
}

/// How a [`PaymentWrite`] ended. Anything but `Written` wrote nothing that
/// may stay: roll the transaction back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentWritten {
    /// Every part was written.
    Written,
    /// The invoice is gone or no longer at its read version.
    InvoiceMoved,
    /// The subscription is gone or no longer at its read version.
    SubscriptionMoved,
    /// A live record of the key exists: another request with the key
    /// committed first.
    KeyTaken,
}

impl PaymentWrite {
    /// Writes the payment in `tx`.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`]
    /// (e.g. a row refused by the schema's checks).
    pub async fn write(self, tx: &Transaction) -> Result<PaymentWritten, RepositoryError> {
        match tx.backend() {
            Backend::Postgres => self.write_postgres(tx).await,
            Backend::Sqlite => self.write_in_steps(tx).await,
        }
    }

    async fn write_postgres(self, tx: &Transaction) -> Result<PaymentWritten, RepositoryError> {
        let statement = self.postgres_statement()?;
        let cx = context(tx, Resource::Invoice, Op::Write);
        let row = tx
            .connection()
            .query_one_raw(statement)
            .await
            .map_err(|e| map_db_err(e, cx))?
            .ok_or_else(|| RepositoryError::Database {
                source: "the payment's statement returned no row".into(),
            })?;
        let counted = |alias: &str| -> Result<i64, RepositoryError> {
            row.try_get::<i64>("", alias).map_err(|e| map_db_err(e, cx))
        };
        if counted("invoices")? != 1 {
            return Ok(PaymentWritten::InvoiceMoved);
        }
        if self.subscription.is_some() && counted("subscriptions")? != 1 {
            return Ok(PaymentWritten::SubscriptionMoved);
        }
        if self.record.is_some() && counted("records")? != 1 {
            return Ok(PaymentWritten::KeyTaken);
        }
        Ok(PaymentWritten::Written)
    }

    /// The one statement of [`Self::write_postgres`]: `WITH` the invoice's
    /// `UPDATE` (`inv`), the subscription's (`sub`), the record's `INSERT`
    /// (`rec`) and the events' (`ev`), selecting how many rows each of the
    /// first three wrote.
    fn postgres_statement(&self) -> Result<Statement, RepositoryError> {
        let mut invoice = Repository::<user_invoice::Entity>::save_query(
            &self.invoice,
            self.invoice_version,
            self.now,
        );
        invoice.returning_col(user_invoice::Column::Id);
        let mut with = WithClause::new();
        with.cte(
            CommonTableExpression::new()
                .query(invoice)
                .table_name("inv")
                .to_owned(),
        );
        if let Some((subscription, version)) = &self.subscription {
            let mut update =
                Repository::<subscription::Entity>::save_query(subscription, *version, self.now);
            update
                .and_where(exists("inv"))
                .returning_col(subscription::Column::Id);
            with.cte(
                CommonTableExpression::new()
                    .query(update)
                    .table_name("sub")
                    .to_owned(),
            );
        }
        if let Some((record, not_before)) = &self.record {
            with.cte(
                CommonTableExpression::new()
                    .query(self.record_insert(record, *not_before)?)
                    .table_name("rec")
                    .to_owned(),
            );
        }
        if !self.events.is_empty() {
            with.cte(
                CommonTableExpression::new()
                    .query(Outbox::insert_statement(self.events.clone()))
                    .table_name("ev")
                    .to_owned(),
            );
        }
        let count = |table: &str, alias: &str, select: &mut SelectStatement| {
            select.expr_as(
                Expr::cust(format!("(SELECT count(*) FROM {table})")),
                alias.to_owned(),
            );
        };
        let mut counts = Query::select();
        count("inv", "invoices", &mut counts);
        if self.subscription.is_some() {
            count("sub", "subscriptions", &mut counts);
        }
        if self.record.is_some() {
            count("rec", "records", &mut counts);
        }
        Ok(DatabaseBackend::Postgres.build(&with.query(counts)))
    }

    /// The record's `INSERT … SELECT` of [`Self::postgres_statement`]: it
    /// inserts only if the invoice's (and the subscription's) `UPDATE`
    /// wrote its row, and replaces a record older than `not_before`.
    fn record_insert(
        &self,
        record: &idempotency_record::Model,
        not_before: DateTime<Utc>,
    ) -> Result<InsertStatement, RepositoryError> {
        let mut guard = Query::select();
        let columns: Vec<_> = idempotency_record::Column::iter().collect();
        for column in &columns {
            guard.expr(Expr::val(normalize(record.get(*column))));
        }
        guard.and_where(exists("inv"));
        if self.subscription.is_some() {
            guard.and_where(exists("sub"));
        }
        let mut insert = Query::insert();
        insert
            .into_table(idempotency_record::Entity)
            .columns(columns)
            .select_from(guard)
            .map_err(|e| RepositoryError::Database { source: e.into() })?
            .on_conflict(IdempotencyRecords::replace_expired(not_before))
            .returning_col(idempotency_record::Column::Key);
        Ok(insert)
    }

    async fn write_in_steps(self, tx: &Transaction) -> Result<PaymentWritten, RepositoryError> {
        if Repository::<user_invoice::Entity>::save_at(
            tx,
            &self.invoice,
            self.invoice_version,
            self.now,
        )
        .await
        .map_or_else(moved, |_| Ok(false))?
        {
            return Ok(PaymentWritten::InvoiceMoved);
        }
        if let Some((subscription, version)) = &self.subscription
            && Repository::<subscription::Entity>::save_at(tx, subscription, *version, self.now)
                .await
                .map_or_else(moved, |_| Ok(false))?
        {
            return Ok(PaymentWritten::SubscriptionMoved);
        }
        if let Some((record, not_before)) = self.record
            && !IdempotencyRecords::record(tx, record, not_before).await?
        {
            return Ok(PaymentWritten::KeyTaken);
        }
        Outbox::append(tx, self.events).await?;
        Ok(PaymentWritten::Written)
    }
}

/// `EXISTS (SELECT 1 FROM "table")`: whether the statement's CTE `table`
/// wrote a row.
fn exists(table: &str) -> Expr {
    Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(table.to_owned())
            .to_owned(),
    )
}

/// Whether a failed save found its row gone or moved on (`true`), or
/// failed otherwise (the error).
fn moved(error: RepositoryError) -> Result<bool, RepositoryError> {
    match error {
        RepositoryError::ConcurrentModification { .. } | RepositoryError::NotFound { .. } => {
            Ok(true)
        }
        other @ (RepositoryError::AlreadyExists { .. }
        | RepositoryError::ReferencedRowMissing { .. }
        | RepositoryError::StillReferenced { .. }
        | RepositoryError::CheckViolation { .. }
        | RepositoryError::InvalidValue { .. }
        | RepositoryError::TransactionConflict { .. }
        | RepositoryError::Unavailable { .. }
        | RepositoryError::ConnectionLimitReached { .. }
        | RepositoryError::InvalidSettings { .. }
        | RepositoryError::Database { .. }) => Err(other),
    }
}
