//! The billing cycle in `billing-api`: its settings (`BILLING_CYCLE_*`),
//! the background task every instance runs unless `BILLING_CYCLE_ENABLED`
//! is off, the `cycle run-once` command, and its Prometheus metrics.
//!
//! Every instance may run the task: a pass runs under a lease
//! (`billing-cycle`), so at any time one instance works and the others
//! skip, and the database's unique indexes make every step happen once.
//! The bundled binary has no payment provider: a dunning attempt records
//! that the renewal awaits a payment made elsewhere (`POST
//! /api/v1/invoices/{id}/pay`), and after the last one the invoice is
//! closed and the subscription cancelled or suspended.

use std::time::{Duration, Instant};

use billing_service::{Billing, CycleReport, CycleRunner, CycleSettings, DunningFinalAction};
use clap::{Args, Subcommand, ValueEnum};
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

use crate::configuration::{ConfigError, parse_duration};

/// A command other than serving.
#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum CycleCommand {
    /// Run one full pass of the billing cycle (waiting for the lease if
    /// another instance holds it), print what it did as JSON and exit 0.
    RunOnce,
}

/// What the last dunning attempt does to the subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FinalAction {
    /// Cancel it.
    Cancel,
    /// Pause it until an invoice is paid.
    Suspend,
}

/// The settings of the billing cycle.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct CycleArgs {
    /// Run the billing cycle in this process (switch off when another
    /// deployment or a cron job of `billing-api cycle run-once` runs it).
    #[arg(
        long = "cycle-enabled",
        env = "BILLING_CYCLE_ENABLED",
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub enabled: bool,

    /// Time between two passes of the background task.
    #[arg(
        long = "cycle-interval",
        env = "BILLING_CYCLE_INTERVAL",
        value_name = "DURATION",
        default_value = "60s",
        value_parser = parse_duration
    )]
    pub interval: Duration,

    /// How long before a period ends its renewal invoice is issued.
    #[arg(
        long = "cycle-renewal-lead",
        env = "BILLING_CYCLE_RENEWAL_LEAD",
        value_name = "DURATION",
        default_value = "3days",
        value_parser = parse_duration
    )]
    pub renewal_lead: Duration,

    /// How long after its end an unrenewed subscription is expired.
    #[arg(
        long = "cycle-expiry-grace",
        env = "BILLING_CYCLE_EXPIRY_GRACE",
        value_name = "DURATION",
        default_value = "7days",
        value_parser = parse_duration
    )]
    pub expiry_grace: Duration,

    /// When unpaid renewals are retried, counted from the start of the
    /// unpaid period (comma-separated; empty: no dunning).
    #[arg(
        long = "cycle-dunning-schedule",
        env = "BILLING_CYCLE_DUNNING_SCHEDULE",
        value_name = "DURATIONS",
        default_value = "1day,3days,5days",
        value_parser = parse_schedule
    )]
    pub dunning_schedule: Schedule,

    /// What the last failed dunning attempt does to the subscription.
    #[arg(
        long = "cycle-dunning-final-action",
        env = "BILLING_CYCLE_DUNNING_FINAL_ACTION",
        value_name = "ACTION",
        value_enum,
        default_value_t = FinalAction::Cancel
    )]
    pub dunning_final_action: FinalAction,

    /// Rows read per query of a pass.
    #[arg(
        long = "cycle-batch-size",
        env = "BILLING_CYCLE_BATCH_SIZE",
        value_name = "N",
        default_value_t = 500
    )]
    pub batch_size: u64,

    /// How long a pass's lease lasts without being extended (a pass
    /// extends it between batches; a dead instance's lease runs out after
    /// this).
    #[arg(
        long = "cycle-lease-ttl",
        env = "BILLING_CYCLE_LEASE_TTL",
        value_name = "DURATION",
        default_value = "60s",
        value_parser = parse_duration
    )]
    pub lease_ttl: Duration,
}

/// A dunning schedule: the delays, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule(pub Vec<Duration>);

fn parse_schedule(value: &str) -> Result<Schedule, String> {
    let mut delays = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        delays.push(parse_duration(part)?);
    }
    if delays.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err("must list increasing delays, e.g. 1day,3days,5days".to_owned());
    }
    Ok(Schedule(delays))
}

impl Default for CycleArgs {
    /// The documented defaults: the command line's own.
    fn default() -> Self {
        crate::configuration::Settings::default().cycle
    }
}

/// The longest delay accepted (ten years).
const MAX_DELAY: Duration = Duration::from_secs(10 * 366 * 24 * 60 * 60);

impl CycleArgs {
    /// Checks the values clap cannot check alone.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interval.is_zero() {
            return Err(ConfigError::new(
                "BILLING_CYCLE_INTERVAL must be longer than zero",
            ));
        }
        if self.lease_ttl < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "BILLING_CYCLE_LEASE_TTL must be at least 1s",
            ));
        }
        if self.batch_size == 0 || self.batch_size > 10_000 {
            return Err(ConfigError::new(
                "BILLING_CYCLE_BATCH_SIZE must be between 1 and 10000",
            ));
        }
        for (name, value) in [
            ("BILLING_CYCLE_RENEWAL_LEAD", self.renewal_lead),
            ("BILLING_CYCLE_EXPIRY_GRACE", self.expiry_grace),
        ]
        .into_iter()
        .chain(
            self.dunning_schedule
                .0
                .iter()
                .map(|d| ("BILLING_CYCLE_DUNNING_SCHEDULE", *d)),
        ) {
            if value > MAX_DELAY {
                return Err(ConfigError::new(format!("{name} must be at most 10 years")));
            }
        }
        Ok(())
    }

    /// The settings of the service's runner.
    #[must_use]
    pub fn cycle_settings(&self) -> CycleSettings {
        let delta = |d: Duration| chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX);
        CycleSettings {
            renewal_lead: delta(self.renewal_lead),
            expiry_grace: delta(self.expiry_grace),
            dunning_schedule: self.dunning_schedule.0.iter().copied().map(delta).collect(),
            dunning_final_action: match self.dunning_final_action {
                FinalAction::Cancel => DunningFinalAction::Cancel,
                FinalAction::Suspend => DunningFinalAction::Suspend,
            },
            batch_size: self.batch_size,
            lease_ttl: self.lease_ttl,
        }
    }
}

