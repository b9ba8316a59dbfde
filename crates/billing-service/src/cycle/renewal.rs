//! Renewals: one invoice per subscription period coming to its end.

use std::sync::Arc;

use billing_domain::entities::{subscription, user_invoice};
use billing_repository::{
    Invoices, RenewalContext, Renewals, Subscriptions, UserDetailsRepository, Users,
};
use chrono::{DateTime, Utc};

use super::pricing::PricingCache;
use super::runner::Lease;
use super::{CycleReport, CycleRunner};
use crate::events::{append_events, event_of};
use crate::invoices::{InvoicePricing, pending_invoice};
use crate::subscriptions::ensure_can_buy;
use crate::{Billing, BillingError};

impl CycleRunner {
    pub(super) async fn renew(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        report: &mut CycleReport,
    ) -> Result<(), BillingError> {
        let horizon = now + self.settings.renewal_lead;
        let mut after = None;
        loop {
            lease.keep().await?;
            // Read afresh for every batch, so a price change made during a
            // pass reaches the renewals of its next batch.
            let cache = Arc::new(PricingCache::default());
            let due =
                Subscriptions::due_for_renewal(self.billing.db(), horizon, after, self.batch())
                    .await?;
            report.batches += 1;
            let context = Arc::new(Renewals::context(self.billing.db(), &due).await?);
            let mut running = tokio::task::JoinSet::new();
            for chunk in due.chunks(RENEWAL_CONCURRENCY) {
                for subscription in chunk {
                    let billing = self.billing.clone();
                    let cache = Arc::clone(&cache);
                    let context = Arc::clone(&context);
                    let subscription = subscription.clone();
                    running.spawn(async move {
                        let result = billing
                            .renew_with(&subscription, now, &cache, Some(&context))
                            .await;
                        (subscription.id, result)
                    });
                }
                while let Some(joined) = running.join_next().await {
                    let (id, result) = joined.map_err(|e| BillingError::Internal {
                        source: Box::new(e),
                    })?;
                    match result {
                        Ok(Some(_)) => report.renewals_issued += 1,
                        Ok(None) => {}
                        Err(error) if error.is_outage() => return Err(error),
                        Err(error) => {
                            report.renewals_skipped += 1;
                            tracing::warn!(
                                subscription = id,
                                error = &error as &dyn std::error::Error,
                                "subscription not renewed"
                            );
                        }
                    }
                }
            }
            match due.last() {
                Some(last) if due.len() as u64 == self.batch() => {
                    after = last.expires_at.map(|at| (at, last.id));
                }
                Some(_) | None => return Ok(()),
            }
        }
    }
}

impl Billing {
    /// Issues the renewal invoice of `subscription` for the period starting
    /// at its `expires_at`, dated `at`. `Ok(None)` when that period already
    /// has one (the unique index refused this one; nothing is written).
    ///
    /// # Errors
    /// [`BillingError::Validation`] when the subscription has no end, the
    /// customer cannot buy or the plan cannot be priced in its currency;
    /// [`BillingError::NotFound`]; [`BillingError::Unavailable`].
    pub async fn renew_subscription(
        &self,
        subscription: &subscription::Model,
        at: DateTime<Utc>,
    ) -> Result<Option<user_invoice::Model>, BillingError> {
        self.renew_with(subscription, at, &PricingCache::default(), None)
            .await
    }

    /// [`Self::renew_subscription`] reading plans, currencies and taxes
    /// through `cache` (one batch reads each once) and the subscriber, the
    /// subscription's currency and the country from `context` (read for a
    /// whole batch) when given.
    async fn renew_with(
        &self,
        subscription: &subscription::Model,
        at: DateTime<Utc>,
        cache: &PricingCache,
        context: Option<&RenewalContext>,
    ) -> Result<Option<user_invoice::Model>, BillingError> {
        let db = self.db();
        let period_start = subscription
            .expires_at
            .ok_or_else(|| BillingError::invalid("a subscription without an end is not renewed"))?;
        let user = match context.and_then(|c| c.users.get(&subscription.user_id)) {
            Some(user) => user.clone(),
            None => Users::get(db, subscription.user_id).await?,
        };
        ensure_can_buy(&user)?;
        let plan = cache.plan(self, subscription.tarif_plan_id).await?;
        let newest = match context {
            Some(context) => context.currencies.get(&subscription.id).cloned(),
            None => Invoices::latest_of_subscription(db, subscription.id)
                .await?
                .map(|invoice| invoice.currency),
        };
        let code = newest.unwrap_or_else(|| plan.currency.clone());
        let target = cache.currency(self, &code).await?;
        let plan_currency = cache.currency(self, &plan.currency).await?;
        let default = cache.default_currency(self).await?;
        let country = match context {
            Some(context) => context.countries.get(&user.id).cloned(),
            None => UserDetailsRepository::find_by_user(db, user.id)
                .await?
                .and_then(|details| details.country_code),
        };
        let tax = match country {
            Some(country) => cache.tax(self, &country).await?,
            None => None,
        };
        let invoice = pending_invoice(
            user.id,
            Some(subscription.id),
            &InvoicePricing {
                plan: &plan,
                target,
                plan_currency: &plan_currency,
                default: &default,
                tax: tax.as_ref(),
            },
            at,
            at.checked_add_signed(self.settings().invoice_payment_window),
        )?;
        let subscription_id = subscription.id;
        let issued = self
            .retrying_transaction(move |tx| {
                let invoice = invoice.clone();
                Box::pin(async move {
                    let invoice = Invoices::insert_numbered(tx, invoice).await?;
                    append_events(tx, [event_of(None, &invoice)?]).await?;
                    Renewals::insert(tx, subscription_id, period_start, invoice.id, at).await?;
                    Ok(Some(invoice))
                })
            })
            .await;
        match issued {
            Ok(invoice) => Ok(Some(invoice)),
            Err(BillingError::AlreadyExists { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

/// How many renewals of a batch run at once (each in its own transaction;
/// they queue only on the invoice counter row, briefly).
const RENEWAL_CONCURRENCY: usize = 8;
