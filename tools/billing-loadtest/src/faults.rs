//! `billing-faults`: fault scenarios against three `billing-api`
//! instances sharing a private PostgreSQL cluster and a private Redis (both
//! started here on free ports: the machine's shared servers are never
//! stopped). Each scenario prepares data, runs a paced payment load and a
//! read load across the instances, injects one fault, checks its timing
//! criteria from the recorded answers, checks the database
//! [`invariants`](crate::invariants), and ends with `VERDICT: PASS` or
//! `VERDICT: FAIL`.
//!
//! The payment load behaves as a careful client: after a 5xx or a
//! transport error it sends the same invoice with the same
//! `Idempotency-Key` again (after a short back-off); a 409
//! `idempotency_in_flight` marks the invoice "in doubt" for later.
//!
//! By job: `env` and `run` start the servers and instances and drive the
//! scenarios (`delivery` for `kill-during-delivery`), `measure` judges the
//! recorded answers against each scenario's criteria, and `report` turns
//! the figures into the markdown, with a pure renderer.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

mod delivery;
mod env;
mod measure;
mod report;
mod run;

/// The private database the instances use.
const DATABASE: &str = "billing";

/// The fault to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FaultScenario {
    /// Redis killed under payment load, started again (empty) later.
    RedisOutage,
    /// PostgreSQL stopped (fast shutdown) under load, started again later.
    PostgresRestart,
    /// One API instance killed with SIGKILL under payment load.
    KillInstance,
    /// The instances sending webhooks killed with SIGKILL while deliveries
    /// are in flight; every event must still reach a loopback receiver.
    KillDuringDelivery,
}

impl FaultScenario {
    /// The command-line name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::RedisOutage => "redis-outage",
            Self::PostgresRestart => "postgres-restart",
            Self::KillInstance => "kill-instance",
            Self::KillDuringDelivery => "kill-during-delivery",
        }
    }
}

/// Settings of a fault run.
#[derive(Clone, Debug)]
pub struct FaultOptions {
    /// The `billing-api` release binary.
    pub api_bin: PathBuf,
    /// API instances (at least 2 for `kill-instance`).
    pub instances: usize,
    /// HTTP workers per instance.
    pub workers: usize,
    /// Payment connections (spread over the instances).
    pub pay_connections: usize,
    /// Payments per second per connection at most.
    pub pay_rate: u32,
    /// Read connections (`GET /plans`, `GET /invoices/{id}`).
    pub read_connections: usize,
    /// Reads per second per connection at most.
    pub read_rate: u32,
    /// Load before the fault.
    pub before: Duration,
    /// How long Redis or PostgreSQL stays down.
    pub outage: Duration,
    /// Load after the fault ends.
    pub after: Duration,
    /// `BILLING_IDEMPOTENCY_IN_FLIGHT_TTL` of the instances.
    pub in_flight_ttl: Duration,
    /// Redis: payments must succeed again within this time of Redis
    /// answering.
    pub redis_recovery: Duration,
    /// Redis: p99 latency bound of the 503s during the outage.
    pub redis_fail_fast: Duration,
    /// `BILLING_DB_ACQUIRE_TIMEOUT` of the instances: how long a request
    /// waits for a database connection before 503.
    pub db_acquire_timeout: Duration,
    /// PostgreSQL: every request must succeed from this long after the
    /// server is back.
    pub postgres_recovery: Duration,
    /// The whole scenario must end within this.
    pub time_limit: Duration,
    /// `BILLING_LOG` of the instances.
    pub api_log: String,
    /// Keep the run directory (logs of the instances and servers).
    pub keep: bool,
    /// `kill-during-delivery`: `BILLING_WEBHOOK_LEASE_TTL` of the instances
    /// (their `BILLING_WEBHOOK_TIMEOUT` is half of it).
    pub webhook_lease_ttl: Duration,
    /// `kill-during-delivery`: how long the deliveries may take to settle
    /// after the load.
    pub settle_limit: Duration,
}

/// The outcome of a scenario.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The scenario.
    pub scenario: FaultScenario,
    /// Whether every criterion and invariant held.
    pub pass: bool,
    /// The markdown report.
    pub report: String,
}

/// A criterion of a scenario.
#[derive(Clone, Debug)]
struct Criterion {
    name: String,
    ok: bool,
    detail: String,
}

fn criterion(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Criterion {
    Criterion {
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

/// A duration as seconds with three decimals.
fn secs(d: Duration) -> String {
    crate::stats::seconds(d)
}

/// Runs one scenario and returns its verdict (never panics on a failed
/// criterion: that is a FAIL verdict).
///
/// # Errors
/// When the environment cannot be set up or the time limit passes.
pub async fn run(scenario: FaultScenario, options: &FaultOptions) -> Result<Verdict> {
    if matches!(
        scenario,
        FaultScenario::KillInstance | FaultScenario::KillDuringDelivery
    ) && options.instances < 2
    {
        bail!("{} needs at least 2 instances", scenario.name());
    }
    let limit = options.time_limit;
    let running = async {
        match scenario {
            FaultScenario::KillDuringDelivery => delivery::run(options).await,
            FaultScenario::RedisOutage
            | FaultScenario::PostgresRestart
            | FaultScenario::KillInstance => run::run(scenario, options).await,
        }
    };
    tokio::time::timeout(limit, running)
        .await
        .with_context(|| format!("{} did not finish within {limit:?}", scenario.name()))?
}
