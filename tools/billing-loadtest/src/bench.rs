//! `billing-load`: the benchmark. Starts the API (and the bare-handler
//! server) itself on loopback, prepares data through the HTTP API, runs
//! bounded closed-loop loads cell by cell (scenario × connections), and
//! reports throughput, latency, errors, the API's peak memory and the
//! PostgreSQL and Redis work per request, as markdown.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::api::{ApiProcess, ApiSpec, wait_ready_at};
use crate::ceilings::{self, Ceiling};
use crate::client::{self, ApiClient};
use crate::infra::{self, DbStats, PgServer, PrivatePostgres, PrivateRedis};
use crate::load::{self, InvoicePool, LoadSpec, Outcome, Summary, Work};
use crate::process::{self, Child, TempDir};
use crate::stats::{self, markdown_table};

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

/// One measured cell.
#[derive(Clone, Debug)]
struct Cell {
    target: String,
    scenario: Scenario,
    connections: usize,
    summary: Summary,
    /// Requests and expected answers of the whole cell, warm-up included
    /// (what the database and Redis counters cover).
    all_requests: u64,
    all_ok: u64,
    error_kinds: BTreeMap<String, u64>,
    peak_rss_kib: Option<u64>,
    pool_exhausted: bool,
    db: Option<DbStats>,
    statements: Option<u64>,
    redis: Option<BTreeMap<String, u64>>,
    cpu: CpuUse,
}

/// CPU time used during a cell, in microseconds.
#[derive(Clone, Copy, Debug, Default)]
struct CpuUse {
    /// The server under test (API or bare server).
    server_us: u64,
    /// The PostgreSQL backends of the run's database.
    postgres_us: u64,
    /// The private `redis-server` (not measured on the shared one).
    redis_us: u64,
    /// This load generator.
    client_us: u64,
    /// Machine busy time over all cores, and the cell's wall time × cores.
    machine_busy_us: u64,
    machine_total_us: u64,
}

/// Counters read before and after a cell.
#[derive(Clone, Debug, Default)]
struct CpuSnapshot {
    server: u64,
    /// Ticks of each PostgreSQL backend of the run's database.
    postgres: BTreeMap<u32, u64>,
    redis: u64,
    client: u64,
    machine: (u64, u64),
}

impl CpuSnapshot {
    fn take(on: &Measured<'_>) -> Self {
        let postgres = on
            .pg
            .and_then(|(pg, db)| pg.backend_pids(db).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|pid| process::cpu_ticks(pid).map(|ticks| (pid, ticks)))
            .collect();
        Self {
            server: process::cpu_ticks(on.pid).unwrap_or(0),
            postgres,
            redis: on.redis_pid.and_then(process::cpu_ticks).unwrap_or(0),
            client: process::cpu_ticks(std::process::id()).unwrap_or(0),
            machine: process::machine_ticks().unwrap_or((0, 0)),
        }
    }

    fn since(&self, before: &Self, ticks_per_second: u64) -> CpuUse {
        let us = |after: u64, before: u64| {
            after.saturating_sub(before) * 1_000_000 / ticks_per_second.max(1)
        };
        // Backends opened during the cell count from zero.
        let postgres: u64 = self
            .postgres
            .iter()
            .map(|(pid, ticks)| {
                ticks.saturating_sub(before.postgres.get(pid).copied().unwrap_or(0))
            })
            .sum();
        CpuUse {
            server_us: us(self.server, before.server),
            postgres_us: us(postgres, 0),
            redis_us: us(self.redis, before.redis),
            client_us: us(self.client, before.client),
            machine_busy_us: us(self.machine.0, before.machine.0),
            machine_total_us: us(self.machine.1, before.machine.1),
        }
    }
}

/// Everything measured, for the report and the goals.
#[derive(Debug, Default)]
struct Results {
    cells: Vec<Cell>,
    startup: Vec<(String, Vec<Duration>)>,
    /// Per target: RSS (KiB) before and after each user created, and the
    /// preparation instance's peak.
    user_rss: Vec<(String, Vec<u64>, u64)>,
    /// Per target: RSS of the measured instance once ready.
    ready_rss_kib: Vec<(String, u64)>,
    /// `/proc/loadavg` when the run started (other processes on the
    /// machine).
    load_before: String,
    notes: Vec<String>,
    /// Per target: the catalogue cache of the measured instance.
    cache: Vec<CacheFigures>,
    /// pgbench and redis-benchmark, measured in this run.
    ceilings: Vec<Ceiling>,
}

/// The catalogue cache on one target: what the measured instance's
/// `/metrics` said after its cells, and how long a plan change made on it
/// took to be read on a second instance.
#[derive(Debug)]
struct CacheFigures {
    target: String,
    /// `billing_catalogue_reads_total` by outcome: hit, load, bypass.
    reads: [u64; 3],
    /// From the PATCH's answer on the first instance to the first GET on
    /// the second that returned the new price (empty on one instance).
    delays: Vec<Duration>,
}

/// Plan changes made to measure the invalidation delay.
const INVALIDATION_ROUNDS: u64 = 50;

