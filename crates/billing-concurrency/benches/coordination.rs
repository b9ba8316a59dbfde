//! Throughput benchmark: lock acquire + release and idempotency
//! begin + complete on Redis (and in process), at 1, 8 and 50 concurrent
//! tasks, beside `redis-benchmark -t set` at the same concurrency in the
//! same run. Prints a markdown table.
//!
//! `cargo bench -p billing-concurrency`; environment: `BENCH_REDIS_URL`
//! (else `TEST_REDIS_URL`, else `redis://127.0.0.1:6379`), `BENCH_SECONDS`
//! per scenario (default 3), `BENCH_ROUNDS` (default 3, medians are
//! reported), `BENCH_POOL_SIZE` (default: the crate's default),
//! `BENCH_RUNTIME` (`multi-thread`, the default, or `current-thread`),
//! `BENCH_EMBEDDED=0` to skip the in-process backend, `BENCH_REDIS_CLUSTER=1`
//! when the URL names Redis Cluster nodes (comma-separated), and
//! `BENCH_REDIS_CA_FILE` for a `rediss://` URL whose CA is private (the SET
//! baseline then runs `redis-benchmark --cluster` / `--tls --cacert`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use billing_concurrency::{
    Coordination, EmbeddedSettings, IdempotencyOutcome, RedisSettings, StoredOutcome,
};

const CONCURRENCY: [usize; 3] = [1, 8, 50];
const LOCK_TTL: Duration = Duration::from_secs(10);

fn main() -> anyhow::Result<()> {
    let url = std::env::var("BENCH_REDIS_URL")
        .ok()
        .or_else(billing_test_support::redis_url)
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .map(|s| s.parse())
        .transpose()
        .context("BENCH_SECONDS must be a whole number")?
        .unwrap_or(3);
    let rounds: u32 = std::env::var("BENCH_ROUNDS")
        .ok()
        .map(|s| s.parse())
        .transpose()
        .context("BENCH_ROUNDS must be a whole number")?
        .unwrap_or(3);
    let duration = Duration::from_secs(seconds);
    let with_embedded = std::env::var("BENCH_EMBEDDED").map_or(true, |v| v != "0");
    let prefix = format!("billing-bench-{}", billing_test_support::unique_suffix());
    let cluster = std::env::var("BENCH_REDIS_CLUSTER").is_ok_and(|v| v == "1");
    let ca_file = std::env::var_os("BENCH_REDIS_CA_FILE").map(PathBuf::from);
    let mut settings = RedisSettings {
        idempotency_ttl: Duration::from_secs(120),
        cluster,
        ca_file: ca_file.clone(),
        ..RedisSettings::new(url.clone()).with_key_prefix(prefix.clone())
    };
    let mut baseline_flags: Vec<String> = Vec::new();
    if cluster {
        baseline_flags.push("--cluster".to_owned());
    }
    if url.starts_with("rediss://") {
        baseline_flags.push("--tls".to_owned());
        if let Some(ca_file) = &ca_file {
            baseline_flags.push("--cacert".to_owned());
            baseline_flags.push(ca_file.display().to_string());
        }
    }
    if let Ok(size) = std::env::var("BENCH_POOL_SIZE") {
        settings.pool_size = size.parse().context("BENCH_POOL_SIZE")?;
    }
    let pool_size = settings.pool_size;
    // `BENCH_RUNTIME=current-thread`: one thread, as in each actix-web
    // worker; default: tokio's multi-threaded runtime (a worker per core).
    let runtime_kind = std::env::var("BENCH_RUNTIME").unwrap_or_else(|_| "multi-thread".to_owned());
    let runtime = match runtime_kind.as_str() {
        "multi-thread" => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
        "current-thread" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        other => bail!("BENCH_RUNTIME must be multi-thread or current-thread, not {other}"),
    };
    let redis = runtime.block_on(async {
        let coordination = Coordination::redis(settings).await?;
        coordination
            .ping()
            .await
            .with_context(|| format!("Redis at {url} does not answer"))?;
        anyhow::Ok(coordination)
    })?;
    // Short-lived records, so that millions of them do not pile up in memory.
    let embedded = Coordination::embedded_with(EmbeddedSettings {
        idempotency_ttl: Duration::from_secs(2),
        ..EmbeddedSettings::default()
    })?;
    let first_node = url.split(',').next().unwrap_or(&url).to_owned();
    let (host, port) = host_and_port(&first_node)?;

    println!(
        "billing-concurrency benchmark: {} cores, {rounds} rounds of {seconds} s per scenario \
         (medians), pool_size {pool_size}, {runtime_kind} tokio runtime, Redis {host}:{port}{}{}\n",
        std::thread::available_parallelism().map_or(0, usize::from),
        if url.starts_with("rediss://") {
            " over TLS"
        } else {
            ""
        },
        if cluster { " (Redis Cluster)" } else { "" },
    );
    let pressure_before = cpu_pressure();
    let mut rows = Vec::new();
    for tasks in CONCURRENCY {
        // Rounds interleave the scenarios and medians are reported, so that
        // a burst of load from elsewhere on the machine skews one sample
        // only; the ratios to SET are taken within each round.
        let mut row = Row::default();
        for round in 1..=rounds {
            let set = redis_benchmark_set(&host, port, &baseline_flags, tasks, seconds);
            let lock = runtime.block_on(run(tasks, duration, &redis, Scenario::Lock))?;
            let idempotency =
                runtime.block_on(run(tasks, duration, &redis, Scenario::Idempotency))?;
            let (embedded_lock, embedded_idempotency) = if with_embedded {
                (
                    runtime.block_on(run(tasks, duration, &embedded, Scenario::Lock))?,
                    runtime.block_on(run(tasks, duration, &embedded, Scenario::Idempotency))?,
                )
            } else {
                (0.0, 0.0)
            };
            eprintln!(
                "{tasks} tasks, round {round}: SET {set:?}, lock {lock:.0}, \
                 begin+complete {idempotency:.0}, embedded {embedded_lock:.0} / \
                 {embedded_idempotency:.0}"
            );
            match set {
                Ok(set) => {
                    row.set.push(set);
                    row.lock_ratio.push(percent(lock, set));
                    row.idempotency_ratio.push(percent(idempotency, set));
                }
                Err(why) => row.set_error = Some(why),
            }
            row.lock.push(lock);
            row.idempotency.push(idempotency);
            row.embedded_lock.push(embedded_lock);
            row.embedded_idempotency.push(embedded_idempotency);
        }
        rows.push((tasks, row));
    }
    runtime.block_on(cleanup(&first_node, cluster, ca_file.as_deref(), &prefix))?;
    if let (Some(before), Some(after)) = (pressure_before, cpu_pressure()) {
        println!(
            "CPU pressure (share of time some task waited for a CPU, avg10 / avg60 / avg300): \
             {before} before, {after} after\n"
        );
    }

    println!(
        "| tasks | `redis-benchmark -t set` (SET/s) | lock acquire + release (pairs/s) | \
         % of SET | begin + complete (pairs/s) | % of SET | embedded lock (pairs/s) | \
         embedded begin + complete (pairs/s) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let show = |values: &[f64], unit: &str| {
        median(values).map_or_else(|| "n/a".to_owned(), |m| format!("{m:.0}{unit}"))
    };
    for (tasks, row) in rows {
        let set = match (median(&row.set), row.set_error) {
            (Some(set), _) => format!("{set:.0}"),
            (None, Some(why)) => format!("n/a ({why})"),
            (None, None) => "n/a".to_owned(),
        };
        println!(
            "| {tasks} | {set} | {} | {} | {} | {} | {} | {} |",
            show(&row.lock, ""),
            show(&row.lock_ratio, " %"),
            show(&row.idempotency, ""),
            show(&row.idempotency_ratio, " %"),
            show(&row.embedded_lock, ""),
            show(&row.embedded_idempotency, ""),
        );
    }
    Ok(())
}

