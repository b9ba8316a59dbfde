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

mod charger;
mod dunning;
mod expiry;
mod pricing;
mod renewal;
mod runner;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use serde::Serialize;

use crate::Billing;

pub use charger::{ChargeFuture, ChargeOutcome, ChargeRequest, RenewalCharger};

/// The name of the lease a pass runs under.
pub const CYCLE_LEASE: &str = "billing-cycle";

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
}
