//! `billing-faults`: fault scenarios against three `billing-api`
//! instances sharing a private PostgreSQL cluster and a private Redis (both
//! started here on free ports: the machine's shared servers are never
//! stopped). Each scenario prepares data, runs a paced payment load and a
//! read load across the instances, injects one fault, checks its timing
//! criteria from the recorded answers, checks the database
//! [`invariants`](crate::invariants), and ends with `VERDICT: PASS` or
//! `VERDICT: FAIL`.
//!
//! The payment load behaves as a careful client: after a 5xx or a
//! transport error it sends the same invoice with the same
//! `Idempotency-Key` again (after a short back-off); a 409
//! `idempotency_in_flight` marks the invoice "in doubt" for later.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::task::JoinHandle;

use crate::api::{ApiProcess, ApiSpec};
use crate::client::{self, ApiClient};
use crate::infra::{PgServer, PrivatePostgres, PrivateRedis};
use crate::invariants::{self, Acks, Check, Snapshot};
use crate::load::{self, InvoicePool, LoadRun, LoadSpec, Outcome, Sample, Work};
use crate::process::{self, TempDir};
use crate::stats::{self, markdown_table};

mod delivery;

/// The fault to inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FaultScenario {
    /// Redis killed under payment load, started again (empty) later.
    RedisOutage,
    /// PostgreSQL stopped (fast shutdown) under load, started again later.
    PostgresRestart,
    /// One API instance killed with SIGKILL under payment load.
    KillInstance,
    /// The instances sending webhooks killed with SIGKILL while deliveries
    /// are in flight; every event must still reach a loopback receiver.
    KillDuringDelivery,
}

impl FaultScenario {
    /// The command-line name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::RedisOutage => "redis-outage",
            Self::PostgresRestart => "postgres-restart",
            Self::KillInstance => "kill-instance",
            Self::KillDuringDelivery => "kill-during-delivery",
        }
    }
}

/// Settings of a fault run.
#[derive(Clone, Debug)]
pub struct FaultOptions {
    /// The `billing-api` release binary.
    pub api_bin: PathBuf,
    /// API instances (at least 2 for `kill-instance`).
    pub instances: usize,
    /// HTTP workers per instance.
    pub workers: usize,
    /// Payment connections (spread over the instances).
    pub pay_connections: usize,
    /// Payments per second per connection at most.
    pub pay_rate: u32,
    /// Read connections (`GET /plans`, `GET /invoices/{id}`).
    pub read_connections: usize,
    /// Reads per second per connection at most.
    pub read_rate: u32,
    /// Load before the fault.
    pub before: Duration,
    /// How long Redis or PostgreSQL stays down.
    pub outage: Duration,
    /// Load after the fault ends.
    pub after: Duration,
    /// `BILLING_IDEMPOTENCY_IN_FLIGHT_TTL` of the instances.
    pub in_flight_ttl: Duration,
    /// Redis: payments must succeed again within this time of Redis
    /// answering.
    pub redis_recovery: Duration,
    /// Redis: p99 latency bound of the 503s during the outage.
    pub redis_fail_fast: Duration,
    /// `BILLING_DB_ACQUIRE_TIMEOUT` of the instances: how long a request
    /// waits for a database connection before 503.
    pub db_acquire_timeout: Duration,
    /// PostgreSQL: every request must succeed from this long after the
    /// server is back.
    pub postgres_recovery: Duration,
    /// The whole scenario must end within this.
    pub time_limit: Duration,
    /// `BILLING_LOG` of the instances.
    pub api_log: String,
    /// Keep the run directory (logs of the instances and servers).
    pub keep: bool,
    /// `kill-during-delivery`: `BILLING_WEBHOOK_LEASE_TTL` of the instances
    /// (their `BILLING_WEBHOOK_TIMEOUT` is half of it).
    pub webhook_lease_ttl: Duration,
    /// `kill-during-delivery`: how long the deliveries may take to settle
    /// after the load.
    pub settle_limit: Duration,
}

/// The outcome of a scenario.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The scenario.
    pub scenario: FaultScenario,
    /// Whether every criterion and invariant held.
    pub pass: bool,
    /// The markdown report.
    pub report: String,
}

/// A criterion of a scenario.
#[derive(Clone, Debug)]
struct Criterion {
    name: String,
    ok: bool,
    detail: String,
}

