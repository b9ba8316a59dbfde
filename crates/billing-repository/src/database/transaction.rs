//! Transactions: [`Transaction`], begun by [`Database::begin`] or run as a
//! unit by [`Database::transaction`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sea_orm::{DatabaseTransaction, SqliteTransactionMode, TransactionOptions, TransactionTrait};

use super::{Backend, Database, Executor};
use crate::error::{ErrorContext, Op, RepositoryError, map_db_err};

impl Database {
    /// Begins a transaction: READ COMMITTED on PostgreSQL, `BEGIN IMMEDIATE`
    /// on SQLite. It commits only through [`Transaction::commit`]; dropping
    /// it (an early return, an error, a panic) rolls it back.
    ///
    /// Run every call of the unit of work on the transaction, not on the
    /// pool: on SQLite a write through the pool waits for the transaction's
    /// write lock (and fails after the busy timeout); on PostgreSQL it would
    /// simply not be part of the transaction.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when no connection can be had;
    /// [`RepositoryError::TransactionConflict`] when SQLite's write lock
    /// stays taken beyond the busy timeout.
    pub async fn begin(&self) -> Result<Transaction, RepositoryError> {
        let options = match self.backend {
            // Every connection starts with `default_transaction_isolation`
            // set to READ COMMITTED: a `SET TRANSACTION` per `BEGIN` would
            // be a round trip that changes nothing.
            Backend::Postgres => TransactionOptions {
                isolation_level: None,
                access_mode: None,
                sqlite_transaction_mode: None,
            },
            Backend::Sqlite => TransactionOptions {
                isolation_level: None,
                access_mode: None,
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            },
        };
        let txn = self
            .conn
            .begin_with_options(options)
            .await
            .map_err(|e| map_db_err(e, self.error_context()))?;
        Ok(Transaction {
            txn,
            target: Arc::clone(&self.target),
            backend: self.backend,
        })
    }

    /// Runs `work` in one transaction: commits when it returns `Ok`, rolls
    /// back when it returns `Err` or panics.
    ///
    /// ```no_run
    /// # use billing_repository::{Database, RepositoryError, Users};
    /// # async fn demo(db: &Database) -> Result<(), RepositoryError> {
    /// let email = "ada@example.com".to_owned();
    /// let found = db
    ///     .transaction(|tx| Box::pin(async move { Users::find_by_email(tx, &email).await }))
    ///     .await?;
    /// # let _ = found; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The error of `work`, or (converted) the error of beginning or
    /// committing. A commit that fails with
    /// [`RepositoryError::Unavailable`] leaves the outcome unknown: the
    /// server may or may not have committed before the connection broke.
    pub async fn transaction<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: for<'t> FnOnce(&'t Transaction) -> TransactionFuture<'t, Result<T, E>> + Send,
        T: Send,
        E: From<RepositoryError> + Send,
    {
        let tx = self.begin().await?;
        match work(&tx).await {
            Ok(value) => {
                tx.commit().await?;
                Ok(value)
            }
            Err(e) => {
                if let Err(rollback) = tx.rollback().await {
                    tracing::warn!(error = %rollback, "rollback after a failed transaction failed");
                }
                Err(e)
            }
        }
    }
}

/// The future a [`Database::transaction`] closure returns:
/// `Box::pin(async move { … })`.
pub type TransactionFuture<'t, T> = Pin<Box<dyn Future<Output = T> + Send + 't>>;

/// An open transaction. Repository functions take it like a [`Database`];
/// [`Transaction::commit`] makes their writes visible together, and dropping
/// it without committing rolls everything back.
#[derive(Debug)]
pub struct Transaction {
    txn: DatabaseTransaction,
    target: Arc<str>,
    backend: Backend,
}

impl Transaction {
    /// Commits every write of the transaction.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the connection broke (the
    /// outcome is then unknown); a constraint error of a deferred check.
    pub async fn commit(self) -> Result<(), RepositoryError> {
        let cx = ErrorContext {
            entity: None,
            target: &self.target,
            op: Op::Write,
        };
        self.txn.commit().await.map_err(|e| map_db_err(e, cx))
    }

    /// Rolls back every write of the transaction.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the connection broke (the
    /// server then rolls back on its own).
    pub async fn rollback(self) -> Result<(), RepositoryError> {
        let cx = ErrorContext {
            entity: None,
            target: &self.target,
            op: Op::Write,
        };
        self.txn.rollback().await.map_err(|e| map_db_err(e, cx))
    }

    /// The database server.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The sea-orm transaction, for queries this crate does not provide.
    #[must_use]
    pub fn connection(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl Executor for Transaction {
    type Connection = DatabaseTransaction;

    fn connection(&self) -> &DatabaseTransaction {
        &self.txn
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn backend(&self) -> Backend {
        self.backend
    }
}