/// `billing_catalogue_reads_total` by outcome (hit, load, bypass).
fn catalogue_reads(metrics: &str) -> [u64; 3] {
    let read = |outcome: &str| {
        let series = format!("billing_catalogue_reads_total{{outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    [read("hit"), read("load"), read("bypass")]
}

/// Starts a second instance on `spec` (the same database and Redis key
/// prefix), then `INVALIDATION_ROUNDS` times changes the price of plan
/// `plan_id` on `writer` and polls the second instance until it answers
/// the new price; returns the delays.
async fn invalidation_delays(
    spec: &ApiSpec,
    log: &std::path::Path,
    token: &str,
    writer: &ApiClient,
    plan_id: i64,
) -> Result<Vec<Duration>> {
    let mut second = ApiProcess::spawn(
        "billing-api (second instance)",
        spec,
        process::free_port()?,
        log,
    )?;
    second.wait_ready(Duration::from_secs(60)).await?;
    let reader = ApiClient::new(second.base(), token)?;
    let path = format!("/plans/{plan_id}");
    reader.get(&path).await?;
    let mut delays = Vec::new();
    for round in 0..INVALIDATION_ROUNDS {
        let price = format!("{}.{:02}", 20 + round / 100, round % 100);
        writer
            .patch(&path, &serde_json::json!({"price": price}))
            .await?;
        let acknowledged = Instant::now();
        loop {
            let plan = reader.get(&path).await?;
            if plan["price"].as_str() == Some(price.as_str()) {
                delays.push(acknowledged.elapsed());
                break;
            }
            if acknowledged.elapsed() > Duration::from_secs(5) {
                bail!(
                    "the second instance still answered {} 5 s after the change to {price}",
                    plan["price"]
                );
            }
        }
        // Changes land at every phase of the second instance's refresh.
        tokio::time::sleep(Duration::from_millis(round * 7 % 31)).await;
    }
    second.child_mut().terminate(Duration::from_secs(10));
    Ok(delays)
}

/// Runs the benchmark and returns the markdown report.
///
/// # Errors
/// When a server cannot be started or data cannot be prepared.
pub async fn run(options: &BenchOptions) -> Result<String> {
    let base = PathBuf::from("target/loadtest");
    std::fs::create_dir_all(&base)?;
    let mut dir = TempDir::new(&base, "bench")?;
    if options.keep {
        dir.keep();
    }
    let token = format!("{:032x}", rand::random::<u128>());
    let run_id = format!("{:08x}", rand::random::<u32>());
    let mut results = Results {
        load_before: loadavg(),
        ..Results::default()
    };
    let started = Instant::now();

    if options.startup_runs > 0 {
        eprintln!(
            "== start-up time of the embedded default ({} runs)",
            options.startup_runs
        );
        let mut times = Vec::new();
        for i in 0..options.startup_runs {
            let spec = ApiSpec {
                database_url: format!("sqlite://{}/startup-{i}.db?mode=rwc", dir.path().display()),
                redis_url: None,
                ..api_spec(options, &token, &run_id)
            };
            let log = dir.path().join(format!("startup-{i}.log"));
            let mut api = ApiProcess::spawn("billing-api", &spec, process::free_port()?, &log)?;
            times.push(api.wait_ready(Duration::from_secs(30)).await?);
            api.child_mut().terminate(Duration::from_secs(5));
        }
        results
            .startup
            .push(("embedded (fresh SQLite file)".to_owned(), times));
        if options.targets.contains(&Target::Postgres) {
            let pg = PgServer::from_url(&options.pg_url)?;
            let mut times = Vec::new();
            for i in 0..options.startup_runs {
                let db = SharedDatabase::create(&pg, &format!("billing_load_{run_id}_start{i}"))?;
                let spec = ApiSpec {
                    database_url: pg.url(&db.name),
                    redis_url: Some(options.redis_url.clone()),
                    ..api_spec(options, &token, &run_id)
                };
                let log = dir.path().join(format!("startup-pg-{i}.log"));
                let mut api = ApiProcess::spawn("billing-api", &spec, process::free_port()?, &log)?;
                times.push(api.wait_ready(Duration::from_secs(30)).await?);
                api.child_mut().terminate(Duration::from_secs(5));
            }
            results
                .startup
                .push(("PostgreSQL + Redis (fresh database)".to_owned(), times));
        }
    }

    if options.scenarios.contains(&Scenario::Bare) {
        eprintln!("== bare handler");
        let port = process::free_port()?;
        let mut command = Command::new(&options.self_exe);
        command.args([
            "bare-server",
            "--port",
            &port.to_string(),
            "--workers",
            &options.workers.to_string(),
        ]);
        let log = dir.path().join("bare.log");
        let spawned = Instant::now();
        let mut bare = Child::spawn("bare-server", &mut command, Some(&log))?;
        let base = format!("http://127.0.0.1:{port}");
        wait_ready_at(&base, spawned, Duration::from_secs(10), &mut bare).await?;
        let paths = Arc::new(vec![crate::bare::PATH.to_owned()]);
        for &connections in &options.connections {
            let work = Work::Get {
                paths: Arc::clone(&paths),
            };
            let pid = bare.pid();
            let cell = measure(
                options,
                &Measured {
                    target: "bare actix-web",
                    base: &base,
                    token: &token,
                    pid,
                    pg: None,
                    redis_port: None,
                    redis_shared: false,
                    redis_pid: None,
                },
                Scenario::Bare,
                connections,
                work,
            )
            .await?;
            print_cell(&cell);
            results.cells.push(cell);
        }
    }

    for &target in &options.targets {
        eprintln!("== target {}", target.name());
        run_target(options, target, &dir, &token, &run_id, &mut results).await?;
    }

    let report = render(options, &results, started.elapsed());
    if let Some(out) = &options.out {
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("report written to {}", out.display());
    }
    Ok(report)
}

fn api_spec(options: &BenchOptions, token: &str, run_id: &str) -> ApiSpec {
    ApiSpec {
        bin: options.api_bin.clone(),
        database_url: String::new(),
        redis_url: None,
        redis_key_prefix: format!("billing-load-{run_id}"),
        token: token.to_owned(),
        workers: options.workers,
        log: options.api_log.clone(),
        extra_env: options.api_env.clone(),
    }
}

/// A database on a shared server, dropped when this is dropped.
struct SharedDatabase {
    server: PgServer,
    name: String,
}

impl SharedDatabase {
    fn create(server: &PgServer, name: &str) -> Result<Self> {
        server.create_database(name)?;
        Ok(Self {
            server: server.clone(),
            name: name.to_owned(),
        })
    }
}

impl Drop for SharedDatabase {
    fn drop(&mut self) {
        if let Err(error) = self.server.drop_database(&self.name) {
            eprintln!("warning: could not drop database {}: {error:#}", self.name);
        }
    }
}

/// What a cell measures against.
struct Measured<'a> {
    target: &'a str,
    base: &'a str,
    token: &'a str,
    pid: u32,
    pg: Option<(&'a PgServer, &'a str)>,
    redis_port: Option<u16>,
    redis_shared: bool,
    redis_pid: Option<u32>,
}

async fn run_target(
    options: &BenchOptions,
    target: Target,
    dir: &TempDir,
    token: &str,
    run_id: &str,
    results: &mut Results,
) -> Result<()> {
    let db_name = format!("billing_load_{run_id}");
    // Keep what the API runs on alive for the whole target.
    let mut _shared_db = None;
    let mut _private_pg = None;
    let mut _private_redis = None;
    let (spec, pg, redis_port, redis_shared) = match target {
        Target::Postgres => {
            let pg = PgServer::from_url(&options.pg_url)?;
            _shared_db = Some(SharedDatabase::create(&pg, &db_name)?);
            let spec = ApiSpec {
                database_url: pg.url(&db_name),
                redis_url: Some(options.redis_url.clone()),
                ..api_spec(options, token, run_id)
            };
            (
                spec,
                Some(pg),
                Some(infra::redis_port(&options.redis_url)?),
                true,
            )
        }
        Target::Embedded => {
            let spec = ApiSpec {
                database_url: format!("sqlite://{}/bench.db?mode=rwc", dir.path().display()),
                ..api_spec(options, token, run_id)
            };
            (spec, None, None, false)
        }
        Target::Private => {
            let pg_dir = dir.path().join("private");
            std::fs::create_dir_all(&pg_dir)?;
            let postgres = PrivatePostgres::start(
                &pg_dir,
                200,
                &["shared_preload_libraries=pg_stat_statements"],
            )?;
            let pg = postgres.server().clone();
            pg.create_database(&db_name)?;
            if !pg.enable_statements() {
                results
                    .notes
                    .push("pg_stat_statements could not be enabled on the private cluster".into());
            }
            _private_pg = Some(postgres);
            let redis = PrivateRedis::start(&pg_dir).await?;
            let spec = ApiSpec {
                database_url: pg.url(&db_name),
                redis_url: Some(redis.url()),
                ..api_spec(options, token, run_id)
            };
            let port = redis.port();
            _private_redis = Some(redis);
            (spec, Some(pg), Some(port), false)
        }
    };
    // The ceilings, once per run, on the servers of the first target that
    // has them (the private ones when that target comes first: no other
    // clients), before the API starts.
    if let (Some(pg), Some(redis_port)) = (&pg, redis_port)
        && options.scenarios.contains(&Scenario::Ceilings)
        && results.ceilings.is_empty()
    {
        eprintln!(
            "== ceilings on {}: pgbench hot counter, redis-benchmark SET",
            target.name()
        );
        results.ceilings.extend(ceilings::pgbench_counter(
            pg,
            &format!("billing_ceiling_{run_id}"),
            &options.connections,
            options.duration,
            dir.path(),
        )?);
        results.ceilings.extend(ceilings::redis_set(
            redis_port,
            &options.connections,
            options.duration,
        )?);
        results.notes.push(format!(
            "the ceilings (pgbench, redis-benchmark) ran on the servers of the {} target",
            target.name()
        ));
    }
    let tag = format!("{target:?}").to_lowercase();
    // Data is prepared by a first instance, which is then stopped: the
    // measured instance's memory reflects the measured traffic only.
    // Creating users (argon2id, 19 MiB per hash) is what costs memory;
    // its growth is recorded here.
    let mut prep_api = ApiProcess::spawn(
        "billing-api (preparation)",
        &spec,
        process::free_port()?,
        &dir.path().join(format!("api-{tag}-prep.log")),
    )?;
    let ready = prep_api.wait_ready(Duration::from_secs(60)).await?;
    eprintln!("   API ready in {}", stats::seconds(ready));
    let client = ApiClient::new(prep_api.base(), token)?;
    let prep = Instant::now();
    let mut plan_id = 0;
    for i in 0..5 {
        plan_id = client.create_plan(&format!("load-{run_id}-{i}"), i).await?;
    }
    let mut rss_after_users = vec![process::rss_kib(prep_api.pid()).unwrap_or(0)];
    let mut users = Vec::new();
    for i in 0..8 {
        users.push(
            client
                .create_user(&format!("load-{run_id}-{i}@example.com"))
                .await?,
        );
        rss_after_users.push(process::rss_kib(prep_api.pid()).unwrap_or(0));
    }
    let readable =
        client::create_plain_invoices(&client, &users, plan_id, 200, options.prep_concurrency)
            .await?;
    eprintln!(
        "   prepared 5 plans, 8 users, 200 invoices in {}",
        stats::seconds(prep.elapsed())
    );
    results.user_rss.push((
        target.name().to_owned(),
        rss_after_users,
        prep_api.peak_rss_kib().unwrap_or(0),
    ));
    prep_api.child_mut().terminate(Duration::from_secs(10));

    let mut api = ApiProcess::spawn(
        "billing-api",
        &spec,
        process::free_port()?,
        &dir.path().join(format!("api-{tag}.log")),
    )?;
    api.wait_ready(Duration::from_secs(60)).await?;
    let client = ApiClient::new(api.base(), token)?;
    if let Some(rss) = process::rss_kib(api.pid()) {
        results.ready_rss_kib.push((target.name().to_owned(), rss));
    }

    let pg_ref = pg.as_ref().map(|pg| (pg, db_name.as_str()));
    let measured = Measured {
        target: target.name(),
        base: api.base(),
        token,
        pid: api.pid(),
        pg: pg_ref,
        redis_port,
        redis_shared,
        redis_pid: _private_redis.as_ref().and_then(PrivateRedis::pid),
    };
    // Creations one transaction each: a second instance on the same data.
    let mut alone_api = None;
    if options.scenarios.contains(&Scenario::CreateAlone) {
        let mut alone_spec = spec.clone();
        alone_spec
            .extra_env
            .push(("BILLING_INVOICE_BATCHING".to_owned(), "false".to_owned()));
        let mut second = ApiProcess::spawn(
            "billing-api (batching off)",
            &alone_spec,
            process::free_port()?,
            &dir.path().join(format!("api-{tag}-alone.log")),
        )?;
        second.wait_ready(Duration::from_secs(60)).await?;
        alone_api = Some(second);
    }
    let alone_measured = alone_api.as_ref().map(|second| Measured {
        base: second.base(),
        pid: second.pid(),
        ..measured
    });
    let mut leftover: Vec<i64> = Vec::new();
    let mut last_pay_rps: Option<u64> = None;
    let key_prefix = format!("load-{run_id}-{tag}");
    for &scenario in &options.scenarios {
        for &connections in &options.connections {
            let work = match scenario {
                Scenario::Bare | Scenario::Ceilings => continue,
                Scenario::Live => Work::Get {
                    paths: Arc::new(vec!["/health/live".to_owned()]),
                },
                Scenario::Plans => Work::Get {
                    paths: Arc::new(vec!["/api/v1/plans".to_owned()]),
                },
                Scenario::Invoice => Work::Get {
                    paths: Arc::new(
                        readable
                            .iter()
                            .map(|id| format!("/api/v1/invoices/{id}"))
                            .collect(),
                    ),
                },
                Scenario::Create | Scenario::CreateAlone => Work::CreateInvoice {
                    users: Arc::new(users.clone()),
                    plan_id,
                },
                Scenario::Pay => {
                    let secs = (options.duration + options.warmup).as_secs().max(1);
                    let per_second =
                        last_pay_rps.map_or(1500, |rps| rps.saturating_mul(3).max(1500));
                    let wanted = usize::try_from(per_second.saturating_mul(secs))
                        .unwrap_or(usize::MAX)
                        .min(options.pay_pool_max);
                    if leftover.len() < wanted {
                        let top_up = Instant::now();
                        let more = client::create_payable_invoices(
                            &client,
                            &users,
                            plan_id,
                            wanted - leftover.len(),
                            options.prep_concurrency,
                        )
                        .await?;
                        eprintln!(
                            "   prepared {} payable invoices (subscription + invoice) in {}",
                            more.len(),
                            stats::seconds(top_up.elapsed())
                        );
                        leftover.extend(more);
                    }
                    Work::Pay {
                        pool: Arc::new(InvoicePool::new(std::mem::take(&mut leftover))),
                        key_prefix: key_prefix.clone(),
                        retry: false,
                        backoff: Duration::ZERO,
                    }
                }
            };
            let pool = match &work {
                Work::Pay { pool, .. } => Some(Arc::clone(pool)),
                Work::Get { .. } | Work::CreateInvoice { .. } => None,
            };
            let on = match (scenario, &alone_measured) {
                (Scenario::CreateAlone, Some(alone)) => alone,
                _ => &measured,
            };
            let cell = measure(options, on, scenario, connections, work).await?;
            if let Some(pool) = pool {
                leftover = pool.untaken();
                last_pay_rps = Some(cell.summary.rps);
            }
            print_cell(&cell);
            results.cells.push(cell);
        }
    }
    if let Some(status) = api.child_mut().exited() {
        bail!("the API exited during the run ({status})");
    }
    if let Some(pg) = &pg {
        results.notes.push(format!(
            "{}: {}",
            target.name(),
            numbering_check(pg, &db_name)?
        ));
    }
    let reads = catalogue_reads(&client.metrics().await?);
    let delays = match target {
        Target::Postgres | Target::Private => {
            eprintln!("   measuring the invalidation delay over a second instance");
            invalidation_delays(
                &spec,
                &dir.path().join(format!("api-{tag}-second.log")),
                token,
                &client,
                plan_id,
            )
            .await?
        }
        Target::Embedded => Vec::new(),
    };
    results.cache.push(CacheFigures {
        target: target.name().to_owned(),
        reads,
        delays,
    });
    if let Some(mut second) = alone_api {
        second.child_mut().terminate(Duration::from_secs(10));
    }
    api.child_mut().terminate(Duration::from_secs(10));
    Ok(())
}

/// Whether the invoice numbers of each year are gapless after the run:
/// as many invoices as the counter says, all numbers distinct (each number
/// is at most the counter, so they are then exactly 1..=counter).
fn numbering_check(pg: &PgServer, database: &str) -> Result<String> {
    let rows = pg.query(
        database,
        "SELECT s.year, s.last_number, count(i.id), count(DISTINCT i.invoice_number), \
         coalesce(max(substr(i.invoice_number, 10)::bigint), 0) \
         FROM invoice_sequence s LEFT JOIN user_invoice i \
         ON substr(i.invoice_number, 5, 4)::int = s.year GROUP BY 1, 2 ORDER BY 1",
    )?;
    let mut parts = Vec::new();
    for row in rows {
        let [year, counter, count, distinct, max] = row.as_slice() else {
            bail!("unexpected row from the numbering check: {row:?}");
        };
        let gapless = counter == count && count == distinct && max == counter;
        parts.push(format!(
            "invoice numbers of {year}: counter {counter}, {count} invoices, {distinct} distinct, highest {max}: {}",
            if gapless { "gapless" } else { "NOT GAPLESS" }
        ));
    }
    Ok(parts.join("; "))
}

async fn measure(
    options: &BenchOptions,
    on: &Measured<'_>,
    scenario: Scenario,
    connections: usize,
    work: Work,
) -> Result<Cell> {
    let db_before = match on.pg {
        Some((pg, db)) => Some(
            pg.settled_database_stats(db, Duration::from_secs(12))
                .await?,
        ),
        None => None,
    };
    let statements_before = on.pg.and_then(|(pg, db)| pg.statements(db));
    // The shared Redis serves other clients too: its counters say nothing
    // about this load.
    let redis_port = on.redis_port.filter(|_| !on.redis_shared);
    let redis_before = redis_port.and_then(|port| infra::redis_command_calls(port).ok());
    let rss_reset = process::reset_peak_rss(on.pid);
    let cpu_before = CpuSnapshot::take(on);
    let spec = LoadSpec {
        targets: vec![on.base.to_owned()],
        token: on.token.to_owned(),
        connections,
        duration: options.warmup + options.duration,
        work,
        request_timeout: options.request_timeout,
        failover: false,
        rate_per_connection: None,
    };
    let origin = Instant::now();
    let run = load::run(spec, origin, Arc::new(AtomicBool::new(false))).await?;
    let cpu = CpuSnapshot::take(on).since(&cpu_before, process::clock_ticks_per_second());
    let peak_rss_kib = if rss_reset {
        process::peak_rss_kib(on.pid)
    } else {
        None
    };
    let summary = load::summarize(&run, run.started + options.warmup, scenario.expected());
    let mut error_kinds = BTreeMap::new();
    for sample in run
        .samples
        .iter()
        .filter(|s| s.start >= run.started + options.warmup)
        .filter(|s| !s.outcome.is(scenario.expected()))
    {
        let label = match (&sample.outcome, &sample.code) {
            (Outcome::Status(status), Some(code)) => format!("{status} {code}"),
            (outcome, _) => outcome.label(),
        };
        *error_kinds.entry(label).or_default() += 1;
    }
    let redis_after = redis_port.and_then(|port| infra::redis_command_calls(port).ok());
    let statements_after = on.pg.and_then(|(pg, db)| pg.statements(db));
    let db_after = match on.pg {
        Some((pg, db)) => Some(
            pg.settled_database_stats(db, Duration::from_secs(12))
                .await?,
        ),
        None => None,
    };
    Ok(Cell {
        target: on.target.to_owned(),
        scenario,
        connections,
        summary,
        all_requests: run.samples.len() as u64,
        all_ok: run
            .samples
            .iter()
            .filter(|s| s.outcome.is(scenario.expected()))
            .count() as u64,
        error_kinds,
        peak_rss_kib,
        pool_exhausted: run.pool_exhausted,
        db: db_before
            .zip(db_after)
            .map(|(before, after)| after.since(&before)),
        statements: statements_before
            .zip(statements_after)
            .map(|(before, after)| after.saturating_sub(before)),
        redis: redis_before
            .zip(redis_after)
            .map(|(before, after)| infra::command_calls_since(&after, &before)),
        cpu,
    })
}

fn print_cell(cell: &Cell) {
    eprintln!(
        "   {:<26} {:>3} conns: {:>6} req/s  p50 {} ms  p99 {} ms  errors {}{}",
        cell.scenario.label(),
        cell.connections,
        cell.summary.rps,
        stats::millis(cell.summary.p50_us),
        stats::millis(cell.summary.p99_us),
        cell.summary.errors,
        if cell.pool_exhausted {
            " (pool exhausted)"
        } else {
            ""
        }
    );
}

fn errors_text(cell: &Cell) -> String {
    if cell.summary.errors == 0 {
        return "0".to_owned();
    }
    let kinds: Vec<String> = cell
        .error_kinds
        .iter()
        .map(|(kind, n)| format!("{kind} ×{n}"))
        .collect();
    format!("{} ({})", cell.summary.errors, kinds.join(", "))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':').map(|(_, v)| v.trim().to_owned()))
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| process::status_field_kib(&info, "MemTotal"))
        .map_or_else(
            || "?".to_owned(),
            |kib| format!("{} GiB", kib / 1024 / 1024),
        );
    format!("{cores} cores ({cpu}), {mem} RAM")
}

