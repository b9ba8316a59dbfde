//! The goals section of the `billing-load` report: one line per goal with
//! the measured figure and `MET` or `MISSED`, from the [`Results`] alone.

use std::fmt::Write as _;
use std::time::Duration;

use super::super::measure::{Cell, Results};
use super::super::{Scenario, Target};
use crate::ceilings;
use crate::stats;

/// `MET` or `MISSED`.
fn met(met: bool) -> &'static str {
    if met { "MET" } else { "MISSED" }
}

/// Every goal line, in order: per target the reads, payments and
/// creations at the largest connection count, then memory and start-up.
pub(super) fn goals(results: &Results) -> String {
    let mut out = String::new();
    let max_conns = results
        .cells
        .iter()
        .map(|c| c.connections)
        .max()
        .unwrap_or(64);
    for target in [Target::Postgres, Target::Private, Target::Embedded] {
        out.push_str(&read_goals(results, target, max_conns));
        out.push_str(&write_goals(results, target, max_conns));
    }
    out.push_str(&memory_goals(results));
    out.push_str(&startup_goals(results));
    out
}

/// A read's throughput as a share of the bare handler's (goal: at least
/// `goal_percent`).
fn bare_share(
    target: Target,
    request: &str,
    max_conns: usize,
    cell: &Cell,
    bare: &Cell,
    goal_percent: u64,
) -> String {
    format!(
        "- {}: {request} at {max_conns} connections = {} req/s = {} of the bare handler's {} req/s (goal ≥ {goal_percent} %): {}\n",
        target.name(),
        cell.summary.rps,
        stats::percent(cell.summary.rps, bare.summary.rps),
        bare.summary.rps,
        met(cell.summary.rps * 100 >= bare.summary.rps * goal_percent)
    )
}

/// A write's throughput and p99 latency (goal: at least `rate` per
/// second, p99 at most `p99_ms`); with `share`, a miss says the share of
/// the rate reached.
fn rate_goal(
    target: Target,
    request: &str,
    max_conns: usize,
    cell: &Cell,
    (rate, p99_ms): (u64, u64),
    share: bool,
) -> String {
    let met = cell.summary.rps >= rate && cell.summary.p99_us <= p99_ms * 1000;
    format!(
        "- {}: {request} at {max_conns} connections = {} req/s, p99 {} ms (goal ≥ {rate}, p99 ≤ {p99_ms} ms): {}\n",
        target.name(),
        cell.summary.rps,
        stats::millis(cell.summary.p99_us),
        if met || !share {
            self::met(met).to_owned()
        } else {
            format!(
                "MISSED ({} of the rate)",
                stats::percent(cell.summary.rps, rate)
            )
        }
    )
}

/// `GET /plans` (≥ 40 % of the bare handler) and `GET /invoices/{id}`
/// (≥ 20 %).
fn read_goals(results: &Results, target: Target, max_conns: usize) -> String {
    let mut out = String::new();
    let Some(bare) = results.cell("bare actix-web", Scenario::Bare, max_conns) else {
        return out;
    };
    if let Some(plans) = results.cell(target.name(), Scenario::Plans, max_conns) {
        out.push_str(&bare_share(
            target,
            "GET /plans",
            max_conns,
            plans,
            bare,
            40,
        ));
    }
    if let Some(read) = results.cell(target.name(), Scenario::Invoice, max_conns) {
        out.push_str(&bare_share(
            target,
            "GET /invoices/{id}",
            max_conns,
            read,
            bare,
            20,
        ));
    }
    out
}

/// Payments (≥ 4000/s, p99 ≤ 50 ms), creations without batching (≥ 50 %
/// of the hot counter) and with it (≥ 2500/s, p99 ≤ 100 ms).
fn write_goals(results: &Results, target: Target, max_conns: usize) -> String {
    let mut out = String::new();
    if let Some(pay) = results.cell(target.name(), Scenario::Pay, max_conns) {
        out.push_str(&rate_goal(target, "pay", max_conns, pay, (4000, 50), true));
    }
    let counter = ceilings::find(&results.ceilings, ceilings::PGBENCH, max_conns);
    if let (Some(alone), Some(counter)) = (
        results.cell(target.name(), Scenario::CreateAlone, max_conns),
        counter,
    ) {
        let _ = writeln!(
            out,
            "- {}: POST /invoices without batching at {max_conns} connections = {} req/s = {} of the hot counter's {counter} tps (goal ≥ 50 %): {}",
            target.name(),
            alone.summary.rps,
            stats::percent(alone.summary.rps, counter),
            met(alone.summary.rps * 2 >= counter)
        );
    }
    if let Some(create) = results.cell(target.name(), Scenario::Create, max_conns) {
        let request = "POST /invoices with batching";
        out.push_str(&rate_goal(
            target,
            request,
            max_conns,
            create,
            (2500, 100),
            false,
        ));
    }
    out
}

/// The API's peak memory over the cells and while creating users (goal:
/// under 100 MiB).
fn memory_goals(results: &Results) -> String {
    let mut out = String::new();
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
            met(peak < 100 * 1024)
        );
    }
    for (name, _, peak) in &results.user_rss {
        let _ = writeln!(
            out,
            "- API peak RSS while creating 8 users ({name}) = {} MiB (goal < 100): {}",
            stats::mib(*peak),
            met(*peak < 100 * 1024)
        );
    }
    out
}

/// The start-up times (goal: under 1 s; informative but for the embedded
/// default).
fn startup_goals(results: &Results) -> String {
    let mut out = String::new();
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
            met(max < Duration::from_secs(1))
        );
    }
    out
}
