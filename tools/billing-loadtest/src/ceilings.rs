//! The ceilings the API's writes are compared with, measured in the same
//! run on the same machine: `pgbench` incrementing one counter row (the
//! physical limit of a gapless one-row counter) and `redis-benchmark SET`
//! (the limit of one Redis round trip), each at the run's connection counts.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::infra::{PgServer, redis_cli};
use crate::stats::{markdown_table, millis};

/// The one statement of the hot-counter script.
pub const COUNTER_SCRIPT: &str = "UPDATE counter SET n = n + 1 WHERE id = 1 RETURNING n;\n";

/// One measured ceiling at one client count.
#[derive(Clone, Debug)]
pub struct Ceiling {
    /// `pgbench hot counter` or `redis-benchmark SET`.
    pub name: &'static str,
    /// Clients (connections).
    pub clients: usize,
    /// Transactions or requests per second.
    pub per_second: u64,
    /// Mean latency, µs.
    pub mean_us: u64,
    /// p99 latency, µs, when the tool reports it.
    pub p99_us: Option<u64>,
}

/// The name of the pgbench ceiling.
pub const PGBENCH: &str = "pgbench hot counter";
/// The name of the redis-benchmark ceiling.
pub const REDIS_SET: &str = "redis-benchmark SET";

/// Runs `pgbench` with [`COUNTER_SCRIPT`] on a scratch database of `pg`
/// (created and dropped), `duration` per client count.
///
/// # Errors
/// When psql or pgbench fail.
pub fn pgbench_counter(
    pg: &PgServer,
    database: &str,
    clients: &[usize],
    duration: Duration,
    dir: &std::path::Path,
) -> Result<Vec<Ceiling>> {
    pg.drop_database(database)?;
    pg.create_database(database)?;
    let result = (|| {
        pg.query(
            database,
            "CREATE TABLE counter (id integer PRIMARY KEY, n bigint NOT NULL); \
             INSERT INTO counter VALUES (1, 0)",
        )?;
        let script = dir.join("hot-counter.sql");
        std::fs::write(&script, COUNTER_SCRIPT)?;
        let mut ceilings = Vec::new();
        for &c in clients {
            let output = Command::new("pgbench")
                .args(["-n", "-M", "prepared", "-f"])
                .arg(&script)
                .args(["-c", &c.to_string(), "-j", &c.min(2).to_string()])
                .args(["-T", &duration.as_secs().max(1).to_string()])
                .args(["-h", &pg.host, "-p", &pg.port.to_string(), "-U", &pg.user])
                .arg(database)
                .stdin(Stdio::null())
                .output()
                .context("running pgbench (install postgresql-contrib or the client)")?;
            let text = String::from_utf8_lossy(&output.stdout);
            if !output.status.success() {
                bail!(
                    "pgbench failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            let (per_second, mean_us) = parse_pgbench(&text)
                .with_context(|| format!("unexpected pgbench output: {text}"))?;
            eprintln!(
                "   {PGBENCH:<26} {c:>3} clients: {per_second:>8} tps  mean {} ms",
                millis(mean_us)
            );
            ceilings.push(Ceiling {
                name: PGBENCH,
                clients: c,
                per_second,
                mean_us,
                p99_us: None,
            });
        }
        Ok(ceilings)
    })();
    let _ = pg.drop_database(database);
    result
}

/// `tps = …` (without initial connection time, whole transactions per
/// second) and `latency average = … ms` (in µs).
#[must_use]
pub fn parse_pgbench(text: &str) -> Option<(u64, u64)> {
    let tps = text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("tps = ")?;
        thousandths(rest.split_whitespace().next()?)
    })?;
    let mean = text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("latency average = ")?;
        thousandths(rest.split_whitespace().next()?)
    })?;
    Some((tps / 1000, mean))
}

/// A non-negative decimal (`1953.101`) in thousandths (`1953101`).
fn thousandths(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole: u64 = whole.parse().ok()?;
    let digits: String = fraction.chars().chain("000".chars()).take(3).collect();
    let fraction: u64 = digits.parse().ok()?;
    whole.checked_mul(1000)?.checked_add(fraction)
}

