//! The load generator: `connections` tokio tasks, each with its own HTTP
//! client and so its own keep-alive connection, sending one request after
//! the other (closed loop) until the run's end, the stop flag, or the pool
//! of invoices to pay runs out. Every answer is kept as a [`Sample`] with
//! its start time on a clock shared with the caller, so fault scenarios can
//! line answers up with what they did to the servers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::task::JoinSet;

use crate::stats;

/// Invoices to pay, each taken once.
#[derive(Debug, Default)]
pub struct InvoicePool {
    ids: Vec<i64>,
    next: AtomicUsize,
    in_doubt: Mutex<Vec<i64>>,
}

impl InvoicePool {
    /// A pool of `ids`, taken front to back.
    #[must_use]
    pub fn new(ids: Vec<i64>) -> Self {
        Self {
            ids,
            next: AtomicUsize::new(0),
            in_doubt: Mutex::new(Vec::new()),
        }
    }

    /// The next invoice, or `None` when all are taken.
    pub fn take(&self) -> Option<i64> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.ids.get(i).copied()
    }

    /// How many are left.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.ids
            .len()
            .saturating_sub(self.next.load(Ordering::Relaxed))
    }

    /// The invoices not taken yet (to carry them over into a new pool).
    #[must_use]
    pub fn untaken(&self) -> Vec<i64> {
        let next = self.next.load(Ordering::Relaxed).min(self.ids.len());
        self.ids[next..].to_vec()
    }

    /// Marks `id` as in doubt: its key was in flight on an instance that
    /// did not answer.
    pub fn mark_in_doubt(&self, id: i64) {
        if let Ok(mut in_doubt) = self.in_doubt.lock() {
            in_doubt.push(id);
        }
    }

    /// The invoices marked in doubt.
    #[must_use]
    pub fn in_doubt(&self) -> Vec<i64> {
        self.in_doubt.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// The `Idempotency-Key` the load uses to pay `invoice`.
#[must_use]
pub fn pay_key(prefix: &str, invoice: i64) -> String {
    format!("{prefix}-pay-{invoice}")
}

/// The body the load sends to pay `invoice` (the same on every retry, so
/// the key's fingerprint matches).
#[must_use]
pub fn pay_body(invoice: i64) -> String {
    format!(r#"{{"payment_method":"card","payment_reference":"load-{invoice}"}}"#)
}

/// What each request of a load does.
#[derive(Clone, Debug)]
pub enum Work {
    /// `GET` a path (under the target's base URL), cycling through `paths`.
    Get {
        /// Paths such as `/api/v1/plans` or `/api/v1/invoices/17`.
        paths: Arc<Vec<String>>,
    },
    /// `POST /api/v1/invoices` for a user of `users` (round robin) and
    /// `plan_id`.
    CreateInvoice {
        /// Users to invoice.
        users: Arc<Vec<i64>>,
        /// The plan.
        plan_id: i64,
    },
    /// `POST /api/v1/invoices/{id}/pay`, each request another invoice of
    /// the pool with its own `Idempotency-Key`.
    Pay {
        /// The invoices.
        pool: Arc<InvoicePool>,
        /// Prefix of the keys ([`pay_key`]).
        key_prefix: String,
        /// Retry the same invoice with the same key after a 5xx or a
        /// transport error (after `backoff`), as a client should; a 409
        /// `idempotency_in_flight` marks the invoice in doubt and moves
        /// on. Without it every invoice gets one request.
        retry: bool,
        /// Pause before a retry.
        backoff: Duration,
    },
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// An HTTP answer with this status.
    Status(u16),
    /// No answer within the client's timeout.
    Timeout,
    /// The connection could not be made (refused: the server is gone).
    Connect,
    /// Another transport error (reset, closed mid-response).
    Transport,
}

impl Outcome {
    /// Whether this is the status `expected`.
    #[must_use]
    pub fn is(self, expected: u16) -> bool {
        self == Self::Status(expected)
    }

    /// A short label: `200`, `503`, `timeout`, `refused`, `reset`.
    #[must_use]
    pub fn label(self) -> String {
        match self {
            Self::Status(status) => status.to_string(),
            Self::Timeout => "timeout".to_owned(),
            Self::Connect => "refused".to_owned(),
            Self::Transport => "reset".to_owned(),
        }
    }
}

/// One request.
#[derive(Clone, Debug)]
pub struct Sample {
    /// When it was sent, from the load's clock origin.
    pub start: Duration,
    /// How long until the whole answer was read (or the error).
    pub latency: Duration,
    /// How it ended.
    pub outcome: Outcome,
    /// Which target (index into the targets) it went to.
    pub target: usize,
    /// The invoice paid, for [`Work::Pay`].
    pub invoice: Option<i64>,
    /// Whether the answer carried `Idempotent-Replayed: true`.
    pub replayed: bool,
    /// The problem `code` of an error answer (`locked`,
    /// `idempotency_in_flight`, …), when it had one.
    pub code: Option<String>,
}

impl Sample {
    /// When the answer ended, from the clock origin.
    #[must_use]
    pub fn end(&self) -> Duration {
        self.start + self.latency
    }
}

/// A load to run.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// Base URLs; connection `i` uses `targets[i % len]`.
    pub targets: Vec<String>,
    /// Bearer token.
    pub token: String,
    /// Concurrent connections (tasks).
    pub connections: usize,
    /// How long to run (from start); the stop flag may end it earlier.
    pub duration: Duration,
    /// What each request does.
    pub work: Work,
    /// The client's timeout per request.
    pub request_timeout: Duration,
    /// After a refused connection, move to the next target (fault
    /// scenarios: an instance was killed).
    pub failover: bool,
    /// At most this many requests per second per connection (`None`: as
    /// fast as answers come).
    pub rate_per_connection: Option<u32>,
}

/// The answers of a load.
#[derive(Clone, Debug, Default)]
pub struct LoadRun {
    /// Every request, in no particular order.
    pub samples: Vec<Sample>,
    /// When the load started and ended, from the clock origin.
    pub started: Duration,
    /// See `started`.
    pub ended: Duration,
    /// Whether the pool of invoices ran out before the end.
    pub pool_exhausted: bool,
}

/// Runs `spec`, timing samples from `origin`, until its duration passes or
/// `stop` is set.
///
/// # Errors
/// When an HTTP client cannot be built.
pub async fn run(spec: LoadSpec, origin: Instant, stop: Arc<AtomicBool>) -> Result<LoadRun> {
    let started = origin.elapsed();
    let deadline = Instant::now() + spec.duration;
    let exhausted = Arc::new(AtomicBool::new(false));
    let spec = Arc::new(spec);
    let mut tasks = JoinSet::new();
    for connection in 0..spec.connections {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .timeout(spec.request_timeout)
            .connect_timeout(Duration::from_secs(2))
            .build()?;
        let task = Task {
            spec: Arc::clone(&spec),
            http,
            target: connection % spec.targets.len().max(1),
            origin,
            deadline,
            stop: Arc::clone(&stop),
            exhausted: Arc::clone(&exhausted),
            samples: Vec::new(),
            counter: connection,
        };
        tasks.spawn(task.run());
    }
    let mut samples = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        samples.extend(joined?);
    }
    Ok(LoadRun {
        samples,
        started,
        ended: origin.elapsed(),
        pool_exhausted: exhausted.load(Ordering::Relaxed),
    })
}

