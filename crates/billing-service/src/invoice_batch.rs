//! Numbering the invoice creations waiting in one instance together: one
//! move of the year's counter by `n` and one multi-row insert in one
//! transaction, each request answered with its own invoice.
//!
//! A creation that arrives while no batch is being written starts a
//! drainer task and is written at once (alone, when nothing else waits);
//! creations that arrive while a batch is being written wait for it and go
//! together in the next one. Nothing waits on a timer: batches form only
//! when the database is the bottleneck.
//!
//! Every request was validated and priced before it joined a batch. When a
//! batch's statement fails anyway (a row refused by the schema, e.g. its
//! user erased in between), nothing of it committed and no number was
//! used: each of its requests is then written in its own transaction, so
//! one faulty row costs the others nothing but a retry, and each request
//! gets its own answer (its invoice, or the clear error of its own
//! transaction). When the database cannot be reached (the batch may even
//! have committed, if the connection broke during `COMMIT`), nothing is
//! written again: each request gets the `Unavailable` error.
//!
//! Each invoice's `invoice.created` event is inserted in the transaction
//! that numbers it (one multi-row insert for the batch).

use std::sync::{Mutex, PoisonError};

use billing_domain::entities::user_invoice;
use billing_repository::{Invoices, Outbox, RepositoryError, Transaction};
use tokio::sync::oneshot;

use crate::events::event_of;
use crate::{Billing, BillingError};

/// The most creations numbered in one transaction.
pub const MAX_INVOICE_BATCH: usize = 128;

/// One instance's waiting creations.
#[derive(Debug, Default)]
pub(crate) struct InvoiceBatcher {
    state: Mutex<BatchState>,
}

#[derive(Debug, Default)]
struct BatchState {
    waiting: Vec<Waiter>,
    /// Whether a drainer task is running (it takes what waits).
    draining: bool,
}

#[derive(Debug)]
struct Waiter {
    invoice: user_invoice::Model,
    answer: oneshot::Sender<Result<user_invoice::Model, BillingError>>,
}

impl Billing {
    /// Numbers and inserts the priced `invoice` together with the other
    /// creations waiting in this instance.
    pub(crate) async fn insert_invoice_batched(
        &self,
        invoice: user_invoice::Model,
    ) -> Result<user_invoice::Model, BillingError> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut state = self.batcher().lock();
            state.waiting.push(Waiter { invoice, answer });
            !std::mem::replace(&mut state.draining, true)
        };
        if start {
            // A task of its own: the requests waiting for it are answered
            // even if the request that started it goes away.
            let billing = self.clone();
            drop(tokio::spawn(async move {
                billing.drain_invoice_batches().await
            }));
        }
        answered.await.map_err(|_| BillingError::Internal {
            source: "the invoice batch ended without answering".into(),
        })?
    }

    async fn drain_invoice_batches(&self) {
        let _guard = DrainGuard(self.batcher());
        loop {
            let batch: Vec<Waiter> = {
                let mut state = self.batcher().lock();
                if state.waiting.is_empty() {
                    state.draining = false;
                    return;
                }
                let n = state.waiting.len().min(MAX_INVOICE_BATCH);
                state.waiting.drain(..n).collect()
            };
            self.write_batch(batch).await;
        }
    }

    async fn write_batch(&self, batch: Vec<Waiter>) {
        let invoices: Vec<user_invoice::ActiveModel> = batch
            .iter()
            .map(|waiter| user_invoice::ActiveModel::from(waiter.invoice.clone()))
            .collect();
        let written = self
            .db()
            .transaction(move |tx| {
                Box::pin(async move {
                    let invoices = Invoices::insert_numbered_all(tx, invoices).await?;
                    append_created(tx, &invoices).await?;
                    Ok::<_, RepositoryError>(invoices)
                })
            })
            .await;
        match written {
            Ok(invoices) if invoices.len() == batch.len() => {
                for (waiter, invoice) in batch.into_iter().zip(invoices) {
                    // A request that went away meanwhile still has its invoice.
                    let _ = waiter.answer.send(Ok(invoice));
                }
            }
            Ok(_) => {
                for waiter in batch {
                    let _ = waiter.answer.send(Err(BillingError::Internal {
                        source: "the invoice batch returned another count of invoices".into(),
                    }));
                }
            }
            Err(error) if batch.len() == 1 => {
                let mut error = Some(BillingError::from(error));
                for waiter in batch {
                    if let Some(error) = error.take() {
                        let _ = waiter.answer.send(Err(error));
                    }
                }
            }
            Err(error) => match unknown_outcome(&error) {
                // The database is out of reach, and a commit may even have
                // landed: writing again could write twice. Each request
                // gets the error (the client may retry, as after any 503).
                Some(copy) => {
                    let mut first = Some(error);
                    for waiter in batch {
                        let error = first.take().unwrap_or_else(&copy);
                        let _ = waiter.answer.send(Err(error.into()));
                    }
                }
                // The statement was refused (a row the schema rejects) or
                // lost a conflict: nothing committed, no number was used.
                None => {
                    tracing::debug!(
                        error = &error as &dyn std::error::Error,
                        size = batch.len(),
                        "an invoice batch failed; writing its invoices one by one"
                    );
                    let mut alone = tokio::task::JoinSet::new();
                    for waiter in batch {
                        let billing = self.clone();
                        alone.spawn(async move {
                            let result = billing.insert_invoice_alone(waiter.invoice).await;
                            let _ = waiter.answer.send(result);
                        });
                    }
                    while alone.join_next().await.is_some() {}
                }
            },
        }
    }

    /// Numbers and inserts `invoice` in a transaction of its own.
    async fn insert_invoice_alone(
        &self,
        invoice: user_invoice::Model,
    ) -> Result<user_invoice::Model, BillingError> {
        Ok(self
            .db()
            .transaction(move |tx| {
                Box::pin(async move {
                    let invoice = Invoices::insert_numbered(tx, invoice).await?;
                    append_created(tx, std::slice::from_ref(&invoice)).await?;
                    Ok::<_, RepositoryError>(invoice)
                })
            })
            .await?)
    }
}

