//! Running the Redis, PostgreSQL and kill-instance scenarios: the loads
//! across the instances, the fault at its time, the retries of the
//! payments left in doubt, and the verdict (criteria, invariants, report)
//! that every scenario ends with.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::task::JoinHandle;

use super::env::Env;
use super::measure::{self, Outage, Retries};
use super::report::{self, Figures};
use super::{Criterion, DATABASE, FaultOptions, FaultScenario, Verdict, criterion, secs};
use crate::invariants::{self, Acks, Snapshot};
use crate::load::{self, LoadRun, Outcome, Sample};

/// What a scenario recorded, for its verdict.
#[derive(Debug, Default)]
pub(super) struct Record {
    /// What happened when, from the start of the load.
    pub(super) timeline: Vec<(Duration, String)>,
    pub(super) criteria: Vec<Criterion>,
    /// Informative lines, not part of the verdict.
    pub(super) notes: Vec<String>,
    /// The payments whose acknowledgements the invariants check.
    pub(super) samples: Vec<Sample>,
}

/// Checks the database invariants against the acknowledged payments,
/// renders the report and keeps the run directory on FAIL.
///
/// # Errors
/// When the database cannot be read.
pub(super) async fn finish(
    scenario: FaultScenario,
    options: &FaultOptions,
    env: &mut Env,
    before: &Snapshot,
    record: Record,
) -> Result<Verdict> {
    // Let answers still being written settle (nothing is in flight now).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acks = Acks::from_samples(&record.samples);
    let checks = invariants::check_all(&env.pg, DATABASE, &acks, before)?;
    let figures = Figures {
        scenario,
        setting: env.setting(options),
        timeline: &record.timeline,
        criteria: &record.criteria,
        checks: &checks,
        notes: &record.notes,
        logs: env.dir.path(),
    };
    let pass = figures.pass();
    let report = report::render(&figures);
    if !pass {
        env.dir.keep();
    }
    Ok(Verdict {
        scenario,
        pass,
        report,
    })
}

/// The payment and read loads of a scenario, on the clock `origin`.
struct Loads {
    origin: Instant,
    stop: Arc<AtomicBool>,
    pay: JoinHandle<Result<LoadRun>>,
    read: JoinHandle<Result<LoadRun>>,
}

impl Loads {
    /// Lets both loads run `after` more, stops them and waits for their
    /// samples.
    async fn stop_after(
        self,
        after: Duration,
        timeline: &mut Vec<(Duration, String)>,
    ) -> Result<(LoadRun, LoadRun)> {
        tokio::time::sleep(after).await;
        self.stop.store(true, Ordering::Relaxed);
        let pay = self.pay.await??;
        let read = self.read.await??;
        timeline.push((self.origin.elapsed(), "load stopped".into()));
        Ok((pay, read))
    }
}

/// Runs the Redis, PostgreSQL or kill-instance scenario.
///
/// # Errors
/// When the environment cannot be set up or a server cannot be stopped or
/// started.
pub(super) async fn run(scenario: FaultScenario, options: &FaultOptions) -> Result<Verdict> {
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
    let loads = Loads {
        origin,
        stop,
        pay,
        read,
    };
    let mut record = Record {
        timeline: vec![(Duration::ZERO, "load starts".into())],
        ..Record::default()
    };
    tokio::time::sleep(options.before).await;

    match scenario {
        FaultScenario::KillDuringDelivery => {
            bail!("kill-during-delivery runs in its own module")
        }
        FaultScenario::RedisOutage => redis_outage(options, &mut env, loads, &mut record).await?,
        FaultScenario::PostgresRestart => {
            postgres_restart(options, &mut env, loads, &mut record).await?;
        }
        FaultScenario::KillInstance => kill_instance(options, &mut env, loads, &mut record).await?,
    }
    let except = (scenario == FaultScenario::KillInstance).then_some(0);
    let exited = env.exited(except);
    record.criteria.push(criterion(
        "no API instance restarted or died (other than the one killed on purpose)",
        exited.is_empty(),
        if exited.is_empty() {
            "all still running, same processes".to_owned()
        } else {
            exited.join("; ")
        },
    ));
    finish(scenario, options, &mut env, &before, record).await
}

/// The server an outage takes down.
#[derive(Clone, Copy, Debug)]
enum Server {
    /// Killed (SIGKILL), started again empty.
    Redis,
    /// Stopped (fast shutdown), started again.
    Postgres,
}

/// Takes `server` down, starts it again after the outage, lets the load
/// run `after` more and stops it; the loads' answers and the outage's
/// times.
async fn outage(
    options: &FaultOptions,
    env: &mut Env,
    loads: Loads,
    timeline: &mut Vec<(Duration, String)>,
    server: Server,
) -> Result<(LoadRun, LoadRun, Outage)> {
    let origin = loads.origin;
    let down = origin.elapsed();
    match server {
        Server::Redis => {
            env.redis.kill();
            timeline.push((down, "Redis killed (SIGKILL)".into()));
        }
        Server::Postgres => {
            env.postgres.stop()?;
            timeline.push((down, "PostgreSQL stop -m fast begins".into()));
            timeline.push((origin.elapsed(), "PostgreSQL stopped".into()));
        }
    }
    tokio::time::sleep(options.outage).await;
    let restarting = origin.elapsed();
    let (started, answers) = match server {
        Server::Redis => {
            env.redis.start_again().await?;
            ("Redis started again (empty)", "Redis answers PING")
        }
        Server::Postgres => {
            env.postgres.start_again()?;
            ("PostgreSQL start begins", "PostgreSQL accepts connections")
        }
    };
    let at = Outage {
        down,
        restarting,
        up: origin.elapsed(),
    };
    timeline.push((restarting, started.into()));
    timeline.push((at.up, answers.into()));
    let (pay, read) = loads.stop_after(options.after, timeline).await?;
    Ok((pay, read, at))
}

