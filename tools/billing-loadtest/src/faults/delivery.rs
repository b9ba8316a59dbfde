//! `kill-during-delivery`: webhook delivery survives the death of the
//! instance sending it. A loopback [`Receiver`] checks every signature and
//! records the events; an endpoint for every type is registered over the
//! API; the instances run delivery with a short poll interval, retry base
//! and lease; a payment load and a lifecycle load (user → subscription →
//! invoice → payment) produce events; the instance whose connection
//! carries a request the receiver is still answering is killed (SIGKILL),
//! then the next sender, until one instance is left. After the load the
//! tool waits (bounded) until the deliveries settle and counts: every
//! event `GET /events` lists after the registration was received at least
//! once with a valid signature (none lost), duplicates (allowed: at least
//! once), and the order of first receipt per resource.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::env::Env;
use super::run::{Record, finish};
use super::{Criterion, DATABASE, FaultOptions, FaultScenario, Verdict, criterion, secs};
use crate::chains::lifecycle;
use crate::client::{ApiClient, id_of};
use crate::invariants::Snapshot;
use crate::load::Sample;
use crate::process;
use crate::receiver::{Inbox, Receiver};

mod count;

use count::{Count, Listed, judge};

/// The events listed after the registration, read page by page.
#[derive(Debug, Default)]
struct Expected {
    cursor: Option<i64>,
    events: Vec<Listed>,
}

impl Expected {
    /// Reads the pages published since the last call; the number of new
    /// events.
    async fn fetch_more(&mut self, client: &ApiClient, keep: bool) -> Result<usize> {
        let mut added = 0;
        loop {
            let path = match self.cursor {
                Some(after) => format!("/events?limit=100&after={after}"),
                None => "/events?limit=100".to_owned(),
            };
            let page = client.get(&path).await?;
            let items = page
                .get("items")
                .and_then(Value::as_array)
                .context("GET /events: no items")?;
            if items.is_empty() {
                return Ok(added);
            }
            for item in items {
                let resource = &item["resource"];
                let listed = Listed {
                    id: id_of(item)?,
                    kind: resource["kind"].as_str().unwrap_or_default().to_owned(),
                    resource_id: resource["id"].as_i64().unwrap_or_default(),
                    version: resource["version"].as_i64().unwrap_or_default(),
                };
                self.cursor = Some(listed.id);
                if keep {
                    self.events.push(listed);
                    added += 1;
                }
            }
        }
    }
}

/// Runs the scenario.
///
/// # Errors
/// When the environment cannot be set up or the API refuses the set-up.
pub(super) async fn run(options: &FaultOptions) -> Result<Verdict> {
    let scenario = FaultScenario::KillDuringDelivery;
    eprintln!("== {}", scenario.name());
    let receiver = Receiver::start((5, 40))?;
    let (options, kills, gap, pool_size) = plan(options)?;
    let webhook_env = webhook_env(options.webhook_lease_ttl);
    let mut env = Env::start(&options, pool_size, &webhook_env).await?;
    let before = Snapshot::take(&env.pg, DATABASE)?;

    let admin = ApiClient::new(env.apis[0].base(), &env.token)?;
    let (endpoint_id, mut expected) = register(&admin, &receiver).await?;
    let registered_cursor = expected.cursor;

    let origin = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let (pay, read) = env.start_loads(&options, origin, &stop);
    let chains = lifecycle(
        env.bases(),
        env.token.clone(),
        env.plan_id,
        Arc::clone(&stop),
        origin,
    );
    let mut timeline: Vec<(Duration, String)> = vec![(
        Duration::ZERO,
        format!(
            "endpoint {endpoint_id} registered for every type (events after #{}); payment and lifecycle loads start",
            registered_cursor.unwrap_or(0)
        ),
    )];
    tokio::time::sleep(options.before).await;
    let kills = kill_senders(
        &mut env,
        receiver.inbox(),
        kills,
        gap,
        origin,
        &mut timeline,
    )
    .await;
    tokio::time::sleep(options.after).await;
    stop.store(true, Ordering::Relaxed);
    let pay = pay.await??;
    let read = read.await??;
    let chains = chains.await?;
    let stopped = origin.elapsed();
    let stopped_rx = receiver.inbox().elapsed();
    timeline.push((stopped, "load stopped".into()));

    let after = After {
        endpoint_id,
        kills,
        stopped_rx,
    };
    let (mut criteria, figures) = judge_after(
        &mut env,
        &options,
        (&receiver, &mut expected),
        &after,
        (origin, &mut timeline),
    )
    .await?;
    criteria.push(survivors_run(&mut env, &after.kills.0));
    let notes = vec![format!(
        "figures: {figures}; {} lifecycle chains paid, {} load payments answered, {} reads; receiver answered {} requests 503 before it knew the secret",
        chains.iter().filter(|s| s.outcome.is(200)).count(),
        pay.samples.len(),
        read.samples.len(),
        receiver.inbox().before_secret(),
    )];
    let samples: Vec<Sample> = pay.samples.into_iter().chain(chains).collect();
    let record = Record {
        timeline,
        criteria,
        notes,
        samples,
    };
    finish(scenario, &options, &mut env, &before, record).await
}

