//! `billing-load`: the benchmark. Starts the API (and the bare-handler
//! server) itself on loopback, prepares data through the HTTP API, runs
//! bounded closed-loop loads cell by cell (scenario × connections), and
//! reports throughput, latency, errors, the API's peak memory and the
//! PostgreSQL and Redis work per request, as markdown.
//!
//! By job: `run` (and `target`, per target) starts the instances and
//! drives the scenarios, `measure` collects the figures (latency, CPU from
//! `/proc`, `pg_stat_database`, Redis `INFO commandstats`, the catalogue
//! cache) and `report` turns them into the markdown, with pure renderers.

use std::path::PathBuf;
use std::time::Duration;

mod measure;
mod report;
mod run;
mod target;

pub use run::run;

/// Where the API keeps its data during a benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// The machine's PostgreSQL and Redis (`--pg-url`, `--redis-url`): a
    /// fresh database per run, a unique Redis key prefix.
    Postgres,
    /// The embedded default: a SQLite file and in-process coordination.
    Embedded,
    /// A private PostgreSQL cluster (with `pg_stat_statements`) and a
    /// private Redis started for the run: exact statement and Redis
    /// command counts per request, no other clients.
    Private,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres+redis",
            Self::Embedded => "embedded (sqlite)",
            Self::Private => "private pg+redis",
        }
    }
}

/// One kind of request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scenario {
    /// The bare actix-web handler (constant JSON): the HTTP stack's
    /// ceiling. Runs once, not per target.
    Bare,
    /// `pgbench` incrementing one counter row and `redis-benchmark SET`
    /// on the machine's PostgreSQL and Redis: the ceilings of the writes.
    /// Runs once, not per target.
    Ceilings,
    /// `GET /health/live`: the API's HTTP stack and middleware (request
    /// id, telemetry, metrics) without a database.
    Live,
    /// `GET /api/v1/plans`.
    Plans,
    /// `GET /api/v1/invoices/{id}`.
    Invoice,
    /// `POST /api/v1/invoices`.
    Create,
    /// `POST /api/v1/invoices` on a second instance started with
    /// `BILLING_INVOICE_BATCHING=false`: one transaction per creation.
    CreateAlone,
    /// `POST /api/v1/invoices/{id}/pay` (lock + idempotency key +
    /// transaction that also activates the subscription).
    Pay,
}

impl Scenario {
    fn label(self) -> &'static str {
        match self {
            Self::Bare => "bare handler (GET /bare)",
            Self::Live => "GET /health/live",
            Self::Plans => "GET /plans",
            Self::Invoice => "GET /invoices/{id}",
            Self::Create => "POST /invoices",
            Self::CreateAlone => "POST /invoices (batching off)",
            Self::Ceilings => "ceilings (pgbench, redis-benchmark)",
            Self::Pay => "POST /invoices/{id}/pay",
        }
    }

    fn expected(self) -> u16 {
        match self {
            Self::Bare | Self::Ceilings | Self::Live | Self::Plans | Self::Invoice | Self::Pay => {
                200
            }
            Self::Create | Self::CreateAlone => 201,
        }
    }
}

/// The benchmark's settings.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The `billing-api` release binary.
    pub api_bin: PathBuf,
    /// Targets, in order.
    pub targets: Vec<Target>,
    /// Scenarios, in order.
    pub scenarios: Vec<Scenario>,
    /// Connection counts per scenario.
    pub connections: Vec<usize>,
    /// Measured time per cell.
    pub duration: Duration,
    /// Unmeasured time at the start of each cell.
    pub warmup: Duration,
    /// The shared PostgreSQL (`postgres://postgres@127.0.0.1:5432`).
    pub pg_url: String,
    /// The shared Redis (`redis://127.0.0.1:6379`).
    pub redis_url: String,
    /// HTTP workers of the API and of the bare server.
    pub workers: usize,
    /// `BILLING_LOG` of the API.
    pub api_log: String,
    /// Extra environment of the API (`MALLOC_MMAP_THRESHOLD_=131072`, …).
    pub api_env: Vec<(String, String)>,
    /// How often to time the start of the embedded default.
    pub startup_runs: usize,
    /// Most invoices prepared for one pay cell.
    pub pay_pool_max: usize,
    /// Parallel requests while preparing data.
    pub prep_concurrency: usize,
    /// Client timeout per request.
    pub request_timeout: Duration,
    /// Where to write the report (also printed).
    pub out: Option<PathBuf>,
    /// Keep the run directory (API logs).
    pub keep: bool,
    /// This program, to start the bare server from.
    pub self_exe: PathBuf,
}