/// The samples of one concurrency level, one per round.
#[derive(Default)]
struct Row {
    set: Vec<f64>,
    set_error: Option<String>,
    lock: Vec<f64>,
    lock_ratio: Vec<f64>,
    idempotency: Vec<f64>,
    idempotency_ratio: Vec<f64>,
    embedded_lock: Vec<f64>,
    embedded_idempotency: Vec<f64>,
}

#[derive(Clone, Copy, Debug)]
enum Scenario {
    /// `lock` then `release` of a lock of the task's own (uncontended).
    Lock,
    /// `begin` of a fresh key then `complete` with a small outcome.
    Idempotency,
}

/// Runs `scenario` on `tasks` concurrent tasks for `duration` (after a
/// short warm-up) and returns completed pairs per second.
async fn run(
    tasks: usize,
    duration: Duration,
    coordination: &Coordination,
    scenario: Scenario,
) -> anyhow::Result<f64> {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let run_id = RUNS.fetch_add(1, Ordering::Relaxed);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let outcome = StoredOutcome(br#"{"id":"ch_123","amount":1000,"currency":"eur"}"#.to_vec());
    let mut handles = Vec::new();
    for task in 0..tasks {
        let coordination = coordination.clone();
        let (measuring, stop, done) = (measuring.clone(), stop.clone(), done.clone());
        let outcome = outcome.clone();
        handles.push(tokio::spawn(async move {
            let lock_name = format!("bench-{task}");
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                match scenario {
                    Scenario::Lock => {
                        let guard = coordination.lock(&lock_name, LOCK_TTL).await?;
                        if !guard.release().await? {
                            bail!("lock lost during the benchmark");
                        }
                    }
                    Scenario::Idempotency => {
                        n += 1;
                        let key = format!("{run_id}-{task}-{n}");
                        match coordination
                            .idempotency()
                            .begin("bench", &key, "fp")
                            .await?
                        {
                            IdempotencyOutcome::Started(ticket) => {
                                if !coordination
                                    .idempotency()
                                    .complete(&ticket, &outcome)
                                    .await?
                                {
                                    bail!("complete refused during the benchmark");
                                }
                            }
                            other @ (IdempotencyOutcome::Replay(_)
                            | IdempotencyOutcome::InFlight
                            | IdempotencyOutcome::Mismatch) => bail!("unexpected {other:?}"),
                        }
                    }
                }
                if measuring.load(Ordering::Relaxed) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    let count = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle.await??;
    }
    Ok(per_second(count, elapsed))
}

#[allow(clippy::float_arithmetic, reason = "a rate")]
fn per_second(count: u64, elapsed: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss, reason = "counts stay far below 2^52")]
    let count = count as f64;
    count / elapsed.as_secs_f64()
}

#[allow(clippy::float_arithmetic, reason = "a ratio")]
fn percent(part: f64, whole: f64) -> f64 {
    100.0 * part / whole
}

/// Linux's CPU pressure averages, `avg10 / avg60 / avg300` in percent: how
/// busy the machine was with other work (here: concurrent builds).
fn cpu_pressure() -> Option<String> {
    let text = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    let some = text.lines().find(|line| line.starts_with("some"))?;
    let values: Vec<&str> = some
        .split_whitespace()
        .filter_map(|field| field.split_once('='))
        .filter(|(name, _)| name.starts_with("avg"))
        .map(|(_, value)| value)
        .collect();
    Some(format!("{} %", values.join(" % / ")))
}

/// The middle value (upper middle for an even count), if any.
fn median(values: &[f64]) -> Option<f64> {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// `redis-benchmark -t set -c tasks -n N -q`, with N for about `seconds`:
/// SET requests per second.
fn redis_benchmark_set(
    host: &str,
    port: u16,
    flags: &[String],
    tasks: usize,
    seconds: u64,
) -> Result<f64, String> {
    let requests = seconds * if tasks == 1 { 15_000 } else { 50_000 };
    let output = Command::new("redis-benchmark")
        .args(["-h", host, "-p", &port.to_string(), "-t", "set"])
        .args(flags)
        .args(["-c", &tasks.to_string(), "-n", &requests.to_string(), "-q"])
        .output()
        .map_err(|e| {
            eprintln!(
                "redis-benchmark could not be run ({e}); install redis-tools for the SET baseline"
            );
            "redis-benchmark not found".to_owned()
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.split(['\r', '\n'])
        .filter_map(|line| line.trim().strip_prefix("SET: "))
        .filter_map(|rest| rest.split_whitespace().next())
        .find_map(|number| number.parse().ok())
        .ok_or_else(|| {
            eprintln!("unexpected redis-benchmark output: {text}");
            "unreadable output".to_owned()
        })
}

/// Host and port of a `redis://[user:pass@]host[:port][/db]` URL.
fn host_and_port(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_owned(), port.parse().context("port")?)),
        None => Ok((host_port.to_owned(), 6379)),
    }
}

/// Deletes the benchmark's keys: on `node`, or on every master of its
/// cluster.
async fn cleanup(
    node: &str,
    cluster: bool,
    ca_file: Option<&std::path::Path>,
    prefix: &str,
) -> anyhow::Result<()> {
    let open = |url: &str| -> anyhow::Result<redis::Client> {
        Ok(match ca_file {
            Some(ca_file) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(std::fs::read(ca_file)?),
                },
            )?,
            None => redis::Client::open(url)?,
        })
    };
    // A generous reply timeout: this may run on a busy machine.
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(std::time::Duration::from_secs(30)));
    let mut nodes = vec![node.to_owned()];
    if cluster {
        let mut connection = open(node)?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let text: String = redis::cmd("CLUSTER")
            .arg("NODES")
            .query_async(&mut connection)
            .await?;
        let scheme = node.split_once("://").map_or("redis", |(scheme, _)| scheme);
        nodes = text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let address = fields.get(1)?.split('@').next()?;
                let master = fields.get(2)?.split(',').any(|flag| flag == "master");
                master.then(|| format!("{scheme}://{address}"))
            })
            .collect();
    }
    for node in nodes {
        let mut connection = open(&node)?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}:*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await?;
            // One key per command: a cluster node refuses several slots in one.
            let mut pipeline = redis::pipe();
            for key in &keys {
                pipeline.cmd("UNLINK").arg(key).ignore();
            }
            if !keys.is_empty() {
                pipeline.query_async::<()>(&mut connection).await?;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(())
}