struct Task {
    spec: Arc<LoadSpec>,
    http: reqwest::Client,
    target: usize,
    origin: Instant,
    deadline: Instant,
    stop: Arc<AtomicBool>,
    exhausted: Arc<AtomicBool>,
    samples: Vec<Sample>,
    counter: usize,
}

/// What to do after an answer to a payment.
enum Next {
    /// Take another invoice.
    Done,
    /// Send the same invoice with the same key again.
    Retry,
}

impl Task {
    fn running(&self) -> bool {
        Instant::now() < self.deadline && !self.stop.load(Ordering::Relaxed)
    }

    async fn run(mut self) -> Vec<Sample> {
        let mut pacing = self.spec.rate_per_connection.map(|rate| {
            let mut interval = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        let mut current_invoice: Option<i64> = None;
        while self.running() {
            if let Some(interval) = pacing.as_mut() {
                interval.tick().await;
            }
            let work = self.spec.work.clone();
            match work {
                Work::Get { paths } => {
                    let path = &paths[self.counter % paths.len().max(1)];
                    self.counter += 1;
                    let url = format!("{}{path}", self.base());
                    let request = self.http.get(url).bearer_auth(&self.spec.token);
                    self.send(request, None).await;
                }
                Work::CreateInvoice { users, plan_id } => {
                    let user = users[self.counter % users.len().max(1)];
                    self.counter += self.spec.connections.max(1);
                    let url = format!("{}/api/v1/invoices", self.base());
                    let request = self
                        .http
                        .post(url)
                        .bearer_auth(&self.spec.token)
                        .header("content-type", "application/json")
                        .body(format!(r#"{{"user_id":{user},"plan_id":{plan_id}}}"#));
                    self.send(request, None).await;
                }
                Work::Pay {
                    pool,
                    key_prefix,
                    retry,
                    backoff,
                } => {
                    let invoice = match current_invoice.take() {
                        Some(invoice) => invoice,
                        None => match pool.take() {
                            Some(invoice) => invoice,
                            None => {
                                self.exhausted.store(true, Ordering::Relaxed);
                                break;
                            }
                        },
                    };
                    let url = format!("{}/api/v1/invoices/{invoice}/pay", self.base());
                    let key = pay_key(&key_prefix, invoice);
                    let request = self
                        .http
                        .post(url)
                        .bearer_auth(&self.spec.token)
                        .header("content-type", "application/json")
                        .header("idempotency-key", key)
                        .body(pay_body(invoice));
                    let outcome = self.send(request, Some(invoice)).await;
                    match next_after_payment(retry, &outcome) {
                        Next::Done => {
                            if retry && in_flight(&outcome) {
                                pool.mark_in_doubt(invoice);
                            }
                        }
                        Next::Retry => {
                            current_invoice = Some(invoice);
                            tokio::time::sleep(backoff).await;
                        }
                    }
                }
            }
        }
        self.samples
    }

    fn base(&self) -> &str {
        &self.spec.targets[self.target % self.spec.targets.len()]
    }

    /// Sends, reads the whole answer, records a sample; returns the
    /// outcome and the problem code.
    async fn send(
        &mut self,
        request: reqwest::RequestBuilder,
        invoice: Option<i64>,
    ) -> (Outcome, Option<String>) {
        let start = self.origin.elapsed();
        let sent = Instant::now();
        let (outcome, replayed, code) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let replayed = response
                    .headers()
                    .get("idempotent-replayed")
                    .is_some_and(|v| v.as_bytes() == b"true");
                match response.bytes().await {
                    Ok(body) => {
                        let code = if status >= 400 {
                            problem_code(&body)
                        } else {
                            None
                        };
                        (Outcome::Status(status), replayed, code)
                    }
                    Err(error) => (classify(&error), false, None),
                }
            }
            Err(error) => (classify(&error), false, None),
        };
        let latency = sent.elapsed();
        self.samples.push(Sample {
            start,
            latency,
            outcome,
            target: self.target,
            invoice,
            replayed,
            code: code.clone(),
        });
        match outcome {
            Outcome::Connect => {
                if self.spec.failover && self.spec.targets.len() > 1 {
                    self.target = (self.target + 1) % self.spec.targets.len();
                }
                // A server that is gone refuses at once: do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Outcome::Transport => {
                if self.spec.failover && self.spec.targets.len() > 1 {
                    self.target = (self.target + 1) % self.spec.targets.len();
                }
            }
            Outcome::Status(_) | Outcome::Timeout => {}
        }
        (outcome, code)
    }
}

fn in_flight(outcome: &(Outcome, Option<String>)) -> bool {
    outcome.0.is(409) && outcome.1.as_deref() == Some("idempotency_in_flight")
}

/// Whether a payment is sent again: with `retry`, after a 5xx, a transport
/// error, or a 409 `locked` (a transient refusal).
fn next_after_payment(retry: bool, outcome: &(Outcome, Option<String>)) -> Next {
    if !retry {
        return Next::Done;
    }
    match outcome.0 {
        Outcome::Status(status) if status >= 500 => Next::Retry,
        Outcome::Status(409) if outcome.1.as_deref() == Some("locked") => Next::Retry,
        Outcome::Status(_) => Next::Done,
        Outcome::Timeout | Outcome::Connect | Outcome::Transport => Next::Retry,
    }
}

fn classify(error: &reqwest::Error) -> Outcome {
    if error.is_timeout() {
        Outcome::Timeout
    } else if error.is_connect() {
        Outcome::Connect
    } else {
        Outcome::Transport
    }
}

/// The `code` member of a problem+json body.
#[must_use]
pub fn problem_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("code")?.as_str().map(str::to_owned)
}

/// The figures of one load cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Requests sent in the measured window.
    pub requests: u64,
    /// Of which answered with the expected status.
    pub ok: u64,
    /// Of which not (other status or transport error).
    pub errors: u64,
    /// Expected answers per second over the window.
    pub rps: u64,
    /// Median latency of all requests of the window, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Slowest, µs.
    pub max_us: u64,
    /// The measured window.
    pub window: Duration,
}