fn criterion(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Criterion {
    Criterion {
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

/// Everything a scenario runs against. Fields drop in order: the
/// instances stop before the servers, the directory goes last.
struct Env {
    apis: Vec<ApiProcess>,
    redis: PrivateRedis,
    postgres: PrivatePostgres,
    dir: TempDir,
    pg: PgServer,
    token: String,
    run_id: String,
    plan_id: i64,
    reads: Vec<String>,
    pool: Arc<InvoicePool>,
}

const DATABASE: &str = "billing";

impl Env {
    async fn start(
        options: &FaultOptions,
        pool_size: usize,
        extra_env: &[(String, String)],
    ) -> Result<Self> {
        let mut dir = TempDir::new(&std::env::temp_dir(), "billing-faults")?;
        if options.keep {
            dir.keep();
        }
        eprintln!("   run directory {}", dir.path().display());
        let postgres = PrivatePostgres::start(dir.path(), 200, &[])?;
        let pg = postgres.server().clone();
        pg.create_database(DATABASE)?;
        let redis = PrivateRedis::start(dir.path()).await?;
        let token = format!("{:032x}", rand::random::<u128>());
        let run_id = format!("{:08x}", rand::random::<u32>());
        let spec = ApiSpec {
            bin: options.api_bin.clone(),
            database_url: pg.url(DATABASE),
            redis_url: Some(redis.url()),
            redis_key_prefix: format!("faults-{run_id}"),
            token: token.clone(),
            workers: options.workers,
            log: options.api_log.clone(),
            extra_env: vec![
                (
                    "BILLING_IDEMPOTENCY_IN_FLIGHT_TTL".to_owned(),
                    format!("{}ms", options.in_flight_ttl.as_millis()),
                ),
                ("BILLING_DB_MAX_CONNECTIONS".to_owned(), "20".to_owned()),
                ("BILLING_DB_MIN_CONNECTIONS".to_owned(), "2".to_owned()),
                (
                    "BILLING_DB_ACQUIRE_TIMEOUT".to_owned(),
                    format!("{}ms", options.db_acquire_timeout.as_millis()),
                ),
            ]
            .into_iter()
            .chain(extra_env.iter().cloned())
            .collect(),
        };
        let mut apis = Vec::new();
        for i in 0..options.instances.max(1) {
            let log = dir.path().join(format!("api-{i}.log"));
            let mut api = ApiProcess::spawn(
                &format!("billing-api #{i}"),
                &spec,
                process::free_port()?,
                &log,
            )?;
            api.wait_ready(Duration::from_secs(60)).await?;
            apis.push(api);
        }
        let client = ApiClient::new(apis[0].base(), &token)?;
        let plan_id = client.create_plan(&format!("faults-{run_id}"), 0).await?;
        let mut users = Vec::new();
        for i in 0..2 {
            users.push(
                client
                    .create_user(&format!("faults-{run_id}-{i}@example.com"))
                    .await?,
            );
        }
        let readable = client::create_plain_invoices(&client, &users, plan_id, 20, 4).await?;
        let prepared = Instant::now();
        let payable =
            client::create_payable_invoices(&client, &users, plan_id, pool_size, 16).await?;
        eprintln!(
            "   {} instances ready; prepared {} payable invoices in {}",
            apis.len(),
            payable.len(),
            stats::seconds(prepared.elapsed())
        );
        let mut reads = vec!["/api/v1/plans".to_owned()];
        reads.extend(readable.iter().map(|id| format!("/api/v1/invoices/{id}")));
        Ok(Self {
            apis,
            redis,
            postgres,
            dir,
            pg,
            token,
            run_id,
            plan_id,
            reads,
            pool: Arc::new(InvoicePool::new(payable)),
        })
    }

    fn bases(&self) -> Vec<String> {
        self.apis.iter().map(|a| a.base().to_owned()).collect()
    }

    fn key_prefix(&self) -> String {
        format!("faults-{}", self.run_id)
    }

    /// Starts the payment and read loads; they run until `stop`.
    fn start_loads(
        &self,
        options: &FaultOptions,
        origin: Instant,
        stop: &Arc<AtomicBool>,
    ) -> (JoinHandle<Result<LoadRun>>, JoinHandle<Result<LoadRun>>) {
        let limit = options.time_limit;
        let pay = LoadSpec {
            targets: self.bases(),
            token: self.token.clone(),
            connections: options.pay_connections,
            duration: limit,
            work: Work::Pay {
                pool: Arc::clone(&self.pool),
                key_prefix: self.key_prefix(),
                retry: true,
                backoff: Duration::from_millis(25),
            },
            request_timeout: Duration::from_secs(10),
            failover: true,
            rate_per_connection: Some(options.pay_rate),
        };
        let read = LoadSpec {
            targets: self.bases(),
            token: self.token.clone(),
            connections: options.read_connections,
            duration: limit,
            work: Work::Get {
                paths: Arc::new(self.reads.clone()),
            },
            request_timeout: Duration::from_secs(10),
            failover: true,
            rate_per_connection: Some(options.read_rate),
        };
        (
            tokio::spawn(load::run(pay, origin, Arc::clone(stop))),
            tokio::spawn(load::run(read, origin, Arc::clone(stop))),
        )
    }

    /// Which instances have exited (they must not: no restart is allowed).
    fn exited(&mut self, except: Option<usize>) -> Vec<String> {
        self.apis
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| Some(*i) != except)
            .filter_map(|(i, api)| api.child_mut().exited().map(|s| format!("#{i}: {s}")))
            .collect()
    }
}

/// Runs one scenario and returns its verdict (never panics on a failed
/// criterion: that is a FAIL verdict).
///
/// # Errors
/// When the environment cannot be set up or the time limit passes.
pub async fn run(scenario: FaultScenario, options: &FaultOptions) -> Result<Verdict> {
    if matches!(
        scenario,
        FaultScenario::KillInstance | FaultScenario::KillDuringDelivery
    ) && options.instances < 2
    {
        bail!("{} needs at least 2 instances", scenario.name());
    }
    let limit = options.time_limit;
    let run = async {
        match scenario {
            FaultScenario::KillDuringDelivery => delivery::run(options).await,
            FaultScenario::RedisOutage
            | FaultScenario::PostgresRestart
            | FaultScenario::KillInstance => run_inner(scenario, options).await,
        }
    };
    tokio::time::timeout(limit, run)
        .await
        .with_context(|| format!("{} did not finish within {limit:?}", scenario.name()))?
}

async fn run_inner(scenario: FaultScenario, options: &FaultOptions) -> Result<Verdict> {
    eprintln!("== {}", scenario.name());
    let load_time = options.before
        + match scenario {
            FaultScenario::RedisOutage | FaultScenario::PostgresRestart => options.outage,
            FaultScenario::KillInstance | FaultScenario::KillDuringDelivery => Duration::ZERO,
        }
        + options.after
        + Duration::from_secs(3);
    let per_second = u64::from(options.pay_rate) * options.pay_connections as u64;
    let pool_size = usize::try_from(per_second * load_time.as_secs() * 11 / 10 + 100)?;
    let mut env = Env::start(options, pool_size, &[]).await?;
    let before = Snapshot::take(&env.pg, DATABASE)?;

    let origin = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let (pay, read) = env.start_loads(options, origin, &stop);
    let mut timeline: Vec<(Duration, String)> = vec![(Duration::ZERO, "load starts".into())];
    tokio::time::sleep(options.before).await;

    let mut criteria = Vec::new();
    let mut extra_samples: Vec<Sample> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    match scenario {
        FaultScenario::KillDuringDelivery => {
            bail!("kill-during-delivery runs in its own module")
        }
        FaultScenario::RedisOutage => {
            let down = origin.elapsed();
            env.redis.kill();
            timeline.push((down, "Redis killed (SIGKILL)".into()));
            tokio::time::sleep(options.outage).await;
            let restarting = origin.elapsed();
            env.redis.start_again().await?;
            let up = origin.elapsed();
            timeline.push((restarting, "Redis started again (empty)".into()));
            timeline.push((up, "Redis answers PING".into()));
            tokio::time::sleep(options.after).await;
            stop.store(true, Ordering::Relaxed);
            let pay = pay.await??;
            let read = read.await??;
            timeline.push((origin.elapsed(), "load stopped".into()));
            criteria.extend(judge_redis(options, &pay, &read, down, restarting, up));
            notes.extend(refund_probe(&env, &pay).await);
            extra_samples.extend(pay.samples);
        }
        FaultScenario::PostgresRestart => {
            let down = origin.elapsed();
            env.postgres.stop()?;
            timeline.push((down, "PostgreSQL stop -m fast begins".into()));
            timeline.push((origin.elapsed(), "PostgreSQL stopped".into()));
            tokio::time::sleep(options.outage).await;
            let restarting = origin.elapsed();
            env.postgres.start_again()?;
            let up = origin.elapsed();
            timeline.push((restarting, "PostgreSQL start begins".into()));
            timeline.push((up, "PostgreSQL accepts connections".into()));
            tokio::time::sleep(options.after).await;
            stop.store(true, Ordering::Relaxed);
            let pay = pay.await??;
            let read = read.await??;
            timeline.push((origin.elapsed(), "load stopped".into()));
            criteria.extend(judge_postgres(options, &pay, &read, down, restarting, up));
            extra_samples.extend(pay.samples);
        }
        FaultScenario::KillInstance => {
            // Kill while requests are in flight on #0: poll its in-flight
            // gauge (the scrape counts itself) for up to 3 s.
            let busy = wait_for_in_flight(env.apis[0].base(), 3, Duration::from_secs(3)).await;
            let killed = origin.elapsed();
            env.apis[0].kill();
            timeline.push((
                killed,
                format!(
                    "instance #0 killed (SIGKILL) with {} requests in flight (its gauge, the scrape excluded)",
                    busy.map_or("an unknown number of".to_owned(), |n| n.saturating_sub(1).to_string())
                ),
            ));
            // While the load goes on: once the in-flight TTL has passed,
            // send the payments that were in flight on #0 again.
            let usable_at = killed + options.in_flight_ttl + Duration::from_millis(500);
            tokio::time::sleep(usable_at.saturating_sub(origin.elapsed())).await;
            let mut retries = Retries::default();
            let retry_start = origin.elapsed();
            retry_in_doubt(options, &env, origin, killed, &mut retries).await?;
            timeline.push((
                retry_start,
                format!(
                    "in-flight TTL ({} s) passed: the {} in-doubt payments sent again to instance #1",
                    secs(options.in_flight_ttl),
                    retries.done.len()
                ),
            ));
            let end = killed + options.after;
            tokio::time::sleep(end.saturating_sub(origin.elapsed())).await;
            stop.store(true, Ordering::Relaxed);
            let pay = pay.await??;
            let read = read.await??;
            timeline.push((origin.elapsed(), "load stopped".into()));
            // Any key marked in doubt after the first round.
            let before_late = retries.done.len();
            retry_in_doubt(options, &env, origin, killed, &mut retries).await?;
            if retries.done.len() > before_late {
                timeline.push((
                    origin.elapsed(),
                    format!(
                        "{} more in-doubt payments sent again",
                        retries.done.len() - before_late
                    ),
                ));
            }
            criteria.extend(judge_kill(&pay, &read, killed));
            criteria.push(judge_retries(options, &env, &retries)?);
            extra_samples.extend(pay.samples);
            extra_samples.extend(retries.samples);
        }
    }
    let except = (scenario == FaultScenario::KillInstance).then_some(0);
    let exited = env.exited(except);
    criteria.push(criterion(
        "no API instance restarted or died (other than the one killed on purpose)",
        exited.is_empty(),
        if exited.is_empty() {
            "all still running, same processes".to_owned()
        } else {
            exited.join("; ")
        },
    ));

    // Let answers still being written settle (nothing is in flight now).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acks = Acks::from_samples(&extra_samples);
    let checks = invariants::check_all(&env.pg, DATABASE, &acks, &before)?;
    let pass = criteria.iter().all(|c| c.ok) && checks.iter().all(|c| c.ok);
    let report = render(
        scenario, options, &env, &timeline, &criteria, &checks, &notes, pass,
    );
    if !pass {
        env.dir.keep();
    }
    Ok(Verdict {
        scenario,
        pass,
        report,
    })
}

fn overlaps(sample: &Sample, from: Duration, to: Duration) -> bool {
    sample.start < to && sample.end() > from
}

fn outcome_counts<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for sample in samples {
        let label = match (&sample.outcome, &sample.code) {
            (Outcome::Status(status), Some(code)) => format!("{status} {code}"),
            (outcome, _) => outcome.label(),
        };
        *counts.entry(label).or_default() += 1;
    }
    counts
}

fn counts_text(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".to_owned();
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k} ×{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn p99(samples: &[&Sample]) -> Duration {
    let mut micros: Vec<u64> = samples
        .iter()
        .map(|s| u64::try_from(s.latency.as_micros()).unwrap_or(u64::MAX))
        .collect();
    micros.sort_unstable();
    Duration::from_micros(stats::percentile(&micros, 990).unwrap_or(0))
}

fn p50(samples: &[&Sample]) -> Duration {
    let mut micros: Vec<u64> = samples
        .iter()
        .map(|s| u64::try_from(s.latency.as_micros()).unwrap_or(u64::MAX))
        .collect();
    micros.sort_unstable();
    Duration::from_micros(stats::percentile(&micros, 500).unwrap_or(0))
}

fn secs(d: Duration) -> String {
    stats::seconds(d)
}

fn judge_redis(
    options: &FaultOptions,
    pay: &LoadRun,
    read: &LoadRun,
    down: Duration,
    restarting: Duration,
    up: Duration,
) -> Vec<Criterion> {
    let mut out = Vec::new();
    // Requests sent and answered while Redis was down: from a short grace
    // after the kill (for requests already past Redis) until it is started
    // again (the API retries Redis for some tens of milliseconds, so a
    // request sent just before the restart may legitimately succeed).
    let from = down + Duration::from_millis(200);
    let during: Vec<&Sample> = pay
        .samples
        .iter()
        .filter(|s| s.start >= from && s.end() < restarting)
        .collect();
    let counts = outcome_counts(during.iter().copied());
    let all_503 = !during.is_empty() && during.iter().all(|s| s.outcome.is(503));
    out.push(criterion(
        "payments sent and answered while Redis is down answer 503",
        all_503,
        format!("{} payments: {}", during.len(), counts_text(&counts)),
    ));
    let straddling: Vec<&Sample> = pay
        .samples
        .iter()
        .filter(|s| overlaps(s, down, restarting))
        .collect();
    let slow = p99(&straddling);
    let hung = straddling
        .iter()
        .filter(|s| s.outcome == Outcome::Timeout)
        .count();
    out.push(criterion(
        format!(
            "they fail fast: p99 < {} s, no request hangs",
            secs(options.redis_fail_fast)
        ),
        slow < options.redis_fail_fast && hung == 0,
        format!(
            "p99 {} ms over {} payments in flight during the outage, slowest {} ms, {hung} client time-outs",
            stats::millis(u64::try_from(slow.as_micros()).unwrap_or(0)),
            straddling.len(),
            stats::millis(
                straddling
                    .iter()
                    .map(|s| u64::try_from(s.latency.as_micros()).unwrap_or(0))
                    .max()
                    .unwrap_or(0)
            )
        ),
    ));
    let reads: Vec<&Sample> = read
        .samples
        .iter()
        .filter(|s| overlaps(s, down, up))
        .collect();
    let reads_ok = !reads.is_empty() && reads.iter().all(|s| s.outcome.is(200));
    out.push(criterion(
        "reads keep working while Redis is down",
        reads_ok,
        format!(
            "{} reads: {}, p99 {} ms",
            reads.len(),
            counts_text(&outcome_counts(reads.iter().copied())),
            stats::millis(u64::try_from(p99(&reads).as_micros()).unwrap_or(0))
        ),
    ));
    let first_ok = pay
        .samples
        .iter()
        .filter(|s| s.start >= up && s.outcome.is(200))
        .map(Sample::end)
        .min();
    let recovered = first_ok.map(|t| t.saturating_sub(up));
    out.push(criterion(
        format!(
            "payments succeed again within {} s of Redis answering, without restarting the API",
            secs(options.redis_recovery)
        ),
        recovered.is_some_and(|r| r <= options.redis_recovery),
        match recovered {
            Some(r) => format!("first 200 {} s after Redis answered", secs(r)),
            None => "no payment succeeded after Redis came back".to_owned(),
        },
    ));
    let settled = up + options.redis_recovery;
    let late: Vec<&Sample> = pay.samples.iter().filter(|s| s.start >= settled).collect();
    let late_ok = !late.is_empty() && late.iter().all(|s| s.outcome.is(200));
    out.push(criterion(
        "and keep succeeding afterwards",
        late_ok,
        format!(
            "{} payments sent from {} s after Redis answered: {}",
            late.len(),
            secs(options.redis_recovery),
            counts_text(&outcome_counts(late.iter().copied()))
        ),
    ));
    out
}

fn judge_postgres(
    options: &FaultOptions,
    pay: &LoadRun,
    read: &LoadRun,
    down: Duration,
    restarting: Duration,
    up: Duration,
) -> Vec<Criterion> {
    let mut out = Vec::new();
    let from = down + Duration::from_millis(300);
    let all: Vec<&Sample> = pay.samples.iter().chain(read.samples.iter()).collect();
    let during: Vec<&Sample> = all
        .iter()
        .copied()
        .filter(|s| s.start >= from && s.start < restarting)
        .collect();
    let counts = outcome_counts(during.iter().copied());
    let clean = !during.is_empty()
        && during
            .iter()
            .all(|s| s.outcome.is(503) || s.outcome.is(200));
    out.push(criterion(
        "requests sent while PostgreSQL is down answer 503, or wait and succeed once it is back: no 500, no dropped connection",
        clean,
        format!("{} requests: {}", during.len(), counts_text(&counts)),
    ));
    let straddling: Vec<&Sample> = all
        .iter()
        .copied()
        .filter(|s| overlaps(s, down, restarting))
        .collect();
    let unavailable = straddling.iter().filter(|s| s.outcome.is(503)).count();
    out.push(criterion(
        "the gap shows as 503 dependency_unavailable",
        unavailable > 0,
        format!(
            "{unavailable} of the {} requests in flight during the gap answered 503",
            straddling.len()
        ),
    ));
    let bound = options.db_acquire_timeout + Duration::from_secs(1);
    let slowest = straddling
        .iter()
        .map(|s| s.latency)
        .max()
        .unwrap_or_default();
    let hung = straddling
        .iter()
        .filter(|s| s.outcome == Outcome::Timeout)
        .count();
    out.push(criterion(
        format!(
            "no request hangs: each answers within BILLING_DB_ACQUIRE_TIMEOUT + 1 s = {} s",
            secs(bound)
        ),
        hung == 0 && slowest <= bound,
        format!(
            "p50 {} ms, p99 {} ms, slowest {} ms, {hung} client time-outs",
            stats::millis(u64::try_from(p50(&straddling).as_micros()).unwrap_or(0)),
            stats::millis(u64::try_from(p99(&straddling).as_micros()).unwrap_or(0)),
            stats::millis(u64::try_from(slowest.as_micros()).unwrap_or(0)),
        ),
    ));
    let first_pay = pay
        .samples
        .iter()
        .filter(|s| s.start >= up && s.outcome.is(200))
        .map(Sample::end)
        .min();
    let first_read = read
        .samples
        .iter()
        .filter(|s| s.start >= up && s.outcome.is(200))
        .map(Sample::end)
        .min();
    let last_failure = all
        .iter()
        .filter(|s| s.start >= up && !s.outcome.is(200))
        .map(|s| s.end())
        .max();
    let settled = up + options.postgres_recovery;
    let late: Vec<&Sample> = all.iter().copied().filter(|s| s.start >= settled).collect();
    let late_ok = !late.is_empty() && late.iter().all(|s| s.outcome.is(200));
    out.push(criterion(
        format!(
            "full recovery: every request sent {} s after PostgreSQL is back succeeds, no API restart",
            secs(options.postgres_recovery)
        ),
        late_ok && first_pay.is_some() && first_read.is_some(),
        format!(
            "first payment 200 at +{} s, first read 200 at +{} s, last failure at +{} s after PostgreSQL was back; later: {}",
            first_pay.map_or("-".to_owned(), |t| secs(t.saturating_sub(up))),
            first_read.map_or("-".to_owned(), |t| secs(t.saturating_sub(up))),
            last_failure.map_or("-".to_owned(), |t| secs(t.saturating_sub(up))),
            counts_text(&outcome_counts(late.iter().copied()))
        ),
    ));
    out
}

/// Polls `<base>/metrics` until `billing_http_requests_in_flight` reaches
/// `at_least` (or `patience` passes); the last value read.
async fn wait_for_in_flight(base: &str, at_least: i64, patience: Duration) -> Option<i64> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .ok()?;
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < patience {
        if let Ok(response) = http.get(format!("{base}/metrics")).send().await
            && let Ok(text) = response.text().await
        {
            last = text.lines().find_map(|line| {
                line.strip_prefix("billing_http_requests_in_flight ")
                    .and_then(|v| v.trim().parse::<i64>().ok())
            });
            if last.is_some_and(|n| n >= at_least) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    last
}

/// Judges the loads after the kill: the survivors keep paying, reads
/// move over.
fn judge_kill(pay: &LoadRun, read: &LoadRun, killed: Duration) -> Vec<Criterion> {
    let mut out = Vec::new();
    let cut = pay
        .samples
        .iter()
        .filter(|s| s.target == 0 && s.start < killed && s.end() >= killed)
        .count();
    let survivors: Vec<&Sample> = pay
        .samples
        .iter()
        .filter(|s| s.target != 0 && s.start >= killed)
        .collect();
    let unexpected = survivors
        .iter()
        .filter(|s| {
            !(s.outcome.is(200)
                || (s.outcome.is(409) && s.code.as_deref() == Some("idempotency_in_flight")))
        })
        .count();
    let survivors_ok = survivors.iter().filter(|s| s.outcome.is(200)).count();
    out.push(criterion(
        "the surviving instances keep paying (a retry of a key still in flight on the dead instance gets 409 idempotency_in_flight)",
        survivors_ok > 0 && unexpected == 0,
        format!(
            "{} payments on the survivors after the kill: {} ({cut} requests were cut by the kill)",
            survivors.len(),
            counts_text(&outcome_counts(survivors.iter().copied()))
        ),
    ));
    let reads_after: Vec<&Sample> = read
        .samples
        .iter()
        .filter(|s| s.start >= killed + Duration::from_secs(1))
        .collect();
    out.push(criterion(
        "reads keep working (clients move to the survivors)",
        !reads_after.is_empty() && reads_after.iter().all(|s| s.outcome.is(200)),
        format!(
            "{} reads from 1 s after the kill: {}",
            reads_after.len(),
            counts_text(&outcome_counts(reads_after.iter().copied()))
        ),
    ));
    out
}

/// The retries of the payments whose key was in flight on the killed
/// instance.
#[derive(Debug, Default)]
struct Retries {
    /// The invoices retried.
    done: Vec<i64>,
    /// (invoice, final answer, when relative to the kill).
    resolutions: Vec<(i64, String, Duration)>,
    /// Invoices still `idempotency_in_flight` more than 1 s after the TTL.
    late: Vec<i64>,
    /// Every retry sent.
    samples: Vec<Sample>,
}

/// Sends every in-doubt payment not retried yet again (same key, same
/// body) to instance #1 until it resolves: 200, or a final refusal; `locked`
/// (the dead instance's lock lives until its TTL), `idempotency_in_flight`
/// and 5xx are retried every 500 ms for up to 40 s.
async fn retry_in_doubt(
    options: &FaultOptions,
    env: &Env,
    origin: Instant,
    killed: Duration,
    retries: &mut Retries,
) -> Result<()> {
    let mut in_doubt = env.pool.in_doubt();
    in_doubt.sort_unstable();
    in_doubt.dedup();
    in_doubt.retain(|invoice| !retries.done.contains(invoice));
    let usable_at = killed + options.in_flight_ttl;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let base = env.apis[1].base().to_owned();
    let prefix = env.key_prefix();
    let deadline = origin.elapsed() + Duration::from_secs(40);
    for invoice in in_doubt {
        retries.done.push(invoice);
        loop {
            let start = origin.elapsed();
            let sent = Instant::now();
            let response = http
                .post(format!("{base}/api/v1/invoices/{invoice}/pay"))
                .bearer_auth(&env.token)
                .header("content-type", "application/json")
                .header("idempotency-key", load::pay_key(&prefix, invoice))
                .body(load::pay_body(invoice))
                .send()
                .await;
            let (outcome, replayed, code) = match response {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let replayed = response
                        .headers()
                        .get("idempotent-replayed")
                        .is_some_and(|v| v.as_bytes() == b"true");
                    let body = response.bytes().await.unwrap_or_default();
                    (Outcome::Status(status), replayed, load::problem_code(&body))
                }
                Err(_) => (Outcome::Transport, false, None),
            };
            retries.samples.push(Sample {
                start,
                latency: sent.elapsed(),
                outcome,
                target: 1,
                invoice: Some(invoice),
                replayed,
                code: code.clone(),
            });
            let label = match (&outcome, &code) {
                (Outcome::Status(s), Some(c)) => format!("{s} {c}"),
                (o, _) => o.label(),
            };
            let in_flight = code.as_deref() == Some("idempotency_in_flight");
            if in_flight && start > usable_at + Duration::from_secs(1) {
                retries.late.push(invoice);
            }
            let transient = in_flight
                || code.as_deref() == Some("locked")
                || matches!(outcome, Outcome::Status(s) if s >= 500)
                || matches!(
                    outcome,
                    Outcome::Transport | Outcome::Timeout | Outcome::Connect
                );
            if !transient {
                retries
                    .resolutions
                    .push((invoice, label, start.saturating_sub(killed)));
                break;
            }
            if origin.elapsed() > deadline {
                retries.resolutions.push((
                    invoice,
                    format!("unresolved: {label}"),
                    start.saturating_sub(killed),
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

/// Judges the retries: each resolved as paid (200) or already paid by the
/// killed instance (409 `invalid_transition` with the invoice paid).
fn judge_retries(options: &FaultOptions, env: &Env, retries: &Retries) -> Result<Criterion> {
    let rows = invariants::invoice_rows(&env.pg, DATABASE)?;
    let paid: std::collections::HashSet<i64> = rows
        .iter()
        .filter(|r| r.status == "paid")
        .map(|r| r.id)
        .collect();
    let mut late = retries.late.clone();
    late.dedup();
    let bad: Vec<String> = retries
        .resolutions
        .iter()
        .filter(|(invoice, label, _)| {
            !(label == "200" || (label == "409 invalid_transition" && paid.contains(invoice)))
        })
        .map(|(invoice, label, _)| format!("invoice {invoice}: {label}"))
        .collect();
    let detail: Vec<String> = retries
        .resolutions
        .iter()
        .map(|(invoice, label, at)| {
            format!("invoice {invoice} → {label} at kill + {} s", secs(*at))
        })
        .collect();
    Ok(criterion(
        format!(
            "keys in flight on the killed instance are usable again after the in-flight TTL ({} s): \
             the retry pays (200) or finds the invoice paid by the killed instance (409 invalid_transition)",
            secs(options.in_flight_ttl)
        ),
        bad.is_empty() && late.is_empty(),
        if retries.resolutions.is_empty() {
            "no key was in flight on the killed instance at the kill (nothing to retry)".to_owned()
        } else {
            format!(
                "{}{}",
                detail.join("; "),
                if late.is_empty() {
                    String::new()
                } else {
                    format!("; still in flight after the TTL: {late:?}")
                }
            )
        },
    ))
}

/// Refunds one invoice paid before the Redis outage, after Redis came back
/// empty (its fencing counters restarted): informative, not part of the
/// verdict.
async fn refund_probe(env: &Env, pay: &LoadRun) -> Vec<String> {
    let Some(invoice) = pay
        .samples
        .iter()
        .filter(|s| s.outcome.is(200))
        .min_by_key(|s| s.start)
        .and_then(|s| s.invoice)
    else {
        return vec!["refund probe: no invoice was paid before the outage".to_owned()];
    };
    let Ok(http) = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    else {
        return Vec::new();
    };
    let mut outcomes = Vec::new();
    for attempt in 1..=3 {
        let response = http
            .post(format!(
                "{}/api/v1/invoices/{invoice}/refund",
                env.apis[0].base()
            ))
            .bearer_auth(&env.token)
            .header(
                "idempotency-key",
                format!("{}-refund-{invoice}", env.key_prefix()),
            )
            .send()
            .await;
        let label = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.bytes().await.unwrap_or_default();
                match load::problem_code(&body) {
                    Some(code) => format!("{status} {code}"),
                    None => status.to_string(),
                }
            }
            Err(error) => format!("error {error}"),
        };
        let done = label == "200";
        outcomes.push(format!("attempt {attempt}: {label}"));
        if done {
            break;
        }
    }
    vec![format!(
        "refund probe (informative): invoice {invoice}, paid before the outage, refunded after Redis came back empty: {}",
        outcomes.join(", ")
    )]
}

#[allow(clippy::too_many_arguments)]
fn render(
    scenario: FaultScenario,
    options: &FaultOptions,
    env: &Env,
    timeline: &[(Duration, String)],
    criteria: &[Criterion],
    checks: &[Check],
    notes: &[String],
    pass: bool,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## {}\n", scenario.name());
    let _ = writeln!(
        out,
        "{} API instances ({} HTTP worker(s) each, in-flight TTL {} s, DB acquire timeout {} s) over a private PostgreSQL \
         (port {}) and a private Redis (port {}); payment load {} connections × ≤ {} req/s, read \
         load {} connections × ≤ {} req/s (plan {}).\n",
        env.apis.len(),
        options.workers,
        secs(options.in_flight_ttl),
        secs(options.db_acquire_timeout),
        env.pg.port,
        env.redis.port(),
        options.pay_connections,
        options.pay_rate,
        options.read_connections,
        options.read_rate,
        env.plan_id,
    );
    let rows: Vec<Vec<String>> = timeline
        .iter()
        .map(|(t, what)| vec![secs(*t), what.clone()])
        .collect();
    out.push_str(&markdown_table(&["t (s)", "event"], &rows));
    out.push('\n');
    let rows: Vec<Vec<String>> = criteria
        .iter()
        .map(|c| {
            vec![
                if c.ok { "PASS" } else { "FAIL" }.to_owned(),
                c.name.clone(),
                c.detail.clone(),
            ]
        })
        .chain(checks.iter().map(|c| {
            vec![
                if c.ok { "PASS" } else { "FAIL" }.to_owned(),
                format!("invariant: {}", c.name),
                c.detail.clone(),
            ]
        }))
        .collect();
    out.push_str(&markdown_table(&["", "criterion", "measured"], &rows));
    for note in notes {
        let _ = writeln!(out, "\n- {note}");
    }
    let _ = writeln!(
        out,
        "\nVERDICT: {} {}",
        if pass { "PASS" } else { "FAIL" },
        scenario.name()
    );
    if !pass {
        let _ = writeln!(out, "(logs kept in {})", env.dir.path().display());
    }
    out
}