fn render(options: &BenchOptions, results: &Results, took: Duration) -> String {
    let mut out = String::new();
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let _ = writeln!(out, "# billing-load report (unix time {unix})\n");
    let _ = writeln!(out, "- machine: {}", machine());
    let _ = writeln!(
        out,
        "- cells: {} s measured after {} s warm-up, connections {:?}, {} HTTP workers (API and bare server), API log level `{}`",
        options.duration.as_secs(),
        options.warmup.as_secs(),
        options.connections,
        options.workers,
        options.api_log
    );
    let _ = writeln!(
        out,
        "- load generator: this process (tokio + reqwest, one keep-alive connection per task), on the same cores as the API and the databases"
    );
    if !options.api_env.is_empty() {
        let env: Vec<String> = options
            .api_env
            .iter()
            .map(|(k, v)| format!("`{k}={v}`"))
            .collect();
        let _ = writeln!(out, "- extra API environment: {}", env.join(" "));
    }
    let _ = writeln!(
        out,
        "- load average (1, 5, 15 min) at the start: {}; at the end: {}",
        results.load_before,
        loadavg()
    );
    let _ = writeln!(out, "- whole run: {} s\n", took.as_secs());

    if !results.startup.is_empty() {
        let _ = writeln!(
            out,
            "## Start-up: spawn → first 200 on /health/ready (migrations included)\n"
        );
        let rows: Vec<Vec<String>> = results
            .startup
            .iter()
            .map(|(name, times)| {
                let max = times.iter().max().copied().unwrap_or_default();
                vec![
                    name.clone(),
                    times.len().to_string(),
                    stats::seconds(stats::median(times).unwrap_or_default()),
                    stats::seconds(max),
                    times
                        .iter()
                        .map(|t| stats::seconds(*t))
                        .collect::<Vec<_>>()
                        .join(" "),
                ]
            })
            .collect();
        out.push_str(&markdown_table(
            &["database", "runs", "median s", "max s", "all s"],
            &rows,
        ));
        out.push('\n');
    }

    let _ = writeln!(out, "## Throughput and latency\n");
    let rows: Vec<Vec<String>> = results
        .cells
        .iter()
        .map(|cell| {
            vec![
                cell.target.clone(),
                cell.scenario.label().to_owned(),
                cell.connections.to_string(),
                cell.summary.requests.to_string(),
                format!(
                    "{}{}",
                    cell.summary.rps,
                    if cell.pool_exhausted {
                        " (pool ran out)"
                    } else {
                        ""
                    }
                ),
                stats::millis(cell.summary.p50_us),
                stats::millis(cell.summary.p99_us),
                stats::millis(cell.summary.max_us),
                errors_text(cell),
                cell.peak_rss_kib.map_or_else(|| "-".to_owned(), stats::mib),
            ]
        })
        .collect();
    out.push_str(&markdown_table(
        &[
            "target",
            "scenario",
            "conns",
            "requests",
            "ok req/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors",
            "peak RSS MiB",
        ],
        &rows,
    ));
    let _ = writeln!(
        out,
        "\n`peak RSS` is the server's VmHWM during the cell (reset before each cell)."
    );
    for (name, kib) in &results.ready_rss_kib {
        let _ = writeln!(
            out,
            "RSS of the measured API ({name}) once ready: {} MiB.",
            stats::mib(*kib)
        );
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "## CPU per request (what limits throughput on this machine)\n\n\
         CPU time used during each cell (warm-up included) divided by its requests: the \
         server under test, the PostgreSQL backends of the run's database, the private Redis \
         (0 when the shared Redis is used: not measured), and this load generator; `machine busy` is the share of both cores in use over the cell (other \
         processes on the machine included).\n"
    );
    let rows: Vec<Vec<String>> = results
        .cells
        .iter()
        .map(|cell| {
            let requests = cell.all_requests.max(1);
            vec![
                cell.target.clone(),
                cell.scenario.label().to_owned(),
                cell.connections.to_string(),
                (cell.cpu.server_us / requests).to_string(),
                (cell.cpu.postgres_us / requests).to_string(),
                (cell.cpu.redis_us / requests).to_string(),
                (cell.cpu.client_us / requests).to_string(),
                stats::percent(cell.cpu.machine_busy_us, cell.cpu.machine_total_us),
            ]
        })
        .collect();
    out.push_str(&markdown_table(
        &[
            "target",
            "scenario",
            "conns",
            "server CPU µs/req",
            "postgres CPU µs/req",
            "redis CPU µs/req",
            "load generator CPU µs/req",
            "machine busy",
        ],
        &rows,
    ));
    out.push('\n');
    if !results.user_rss.is_empty() {
        let _ = writeln!(
            out,
            "## Memory of user creation (POST /users, argon2id 19 MiB per hash)\n\n\
             Data is prepared by a separate API instance, stopped before the measured one \
             starts. Its RSS before and after each of 8 sequential `POST /users`:\n"
        );
        let rows: Vec<Vec<String>> = results
            .user_rss
            .iter()
            .map(|(name, rss, peak)| {
                vec![
                    name.clone(),
                    rss.iter()
                        .map(|kib| stats::mib(*kib))
                        .collect::<Vec<_>>()
                        .join(" → "),
                    stats::mib(*peak),
                ]
            })
            .collect();
        out.push_str(&markdown_table(&["target", "RSS MiB", "peak MiB"], &rows));
        out.push('\n');
    }

    out.push_str(&ceilings::render(&results.ceilings));
    out.push_str(&ratios(results));

    let load_rows: Vec<Vec<String>> = results
        .cells
        .iter()
        .filter(|cell| cell.db.is_some() || cell.redis.is_some())
        .map(|cell| {
            let ok = cell.all_ok.max(1);
            let requests = cell.all_requests.max(1);
            let db = cell.db.unwrap_or_default();
            let redis_total: u64 = cell.redis.as_ref().map_or(0, |r| r.values().sum());
            let redis_detail = cell.redis.as_ref().map_or_else(String::new, |r| {
                r.iter()
                    .map(|(cmd, n)| format!("{cmd} {}", stats::ratio(*n, requests)))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            vec![
                cell.target.clone(),
                cell.scenario.label().to_owned(),
                cell.connections.to_string(),
                stats::ratio(db.commits, ok),
                stats::ratio(db.rollbacks, ok),
                cell.statements
                    .map_or_else(|| "n/a".to_owned(), |n| stats::ratio(n, requests)),
                stats::ratio(db.tuples_returned + db.tuples_fetched, ok),
                stats::ratio(
                    db.tuples_inserted + db.tuples_updated + db.tuples_deleted,
                    ok,
                ),
                if cell.redis.is_some() {
                    stats::ratio(redis_total, requests)
                } else {
                    "n/a".to_owned()
                },
                redis_detail,
            ]
        })
        .collect();
    if !load_rows.is_empty() {
        let _ = writeln!(out, "## Database and Redis work per request\n");
        out.push_str(&markdown_table(
            &[
                "target",
                "scenario",
                "conns",
                "PG commits / ok req",
                "PG rollbacks / ok req",
                "statements / req",
                "rows read / ok req",
                "rows written / ok req",
                "Redis cmds / req",
                "Redis by command / req",
            ],
            &load_rows,
        ));
        let _ = writeln!(
            out,
            "\nPer request of the whole cell (warm-up included). PG figures are `pg_stat_database` deltas of the run's own database (commits count \
             every implicit transaction); statements come from `pg_stat_statements` (private \
             target only). Redis figures are `INFO commandstats` deltas, on private Redis only \
             (the shared one serves other clients too).\n"
        );
    }

    if !results.cache.is_empty() {
        let _ = writeln!(out, "## Catalogue cache\n");
        let rows: Vec<Vec<String>> = results
            .cache
            .iter()
            .map(|figures| {
                let [hits, loads, bypasses] = figures.reads;
                let mut micros: Vec<u64> = figures
                    .delays
                    .iter()
                    .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
                    .collect();
                micros.sort_unstable();
                let at = |permille| {
                    stats::percentile(&micros, permille)
                        .map_or_else(|| "–".to_owned(), stats::millis)
                };
                vec![
                    figures.target.clone(),
                    stats::percent(hits, hits + loads + bypasses),
                    format!("{hits} / {loads} / {bypasses}"),
                    micros.len().to_string(),
                    at(500),
                    at(990),
                    micros
                        .last()
                        .map_or_else(|| "–".to_owned(), |m| stats::millis(*m)),
                ]
            })
            .collect();
        out.push_str(&markdown_table(
            &[
                "target",
                "hit ratio",
                "reads hit / load / bypass",
                "changes timed",
                "invalidation delay p50 ms",
                "p99 ms",
                "max ms",
            ],
            &rows,
        ));
        let _ = writeln!(
            out,
            "\nReads and hit ratio: `/metrics` of the measured instance after its cells. Invalidation delay: a plan's price changed on the measured instance, from the PATCH's answer to the first `GET /plans/{{id}}` of a second instance (same database and Redis) answering the new price, polled back to back.\n"
        );
    }

    let _ = writeln!(out, "## Goals\n");
    out.push_str(&goals(results));
    for note in &results.notes {
        let _ = writeln!(out, "- note: {note}");
    }
    out
}

/// Each API cell beside the ceilings measured at its connection count.
fn ratios(results: &Results) -> String {
    let mut out = String::new();
    let rows: Vec<Vec<String>> = results
        .cells
        .iter()
        .filter(|cell| cell.scenario != Scenario::Bare)
        .map(|cell| {
            let ok = cell.summary.rps;
            let bare = find(results, "bare actix-web", Scenario::Bare, cell.connections)
                .map(|bare| bare.summary.rps);
            let counter = ceilings::find(&results.ceilings, ceilings::PGBENCH, cell.connections);
            let set = ceilings::find(&results.ceilings, ceilings::REDIS_SET, cell.connections);
            let ratio = |ceiling: Option<u64>| {
                ceiling.map_or_else(|| "–".to_owned(), |c| stats::ratio(ok, c))
            };
            vec![
                cell.target.clone(),
                cell.scenario.label().to_owned(),
                cell.connections.to_string(),
                ok.to_string(),
                stats::millis(cell.summary.p99_us),
                ratio(bare),
                ratio(counter),
                ratio(set),
            ]
        })
        .collect();
    if rows.is_empty() || (results.ceilings.is_empty() && results.cells.is_empty()) {
        return out;
    }
    let _ = writeln!(
        out,
        "## Each scenario against its ceilings
"
    );
    out.push_str(&markdown_table(
        &[
            "target",
            "scenario",
            "conns",
            "ok req/s",
            "p99 ms",
            "× bare handler",
            "× pgbench hot counter",
            "× redis-benchmark SET",
        ],
        &rows,
    ));
    let _ = writeln!(
        out,
        "
Ok requests per second divided by the ceiling measured in this run at the same          number of connections: the bare handler for the HTTP stack, the hot counter for          invoice creation (one counter move per transaction), Redis `SET` for one Redis          round trip.\n"
    );
    out
}

fn find<'a>(
    results: &'a Results,
    target: &str,
    scenario: Scenario,
    conns: usize,
) -> Option<&'a Cell> {
    results
        .cells
        .iter()
        .find(|c| c.target == target && c.scenario == scenario && c.connections == conns)
}

