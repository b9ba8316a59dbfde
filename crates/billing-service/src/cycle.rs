//! The billing cycle: what moves subscriptions and invoices through time.
//!
//! A [`CycleRunner`] pass, under a lease shared by every instance:
//!
//! 1. **renews**: every active subscription whose period ends within
//!    [`CycleSettings::renewal_lead`] gets one renewal invoice for the
//!    period starting at its `expires_at`, priced from its plan in the
//!    subscription's currency (that of its newest invoice, else the
//!    plan's), with the customer's country-wide tax. The row in
//!    `subscription_renewal` is written in the invoice's transaction and is
//!    unique per (subscription, period): the database refuses a second one.
//!    Paying the invoice (the ordinary payment path) adds the period;
//! 2. **dunning**: an unpaid renewal invoice is retried
//!    [`CycleSettings::dunning_schedule`] after its period started (default
//!    1, 3 and 5 days), each attempt claimed once in `dunning_attempt`.
//!    With a [`RenewalCharger`], an attempt charges the invoice and pays it
//!    through [`Billing::pay_invoice`] under an idempotency key made of the
//!    invoice id and the attempt number; without one it records the
//!    attempt as `awaiting_payment`. After the last attempt the invoice is
//!    cancelled and the subscription cancelled or paused
//!    ([`CycleSettings::dunning_final_action`]);
//! 3. **expires** active subscriptions past `expires_at` plus
//!    [`CycleSettings::expiry_grace`];
//! 4. **closes** unpaid invoices past their payment window (cancelled: the
//!    invoice state machine has no other end for an unpaid invoice).
//!
//! Every step re-reads its row and goes through the domain transition and a
//! versioned save, so a pass that dies half way is completed by the next,
//! and two passes never apply a step twice.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use billing_concurrency::LockGuard;
use billing_domain::entities::{
    currency, subscription, subscription_renewal, tarif_plan, tax, tax_rate, user_invoice,
};
use billing_domain::enums::{DunningOutcome, InvoiceStatus, SubscriptionStatus};
use billing_repository::{
    Currencies, DunningAttempts, Invoices, Plans, RenewalContext, Renewals, Subscriptions,
    TaxRates, Taxes, UserDetailsRepository, Users,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::events::{append_events, event_of};
use crate::invoices::{InvoicePricing, pending_invoice};
use crate::subscriptions::ensure_can_buy;
use crate::{Billing, BillingError, BoxError, Contended, IdempotencyKey, Payment};

/// The name of the lease a pass runs under.
pub const CYCLE_LEASE: &str = "billing-cycle";

/// The idempotency scope of the payments a dunning attempt makes.
const DUNNING_SCOPE: &str = "billing-cycle";

/// What happens to a subscription when the last dunning attempt did not
/// get its renewal paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DunningFinalAction {
    /// Cancel it (final).
    Cancel,
    /// Pause it: paying an invoice later resumes and renews it.
    Suspend,
}

/// The tunables of the billing cycle.
#[derive(Clone, Debug)]
pub struct CycleSettings {
    /// How long before a period ends its renewal invoice is issued.
    pub renewal_lead: TimeDelta,
    /// How long after `expires_at` an unrenewed subscription is expired.
    pub expiry_grace: TimeDelta,
    /// When the dunning attempts are made, counted from the start of the
    /// unpaid period; empty: no dunning.
    pub dunning_schedule: Vec<TimeDelta>,
    /// What the last failed attempt does to the subscription.
    pub dunning_final_action: DunningFinalAction,
    /// Rows read per query (at least 1).
    pub batch_size: u64,
    /// How long the lease is taken for; it is extended between batches.
    pub lease_ttl: Duration,
}

impl Default for CycleSettings {
    fn default() -> Self {
        Self {
            renewal_lead: TimeDelta::days(3),
            expiry_grace: TimeDelta::days(7),
            dunning_schedule: vec![TimeDelta::days(1), TimeDelta::days(3), TimeDelta::days(5)],
            dunning_final_action: DunningFinalAction::Cancel,
            batch_size: 500,
            lease_ttl: Duration::from_secs(60),
        }
    }
}