/// The cycle's Prometheus metrics.
#[derive(Clone, Debug)]
pub struct CycleMetrics {
    renewals: IntCounter,
    expired: IntCounter,
    closed_invoices: IntCounter,
    dunning: IntCounterVec,
    passes: IntCounterVec,
    duration: Histogram,
}

impl CycleMetrics {
    /// Registers the metrics in `registry`.
    ///
    /// # Errors
    /// A registration error (a duplicate name).
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let renewals = IntCounter::new(
            "billing_cycle_renewals_issued_total",
            "Renewal invoices issued by the billing cycle in this instance.",
        )?;
        let expired = IntCounter::new(
            "billing_cycle_subscriptions_expired_total",
            "Subscriptions expired by the billing cycle in this instance.",
        )?;
        let closed_invoices = IntCounter::new(
            "billing_cycle_invoices_closed_total",
            "Unpaid invoices cancelled by the billing cycle in this instance.",
        )?;
        let dunning = IntCounterVec::new(
            Opts::new(
                "billing_cycle_dunning_attempts_total",
                "Dunning attempts made by this instance, by outcome (paid, declined, awaiting_payment, errored) and subscriptions closed after the last one (closed).",
            ),
            &["outcome"],
        )?;
        let passes = IntCounterVec::new(
            Opts::new(
                "billing_cycle_passes_total",
                "Passes of the billing cycle started by this instance, by result (completed, skipped: another instance held the lease, failed).",
            ),
            &["result"],
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "billing_cycle_pass_duration_seconds",
                "Duration of the billing-cycle passes this instance completed.",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
        )?;
        registry.register(Box::new(renewals.clone()))?;
        registry.register(Box::new(expired.clone()))?;
        registry.register(Box::new(closed_invoices.clone()))?;
        registry.register(Box::new(dunning.clone()))?;
        registry.register(Box::new(passes.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            renewals,
            expired,
            closed_invoices,
            dunning,
            passes,
            duration,
        })
    }

    /// Counts one pass's report.
    pub fn observe(&self, report: &CycleReport) {
        if report.lease_held_elsewhere {
            self.passes.with_label_values(&["skipped"]).inc();
            return;
        }
        self.passes.with_label_values(&["completed"]).inc();
        self.renewals.inc_by(report.renewals_issued);
        self.expired.inc_by(report.subscriptions_expired);
        self.closed_invoices.inc_by(report.invoices_closed);
        for (outcome, count) in [
            ("paid", report.dunning_paid),
            ("declined", report.dunning_declined),
            ("awaiting_payment", report.dunning_awaiting_payment),
            ("errored", report.dunning_errored),
            ("closed", report.dunning_closed),
        ] {
            self.dunning.with_label_values(&[outcome]).inc_by(count);
        }
        self.duration
            .observe(Duration::from_millis(report.duration_ms).as_secs_f64());
    }

    /// Counts a pass that failed.
    pub fn failed(&self) {
        self.passes.with_label_values(&["failed"]).inc();
    }
}

/// Runs a pass every `interval` until the task is aborted. Failures are
/// logged and counted; the next pass completes what a failed one left.
pub async fn run_forever(runner: CycleRunner, interval: Duration, metrics: CycleMetrics) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match runner.run_once().await {
            Ok(report) => {
                metrics.observe(&report);
                if !report.lease_held_elsewhere {
                    tracing::info!(
                        renewals_issued = report.renewals_issued,
                        subscriptions_expired = report.subscriptions_expired,
                        invoices_closed = report.invoices_closed,
                        dunning_attempts = report.dunning_attempts(),
                        duration_ms = report.duration_ms,
                        "billing cycle pass completed"
                    );
                }
            }
            Err(error) => {
                metrics.failed();
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "billing cycle pass failed; the next pass completes it"
                );
            }
        }
    }
}

/// Why `cycle run-once` did not complete a pass.
#[derive(Debug, thiserror::Error)]
pub enum RunOnceError {
    /// The pass failed.
    #[error("the billing cycle pass failed")]
    Pass(#[source] billing_service::BillingError),
    /// Another instance held the lease for longer than twice its TTL.
    #[error("another instance held the billing-cycle lease for {0:?}; try again later")]
    LeaseBusy(Duration),
}

/// One full pass for `cycle run-once`: waits (up to twice the lease TTL)
/// while another instance holds the lease, so the pass it reports is a
/// whole one.
///
/// # Errors
/// [`RunOnceError`].
pub async fn run_once(billing: Billing, args: &CycleArgs) -> Result<CycleReport, RunOnceError> {
    let runner = CycleRunner::new(billing, args.cycle_settings());
    let patience = args.lease_ttl * 2;
    let started = Instant::now();
    loop {
        let report = runner.run_once().await.map_err(RunOnceError::Pass)?;
        if !report.lease_held_elsewhere {
            return Ok(report);
        }
        if started.elapsed() >= patience {
            return Err(RunOnceError::LeaseBusy(patience));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
