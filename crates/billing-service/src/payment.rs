//! Paying an invoice under its lock: one statement reads the invoice, its
//! subscription and its plan; one transaction holds the one statement that
//! saves both rows over the versions read and inserts the key's record
//! (see [`PaymentWrite`]).

use billing_domain::entities::user_invoice;
use billing_repository::{
    Invoices, PaymentRows, PaymentWrite, PaymentWritten, RepositoryError, Subscriptions,
};

use crate::events::event_of;
use crate::idempotency::Claim;
use crate::invoices::{LockFence, Payment, PaymentOutcome};
use crate::versioned::check_expected_version;
use crate::{Billing, BillingError, Contended, LockKey, Resource};

impl Billing {
    /// One payment under the invoice's lock. On PostgreSQL: one statement
    /// reads the invoice, its subscription and its plan; the transaction
    /// then holds one statement that saves both rows over the versions read
    /// and inserts the key's record (see [`PaymentWrite`]).
    pub(crate) async fn pay_once(
        &self,
        id: i64,
        payment: Payment,
        expected_version: Option<i32>,
        fence: LockFence,
    ) -> Result<PaymentOutcome, BillingError> {
        let at = self.now();
        let claim = Claim::current();
        for _ in 0..self.settings().max_attempts {
            let rows = PaymentRows::read(self.db(), id, None, at).await?;
            let (write, outcome) = paid(
                rows,
                id,
                &payment,
                at,
                expected_version,
                fence,
                claim.as_deref(),
            )?;
            match self.write_payment(write, fence).await {
                Ok(()) => {
                    if claim.is_some() {
                        Claim::committed();
                    }
                    return Ok(outcome);
                }
                Err(PayAttempt::Failed(error)) => return Err(error),
                Err(PayAttempt::Missed(PaymentWritten::KeyTaken)) => return Err(Claim::raced()),
                Err(PayAttempt::Missed(PaymentWritten::InvoiceMoved))
                    if expected_version.is_some() =>
                {
                    return Err(match Invoices::current_version(self.db(), id).await? {
                        Some(current) => BillingError::VersionMismatch {
                            resource: Resource::Invoice,
                            current,
                        },
                        None => RepositoryError::NotFound {
                            entity: Resource::Invoice,
                            id,
                        }
                        .into(),
                    });
                }
                Err(PayAttempt::Missed(
                    PaymentWritten::InvoiceMoved
                    | PaymentWritten::SubscriptionMoved
                    | PaymentWritten::Written,
                )) => tracing::debug!(id, "concurrent change of a paid invoice; re-reading"),
            }
        }
        Err(BillingError::Locked {
            contended: Contended::Lock(LockKey::of(Resource::Invoice, id)),
        })
    }

    /// Writes `write` in a transaction of its own; anything short of a
    /// complete write rolls it back.
    async fn write_payment(&self, write: PaymentWrite, fence: LockFence) -> Result<(), PayAttempt> {
        self.db()
            .transaction(move |tx| {
                Box::pin(async move {
                    match write.write(tx).await? {
                        PaymentWritten::Written => {
                            fence.ensure_held().map_err(PayAttempt::Failed)?;
                            Ok(())
                        }
                        missed @ (PaymentWritten::InvoiceMoved
                        | PaymentWritten::SubscriptionMoved
                        | PaymentWritten::KeyTaken) => Err(PayAttempt::Missed(missed)),
                    }
                })
            })
            .await
    }
}

/// The write of a payment of invoice `id` from the rows read, and the
/// outcome it stores (also in the key's record, under `claim`).
fn paid(
    rows: PaymentRows,
    id: i64,
    payment: &Payment,
    at: chrono::DateTime<chrono::Utc>,
    expected_version: Option<i32>,
    fence: LockFence,
    claim: Option<&Claim>,
) -> Result<(PaymentWrite, PaymentOutcome), BillingError> {
    let mut invoice = checked_for_change(rows.invoice, id, expected_version, fence)?;
    let invoice_before = invoice.clone();
    let read_version = invoice.version;
    invoice.mark_paid(
        at,
        &payment.payment_method,
        payment.payment_reference.as_deref(),
    )?;
    invoice.fencing_token = Some(fence.token);
    let subscription = match invoice.subscription_id {
        Some(subscription_id) => {
            let mut subscription = rows.subscription.ok_or(RepositoryError::NotFound {
                entity: Resource::Subscription,
                id: subscription_id,
            })?;
            let plan = rows.plan.ok_or(RepositoryError::NotFound {
                entity: Resource::Plan,
                id: invoice.tarif_plan_id,
            })?;
            let subscription_before = subscription.clone();
            subscription.pay_period(at, plan.billing_period)?;
            Some((subscription, subscription_before))
        }
        None => None,
    };
    fence.ensure_held()?;
    let stamp = billing_repository::now();
    let outcome = PaymentOutcome {
        invoice: Invoices::as_saved(&invoice, read_version, stamp)?,
        subscription: match &subscription {
            Some((subscription, before)) => Some(Subscriptions::as_saved(
                subscription,
                before.version,
                stamp,
            )?),
            None => None,
        },
    };
    // The events of the change, from the rows as they will be stored: the
    // invoice's, then the subscription's.
    let mut events: Vec<_> = event_of(Some(&invoice_before), &outcome.invoice)?
        .into_iter()
        .collect();
    if let (Some((_, before)), Some(saved)) = (&subscription, &outcome.subscription) {
        events.extend(event_of(Some(before), saved)?);
    }
    let record = match claim {
        Some(claim) => Some(claim.record_of(&outcome)?),
        None => None,
    };
    let write = PaymentWrite {
        invoice,
        invoice_version: read_version,
        subscription: subscription.map(|(subscription, before)| (subscription, before.version)),
        record,
        events,
        now: stamp,
    };
    Ok((write, outcome))
}

/// How one payment transaction ended short of committing.
enum PayAttempt {
    /// A part of the write matched nothing: rolled back.
    Missed(PaymentWritten),
    /// Rolled back on this error.
    Failed(BillingError),
}

impl From<RepositoryError> for PayAttempt {
    fn from(error: RepositoryError) -> Self {
        Self::Failed(error.into())
    }
}

/// The invoice read for a change, checked as a refund checks its own: the
/// expected version, then the fencing token stored by the last holder.
fn checked_for_change(
    invoice: Option<user_invoice::Model>,
    id: i64,
    expected_version: Option<i32>,
    fence: LockFence,
) -> Result<user_invoice::Model, BillingError> {
    let invoice = invoice.ok_or(RepositoryError::NotFound {
        entity: Resource::Invoice,
        id,
    })?;
    check_expected_version(Resource::Invoice, expected_version, invoice.version)?;
    if invoice
        .fencing_token
        .is_some_and(|stored| stored >= fence.token)
    {
        return Err(BillingError::Locked {
            contended: Contended::NewerLockHolder(LockKey::of(Resource::Invoice, id)),
        });
    }
    Ok(invoice)
}