/// What a charger is asked to charge.
#[derive(Clone, Copy, Debug)]
pub struct ChargeRequest<'a> {
    /// The unpaid renewal invoice.
    pub invoice: &'a user_invoice::Model,
    /// 1 for the first attempt …
    pub attempt: u32,
    /// The same for every run of this attempt: pass it to the payment
    /// provider so a re-run attempt charges once.
    pub idempotency_key: &'a str,
}

/// How a charge ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// Charged: the invoice is paid with these details.
    Paid {
        /// How it was paid (`card` …).
        payment_method: String,
        /// The provider's reference.
        payment_reference: Option<String>,
    },
    /// The provider declined it.
    Declined {
        /// The provider's reason.
        reason: String,
    },
}

/// The boxed future a [`RenewalCharger`] returns.
pub type ChargeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ChargeOutcome, BoxError>> + Send + 'a>>;

/// The port to a payment provider: an embedder implements it to charge
/// unpaid renewal invoices during dunning. billing has no provider of its
/// own; without a charger an attempt is recorded as awaiting a payment
/// made elsewhere.
pub trait RenewalCharger: Send + Sync + fmt::Debug {
    /// Charges `request.invoice`. An `Err` is a failure to reach a verdict
    /// (counted as a failed attempt, recorded as `errored`).
    fn charge<'a>(&'a self, request: ChargeRequest<'a>) -> ChargeFuture<'a>;
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CycleReport {
    /// Another instance held the lease: this pass did nothing.
    pub lease_held_elsewhere: bool,
    /// The lease's fencing token (0 when not taken).
    pub fencing_token: u64,
    /// Renewal invoices issued.
    pub renewals_issued: u64,
    /// Due subscriptions not renewed (the customer cannot buy, the plan
    /// cannot be priced …), logged one by one.
    pub renewals_skipped: u64,
    /// Dunning attempts finished, by outcome.
    pub dunning_paid: u64,
    /// Dunning attempts the provider declined.
    pub dunning_declined: u64,
    /// Dunning attempts recorded as awaiting a payment made elsewhere.
    pub dunning_awaiting_payment: u64,
    /// Dunning attempts whose charger failed.
    pub dunning_errored: u64,
    /// Subscriptions cancelled or paused after their last dunning attempt.
    pub dunning_closed: u64,
    /// Subscriptions expired.
    pub subscriptions_expired: u64,
    /// Unpaid invoices closed (cancelled) after their payment window or
    /// their last dunning attempt.
    pub invoices_closed: u64,
    /// Queries that read a batch.
    pub batches: u64,
    /// How long the pass took, in milliseconds.
    pub duration_ms: u64,
}

impl CycleReport {
    /// All dunning attempts finished in the pass.
    #[must_use]
    pub fn dunning_attempts(&self) -> u64 {
        self.dunning_paid
            + self.dunning_declined
            + self.dunning_awaiting_payment
            + self.dunning_errored
    }
}

/// Runs billing-cycle passes over one [`Billing`].
#[derive(Clone, Debug)]
pub struct CycleRunner {
    billing: Billing,
    settings: CycleSettings,
    charger: Option<Arc<dyn RenewalCharger>>,
}

/// The lease of a running pass.
struct Lease {
    guard: LockGuard,
    ttl: Duration,
}

impl Lease {
    /// Extends the lease; refuses to go on once it passed to another
    /// instance.
    async fn keep(&self) -> Result<(), BillingError> {
        if self.guard.extend(self.ttl).await? {
            Ok(())
        } else {
            Err(BillingError::Locked {
                contended: Contended::CycleLease,
            })
        }
    }
}

impl CycleRunner {
    /// A runner with `settings` and no charger.
    #[must_use]
    pub fn new(billing: Billing, settings: CycleSettings) -> Self {
        Self {
            billing,
            settings,
            charger: None,
        }
    }