/// Runs `redis-benchmark -t set` against Redis on `port`, about `duration`
/// per client count, on one key of its own (deleted afterwards).
///
/// # Errors
/// When redis-benchmark fails.
pub fn redis_set(port: u16, clients: &[usize], duration: Duration) -> Result<Vec<Ceiling>> {
    let mut ceilings = Vec::new();
    let secs = duration.as_secs().max(1);
    for &c in clients {
        // Enough requests for about `duration` at the rates seen here.
        let per_second: u64 = if c == 1 { 15_000 } else { 45_000 };
        let output = Command::new("redis-benchmark")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                "set",
                "--csv",
            ])
            .args(["-c", &c.to_string(), "-n", &(per_second * secs).to_string()])
            .stdin(Stdio::null())
            .output()
            .context("running redis-benchmark")?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "redis-benchmark failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let (rps, mean_us, p99_us) = parse_redis_csv(&text)
            .with_context(|| format!("unexpected redis-benchmark output: {text}"))?;
        eprintln!(
            "   {REDIS_SET:<26} {c:>3} clients: {rps:>8} req/s  mean {} ms  p99 {} ms",
            millis(mean_us),
            millis(p99_us)
        );
        ceilings.push(Ceiling {
            name: REDIS_SET,
            clients: c,
            per_second: rps,
            mean_us,
            p99_us: Some(p99_us),
        });
    }
    let _ = redis_cli(port, &["DEL", "key:__rand_int__"]);
    Ok(ceilings)
}

/// The `SET` line of `redis-benchmark --csv`: whole requests per second,
/// mean and p99 latency (µs).
#[must_use]
pub fn parse_redis_csv(text: &str) -> Option<(u64, u64, u64)> {
    let line = text.lines().find(|line| line.starts_with("\"SET\""))?;
    let fields: Vec<u64> = line
        .split(',')
        .skip(1)
        .map(|f| thousandths(f.trim_matches('"')))
        .collect::<Option<_>>()?;
    // rps, avg, min, p50, p95, p99, max
    Some((*fields.first()? / 1000, *fields.get(1)?, *fields.get(5)?))
}

/// The table of the ceilings.
#[must_use]
pub fn render(ceilings: &[Ceiling]) -> String {
    let mut out = String::new();
    if ceilings.is_empty() {
        return out;
    }
    let _ = writeln!(out, "## Ceilings measured in this run\n");
    let rows: Vec<Vec<String>> = ceilings
        .iter()
        .map(|c| {
            vec![
                c.name.to_owned(),
                c.clients.to_string(),
                c.per_second.to_string(),
                millis(c.mean_us),
                c.p99_us.map_or_else(|| "–".to_owned(), millis),
            ]
        })
        .collect();
    out.push_str(&markdown_table(
        &["ceiling", "clients", "per second", "mean ms", "p99 ms"],
        &rows,
    ));
    let _ = writeln!(
        out,
        "\n`{PGBENCH}`: `pgbench -n -M prepared -c N -j min(N,2)` with the one-line script \
         `{}` on a table of one row (a scratch database on the PostgreSQL server of the first target measured): what a \
         gapless one-row counter allows, one increment per transaction. `{REDIS_SET}`: \
         `redis-benchmark -t set --csv -c N` on that target's Redis.\n",
        COUNTER_SCRIPT.trim()
    );
    out
}

/// The ceiling `name` at `clients`, if measured.
#[must_use]
pub fn find(ceilings: &[Ceiling], name: &str, clients: usize) -> Option<u64> {
    ceilings
        .iter()
        .find(|c| c.name == name && c.clients == clients)
        .map(|c| c.per_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgbench_and_redis_outputs_are_read() {
        let pgbench = "transaction type: hot-counter.sql\nlatency average = 0.512 ms\n\
                       initial connection time = 2.1 ms\ntps = 1953.101 (without initial connection time)\n";
        assert_eq!(parse_pgbench(pgbench), Some((1953, 512)));
        let csv = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                   \"SET\",\"41322.31\",\"0.700\",\"0.100\",\"0.600\",\"1.200\",\"1.900\",\"5.000\"\n";
        assert_eq!(parse_redis_csv(csv), Some((41322, 700, 1900)));
        assert_eq!(thousandths("12"), Some(12_000));
        assert_eq!(thousandths("0.5"), Some(500));
        assert_eq!(parse_redis_csv("nothing"), None);
    }
}