/// What the judging after the load needs of the run.
struct After {
    endpoint_id: i64,
    /// The instances killed, and how many kills hit a sender mid-request.
    kills: (Vec<usize>, usize),
    /// When the load stopped, on the receiver's clock.
    stopped_rx: Duration,
}

/// After the load: waits (bounded) on a survivor until the deliveries
/// settle, counts what the receiver got, and judges; the criteria and the
/// figures of the counts.
async fn judge_after(
    env: &mut Env,
    options: &FaultOptions,
    (receiver, expected): (&Receiver, &mut Expected),
    after: &After,
    (origin, timeline): (Instant, &mut Vec<(Duration, String)>),
) -> Result<(Vec<Criterion>, String)> {
    let (killed, sender_kills) = (&after.kills.0, after.kills.1);
    let alive = (0..env.apis.len())
        .find(|i| !killed.contains(i))
        .context("no instance left")?;
    let survivor = ApiClient::new(env.apis[alive].base(), &env.token)?;
    let settled = settle(&survivor, receiver.inbox(), expected, options.settle_limit).await?;
    timeline.push((
        origin.elapsed(),
        match settled {
            Some(_) => "every listed event received, nothing pending".to_owned(),
            None => format!("not settled within {} s", secs(options.settle_limit)),
        },
    ));
    let failed = survivor
        .get(&format!(
            "/webhook-deliveries?endpoint_id={}&status=failed&limit=100",
            after.endpoint_id
        ))
        .await?["items"]
        .as_array()
        .map_or(0, Vec::len);
    let count = Count::of(&expected.events, &receiver.inbox().receipts());
    let lag = count.last_first.map_or("-".to_owned(), |at| {
        secs(at.saturating_sub(after.stopped_rx))
    });
    let criteria = judge(
        &count,
        (sender_kills, killed.len()),
        receiver.inbox().refused(),
        (settled, options.settle_limit),
        failed,
    );
    let figures = format!(
        "{} events, {} received, {} requests, {} duplicates, {} lost, settled {} after the load stopped (last new event received {lag} s after it)",
        count.events,
        count.received,
        count.requests,
        count.duplicates,
        count.lost.len(),
        settled.map_or("never".to_owned(), |d| format!("{} s", secs(d))),
    );
    Ok((criteria, figures))
}

/// The scenario's settings: a lighter payment load (delivery must keep up
/// with it), the kills (all instances but one), the pause after each kill
/// (the lease TTL + 2 s) and the invoices to prepare.
fn plan(options: &FaultOptions) -> Result<(FaultOptions, usize, Duration, usize)> {
    let mut options = options.clone();
    options.pay_connections = options.pay_connections.min(3);
    options.pay_rate = options.pay_rate.min(10);
    let kills = options.instances.saturating_sub(1).max(1);
    let gap = options.webhook_lease_ttl + Duration::from_secs(2);
    let load_time = options.before
        + gap.saturating_mul(u32::try_from(kills)?)
        + options.after
        + Duration::from_secs(3);
    let per_second = u64::from(options.pay_rate) * options.pay_connections as u64;
    let pool_size = usize::try_from(per_second * load_time.as_secs() * 11 / 10 + 100)?;
    Ok((options, kills, gap, pool_size))
}

/// No instance died but the ones killed.
fn survivors_run(env: &mut Env, killed: &[usize]) -> Criterion {
    let exited: Vec<String> = env
        .exited(None)
        .into_iter()
        .filter(|e| !killed.iter().any(|k| e.starts_with(&format!("#{k}:"))))
        .collect();
    criterion(
        "no API instance died other than the ones killed on purpose",
        exited.is_empty(),
        if exited.is_empty() {
            "the survivors still run".to_owned()
        } else {
            exited.join("; ")
        },
    )
}

