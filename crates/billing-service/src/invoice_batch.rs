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
//! batch transaction fails anyway (a row refused by the schema, e.g. its
//! user erased in between; the database down), nothing of it committed and
//! no number was used: each of its requests is then written in its own
//! transaction, so one faulty row costs the others nothing but a retry, and
//! each request gets its own answer (its invoice, or the clear error of its
//! own transaction).

use std::sync::{Mutex, PoisonError};

use billing_domain::entities::user_invoice;
use billing_repository::Invoices;
use tokio::sync::oneshot;

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
            .transaction(move |tx| Box::pin(Invoices::insert_numbered_all(tx, invoices)))
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
            Err(error) => {
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
        }
    }

    /// Numbers and inserts `invoice` in a transaction of its own.
    async fn insert_invoice_alone(
        &self,
        invoice: user_invoice::Model,
    ) -> Result<user_invoice::Model, BillingError> {
        Ok(self
            .db()
            .transaction(move |tx| Box::pin(Invoices::insert_numbered(tx, invoice)))
            .await?)
    }
}

impl InvoiceBatcher {
    fn lock(&self) -> std::sync::MutexGuard<'_, BatchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