/// Appends the `invoice.created` events of `invoices` in `tx`, in one
/// insert.
async fn append_created(
    tx: &Transaction,
    invoices: &[user_invoice::Model],
) -> Result<(), RepositoryError> {
    let mut events = Vec::with_capacity(invoices.len());
    for invoice in invoices {
        let event = event_of(None, invoice).map_err(|error| RepositoryError::Database {
            source: Box::new(error),
        })?;
        events.extend(event);
    }
    Outbox::append(tx, events).await
}

/// For an error after which the batch may or may not have committed (the
/// database unreachable, e.g. during `COMMIT`), a maker of copies of it for
/// the other requests; `None` when the batch certainly rolled back.
fn unknown_outcome(error: &RepositoryError) -> Option<impl Fn() -> RepositoryError + use<>> {
    let (target, reason, limit, unreachable) = match error {
        RepositoryError::Unavailable { target, source } => {
            (target.clone(), source.to_string(), None, true)
        }
        RepositoryError::ConnectionLimitReached {
            target,
            reason,
            server_max_connections,
        } => (
            target.clone(),
            reason.clone(),
            *server_max_connections,
            false,
        ),
        RepositoryError::NotFound { .. }
        | RepositoryError::ConcurrentModification { .. }
        | RepositoryError::AlreadyExists { .. }
        | RepositoryError::ReferencedRowMissing { .. }
        | RepositoryError::StillReferenced { .. }
        | RepositoryError::CheckViolation { .. }
        | RepositoryError::InvalidValue { .. }
        | RepositoryError::TransactionConflict { .. }
        | RepositoryError::InvalidSettings { .. }
        | RepositoryError::Database { .. } => return None,
    };
    Some(move || {
        if unreachable {
            RepositoryError::Unavailable {
                target: target.clone(),
                source: reason.clone().into(),
            }
        } else {
            RepositoryError::ConnectionLimitReached {
                target: target.clone(),
                reason: reason.clone(),
                server_max_connections: limit,
            }
        }
    })
}

/// Lets the next creation start a drainer if this one ends by a panic.
struct DrainGuard<'a>(&'a InvoiceBatcher);

impl Drop for DrainGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().draining = false;
        }
    }
}

impl InvoiceBatcher {
    fn lock(&self) -> std::sync::MutexGuard<'_, BatchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;

    #[test]
    fn only_an_unreachable_database_answers_every_request_with_its_error() {
        let down = RepositoryError::Unavailable {
            target: "db:5432".to_owned(),
            source: "connection reset during COMMIT".into(),
        };
        let copy = unknown_outcome(&down).expect("the outcome of the batch is unknown");
        assert!(matches!(
            copy(),
            RepositoryError::Unavailable { target, source }
                if target == "db:5432" && source.to_string().contains("COMMIT")
        ));
        let refused = RepositoryError::ReferencedRowMissing {
            entity: Resource::Invoice,
            constraint: "fk_user_invoice_user".to_owned(),
        };
        assert!(
            unknown_outcome(&refused).is_none(),
            "a refused row is retried alone"
        );
    }
}
