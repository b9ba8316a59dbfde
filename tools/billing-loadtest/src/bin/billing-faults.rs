//! `billing-faults`: fault scenarios against three `billing-api` instances
//! over a private PostgreSQL cluster and a private Redis (see
//! `docs/RELIABILITY.md`). Each ends with `VERDICT: PASS|FAIL <scenario>`
//! and exits non-zero on FAIL.
//!
//! ```sh
//! cargo build --release -p billing-api -p billing-loadtest
//! target/release/billing-faults redis-outage
//! target/release/billing-faults postgres-restart
//! target/release/billing-faults kill-instance
//! target/release/billing-faults kill-during-delivery
//! target/release/billing-faults all --out target/loadtest/faults.md
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use billing_loadtest::faults::{self, FaultOptions, FaultScenario};
use clap::{Parser, ValueEnum};

/// Fault scenarios for billing-api: three instances share a private
/// PostgreSQL cluster (initdb + pg_ctl, run as user postgres when root) and
/// a private redis-server, both on free ports; the machine's shared servers
/// are never touched. Needs a release build of billing-api, the PostgreSQL
/// server binaries, redis-server, psql and redis-cli.
#[derive(Debug, Parser)]
#[command(name = "billing-faults", version)]
struct Cli {
    /// The scenario, or `all` (one after the other, each in a fresh
    /// environment).
    scenario: Which,
    /// The billing-api binary (build it with `cargo build --release -p billing-api`).
    #[arg(long, default_value = "target/release/billing-api")]
    api_bin: PathBuf,
    /// API instances.
    #[arg(long, default_value_t = 3)]
    instances: usize,
    /// HTTP workers per instance.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Payment connections, spread over the instances.
    #[arg(long, default_value_t = 9)]
    pay_connections: usize,
    /// Payments per second per connection at most.
    #[arg(long, default_value_t = 40)]
    pay_rate: u32,
    /// Read connections.
    #[arg(long, default_value_t = 3)]
    read_connections: usize,
    /// Reads per second per connection at most.
    #[arg(long, default_value_t = 50)]
    read_rate: u32,
    /// Load before the fault.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    before: Duration,
    /// How long Redis or PostgreSQL stays down.
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    outage: Duration,
    /// Load after the fault ends.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    after: Duration,
    /// BILLING_IDEMPOTENCY_IN_FLIGHT_TTL of the instances (production
    /// default 60s; short here to keep the run bounded).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    in_flight_ttl: Duration,
    /// Redis: payments must succeed again within this of Redis answering.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    redis_recovery: Duration,
    /// Redis: p99 bound of the answers during the outage.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    redis_fail_fast: Duration,
    /// BILLING_DB_ACQUIRE_TIMEOUT of the instances (the production default).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    db_acquire_timeout: Duration,
    /// PostgreSQL: every request must succeed from this long after it is back.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    postgres_recovery: Duration,
    /// Time limit per scenario.
    #[arg(long, default_value = "180s", value_parser = humantime::parse_duration)]
    time_limit: Duration,
    /// BILLING_LOG of the instances (their logs are in the run directory).
    #[arg(long, default_value = "info")]
    api_log: String,
    /// kill-during-delivery: BILLING_WEBHOOK_LEASE_TTL of the instances
    /// (BILLING_WEBHOOK_TIMEOUT is half of it): how soon a survivor takes
    /// delivery over.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    webhook_lease_ttl: Duration,
    /// kill-during-delivery: how long the deliveries may take to settle
    /// after the load stops.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    settle_limit: Duration,
    /// Keep the run directory even on PASS.
    #[arg(long)]
    keep: bool,
    /// Also append the reports to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Which {
    /// Redis killed under payment load, then started again.
    RedisOutage,
    /// PostgreSQL stopped under load, then started again.
    PostgresRestart,
    /// One instance killed with SIGKILL during payment load.
    KillInstance,
    /// The instances sending webhooks killed in turn while deliveries are
    /// in flight; a loopback receiver counts the events.
    KillDuringDelivery,
    /// All four.
    All,
}

#[tokio::main]
async fn main() -> Result<()> {
    // reqwest is built without a crypto provider (see billing-webhooks).
    let _installed = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let options = FaultOptions {
        api_bin: cli.api_bin,
        instances: cli.instances,
        workers: cli.workers,
        pay_connections: cli.pay_connections,
        pay_rate: cli.pay_rate,
        read_connections: cli.read_connections,
        read_rate: cli.read_rate,
        before: cli.before,
        outage: cli.outage,
        after: cli.after,
        in_flight_ttl: cli.in_flight_ttl,
        redis_recovery: cli.redis_recovery,
        redis_fail_fast: cli.redis_fail_fast,
        db_acquire_timeout: cli.db_acquire_timeout,
        postgres_recovery: cli.postgres_recovery,
        time_limit: cli.time_limit,
        api_log: cli.api_log,
        keep: cli.keep,
        webhook_lease_ttl: cli.webhook_lease_ttl,
        settle_limit: cli.settle_limit,
    };
    let scenarios = match cli.scenario {
        Which::RedisOutage => vec![FaultScenario::RedisOutage],
        Which::PostgresRestart => vec![FaultScenario::PostgresRestart],
        Which::KillInstance => vec![FaultScenario::KillInstance],
        Which::KillDuringDelivery => vec![FaultScenario::KillDuringDelivery],
        Which::All => vec![
            FaultScenario::RedisOutage,
            FaultScenario::PostgresRestart,
            FaultScenario::KillInstance,
            FaultScenario::KillDuringDelivery,
        ],
    };
    let mut all_pass = true;
    for scenario in scenarios {
        // On Ctrl-C the scenario's future is dropped, which stops every
        // process it started (instances, Redis, the PostgreSQL cluster).
        let finished = tokio::select! {
            verdict = faults::run(scenario, &options) => Some(verdict),
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(verdict) = finished else {
            eprintln!("interrupted: everything started was stopped");
            std::process::exit(130);
        };
        let (pass, report) = match verdict {
            Ok(verdict) => (verdict.pass, verdict.report),
            Err(error) => (
                false,
                format!(
                    "## {}\n\nthe scenario could not run: {error:#}\n\nVERDICT: FAIL {}\n",
                    scenario.name(),
                    scenario.name()
                ),
            ),
        };
        println!("{report}");
        if let Some(out) = &cli.out {
            use std::io::Write as _;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(out)?;
            writeln!(file, "{report}")?;
        }
        all_pass &= pass;
    }
    if !all_pass {
        std::process::exit(1);
    }
    Ok(())
}