/// The `BILLING_WEBHOOK_*` settings of the instances: fast polls and
/// retries, a short lease (the time-out is half of it).
fn webhook_env(lease: Duration) -> Vec<(String, String)> {
    [
        ("BILLING_WEBHOOK_ENABLED", "true".to_owned()),
        ("BILLING_WEBHOOK_POLL_INTERVAL", "100ms".to_owned()),
        ("BILLING_WEBHOOK_RETRY_BASE", "200ms".to_owned()),
        (
            "BILLING_WEBHOOK_TIMEOUT",
            format!("{}ms", lease.as_millis() / 2),
        ),
        (
            "BILLING_WEBHOOK_LEASE_TTL",
            format!("{}ms", lease.as_millis()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Registers the receiver for every type and gives it the secret; the
/// cursor of the events published so far (every event published after it
/// was published after the endpoint existed: the endpoint must get it).
async fn register(client: &ApiClient, receiver: &Receiver) -> Result<(i64, Expected)> {
    let created = client
        .post("/webhook-endpoints", &json!({"url": receiver.url()}), 201)
        .await?;
    let endpoint_id = id_of(&created)?;
    let secret = created["secret"]
        .as_str()
        .context("no secret in the endpoint's creation")?;
    receiver.inbox().set_secret(secret);
    let mut expected = Expected::default();
    expected.fetch_more(client, false).await?;
    Ok((endpoint_id, expected))
}

/// Kills `kills` instances one after the other, `gap` apart, each the one
/// whose delivery requests the receiver is holding; the instances killed
/// and how many kills hit a sender mid-request.
async fn kill_senders(
    env: &mut Env,
    inbox: &Inbox,
    kills: usize,
    gap: Duration,
    origin: Instant,
    timeline: &mut Vec<(Duration, String)>,
) -> (Vec<usize>, usize) {
    let mut killed: Vec<usize> = Vec::new();
    let mut sender_kills = 0;
    for _ in 0..kills {
        let (index, in_flight) = pick_sender(inbox, env, &killed).await;
        env.apis[index].kill();
        killed.push(index);
        if in_flight > 0 {
            sender_kills += 1;
        }
        timeline.push((
            origin.elapsed(),
            if in_flight > 0 {
                format!(
                    "instance #{index} killed (SIGKILL) while the receiver held {in_flight} of its delivery requests"
                )
            } else {
                format!(
                    "instance #{index} killed (SIGKILL): no delivery request of any instance was in flight within 5 s"
                )
            },
        ));
        tokio::time::sleep(gap).await;
    }
    (killed, sender_kills)
}

/// Waits until every listed event was received, no delivery of the
/// endpoint is pending and no new event was listed for 1 s, or `limit`
/// passes; how long that took.
async fn settle(
    client: &ApiClient,
    inbox: &Inbox,
    expected: &mut Expected,
    limit: Duration,
) -> Result<Option<Duration>> {
    let started = Instant::now();
    let mut quiet_since = Instant::now();
    loop {
        if expected.fetch_more(client, true).await? > 0 {
            quiet_since = Instant::now();
        }
        let received: HashSet<i64> = inbox.receipts().iter().map(|r| r.event_id).collect();
        let missing = expected.events.iter().any(|e| !received.contains(&e.id));
        let pending = client
            .get("/webhook-deliveries?status=pending&limit=1")
            .await?["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty());
        if !missing && !pending && quiet_since.elapsed() >= Duration::from_secs(1) {
            return Ok(Some(started.elapsed()));
        }
        if started.elapsed() > limit {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The instance (not killed yet) owning the connection of a request the
/// receiver is answering, and how many such requests it has; waits up to
/// 5 s, then takes the first instance still alive.
async fn pick_sender(inbox: &Inbox, env: &Env, killed: &[usize]) -> (usize, usize) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for port in inbox.in_flight_ports() {
            if let Some(pid) = process::pid_of_local_port(port)
                && let Some(index) = env.apis.iter().position(|a| a.pid() == pid)
                && !killed.contains(&index)
            {
                *counts.entry(index).or_default() += 1;
            }
        }
        if let Some((&index, &n)) = counts.iter().max_by_key(|(_, n)| **n) {
            return (index, n);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let index = (0..env.apis.len())
        .find(|i| !killed.contains(i))
        .unwrap_or(0);
    (index, 0)
}
