//! `billing-load`: the benchmark of `billing-api` (see `docs/PERFORMANCE.md`).
//!
//! ```sh
//! cargo build --release -p billing-api -p billing-loadtest
//! target/release/billing-load                 # full run, PostgreSQL + Redis on loopback
//! target/release/billing-load --quick         # 3 s cells
//! target/release/billing-load --targets embedded,postgres --out docs/bench.md
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use billing_loadtest::bench::{self, BenchOptions, Scenario, Target};
use clap::{Parser, Subcommand};

/// Benchmarks billing-api on loopback: starts it (and a bare actix-web
/// handler), prepares data over HTTP, runs bounded loads and prints a
/// markdown report. Needs a release build of billing-api, and for the
/// `postgres` target PostgreSQL (trust auth for user postgres) and Redis
/// on loopback, plus `psql` and `redis-cli`.
#[derive(Debug, Parser)]
#[command(name = "billing-load", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    /// The billing-api binary (build it with `cargo build --release -p billing-api`).
    #[arg(long, default_value = "target/release/billing-api")]
    api_bin: PathBuf,
    /// Where the API keeps its data: postgres (the shared servers), embedded
    /// (SQLite, in-process coordination), private (a private PostgreSQL
    /// with pg_stat_statements and a private Redis).
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["postgres", "embedded"])]
    targets: Vec<Target>,
    /// Scenarios to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["bare", "ceilings", "live", "plans", "invoice", "create", "create-alone", "pay"])]
    scenarios: Vec<Scenario>,
    /// Concurrent connections per cell.
    #[arg(long, value_delimiter = ',', default_values = ["1", "16", "64"])]
    connections: Vec<usize>,
    /// Measured time per cell.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured warm-up per cell.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// 3 s cells, 3 start-up runs (overrides --duration and --startup-runs).
    #[arg(long)]
    quick: bool,
    /// The shared PostgreSQL: a database is created and dropped per run.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    pg_url: String,
    /// The shared Redis: keys get a unique prefix.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// HTTP workers of the API and the bare server [default: CPUs].
    #[arg(long)]
    workers: Option<usize>,
    /// BILLING_LOG of the API (`info` logs every request).
    #[arg(long, default_value = "warn")]
    api_log: String,
    /// Extra environment variable of the API, `KEY=VALUE` (repeatable),
    /// e.g. `MALLOC_MMAP_THRESHOLD_=131072`.
    #[arg(long = "api-env", value_parser = parse_env)]
    api_env: Vec<(String, String)>,
    /// Times to measure the start of the embedded default (0: skip).
    #[arg(long, default_value_t = 5)]
    startup_runs: usize,
    /// Most invoices prepared for one pay cell.
    #[arg(long, default_value_t = 40_000)]
    pay_pool_max: usize,
    /// Parallel requests while preparing data.
    #[arg(long, default_value_t = 16)]
    prep_concurrency: usize,
    /// Client timeout per request.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the run directory (target/loadtest/bench-*) with the API logs.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Internal: serve the bare constant-JSON handler (started by the benchmark).
    #[command(hide = true)]
    BareServer {
        /// Port on 127.0.0.1.
        #[arg(long)]
        port: u16,
        /// Worker threads.
        #[arg(long)]
        workers: usize,
    },
}

fn parse_env(value: &str) -> Result<(String, String), String> {
    value
        .split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {value:?}"))
}

#[tokio::main]
async fn main() -> Result<()> {
    // reqwest is built without a crypto provider (see billing-webhooks).
    let _installed = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    if let Some(Sub::BareServer { port, workers }) = cli.command {
        billing_loadtest::bare::serve(([127, 0, 0, 1], port).into(), workers).await?;
        return Ok(());
    }
    let workers = cli
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    let options = BenchOptions {
        api_bin: cli.api_bin,
        targets: cli.targets,
        scenarios: cli.scenarios,
        connections: cli.connections,
        duration: if cli.quick {
            Duration::from_secs(3)
        } else {
            cli.duration
        },
        warmup: cli.warmup,
        pg_url: cli.pg_url,
        redis_url: cli.redis_url,
        workers,
        api_log: cli.api_log,
        api_env: cli.api_env,
        startup_runs: if cli.quick {
            cli.startup_runs.min(3)
        } else {
            cli.startup_runs
        },
        pay_pool_max: cli.pay_pool_max,
        prep_concurrency: cli.prep_concurrency,
        request_timeout: cli.request_timeout,
        out: cli.out,
        keep: cli.keep,
        self_exe: std::env::current_exe()?,
    };
    // On Ctrl-C the run's future is dropped, which stops every process it
    // started and drops its database, before the exit.
    let finished = tokio::select! {
        report = bench::run(&options) => Some(report),
        _ = tokio::signal::ctrl_c() => None,
    };
    let Some(report) = finished else {
        eprintln!("interrupted: everything started was stopped");
        std::process::exit(130);
    };
    println!("{}", report?);
    Ok(())
}
