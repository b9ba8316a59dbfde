//! Running one `billing-load` target: its servers, the ceilings (once per
//! run), the data prepared by a first instance, the measured instance's
//! cells scenario by scenario, and the catalogue cache figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::measure::{self, CacheFigures, Measured, Results};
use super::report;
use super::run::{Setup, SharedDatabase};
use super::{Scenario, Target};
use crate::api::{ApiProcess, ApiSpec};
use crate::ceilings;
use crate::client::{self, ApiClient};
use crate::infra::{self, PgServer, PrivatePostgres, PrivateRedis};
use crate::load::{InvoicePool, Work};
use crate::process;
use crate::stats;

/// What a target's API runs on, kept alive for the whole target. Fields
/// drop in order: the private Redis, the private cluster, then the shared
/// database.
struct Backing {
    spec: ApiSpec,
    pg: Option<PgServer>,
    redis_port: Option<u16>,
    redis_shared: bool,
    private_redis: Option<PrivateRedis>,
    _private_pg: Option<PrivatePostgres>,
    _shared_db: Option<SharedDatabase>,
}

impl Backing {
    /// A fresh database on the shared PostgreSQL, the shared Redis.
    fn postgres(setup: &Setup<'_>, db_name: &str) -> Result<Self> {
        let options = setup.options;
        let pg = PgServer::from_url(&options.pg_url)?;
        let shared_db = SharedDatabase::create(&pg, db_name)?;
        let spec = ApiSpec {
            database_url: pg.url(db_name),
            redis_url: Some(options.redis_url.clone()),
            ..setup.api_spec()
        };
        Ok(Self {
            spec,
            pg: Some(pg),
            redis_port: Some(infra::redis_port(&options.redis_url)?),
            redis_shared: true,
            private_redis: None,
            _private_pg: None,
            _shared_db: Some(shared_db),
        })
    }

    /// A SQLite file in the run directory, in-process coordination.
    fn embedded(setup: &Setup<'_>) -> Self {
        let spec = ApiSpec {
            database_url: format!("sqlite://{}/bench.db?mode=rwc", setup.dir.display()),
            ..setup.api_spec()
        };
        Self {
            spec,
            pg: None,
            redis_port: None,
            redis_shared: false,
            private_redis: None,
            _private_pg: None,
            _shared_db: None,
        }
    }

    /// A private PostgreSQL cluster with `pg_stat_statements` and a
    /// private Redis.
    async fn private(setup: &Setup<'_>, db_name: &str, notes: &mut Vec<String>) -> Result<Self> {
        let pg_dir = setup.dir.join("private");
        std::fs::create_dir_all(&pg_dir)?;
        let postgres = PrivatePostgres::start(
            &pg_dir,
            200,
            &["shared_preload_libraries=pg_stat_statements"],
        )?;
        let pg = postgres.server().clone();
        pg.create_database(db_name)?;
        if !pg.enable_statements() {
            notes.push("pg_stat_statements could not be enabled on the private cluster".into());
        }
        let redis = PrivateRedis::start(&pg_dir).await?;
        let spec = ApiSpec {
            database_url: pg.url(db_name),
            redis_url: Some(redis.url()),
            ..setup.api_spec()
        };
        Ok(Self {
            spec,
            pg: Some(pg),
            redis_port: Some(redis.port()),
            redis_shared: false,
            private_redis: Some(redis),
            _private_pg: Some(postgres),
            _shared_db: None,
        })
    }
}

