//! Dunning: the retried charges of unpaid renewal invoices, and what the
//! last failed one closes.

use billing_domain::entities::{subscription, subscription_renewal};
use billing_domain::enums::{DunningOutcome, InvoiceStatus};
use billing_repository::{DunningAttempts, Renewals};
use chrono::{DateTime, Utc};

use super::runner::Lease;
use super::{ChargeOutcome, ChargeRequest, CycleReport, CycleRunner, DunningFinalAction};
use crate::{BillingError, IdempotencyKey, Payment};

/// The idempotency scope of the payments a dunning attempt makes.
const DUNNING_SCOPE: &str = "billing-cycle";

impl CycleRunner {
    pub(super) async fn dun(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), BillingError> {
        let Some(first) = self.settings.dunning_schedule.iter().min().copied() else {
            return Ok(());
        };
        let mut after = 0;
        loop {
            lease.keep().await?;
            let unpaid =
                Renewals::unpaid(self.billing.db(), now - first, after, self.batch()).await?;
            report.batches += 1;
            for renewal in &unpaid {
                self.dun_one(renewal, now, report).await?;
            }
            match unpaid.last() {
                Some(last) if unpaid.len() as u64 == self.batch() => after = last.invoice_id,
                Some(_) | None => return Ok(()),
            }
        }
    }

    /// Makes the attempt due for one unpaid renewal (re-running one a
    /// crashed pass claimed), and closes it after the last.
    async fn dun_one(
        &self,
        renewal: &subscription_renewal::Model,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), BillingError> {
        let db = self.billing.db();
        let schedule = &self.settings.dunning_schedule;
        let due = schedule
            .iter()
            .filter(|delay| renewal.period_start + **delay <= now)
            .count();
        let attempts = DunningAttempts::of_invoice(db, renewal.invoice_id).await?;
        let unfinished = attempts
            .iter()
            .find(|a| a.outcome == DunningOutcome::Started)
            .map(|a| a.attempt);
        let attempt = match unfinished {
            Some(attempt) => Some(attempt),
            None if attempts.len() < due => {
                let next = i32::try_from(attempts.len() + 1).unwrap_or(i32::MAX);
                DunningAttempts::claim(db, renewal.invoice_id, next, now)
                    .await?
                    .map(|claimed| claimed.attempt)
            }
            None => None,
        };
        let mut last_paid = false;
        if let Some(attempt) = attempt {
            let outcome = self.attempt(renewal, attempt).await?;
            let (outcome, detail) = outcome;
            if DunningAttempts::finish(db, renewal.invoice_id, attempt, outcome, detail).await? {
                match outcome {
                    DunningOutcome::Paid => report.dunning_paid += 1,
                    DunningOutcome::Declined => report.dunning_declined += 1,
                    DunningOutcome::AwaitingPayment => report.dunning_awaiting_payment += 1,
                    DunningOutcome::Errored => report.dunning_errored += 1,
                    DunningOutcome::Started => {}
                }
            }
            last_paid = outcome == DunningOutcome::Paid;
        }
        let made = DunningAttempts::of_invoice(db, renewal.invoice_id).await?;
        let all_made = made.len() >= schedule.len()
            && made.iter().all(|a| a.outcome != DunningOutcome::Started);
        if all_made && !last_paid {
            self.close_after_dunning(renewal, now, report).await?;
        }
        Ok(())
    }

    /// Runs attempt `attempt` of `renewal`'s invoice.
    async fn attempt(
        &self,
        renewal: &subscription_renewal::Model,
        attempt: i32,
    ) -> Result<(DunningOutcome, Option<String>), BillingError> {
        let invoice = self.billing.invoice(renewal.invoice_id).await?;
        if invoice.status == InvoiceStatus::Paid {
            return Ok((DunningOutcome::Paid, None));
        }
        let Some(charger) = &self.charger else {
            return Ok((DunningOutcome::AwaitingPayment, None));
        };
        let key_text = format!("dunning-{}-{attempt}", invoice.id);
        let request = ChargeRequest {
            invoice: &invoice,
            attempt: u32::try_from(attempt).unwrap_or(0),
            idempotency_key: &key_text,
        };
        match charger.charge(request).await {
            Ok(ChargeOutcome::Paid {
                payment_method,
                payment_reference,
            }) => {
                let key = IdempotencyKey::for_request(
                    DUNNING_SCOPE,
                    &key_text,
                    "POST",
                    &format!("/invoices/{}/pay", invoice.id),
                    b"",
                )?;
                let payment = Payment {
                    payment_method,
                    payment_reference,
                };
                match self
                    .billing
                    .pay_invoice(invoice.id, payment, None, &key)
                    .await
                {
                    Ok(_) => Ok((DunningOutcome::Paid, None)),
                    Err(error) if error.is_outage() => Err(error),
                    Err(error) => Ok((DunningOutcome::Errored, Some(truncate(&error.to_string())))),
                }
            }
            Ok(ChargeOutcome::Declined { reason }) => {
                match self
                    .billing
                    .transition_invoice(invoice.id, crate::InvoiceAction::Fail, None)
                    .await
                {
                    Ok(_) | Err(BillingError::InvalidTransition { .. }) => {}
                    Err(other) => return Err(other),
                }
                Ok((DunningOutcome::Declined, Some(truncate(&reason))))
            }
            Err(error) => Ok((DunningOutcome::Errored, Some(truncate(&error.to_string())))),
        }
    }

    /// Cancels the invoice and cancels or pauses the subscription.
    async fn close_after_dunning(
        &self,
        renewal: &subscription_renewal::Model,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), BillingError> {
        match self
            .billing
            .transition_invoice(renewal.invoice_id, crate::InvoiceAction::Cancel, None)
            .await
        {
            Ok(_) => report.invoices_closed += 1,
            // Paid or closed meanwhile: nothing to close.
            Err(BillingError::InvalidTransition { .. }) => return Ok(()),
            Err(other) => return Err(other),
        }
        let action = self.settings.dunning_final_action;
        let result = self
            .billing
            .update_versioned::<subscription::Entity, _>(renewal.subscription_id, None, |s| {
                // Only the period this renewal would have paid for is lost.
                if s.expires_at.is_some_and(|at| at > renewal.period_start) {
                    return Err(BillingError::invalid_transition("renewed meanwhile"));
                }
                match action {
                    DunningFinalAction::Cancel => s.cancel(now),
                    DunningFinalAction::Suspend => s.pause(now),
                }
                .map_err(BillingError::from)
            })
            .await;
        match result {
            Ok(_) => report.dunning_closed += 1,
            Err(BillingError::InvalidTransition { .. } | BillingError::NotFound { .. }) => {}
            Err(other) => return Err(other),
        }
        Ok(())
    }
}

/// `text` cut to the 255 characters `dunning_attempt.detail` holds.
fn truncate(text: &str) -> String {
    text.chars().take(255).collect()
}