    /// The same runner charging unpaid renewals with `charger`.
    #[must_use]
    pub fn with_charger(mut self, charger: Arc<dyn RenewalCharger>) -> Self {
        self.charger = Some(charger);
        self
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> &CycleSettings {
        &self.settings
    }

    /// Runs one full pass if no other instance is running one (else
    /// returns at once with [`CycleReport::lease_held_elsewhere`]).
    ///
    /// # Errors
    /// [`BillingError::Unavailable`] (database or coordination down),
    /// [`BillingError::Locked`] (the lease was lost mid-pass); what was done
    /// before the error stays done and the next pass completes the rest.
    pub async fn run_once(&self) -> Result<CycleReport, BillingError> {
        let started = Instant::now();
        let ttl = self.settings.lease_ttl.max(Duration::from_secs(1));
        let guard = match self
            .billing
            .coordination()
            .try_lock(CYCLE_LEASE, ttl, Duration::ZERO)
            .await
        {
            Ok(guard) => guard,
            Err(billing_concurrency::CoordinationError::LockNotAcquired { .. }) => {
                return Ok(CycleReport {
                    lease_held_elsewhere: true,
                    ..CycleReport::default()
                });
            }
            Err(other) => return Err(other.into()),
        };
        let lease = Lease { guard, ttl };
        let mut report = CycleReport {
            fencing_token: lease.guard.fencing_token(),
            ..CycleReport::default()
        };
        let outcome = self.pass(&lease, &mut report).await;
        let name = lease.guard.name().to_owned();
        if let Err(error) = lease.guard.release().await {
            tracing::warn!(
                lock = name,
                error = &error as &dyn std::error::Error,
                "could not release the cycle lease"
            );
        }
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        outcome.map(|()| report)
    }

    async fn pass(&self, lease: &Lease, report: &mut CycleReport) -> Result<(), BillingError> {
        let now = self.billing.now();
        self.renew(lease, now, report).await?;
        self.dun(lease, now, report).await?;
        self.expire(lease, now, report).await?;
        self.close_invoices(lease, now, report).await
    }

    fn batch(&self) -> u64 {
        self.settings.batch_size.max(1)
    }

    async fn renew(
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

    async fn dun(
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

    async fn expire(
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

    async fn close_invoices(
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

/// A tax and its rate history, newest first.
type TaxWithHistory = (tax::Model, Vec<tax_rate::Model>);

/// What one batch of renewals reads once for all of them: plans,
/// currencies, the default currency and the country taxes with their rate
/// history.
#[derive(Debug, Default)]
struct PricingCache {
    plans: Mutex<HashMap<i64, tarif_plan::Model>>,
    currencies: Mutex<HashMap<String, currency::Model>>,
    default: Mutex<Option<currency::Model>>,
    taxes: Mutex<HashMap<String, Option<TaxWithHistory>>>,
}

fn cached<K: std::hash::Hash + Eq, V: Clone>(map: &Mutex<HashMap<K, V>>, key: &K) -> Option<V> {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(key)
        .cloned()
}

fn remember<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, V>>, key: K, value: V) {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key, value);
}

impl PricingCache {
    async fn plan(&self, billing: &Billing, id: i64) -> Result<tarif_plan::Model, BillingError> {
        if let Some(plan) = cached(&self.plans, &id) {
            return Ok(plan);
        }
        let plan = Plans::get(billing.db(), id).await?;
        remember(&self.plans, id, plan.clone());
        Ok(plan)
    }

    async fn currency(
        &self,
        billing: &Billing,
        code: &str,
    ) -> Result<currency::Model, BillingError> {
        let key = code.to_owned();
        if let Some(currency) = cached(&self.currencies, &key) {
            return Ok(currency);
        }
        let currency = billing.existing_currency(code).await?;
        remember(&self.currencies, key, currency.clone());
        Ok(currency)
    }

    async fn default_currency(&self, billing: &Billing) -> Result<currency::Model, BillingError> {
        let known = self
            .default
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(default) = known {
            return Ok(default);
        }
        let default = Currencies::find_default(billing.db())
            .await?
            .ok_or_else(|| BillingError::invalid("no default currency is configured"))?;
        *self
            .default
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(default.clone());
        Ok(default)
    }

    async fn tax(
        &self,
        billing: &Billing,
        country: &str,
    ) -> Result<Option<TaxWithHistory>, BillingError> {
        let key = country.to_owned();
        if let Some(tax) = cached(&self.taxes, &key) {
            return Ok(tax);
        }
        let tax = match Taxes::active_for_country(billing.db(), country).await? {
            Some(tax) => {
                let history = TaxRates::history(billing.db(), tax.id).await?;
                Some((tax, history))
            }
            None => None,
        };
        remember(&self.taxes, key, tax.clone());
        Ok(tax)
    }
}

/// `text` cut to the 255 characters `dunning_attempt.detail` holds.
fn truncate(text: &str) -> String {
    text.chars().take(255).collect()
}