/// Kills Redis, starts it again (empty) after the outage, and judges.
async fn redis_outage(
    options: &FaultOptions,
    env: &mut Env,
    loads: Loads,
    record: &mut Record,
) -> Result<()> {
    let (pay, read, at) = outage(options, env, loads, &mut record.timeline, Server::Redis).await?;
    record
        .criteria
        .extend(measure::judge_redis(options, &pay, &read, at));
    record.notes.extend(refund_probe(env, &pay).await);
    record.samples.extend(pay.samples);
    Ok(())
}

/// Stops PostgreSQL (fast shutdown), starts it again after the outage,
/// and judges.
async fn postgres_restart(
    options: &FaultOptions,
    env: &mut Env,
    loads: Loads,
    record: &mut Record,
) -> Result<()> {
    let timeline = &mut record.timeline;
    let (pay, read, at) = outage(options, env, loads, timeline, Server::Postgres).await?;
    record
        .criteria
        .extend(measure::judge_postgres(options, &pay, &read, at));
    record.samples.extend(pay.samples);
    Ok(())
}

/// Kills instance #0 while requests are in flight on it: polls its
/// in-flight gauge (the scrape counts itself) for up to 3 s. When it was
/// killed.
async fn kill_first(env: &mut Env, origin: Instant, record: &mut Record) -> Duration {
    let busy = wait_for_in_flight(env.apis[0].base(), 3, Duration::from_secs(3)).await;
    let killed = origin.elapsed();
    env.apis[0].kill();
    record.timeline.push((
        killed,
        format!(
            "instance #0 killed (SIGKILL) with {} requests in flight (its gauge, the scrape excluded)",
            busy.map_or("an unknown number of".to_owned(), |n| n.saturating_sub(1).to_string())
        ),
    ));
    killed
}

/// Kills instance #0, sends the payments left in doubt again once the
/// in-flight TTL has passed, and judges.
async fn kill_instance(
    options: &FaultOptions,
    env: &mut Env,
    loads: Loads,
    record: &mut Record,
) -> Result<()> {
    let origin = loads.origin;
    let killed = kill_first(env, origin, record).await;
    // While the load goes on: once the in-flight TTL has passed, send the
    // payments that were in flight on #0 again.
    let usable_at = killed + options.in_flight_ttl + Duration::from_millis(500);
    tokio::time::sleep(usable_at.saturating_sub(origin.elapsed())).await;
    let mut retries = Retries::default();
    let retry_start = origin.elapsed();
    retry_in_doubt(options, env, origin, killed, &mut retries).await?;
    record.timeline.push((
        retry_start,
        format!(
            "in-flight TTL ({} s) passed: the {} in-doubt payments sent again to instance #1",
            secs(options.in_flight_ttl),
            retries.done.len()
        ),
    ));
    let end = killed + options.after;
    let (pay, read) = loads
        .stop_after(end.saturating_sub(origin.elapsed()), &mut record.timeline)
        .await?;
    // Any key marked in doubt after the first round.
    let before_late = retries.done.len();
    retry_in_doubt(options, env, origin, killed, &mut retries).await?;
    if retries.done.len() > before_late {
        record.timeline.push((
            origin.elapsed(),
            format!(
                "{} more in-doubt payments sent again",
                retries.done.len() - before_late
            ),
        ));
    }
    let paid: HashSet<i64> = invariants::invoice_rows(&env.pg, DATABASE)?
        .iter()
        .filter(|r| r.status == "paid")
        .map(|r| r.id)
        .collect();
    record
        .criteria
        .extend(measure::judge_kill(&pay, &read, killed));
    record
        .criteria
        .push(measure::judge_retries(options, &paid, &retries));
    record.samples.extend(pay.samples);
    record.samples.extend(retries.samples);
    Ok(())
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

/// Sends the payment of `invoice` again (same key, same body) to instance
/// #1; its answer as a sample.
async fn resend(http: &reqwest::Client, env: &Env, invoice: i64, origin: Instant) -> Sample {
    let start = origin.elapsed();
    let sent = Instant::now();
    let response = http
        .post(format!(
            "{}/api/v1/invoices/{invoice}/pay",
            env.apis[1].base()
        ))
        .bearer_auth(&env.token)
        .header("content-type", "application/json")
        .header("idempotency-key", load::pay_key(&env.key_prefix(), invoice))
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
    Sample {
        start,
        latency: sent.elapsed(),
        outcome,
        target: 1,
        invoice: Some(invoice),
        replayed,
        code,
    }
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
    let deadline = origin.elapsed() + Duration::from_secs(40);
    for invoice in in_doubt {
        retries.done.push(invoice);
        loop {
            let sample = resend(&http, env, invoice, origin).await;
            let (start, outcome, code) = (sample.start, sample.outcome, sample.code.clone());
            retries.samples.push(sample);
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
