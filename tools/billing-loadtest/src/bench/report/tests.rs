//! The report's renderers on fixed figures: exact rows, lines and goals.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::super::measure::{CacheFigures, Cell, CpuUse, Results};
use super::super::{BenchOptions, Scenario, Target};
use super::*;
use crate::ceilings::{self, Ceiling};
use crate::infra::DbStats;
use crate::load::Summary;

fn cell(target: &str, scenario: Scenario, connections: usize, rps: u64, p99_us: u64) -> Cell {
    Cell {
        target: target.to_owned(),
        scenario,
        connections,
        summary: Summary {
            requests: rps * 10,
            ok: rps * 10,
            errors: 0,
            rps,
            p50_us: 1_234,
            p99_us,
            max_us: 20_000,
            window: Duration::from_secs(10),
        },
        all_requests: rps * 11,
        all_ok: rps * 11,
        error_kinds: BTreeMap::new(),
        peak_rss_kib: Some(51_234),
        pool_exhausted: false,
        db: None,
        statements: None,
        redis: None,
        cpu: CpuUse::default(),
    }
}

fn options() -> BenchOptions {
    BenchOptions {
        api_bin: PathBuf::from("target/release/billing-api"),
        targets: vec![Target::Postgres],
        scenarios: vec![Scenario::Plans],
        connections: vec![1, 64],
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(1),
        pg_url: String::new(),
        redis_url: String::new(),
        workers: 2,
        api_log: "warn".to_owned(),
        api_env: vec![("MALLOC_ARENA_MAX".to_owned(), "2".to_owned())],
        startup_runs: 0,
        pay_pool_max: 0,
        prep_concurrency: 1,
        request_timeout: Duration::from_secs(10),
        out: None,
        keep: false,
        self_exe: PathBuf::new(),
    }
}

const PG: &str = "postgres+redis";

/// Bare handler, plans and pay on PostgreSQL at 64 connections, the
/// pgbench ceiling.
fn results() -> Results {
    let mut pay = cell(PG, Scenario::Pay, 64, 3000, 40_000);
    pay.summary.errors = 3;
    pay.error_kinds = BTreeMap::from([("503 locked".to_owned(), 2), ("timeout".to_owned(), 1)]);
    pay.pool_exhausted = true;
    pay.db = Some(DbStats {
        commits: 66_000,
        rollbacks: 0,
        tuples_returned: 33_000,
        tuples_fetched: 0,
        tuples_inserted: 33_000,
        tuples_updated: 66_000,
        tuples_deleted: 0,
    });
    pay.cpu = CpuUse {
        server_us: 9_900_000,
        postgres_us: 3_300_000,
        redis_us: 0,
        client_us: 1_650_000,
        machine_busy_us: 15_000_000,
        machine_total_us: 20_000_000,
    };
    Results {
        cells: vec![
            cell("bare actix-web", Scenario::Bare, 64, 50_000, 2_500),
            cell(PG, Scenario::Plans, 64, 21_000, 9_000),
            pay,
        ],
        ceilings: vec![Ceiling {
            name: ceilings::PGBENCH,
            clients: 64,
            per_second: 6_000,
            mean_us: 10_000,
            p99_us: None,
        }],
        load_before: "0.50 0.40 0.30".to_owned(),
        ..Results::default()
    }
}

#[test]
fn the_throughput_table_has_one_row_per_cell_with_the_errors_by_kind() {
    let table = throughput(&results());
    assert!(
        table.contains(
            "| postgres+redis | POST /invoices/{id}/pay | 64 | 30000 | 3000 (pool ran out) | 1.23 | 40.00 | 20.00 | 3 (503 locked ×2, timeout ×1) | 50.0 |\n"
        ),
        "{table}"
    );
    assert!(table.starts_with("## Throughput and latency\n\n| target | scenario | conns |"));
}

#[test]
fn cpu_and_work_are_per_request_of_the_whole_cell() {
    let results = results();
    let cpu = cpu(&results);
    assert!(
        cpu.contains(
            "| postgres+redis | POST /invoices/{id}/pay | 64 | 300 | 100 | 0 | 50 | 75.0 % |\n"
        ),
        "{cpu}"
    );
    // Only the pay cell has database counters.
    let work = work(&results);
    assert_eq!(work.matches("| postgres+redis |").count(), 1, "{work}");
    assert!(
        work.contains("| postgres+redis | POST /invoices/{id}/pay | 64 | 2.00 | 0.00 | n/a | 1.00 | 3.00 | n/a |  |\n"),
        "{work}"
    );
}

#[test]
fn each_cell_is_compared_with_the_ceilings_at_its_connections() {
    let ratios = ratios(&results());
    assert!(
        ratios.contains("| postgres+redis | GET /plans | 64 | 21000 | 9.00 | 0.42 | 3.50 | – |\n"),
        "{ratios}"
    );
    // The bare handler is the ceiling, not a row.
    assert!(!ratios.contains("| bare actix-web |"), "{ratios}");
    assert_eq!(super::ratios(&Results::default()), "");
}

