//! The `billing-load` report: pure functions from the measured
//! [`Results`] (and the run's settings and facts) to markdown, section by
//! section, and the one-line progress of a cell.

use std::fmt::Write as _;
use std::time::Duration;

use super::measure::{Cell, Results};
use super::{BenchOptions, Scenario};
use crate::ceilings;
use crate::stats::{self, markdown_table};

mod goals;
#[cfg(test)]
mod tests;

/// What the report says of the run itself, read when it ends.
#[derive(Clone, Debug)]
pub(super) struct RunFacts {
    /// Unix time of the report.
    pub(super) unix: u64,
    /// Cores, CPU model and memory.
    pub(super) machine: String,
    /// `/proc/loadavg` at the end.
    pub(super) load_after: String,
    /// The whole run.
    pub(super) took: Duration,
}

/// The whole markdown report.
pub(super) fn render(options: &BenchOptions, results: &Results, facts: &RunFacts) -> String {
    let mut out = header(options, results, facts);
    out.push_str(&startup(results));
    out.push_str(&throughput(results));
    out.push_str(&cpu(results));
    out.push_str(&user_memory(results));
    out.push_str(&ceilings::render(&results.ceilings));
    out.push_str(&ratios(results));
    out.push_str(&work(results));
    out.push_str(&cache(results));
    let _ = writeln!(out, "## Goals\n");
    out.push_str(&goals::goals(results));
    for note in &results.notes {
        let _ = writeln!(out, "- note: {note}");
    }
    out
}

/// The progress line of a measured cell (printed on stderr).
pub(super) fn cell_line(cell: &Cell) -> String {
    format!(
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
    )
}

/// The title and the run's settings.
fn header(options: &BenchOptions, results: &Results, facts: &RunFacts) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# billing-load report (unix time {})\n", facts.unix);
    let _ = writeln!(out, "- machine: {}", facts.machine);
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
        results.load_before, facts.load_after
    );
    let _ = writeln!(out, "- whole run: {} s\n", facts.took.as_secs());
    out
}

/// The start-up times, when measured.
fn startup(results: &Results) -> String {
    let mut out = String::new();
    if results.startup.is_empty() {
        return out;
    }
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
    out
}

/// The errors of a cell with their kinds: `3 (503 locked ×2, timeout ×1)`.
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

/// Requests per second, latency, errors and peak memory of every cell.
fn throughput(results: &Results) -> String {
    let mut out = String::new();
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
    out
}

/// CPU time per request of every cell.
fn cpu(results: &Results) -> String {
    let mut out = String::new();
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
    out
}

/// The memory of the preparation instance while it created users.
fn user_memory(results: &Results) -> String {
    let mut out = String::new();
    if results.user_rss.is_empty() {
        return out;
    }
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
            let bare = results
                .cell("bare actix-web", Scenario::Bare, cell.connections)
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

/// The database and Redis work per request of one cell, as a table row.
fn work_row(cell: &Cell) -> Vec<String> {
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
}

/// The database and Redis work per request, for the cells that have
/// counters.
fn work(results: &Results) -> String {
    let mut out = String::new();
    let load_rows: Vec<Vec<String>> = results
        .cells
        .iter()
        .filter(|cell| cell.db.is_some() || cell.redis.is_some())
        .map(work_row)
        .collect();
    if load_rows.is_empty() {
        return out;
    }
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
    out
}

/// The catalogue cache's hit ratio and invalidation delay per target.
fn cache(results: &Results) -> String {
    let mut out = String::new();
    if results.cache.is_empty() {
        return out;
    }
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
                stats::percentile(&micros, permille).map_or_else(|| "–".to_owned(), stats::millis)
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
    out
}
