//! The report of a fault scenario: a pure function from its [`Figures`]
//! (the setting, the timeline, the criteria and invariants, the notes) to
//! markdown ending with `VERDICT: PASS <scenario>` or `VERDICT: FAIL`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::{Criterion, FaultScenario, secs};
use crate::invariants::Check;
use crate::stats::markdown_table;

/// What the report says of the environment and the loads.
#[derive(Clone, Debug)]
pub(super) struct Setting {
    pub(super) instances: usize,
    /// HTTP workers per instance.
    pub(super) workers: usize,
    pub(super) in_flight_ttl: Duration,
    pub(super) db_acquire_timeout: Duration,
    pub(super) pg_port: u16,
    pub(super) redis_port: u16,
    /// Payment connections and their rate per connection.
    pub(super) pay: (usize, u32),
    /// Read connections and their rate per connection.
    pub(super) read: (usize, u32),
    pub(super) plan_id: i64,
}

/// Everything the report of a scenario shows.
#[derive(Clone, Debug)]
pub(super) struct Figures<'a> {
    pub(super) scenario: FaultScenario,
    pub(super) setting: Setting,
    /// What happened when, from the start of the load.
    pub(super) timeline: &'a [(Duration, String)],
    pub(super) criteria: &'a [Criterion],
    pub(super) checks: &'a [Check],
    /// Informative lines, not part of the verdict.
    pub(super) notes: &'a [String],
    /// The run directory, named on FAIL (where the logs are kept).
    pub(super) logs: &'a Path,
}

impl Figures<'_> {
    /// Whether every criterion and invariant held.
    pub(super) fn pass(&self) -> bool {
        self.criteria.iter().all(|c| c.ok) && self.checks.iter().all(|c| c.ok)
    }
}