#[test]
fn goals_say_met_or_missed_with_the_ratio() {
    let goals = goals::goals(&results());
    assert_eq!(
        goals,
        "- postgres+redis: GET /plans at 64 connections = 21000 req/s = 42.0 % of the bare handler's 50000 req/s (goal ≥ 40 %): MET\n\
         - postgres+redis: pay at 64 connections = 3000 req/s, p99 40.00 ms (goal ≥ 4000, p99 ≤ 50 ms): MISSED (75.0 % of the rate)\n\
         - API peak RSS over every measured cell = 50.0 MiB (goal < 100): MET\n"
    );
}

#[test]
fn a_slow_read_misses_its_goal_and_startup_is_informative_off_the_embedded_default() {
    let mut results = results();
    results.cells[1].summary.rps = 19_999;
    results
        .cells
        .push(cell(PG, Scenario::Create, 64, 2_600, 120_000));
    results.startup = vec![
        (
            "embedded (fresh SQLite file)".to_owned(),
            vec![Duration::from_millis(300), Duration::from_millis(412)],
        ),
        (
            "PostgreSQL + Redis (fresh database)".to_owned(),
            vec![Duration::from_millis(1_200)],
        ),
    ];
    let goals = goals::goals(&results);
    assert!(
        goals.contains(
            "= 19999 req/s = 40.0 % of the bare handler's 50000 req/s (goal ≥ 40 %): MISSED\n"
        ),
        "{goals}"
    );
    assert!(
        goals.contains("- postgres+redis: POST /invoices with batching at 64 connections = 2600 req/s, p99 120.00 ms (goal ≥ 2500, p99 ≤ 100 ms): MISSED\n"),
        "{goals}"
    );
    assert!(
        goals.contains("- ready after start, embedded (fresh SQLite file): median 0.300 s, max 0.412 s (goal < 1 s): MET\n"),
        "{goals}"
    );
    assert!(
        goals.contains("- ready after start, PostgreSQL + Redis (fresh database): median 1.200 s, max 1.200 s (goal < 1 s, informative): MISSED\n"),
        "{goals}"
    );
}

#[test]
fn the_header_states_the_settings_and_the_facts() {
    let facts = RunFacts {
        unix: 1_700_000_000,
        machine: "2 cores (Test CPU), 7 GiB RAM".to_owned(),
        load_after: "1.00 0.50 0.25".to_owned(),
        took: Duration::from_secs(125),
    };
    assert_eq!(
        header(&options(), &results(), &facts),
        "# billing-load report (unix time 1700000000)\n\n\
         - machine: 2 cores (Test CPU), 7 GiB RAM\n\
         - cells: 10 s measured after 1 s warm-up, connections [1, 64], 2 HTTP workers (API and bare server), API log level `warn`\n\
         - load generator: this process (tokio + reqwest, one keep-alive connection per task), on the same cores as the API and the databases\n\
         - extra API environment: `MALLOC_ARENA_MAX=2`\n\
         - load average (1, 5, 15 min) at the start: 0.50 0.40 0.30; at the end: 1.00 0.50 0.25\n\
         - whole run: 125 s\n\n"
    );
}

#[test]
fn the_report_ends_with_the_goals_and_notes() {
    let mut results = results();
    results
        .notes
        .push("postgres+redis: invoice numbers gapless".to_owned());
    results.cache.push(CacheFigures {
        target: PG.to_owned(),
        reads: [90, 9, 1],
        delays: vec![Duration::from_micros(1_500), Duration::from_micros(3_000)],
    });
    let facts = RunFacts {
        unix: 0,
        machine: String::new(),
        load_after: String::new(),
        took: Duration::ZERO,
    };
    let report = render(&options(), &results, &facts);
    assert!(
        report.contains("| postgres+redis | 90.0 % | 90 / 9 / 1 | 2 | 1.50 | 3.00 | 3.00 |\n"),
        "{report}"
    );
    let goals = report.find("## Goals\n\n").expect("a goals section");
    assert!(
        report
            .find("## Catalogue cache")
            .is_some_and(|cache| cache < goals)
    );
    assert!(
        report.ends_with("MET\n- note: postgres+redis: invoice numbers gapless\n"),
        "{report}"
    );
}

#[test]
fn the_progress_line_of_a_cell() {
    let mut pay = cell(PG, Scenario::Pay, 16, 2500, 12_345);
    pay.summary.errors = 2;
    pay.pool_exhausted = true;
    assert_eq!(
        cell_line(&pay),
        "   POST /invoices/{id}/pay     16 conns:   2500 req/s  p50 1.23 ms  p99 12.35 ms  errors 2 (pool exhausted)"
    );
}
