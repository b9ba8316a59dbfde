//! What `billing-load` measures: one cell's figures (latency summary,
//! errors, peak memory, CPU from `/proc`, `pg_stat_database`,
//! `pg_stat_statements` and Redis `INFO commandstats` deltas), the
//! catalogue cache's counters and invalidation delay, the invoice
//! numbering check, and the machine the run is on.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{BenchOptions, Scenario};
use crate::api::{ApiProcess, ApiSpec};
use crate::ceilings::Ceiling;
use crate::client::ApiClient;
use crate::infra::{self, DbStats, PgServer};
use crate::load::{self, LoadRun, LoadSpec, Outcome, Summary, Work};
use crate::process;

/// One measured cell.
#[derive(Clone, Debug)]
pub(super) struct Cell {
    pub(super) target: String,
    pub(super) scenario: Scenario,
    pub(super) connections: usize,
    pub(super) summary: Summary,
    /// Requests and expected answers of the whole cell, warm-up included
    /// (what the database and Redis counters cover).
    pub(super) all_requests: u64,
    pub(super) all_ok: u64,
    pub(super) error_kinds: BTreeMap<String, u64>,
    pub(super) peak_rss_kib: Option<u64>,
    pub(super) pool_exhausted: bool,
    pub(super) db: Option<DbStats>,
    pub(super) statements: Option<u64>,
    pub(super) redis: Option<BTreeMap<String, u64>>,
    pub(super) cpu: CpuUse,
}

/// CPU time used during a cell, in microseconds.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct CpuUse {
    /// The server under test (API or bare server).
    pub(super) server_us: u64,
    /// The PostgreSQL backends of the run's database.
    pub(super) postgres_us: u64,
    /// The private `redis-server` (not measured on the shared one).
    pub(super) redis_us: u64,
    /// This load generator.
    pub(super) client_us: u64,
    /// Machine busy time over all cores, and the cell's wall time × cores.
    pub(super) machine_busy_us: u64,
    pub(super) machine_total_us: u64,
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
pub(super) struct Results {
    pub(super) cells: Vec<Cell>,
    pub(super) startup: Vec<(String, Vec<Duration>)>,
    /// Per target: RSS (KiB) before and after each user created, and the
    /// preparation instance's peak.
    pub(super) user_rss: Vec<(String, Vec<u64>, u64)>,
    /// Per target: RSS of the measured instance once ready.
    pub(super) ready_rss_kib: Vec<(String, u64)>,
    /// `/proc/loadavg` when the run started (other processes on the
    /// machine).
    pub(super) load_before: String,
    pub(super) notes: Vec<String>,
    /// Per target: the catalogue cache of the measured instance.
    pub(super) cache: Vec<CacheFigures>,
    /// pgbench and redis-benchmark, measured in this run.
    pub(super) ceilings: Vec<Ceiling>,
}

impl Results {
    /// The cell of `scenario` on `target` at `connections`, if measured.
    pub(super) fn cell(
        &self,
        target: &str,
        scenario: Scenario,
        connections: usize,
    ) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.target == target && c.scenario == scenario && c.connections == connections)
    }
}

/// The catalogue cache on one target: what the measured instance's
/// `/metrics` said after its cells, and how long a plan change made on it
/// took to be read on a second instance.
#[derive(Debug)]
pub(super) struct CacheFigures {
    pub(super) target: String,
    /// `billing_catalogue_reads_total` by outcome: hit, load, bypass.
    pub(super) reads: [u64; 3],
    /// From the PATCH's answer on the first instance to the first GET on
    /// the second that returned the new price (empty on one instance).
    pub(super) delays: Vec<Duration>,
}

/// What a cell measures against.
#[derive(Clone, Copy)]
pub(super) struct Measured<'a> {
    pub(super) target: &'a str,
    pub(super) base: &'a str,
    pub(super) token: &'a str,
    pub(super) pid: u32,
    pub(super) pg: Option<(&'a PgServer, &'a str)>,
    pub(super) redis_port: Option<u16>,
    pub(super) redis_shared: bool,
    pub(super) redis_pid: Option<u32>,
}

/// Plan changes made to measure the invalidation delay.
const INVALIDATION_ROUNDS: u64 = 50;