/// Summarises the samples that started at or after `from` (the end of the
/// warm-up) until the run's end; `expected` is the success status.
#[must_use]
pub fn summarize(run: &LoadRun, from: Duration, expected: u16) -> Summary {
    let window_end = run
        .samples
        .iter()
        .map(Sample::end)
        .max()
        .unwrap_or(run.ended)
        .min(run.ended);
    let window = window_end.saturating_sub(from);
    let measured: Vec<&Sample> = run.samples.iter().filter(|s| s.start >= from).collect();
    summarize_samples(&measured, window, expected)
}

/// Summarises `samples` over `window`.
#[must_use]
pub fn summarize_samples(samples: &[&Sample], window: Duration, expected: u16) -> Summary {
    let mut latencies: Vec<u64> = samples
        .iter()
        .map(|s| u64::try_from(s.latency.as_micros()).unwrap_or(u64::MAX))
        .collect();
    latencies.sort_unstable();
    let ok = samples.iter().filter(|s| s.outcome.is(expected)).count() as u64;
    let requests = samples.len() as u64;
    Summary {
        requests,
        ok,
        errors: requests - ok,
        rps: stats::per_second(ok, window),
        p50_us: stats::percentile(&latencies, 500).unwrap_or(0),
        p99_us: stats::percentile(&latencies, 990).unwrap_or(0),
        max_us: latencies.last().copied().unwrap_or(0),
        window,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(start_ms: u64, latency_ms: u64, status: u16) -> Sample {
        Sample {
            start: Duration::from_millis(start_ms),
            latency: Duration::from_millis(latency_ms),
            outcome: Outcome::Status(status),
            target: 0,
            invoice: None,
            replayed: false,
            code: None,
        }
    }

    #[test]
    fn summaries_skip_the_warm_up_and_count_errors() {
        let run = LoadRun {
            samples: vec![
                sample(0, 5, 200),
                sample(1000, 2, 200),
                sample(1500, 4, 503),
                sample(1999, 1, 200),
            ],
            started: Duration::ZERO,
            ended: Duration::from_millis(2000),
            pool_exhausted: false,
        };
        let summary = summarize(&run, Duration::from_millis(1000), 200);
        assert_eq!(summary.requests, 3);
        assert_eq!(summary.ok, 2);
        assert_eq!(summary.errors, 1);
        assert_eq!(summary.window, Duration::from_millis(1000));
        assert_eq!(summary.rps, 2);
        assert_eq!(summary.p50_us, 2000);
        assert_eq!(summary.max_us, 4000);
    }

    #[test]
    fn pools_hand_out_each_invoice_once() {
        let pool = InvoicePool::new(vec![1, 2, 3]);
        assert_eq!(pool.take(), Some(1));
        assert_eq!(pool.remaining(), 2);
        assert_eq!(pool.untaken(), vec![2, 3]);
        assert_eq!(pool.take(), Some(2));
        assert_eq!(pool.take(), Some(3));
        assert_eq!(pool.take(), None);
        assert_eq!(pool.remaining(), 0);
        assert!(pool.untaken().is_empty());
    }

    #[test]
    fn payments_are_retried_only_after_transient_failures() {
        let retried = |outcome: Outcome, code: Option<&str>| {
            matches!(
                next_after_payment(true, &(outcome, code.map(str::to_owned))),
                Next::Retry
            )
        };
        assert!(retried(Outcome::Status(503), None));
        assert!(retried(Outcome::Connect, None));
        assert!(retried(Outcome::Status(409), Some("locked")));
        assert!(!retried(Outcome::Status(200), None));
        assert!(!retried(
            Outcome::Status(409),
            Some("idempotency_in_flight")
        ));
        assert!(!retried(Outcome::Status(409), Some("invalid_transition")));
        assert!(matches!(
            next_after_payment(false, &(Outcome::Status(503), None)),
            Next::Done
        ));
    }

    #[test]
    fn keys_and_bodies_are_stable_per_invoice() {
        assert_eq!(pay_key("run1", 42), "run1-pay-42");
        assert_eq!(pay_body(42), pay_body(42));
        assert_eq!(
            problem_code(br#"{"status":409,"code":"locked"}"#).as_deref(),
            Some("locked")
        );
        assert_eq!(problem_code(b"not json"), None);
    }
}