fn goals(results: &Results) -> String {
    let mut out = String::new();
    let max_conns = results
        .cells
        .iter()
        .map(|c| c.connections)
        .max()
        .unwrap_or(64);
    let bare = find(results, "bare actix-web", Scenario::Bare, max_conns);
    for target in [Target::Postgres, Target::Private, Target::Embedded] {
        if let (Some(plans), Some(bare)) = (
            find(results, target.name(), Scenario::Plans, max_conns),
            bare,
        ) {
            let met = plans.summary.rps * 100 >= bare.summary.rps * 40;
            let _ = writeln!(
                out,
                "- {}: GET /plans at {max_conns} connections = {} req/s = {} of the bare handler's {} req/s (goal ≥ 40 %): {}",
                target.name(),
                plans.summary.rps,
                stats::percent(plans.summary.rps, bare.summary.rps),
                bare.summary.rps,
                if met { "MET" } else { "MISSED" }
            );
        }
        if let (Some(read), Some(bare)) = (
            find(results, target.name(), Scenario::Invoice, max_conns),
            bare,
        ) {
            let met = read.summary.rps * 100 >= bare.summary.rps * 20;
            let _ = writeln!(
                out,
                "- {}: GET /invoices/{{id}} at {max_conns} connections = {} req/s = {} of the bare handler's {} req/s (goal ≥ 20 %): {}",
                target.name(),
                read.summary.rps,
                stats::percent(read.summary.rps, bare.summary.rps),
                bare.summary.rps,
                if met { "MET" } else { "MISSED" }
            );
        }
        if let Some(pay) = find(results, target.name(), Scenario::Pay, max_conns) {
            let met = pay.summary.rps >= 4000 && pay.summary.p99_us <= 50_000;
            let _ = writeln!(
                out,
                "- {}: pay at {max_conns} connections = {} req/s, p99 {} ms (goal ≥ 4000, p99 ≤ 50 ms): {}",
                target.name(),
                pay.summary.rps,
                stats::millis(pay.summary.p99_us),
                if met {
                    "MET".to_owned()
                } else {
                    format!(
                        "MISSED ({} of the rate)",
                        stats::percent(pay.summary.rps, 4000)
                    )
                }
            );
        }
        let counter = ceilings::find(&results.ceilings, ceilings::PGBENCH, max_conns);
        if let (Some(alone), Some(counter)) = (
            find(results, target.name(), Scenario::CreateAlone, max_conns),
            counter,
        ) {
            let _ = writeln!(
                out,
                "- {}: POST /invoices without batching at {max_conns} connections = {} req/s = {} of the hot counter's {counter} tps (goal ≥ 50 %): {}",
                target.name(),
                alone.summary.rps,
                stats::percent(alone.summary.rps, counter),
                if alone.summary.rps * 2 >= counter {
                    "MET"
                } else {
                    "MISSED"
                }
            );
        }
        if let Some(create) = find(results, target.name(), Scenario::Create, max_conns) {
            let met = create.summary.rps >= 2500 && create.summary.p99_us <= 100_000;
            let _ = writeln!(
                out,
                "- {}: POST /invoices with batching at {max_conns} connections = {} req/s, p99 {} ms (goal ≥ 2500, p99 ≤ 100 ms): {}",
                target.name(),
                create.summary.rps,
                stats::millis(create.summary.p99_us),
                if met { "MET" } else { "MISSED" }
            );
        }
    }
    let peak = results
        .cells
        .iter()
        .filter(|c| c.target != "bare actix-web")
        .filter_map(|c| c.peak_rss_kib)
        .max();
    if let Some(peak) = peak {
        let _ = writeln!(
            out,
            "- API peak RSS over every measured cell = {} MiB (goal < 100): {}",
            stats::mib(peak),
            if peak < 100 * 1024 { "MET" } else { "MISSED" }
        );
    }
    for (name, _, peak) in &results.user_rss {
        let _ = writeln!(
            out,
            "- API peak RSS while creating 8 users ({name}) = {} MiB (goal < 100): {}",
            stats::mib(*peak),
            if *peak < 100 * 1024 { "MET" } else { "MISSED" }
        );
    }
    for (name, times) in &results.startup {
        let max = times.iter().max().copied().unwrap_or_default();
        let median = stats::median(times).unwrap_or_default();
        let _ = writeln!(
            out,
            "- ready after start, {name}: median {} s, max {} s (goal < 1 s{}): {}",
            stats::seconds(median),
            stats::seconds(max),
            if name.starts_with("embedded") {
                ""
            } else {
                ", informative"
            },
            if max < Duration::from_secs(1) {
                "MET"
            } else {
                "MISSED"
            }
        );
    }
    out
}