/// `PASS` or `FAIL`.
fn pass_fail(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

/// The markdown report of a scenario.
pub(super) fn render(figures: &Figures<'_>) -> String {
    let mut out = String::new();
    let setting = &figures.setting;
    let _ = writeln!(out, "## {}\n", figures.scenario.name());
    let _ = writeln!(
        out,
        "{} API instances ({} HTTP worker(s) each, in-flight TTL {} s, DB acquire timeout {} s) over a private PostgreSQL \
         (port {}) and a private Redis (port {}); payment load {} connections × ≤ {} req/s, read \
         load {} connections × ≤ {} req/s (plan {}).\n",
        setting.instances,
        setting.workers,
        secs(setting.in_flight_ttl),
        secs(setting.db_acquire_timeout),
        setting.pg_port,
        setting.redis_port,
        setting.pay.0,
        setting.pay.1,
        setting.read.0,
        setting.read.1,
        setting.plan_id,
    );
    let rows: Vec<Vec<String>> = figures
        .timeline
        .iter()
        .map(|(t, what)| vec![secs(*t), what.clone()])
        .collect();
    out.push_str(&markdown_table(&["t (s)", "event"], &rows));
    out.push('\n');
    let rows: Vec<Vec<String>> = figures
        .criteria
        .iter()
        .map(|c| vec![pass_fail(c.ok).to_owned(), c.name.clone(), c.detail.clone()])
        .chain(figures.checks.iter().map(|c| {
            vec![
                pass_fail(c.ok).to_owned(),
                format!("invariant: {}", c.name),
                c.detail.clone(),
            ]
        }))
        .collect();
    out.push_str(&markdown_table(&["", "criterion", "measured"], &rows));
    for note in figures.notes {
        let _ = writeln!(out, "\n- {note}");
    }
    let pass = figures.pass();
    let _ = writeln!(
        out,
        "\nVERDICT: {} {}",
        pass_fail(pass),
        figures.scenario.name()
    );
    if !pass {
        let _ = writeln!(out, "(logs kept in {})", figures.logs.display());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::criterion;
    use super::*;

    fn setting() -> Setting {
        Setting {
            instances: 3,
            workers: 1,
            in_flight_ttl: Duration::from_secs(5),
            db_acquire_timeout: Duration::from_millis(5_500),
            pg_port: 40_001,
            redis_port: 40_002,
            pay: (9, 40),
            read: (3, 50),
            plan_id: 7,
        }
    }

    fn check(ok: bool) -> Check {
        Check {
            name: "every acknowledged payment is in the database",
            ok,
            detail: "120 paid".to_owned(),
        }
    }

    #[test]
    fn a_scenario_whose_criteria_and_invariants_hold_passes() {
        let timeline = [
            (Duration::ZERO, "load starts".to_owned()),
            (
                Duration::from_millis(5_012),
                "Redis killed (SIGKILL)".to_owned(),
            ),
        ];
        let criteria = [criterion(
            "reads keep working while Redis is down",
            true,
            "300 reads: 200 ×300, p99 2.00 ms",
        )];
        let checks = [check(true)];
        let notes = ["refund probe (informative): attempt 1: 200".to_owned()];
        let figures = Figures {
            scenario: FaultScenario::RedisOutage,
            setting: setting(),
            timeline: &timeline,
            criteria: &criteria,
            checks: &checks,
            notes: &notes,
            logs: Path::new("/tmp/billing-faults-1"),
        };
        assert!(figures.pass());
        assert_eq!(
            render(&figures),
            "## redis-outage\n\n\
             3 API instances (1 HTTP worker(s) each, in-flight TTL 5.000 s, DB acquire timeout 5.500 s) over a private PostgreSQL \
             (port 40001) and a private Redis (port 40002); payment load 9 connections × ≤ 40 req/s, read \
             load 3 connections × ≤ 50 req/s (plan 7).\n\n\
             | t (s) | event |\n|---|---|\n\
             | 0.000 | load starts |\n\
             | 5.012 | Redis killed (SIGKILL) |\n\n\
             |  | criterion | measured |\n|---|---|---|\n\
             | PASS | reads keep working while Redis is down | 300 reads: 200 ×300, p99 2.00 ms |\n\
             | PASS | invariant: every acknowledged payment is in the database | 120 paid |\n\
             \n- refund probe (informative): attempt 1: 200\n\
             \nVERDICT: PASS redis-outage\n"
        );
    }

    #[test]
    fn one_broken_invariant_fails_the_scenario_and_names_the_logs() {
        let criteria = [criterion("no API instance died", true, "all running")];
        let checks = [check(false)];
        let figures = Figures {
            scenario: FaultScenario::KillInstance,
            setting: setting(),
            timeline: &[],
            criteria: &criteria,
            checks: &checks,
            notes: &[],
            logs: Path::new("/tmp/billing-faults-2"),
        };
        assert!(!figures.pass());
        let report = render(&figures);
        assert!(
            report.contains(
                "| FAIL | invariant: every acknowledged payment is in the database | 120 paid |\n"
            ),
            "{report}"
        );
        assert!(
            report
                .ends_with("\nVERDICT: FAIL kill-instance\n(logs kept in /tmp/billing-faults-2)\n"),
            "{report}"
        );
    }

    #[test]
    fn a_failed_criterion_fails_the_scenario() {
        let criteria = [
            criterion("a", true, "fine"),
            criterion("payments answer 503", false, "12 payments: 500 ×12"),
        ];
        let figures = Figures {
            scenario: FaultScenario::PostgresRestart,
            setting: setting(),
            timeline: &[],
            criteria: &criteria,
            checks: &[check(true)],
            notes: &[],
            logs: Path::new("/tmp/x"),
        };
        let report = render(&figures);
        assert!(
            report.contains("| FAIL | payments answer 503 | 12 payments: 500 ×12 |\n"),
            "{report}"
        );
        assert!(
            report.contains("\nVERDICT: FAIL postgres-restart\n"),
            "{report}"
        );
    }
}
