//! Expiry: subscriptions past their grace and invoices past their payment
//! window.

use billing_domain::entities::{subscription, user_invoice};
use billing_domain::enums::SubscriptionStatus;
use billing_repository::{Invoices, Subscriptions};
use chrono::{DateTime, Utc};

use super::runner::Lease;
use super::{CycleReport, CycleRunner};
use crate::BillingError;

impl CycleRunner {
    pub(super) async fn expire(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), BillingError> {
        let before = now - self.settings.expiry_grace;
        let mut after = None;
        loop {
            lease.keep().await?;
            let overdue =
                Subscriptions::overdue(self.billing.db(), before, after, self.batch()).await?;
            report.batches += 1;
            for candidate in &overdue {
                let result = self
                    .billing
                    .update_versioned::<subscription::Entity, _>(candidate.id, None, |s| {
                        // Re-checked on every re-read: a payment may have moved it.
                        let still_overdue = s.status == SubscriptionStatus::Active
                            && s.expires_at.is_some_and(|at| at < before);
                        if !still_overdue {
                            return Err(BillingError::invalid_transition("no longer overdue"));
                        }
                        s.expire(now).map_err(BillingError::from)
                    })
                    .await;
                match result {
                    Ok(_) => report.subscriptions_expired += 1,
                    Err(BillingError::InvalidTransition { .. } | BillingError::NotFound { .. }) => {
                    }
                    Err(other) => return Err(other),
                }
            }
            match overdue.last() {
                Some(last) if overdue.len() as u64 == self.batch() => {
                    after = last.expires_at.map(|at| (at, last.id));
                }
                Some(_) | None => return Ok(()),
            }
        }
    }

    pub(super) async fn close_invoices(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), BillingError> {
        let mut after = 0;
        loop {
            lease.keep().await?;
            let expired =
                Invoices::unpaid_past_expiry(self.billing.db(), now, after, self.batch()).await?;
            report.batches += 1;
            for candidate in &expired {
                let result = self
                    .billing
                    .update_versioned::<user_invoice::Entity, _>(candidate.id, None, |invoice| {
                        if !invoice.is_expired(now) {
                            return Err(BillingError::invalid_transition("no longer expired"));
                        }
                        invoice.mark_cancelled().map_err(BillingError::from)
                    })
                    .await;
                match result {
                    Ok(_) => report.invoices_closed += 1,
                    Err(BillingError::InvalidTransition { .. } | BillingError::NotFound { .. }) => {
                    }
                    Err(other) => return Err(other),
                }
            }
            match expired.last() {
                Some(last) if expired.len() as u64 == self.batch() => after = last.id,
                Some(_) | None => return Ok(()),
            }
        }
    }
}