/// `billing_catalogue_reads_total` by outcome (hit, load, bypass).
pub(super) fn catalogue_reads(metrics: &str) -> [u64; 3] {
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
pub(super) async fn invalidation_delays(
    spec: &ApiSpec,
    log: &Path,
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

/// Whether the invoice numbers of each year are gapless after the run:
/// as many invoices as the counter says, all numbers distinct (each number
/// is at most the counter, so they are then exactly 1..=counter).
pub(super) fn numbering_check(pg: &PgServer, database: &str) -> Result<String> {
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

/// The database and Redis counters of a cell, read before or after it.
#[derive(Debug, Default)]
struct Counters {
    db: Option<DbStats>,
    statements: Option<u64>,
    redis: Option<BTreeMap<String, u64>>,
}

impl Counters {
    async fn db(on: &Measured<'_>) -> Result<Option<DbStats>> {
        Ok(match on.pg {
            Some((pg, db)) => Some(
                pg.settled_database_stats(db, Duration::from_secs(12))
                    .await?,
            ),
            None => None,
        })
    }

    /// Before a cell: the database first, Redis last.
    async fn before(on: &Measured<'_>, redis_port: Option<u16>) -> Result<Self> {
        let db = Self::db(on).await?;
        let statements = on.pg.and_then(|(pg, db)| pg.statements(db));
        let redis = redis_port.and_then(|port| infra::redis_command_calls(port).ok());
        Ok(Self {
            db,
            statements,
            redis,
        })
    }

    /// After a cell: Redis first, the database last.
    async fn after(on: &Measured<'_>, redis_port: Option<u16>) -> Result<Self> {
        let redis = redis_port.and_then(|port| infra::redis_command_calls(port).ok());
        let statements = on.pg.and_then(|(pg, db)| pg.statements(db));
        let db = Self::db(on).await?;
        Ok(Self {
            db,
            statements,
            redis,
        })
    }

    /// `self - before`, where both were read.
    fn since(self, before: Self) -> Self {
        Self {
            db: before
                .db
                .zip(self.db)
                .map(|(before, after)| after.since(&before)),
            statements: before
                .statements
                .zip(self.statements)
                .map(|(before, after)| after.saturating_sub(before)),
            redis: before
                .redis
                .zip(self.redis)
                .map(|(before, after)| infra::command_calls_since(&after, &before)),
        }
    }
}

/// The unexpected answers of the measured window, by status and problem
/// code or by transport failure.
fn error_kinds(run: &LoadRun, from: Duration, expected: u16) -> BTreeMap<String, u64> {
    let mut kinds = BTreeMap::new();
    for sample in run
        .samples
        .iter()
        .filter(|s| s.start >= from)
        .filter(|s| !s.outcome.is(expected))
    {
        let label = match (&sample.outcome, &sample.code) {
            (Outcome::Status(status), Some(code)) => format!("{status} {code}"),
            (outcome, _) => outcome.label(),
        };
        *kinds.entry(label).or_default() += 1;
    }
    kinds
}

/// Runs one cell (warm-up and measured window) against `on` and collects
/// its figures.
pub(super) async fn measure(
    options: &BenchOptions,
    on: &Measured<'_>,
    scenario: Scenario,
    connections: usize,
    work: Work,
) -> Result<Cell> {
    // The shared Redis serves other clients too: its counters say nothing
    // about this load.
    let redis_port = on.redis_port.filter(|_| !on.redis_shared);
    let counters_before = Counters::before(on, redis_port).await?;
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
    let from = run.started + options.warmup;
    let summary = load::summarize(&run, from, scenario.expected());
    let error_kinds = error_kinds(&run, from, scenario.expected());
    let counters = Counters::after(on, redis_port)
        .await?
        .since(counters_before);
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
        db: counters.db,
        statements: counters.statements,
        redis: counters.redis,
        cpu,
    })
}

/// `/proc/loadavg`: the 1, 5 and 15 minute load averages.
pub(super) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The machine: cores, CPU model and memory.
pub(super) fn machine() -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_reads_are_read_by_outcome() {
        let metrics = "# TYPE billing_catalogue_reads_total counter\n\
                       billing_catalogue_reads_total{outcome=\"hit\"} 90\n\
                       billing_catalogue_reads_total{outcome=\"load\"} 7\n";
        assert_eq!(catalogue_reads(metrics), [90, 7, 0]);
    }
}
