//! Running `billing-load`: the start-up timings, the bare handler's cells,
//! then each target in turn ([`super::target`]), and the report written
//! out.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::measure::{self, Measured, Results};
use super::report::{self, RunFacts};
use super::target::run_target;
use super::{BenchOptions, Scenario, Target};
use crate::api::{ApiProcess, ApiSpec, wait_ready_at};
use crate::infra::PgServer;
use crate::load::Work;
use crate::process::{self, Child, TempDir};

/// What every part of a run shares: the settings, the run directory, the
/// API token and the run's id (in database names and key prefixes).
pub(super) struct Setup<'a> {
    pub(super) options: &'a BenchOptions,
    pub(super) dir: &'a Path,
    pub(super) token: &'a str,
    pub(super) run_id: &'a str,
}

impl Setup<'_> {
    /// The API's settings but the database and Redis URLs.
    pub(super) fn api_spec(&self) -> ApiSpec {
        ApiSpec {
            bin: self.options.api_bin.clone(),
            database_url: String::new(),
            redis_url: None,
            redis_key_prefix: format!("billing-load-{}", self.run_id),
            token: self.token.to_owned(),
            workers: self.options.workers,
            log: self.options.api_log.clone(),
            extra_env: self.options.api_env.clone(),
        }
    }
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
    let setup = Setup {
        options,
        dir: dir.path(),
        token: &token,
        run_id: &run_id,
    };
    let mut results = Results {
        load_before: measure::loadavg(),
        ..Results::default()
    };
    let started = Instant::now();

    if options.startup_runs > 0 {
        startup_times(&setup, &mut results).await?;
    }
    if options.scenarios.contains(&Scenario::Bare) {
        bare_cells(&setup, &mut results).await?;
    }
    for &target in &options.targets {
        eprintln!("== target {}", target.name());
        run_target(&setup, target, &mut results).await?;
    }

    let facts = RunFacts {
        unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        machine: measure::machine(),
        load_after: measure::loadavg(),
        took: started.elapsed(),
    };
    let report = report::render(options, &results, &facts);
    if let Some(out) = &options.out {
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("report written to {}", out.display());
    }
    Ok(report)
}

/// Spawns the API on `spec` `startup_runs` times (a fresh database from
/// `database` each time) and times each start to readiness.
async fn time_starts(
    setup: &Setup<'_>,
    log_prefix: &str,
    mut database: impl FnMut(usize, ApiSpec) -> Result<(ApiSpec, Option<SharedDatabase>)>,
) -> Result<Vec<Duration>> {
    let mut times = Vec::new();
    for i in 0..setup.options.startup_runs {
        let (spec, _db) = database(i, setup.api_spec())?;
        let log = setup.dir.join(format!("{log_prefix}-{i}.log"));
        let mut api = ApiProcess::spawn("billing-api", &spec, process::free_port()?, &log)?;
        times.push(api.wait_ready(Duration::from_secs(30)).await?);
        api.child_mut().terminate(Duration::from_secs(5));
    }
    Ok(times)
}

/// The start-up time of the embedded default, and of PostgreSQL + Redis
/// when that target runs.
async fn startup_times(setup: &Setup<'_>, results: &mut Results) -> Result<()> {
    let options = setup.options;
    eprintln!(
        "== start-up time of the embedded default ({} runs)",
        options.startup_runs
    );
    let dir = setup.dir.display().to_string();
    let times = time_starts(setup, "startup", |i, spec| {
        let spec = ApiSpec {
            database_url: format!("sqlite://{dir}/startup-{i}.db?mode=rwc"),
            redis_url: None,
            ..spec
        };
        Ok((spec, None))
    })
    .await?;
    results
        .startup
        .push(("embedded (fresh SQLite file)".to_owned(), times));
    if options.targets.contains(&Target::Postgres) {
        let pg = PgServer::from_url(&options.pg_url)?;
        let times = time_starts(setup, "startup-pg", |i, spec| {
            let db =
                SharedDatabase::create(&pg, &format!("billing_load_{}_start{i}", setup.run_id))?;
            let spec = ApiSpec {
                database_url: pg.url(&db.name),
                redis_url: Some(options.redis_url.clone()),
                ..spec
            };
            Ok((spec, Some(db)))
        })
        .await?;
        results
            .startup
            .push(("PostgreSQL + Redis (fresh database)".to_owned(), times));
    }
    Ok(())
}

/// The bare actix-web handler's cells, one per connection count: the
/// HTTP stack's ceiling.
async fn bare_cells(setup: &Setup<'_>, results: &mut Results) -> Result<()> {
    let options = setup.options;
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
    let log = setup.dir.join("bare.log");
    let spawned = Instant::now();
    let mut bare = Child::spawn("bare-server", &mut command, Some(&log))?;
    let base = format!("http://127.0.0.1:{port}");
    wait_ready_at(&base, spawned, Duration::from_secs(10), &mut bare).await?;
    let paths = Arc::new(vec![crate::bare::PATH.to_owned()]);
    let on = Measured {
        target: "bare actix-web",
        base: &base,
        token: setup.token,
        pid: bare.pid(),
        pg: None,
        redis_port: None,
        redis_shared: false,
        redis_pid: None,
    };
    for &connections in &options.connections {
        let work = Work::Get {
            paths: Arc::clone(&paths),
        };
        let cell = measure::measure(options, &on, Scenario::Bare, connections, work).await?;
        eprintln!("{}", report::cell_line(&cell));
        results.cells.push(cell);
    }
    Ok(())
}

/// A database on a shared server, dropped when this is dropped.
pub(super) struct SharedDatabase {
    server: PgServer,
    pub(super) name: String,
}

impl SharedDatabase {
    /// Creates `name` on `server`.
    pub(super) fn create(server: &PgServer, name: &str) -> Result<Self> {
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