/// The ceilings, once per run, on the servers of the first target that
/// has them (the private ones when that target comes first: no other
/// clients), before the API starts.
fn run_ceilings(
    setup: &Setup<'_>,
    target: Target,
    backing: &Backing,
    results: &mut Results,
) -> Result<()> {
    let options = setup.options;
    let (Some(pg), Some(redis_port)) = (&backing.pg, backing.redis_port) else {
        return Ok(());
    };
    if !options.scenarios.contains(&Scenario::Ceilings) || !results.ceilings.is_empty() {
        return Ok(());
    }
    eprintln!(
        "== ceilings on {}: pgbench hot counter, redis-benchmark SET",
        target.name()
    );
    results.ceilings.extend(ceilings::pgbench_counter(
        pg,
        &format!("billing_ceiling_{}", setup.run_id),
        &options.connections,
        options.duration,
        setup.dir,
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
    Ok(())
}

/// The data the cells use.
struct Prepared {
    plan_id: i64,
    users: Vec<i64>,
    /// Invoices for `GET /invoices/{id}`.
    readable: Vec<i64>,
}

/// Data is prepared by a first instance, which is then stopped: the
/// measured instance's memory reflects the measured traffic only.
/// Creating users (argon2id, 19 MiB per hash) is what costs memory; its
/// growth is recorded here.
async fn prepare(
    setup: &Setup<'_>,
    target: Target,
    spec: &ApiSpec,
    tag: &str,
    results: &mut Results,
) -> Result<Prepared> {
    let run_id = setup.run_id;
    let mut prep_api = ApiProcess::spawn(
        "billing-api (preparation)",
        spec,
        process::free_port()?,
        &setup.dir.join(format!("api-{tag}-prep.log")),
    )?;
    let ready = prep_api.wait_ready(Duration::from_secs(60)).await?;
    eprintln!("   API ready in {}", stats::seconds(ready));
    let client = ApiClient::new(prep_api.base(), setup.token)?;
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
    let readable = client::create_plain_invoices(
        &client,
        &users,
        plan_id,
        200,
        setup.options.prep_concurrency,
    )
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
    Ok(Prepared {
        plan_id,
        users,
        readable,
    })
}

/// Spawns an instance on `spec` and waits until it is ready.
async fn start_api(setup: &Setup<'_>, name: &str, spec: &ApiSpec, log: &str) -> Result<ApiProcess> {
    let mut api = ApiProcess::spawn(name, spec, process::free_port()?, &setup.dir.join(log))?;
    api.wait_ready(Duration::from_secs(60)).await?;
    Ok(api)
}

/// The invoices to pay, carried from one pay cell to the next.
#[derive(Debug, Default)]
struct PayInvoices {
    /// Prepared and not paid yet.
    leftover: Vec<i64>,
    /// The rate of the last pay cell: the next needs about 3× as many.
    last_rps: Option<u64>,
}

impl PayInvoices {
    /// Tops the invoices up to what a cell may pay, and the cell's work.
    async fn work(
        &mut self,
        setup: &Setup<'_>,
        client: &ApiClient,
        prepared: &Prepared,
        key_prefix: &str,
    ) -> Result<Work> {
        let options = setup.options;
        let secs = (options.duration + options.warmup).as_secs().max(1);
        let per_second = self
            .last_rps
            .map_or(1500, |rps| rps.saturating_mul(3).max(1500));
        let wanted = usize::try_from(per_second.saturating_mul(secs))
            .unwrap_or(usize::MAX)
            .min(options.pay_pool_max);
        if self.leftover.len() < wanted {
            let top_up = Instant::now();
            let more = client::create_payable_invoices(
                client,
                &prepared.users,
                prepared.plan_id,
                wanted - self.leftover.len(),
                options.prep_concurrency,
            )
            .await?;
            eprintln!(
                "   prepared {} payable invoices (subscription + invoice) in {}",
                more.len(),
                stats::seconds(top_up.elapsed())
            );
            self.leftover.extend(more);
        }
        Ok(Work::Pay {
            pool: Arc::new(InvoicePool::new(std::mem::take(&mut self.leftover))),
            key_prefix: key_prefix.to_owned(),
            retry: false,
            backoff: Duration::ZERO,
        })
    }
}

/// The work of a cell of `scenario`; `None` for the scenarios that do not
/// run per target.
async fn work_of(
    scenario: Scenario,
    setup: &Setup<'_>,
    client: &ApiClient,
    prepared: &Prepared,
    pay: &mut PayInvoices,
    key_prefix: &str,
) -> Result<Option<Work>> {
    Ok(Some(match scenario {
        Scenario::Bare | Scenario::Ceilings => return Ok(None),
        Scenario::Live => Work::Get {
            paths: Arc::new(vec!["/health/live".to_owned()]),
        },
        Scenario::Plans => Work::Get {
            paths: Arc::new(vec!["/api/v1/plans".to_owned()]),
        },
        Scenario::Invoice => Work::Get {
            paths: Arc::new(
                prepared
                    .readable
                    .iter()
                    .map(|id| format!("/api/v1/invoices/{id}"))
                    .collect(),
            ),
        },
        Scenario::Create | Scenario::CreateAlone => Work::CreateInvoice {
            users: Arc::new(prepared.users.clone()),
            plan_id: prepared.plan_id,
        },
        Scenario::Pay => pay.work(setup, client, prepared, key_prefix).await?,
    }))
}

/// Every cell of the target: scenario × connections, creations without
/// batching on `alone` (a second instance), the rest on `measured`.
async fn cells(
    setup: &Setup<'_>,
    client: &ApiClient,
    prepared: &Prepared,
    (measured, alone): (&Measured<'_>, Option<&Measured<'_>>),
    key_prefix: &str,
    results: &mut Results,
) -> Result<()> {
    let mut pay = PayInvoices::default();
    for &scenario in &setup.options.scenarios {
        for &connections in &setup.options.connections {
            let Some(work) =
                work_of(scenario, setup, client, prepared, &mut pay, key_prefix).await?
            else {
                continue;
            };
            let pool = match &work {
                Work::Pay { pool, .. } => Some(Arc::clone(pool)),
                Work::Get { .. } | Work::CreateInvoice { .. } => None,
            };
            let on = match (scenario, alone) {
                (Scenario::CreateAlone, Some(alone)) => alone,
                _ => measured,
            };
            let cell = measure::measure(setup.options, on, scenario, connections, work).await?;
            if let Some(pool) = pool {
                pay.leftover = pool.untaken();
                pay.last_rps = Some(cell.summary.rps);
            }
            eprintln!("{}", report::cell_line(&cell));
            results.cells.push(cell);
        }
    }
    Ok(())
}

/// The catalogue cache of the measured instance: its read counters, and
/// the invalidation delay over a second instance (none on the embedded
/// default, which runs one instance).
async fn cache_figures(
    setup: &Setup<'_>,
    target: Target,
    backing: &Backing,
    client: &ApiClient,
    (tag, plan_id): (&str, i64),
) -> Result<CacheFigures> {
    let reads = measure::catalogue_reads(&client.metrics().await?);
    let delays = match target {
        Target::Postgres | Target::Private => {
            eprintln!("   measuring the invalidation delay over a second instance");
            measure::invalidation_delays(
                &backing.spec,
                &setup.dir.join(format!("api-{tag}-second.log")),
                setup.token,
                client,
                plan_id,
            )
            .await?
        }
        Target::Embedded => Vec::new(),
    };
    Ok(CacheFigures {
        target: target.name().to_owned(),
        reads,
        delays,
    })
}

/// Runs one target: its servers, the ceilings if not measured yet, the
/// data, every cell, the numbering check and the cache figures.
pub(super) async fn run_target(
    setup: &Setup<'_>,
    target: Target,
    results: &mut Results,
) -> Result<()> {
    let options = setup.options;
    let db_name = format!("billing_load_{}", setup.run_id);
    let backing = match target {
        Target::Postgres => Backing::postgres(setup, &db_name)?,
        Target::Embedded => Backing::embedded(setup),
        Target::Private => Backing::private(setup, &db_name, &mut results.notes).await?,
    };
    run_ceilings(setup, target, &backing, results)?;
    let tag = format!("{target:?}").to_lowercase();
    let prepared = prepare(setup, target, &backing.spec, &tag, results).await?;

    let spec = &backing.spec;
    let mut api = start_api(setup, "billing-api", spec, &format!("api-{tag}.log")).await?;
    let client = ApiClient::new(api.base(), setup.token)?;
    if let Some(rss) = process::rss_kib(api.pid()) {
        results.ready_rss_kib.push((target.name().to_owned(), rss));
    }
    let measured = Measured {
        target: target.name(),
        base: api.base(),
        token: setup.token,
        pid: api.pid(),
        pg: backing.pg.as_ref().map(|pg| (pg, db_name.as_str())),
        redis_port: backing.redis_port,
        redis_shared: backing.redis_shared,
        redis_pid: backing.private_redis.as_ref().and_then(PrivateRedis::pid),
    };
    // Creations one transaction each: a second instance on the same data.
    let mut alone_api = None;
    if options.scenarios.contains(&Scenario::CreateAlone) {
        let mut alone_spec = spec.clone();
        alone_spec
            .extra_env
            .push(("BILLING_INVOICE_BATCHING".to_owned(), "false".to_owned()));
        let log = format!("api-{tag}-alone.log");
        alone_api = Some(start_api(setup, "billing-api (batching off)", &alone_spec, &log).await?);
    }
    let alone_measured = alone_api.as_ref().map(|second| Measured {
        base: second.base(),
        pid: second.pid(),
        ..measured
    });
    let key_prefix = format!("load-{}-{tag}", setup.run_id);
    let on = (&measured, alone_measured.as_ref());
    cells(setup, &client, &prepared, on, &key_prefix, results).await?;
    if let Some(status) = api.child_mut().exited() {
        bail!("the API exited during the run ({status})");
    }
    if let Some(pg) = &backing.pg {
        let check = measure::numbering_check(pg, &db_name)?;
        results.notes.push(format!("{}: {check}", target.name()));
    }
    let figures = (tag.as_str(), prepared.plan_id);
    let cache = cache_figures(setup, target, &backing, &client, figures).await?;
    results.cache.push(cache);
    if let Some(mut second) = alone_api {
        second.child_mut().terminate(Duration::from_secs(10));
    }
    api.child_mut().terminate(Duration::from_secs(10));
    Ok(())
}
