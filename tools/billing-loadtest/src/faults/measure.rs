//! What the recorded answers of a fault scenario say: the criteria of
//! each scenario judged from the load's samples and the times of the
//! fault (pure functions), with the counts and latencies they quote.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use super::{Criterion, FaultOptions, criterion, secs};
use crate::load::{LoadRun, Outcome, Sample};
use crate::stats;

/// When a fault happened, from the start of the load: the server went
/// down, was started again, and answered again.
#[derive(Clone, Copy, Debug)]
pub(super) struct Outage {
    pub(super) down: Duration,
    pub(super) restarting: Duration,
    pub(super) up: Duration,
}

fn overlaps(sample: &Sample, from: Duration, to: Duration) -> bool {
    sample.start < to && sample.end() > from
}

/// The samples by answer: `200`, `503 dependency_unavailable`, `timeout`, …
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

/// `200 ×12, 503 ×3`, or `none`.
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

/// The `permille`-th percentile of the samples' latencies (0 for none).
fn latency(samples: &[&Sample], permille: u64) -> Duration {
    let mut micros: Vec<u64> = samples
        .iter()
        .map(|s| u64::try_from(s.latency.as_micros()).unwrap_or(u64::MAX))
        .collect();
    micros.sort_unstable();
    Duration::from_micros(stats::percentile(&micros, permille).unwrap_or(0))
}

fn p99(samples: &[&Sample]) -> Duration {
    latency(samples, 990)
}

fn p50(samples: &[&Sample]) -> Duration {
    latency(samples, 500)
}

/// A duration in milliseconds with two decimals.
fn ms(d: Duration) -> String {
    stats::millis(u64::try_from(d.as_micros()).unwrap_or(0))
}

/// Redis outage: payments answer 503 and fail fast while Redis is down,
/// reads keep working, payments recover and keep succeeding.
pub(super) fn judge_redis(
    options: &FaultOptions,
    pay: &LoadRun,
    read: &LoadRun,
    at: Outage,
) -> Vec<Criterion> {
    let mut out = redis_down(options, pay, at);
    out.push(reads_while_down(read, at));
    out.extend(redis_back(options, pay, at.up));
    out
}

/// The payments while Redis is down: 503, fast.
fn redis_down(options: &FaultOptions, pay: &LoadRun, at: Outage) -> Vec<Criterion> {
    let Outage {
        down, restarting, ..
    } = at;
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
            ms(slow),
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
    out
}

/// The reads in flight while Redis is down all succeed.
fn reads_while_down(read: &LoadRun, at: Outage) -> Criterion {
    let reads: Vec<&Sample> = read
        .samples
        .iter()
        .filter(|s| overlaps(s, at.down, at.up))
        .collect();
    let reads_ok = !reads.is_empty() && reads.iter().all(|s| s.outcome.is(200));
    criterion(
        "reads keep working while Redis is down",
        reads_ok,
        format!(
            "{} reads: {}, p99 {} ms",
            reads.len(),
            counts_text(&outcome_counts(reads.iter().copied())),
            ms(p99(&reads))
        ),
    )
}

/// Payments succeed again soon after Redis answers, and keep succeeding.
fn redis_back(options: &FaultOptions, pay: &LoadRun, up: Duration) -> Vec<Criterion> {
    let mut out = Vec::new();
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

/// PostgreSQL restart: requests answer 503 or wait, never hang, and all
/// succeed a little after the server is back.
pub(super) fn judge_postgres(
    options: &FaultOptions,
    pay: &LoadRun,
    read: &LoadRun,
    at: Outage,
) -> Vec<Criterion> {
    let all: Vec<&Sample> = pay.samples.iter().chain(read.samples.iter()).collect();
    let mut out = postgres_down(options, &all, at);
    out.push(postgres_back(options, (pay, read), &all, at.up));
    out
}

/// The requests while PostgreSQL is down: 503 or a wait, no hang.
fn postgres_down(options: &FaultOptions, all: &[&Sample], at: Outage) -> Vec<Criterion> {
    let Outage {
        down, restarting, ..
    } = at;
    let mut out = Vec::new();
    let from = down + Duration::from_millis(300);
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
            ms(p50(&straddling)),
            ms(p99(&straddling)),
            ms(slowest),
        ),
    ));
    out
}

/// Every request sent a little after PostgreSQL is back succeeds.
fn postgres_back(
    options: &FaultOptions,
    (pay, read): (&LoadRun, &LoadRun),
    all: &[&Sample],
    up: Duration,
) -> Criterion {
    let first_ok = |run: &LoadRun| {
        run.samples
            .iter()
            .filter(|s| s.start >= up && s.outcome.is(200))
            .map(Sample::end)
            .min()
    };
    let first_pay = first_ok(pay);
    let first_read = first_ok(read);
    let last_failure = all
        .iter()
        .filter(|s| s.start >= up && !s.outcome.is(200))
        .map(|s| s.end())
        .max();
    let settled = up + options.postgres_recovery;
    let late: Vec<&Sample> = all.iter().copied().filter(|s| s.start >= settled).collect();
    let late_ok = !late.is_empty() && late.iter().all(|s| s.outcome.is(200));
    let after_up = |t: Option<Duration>| t.map_or("-".to_owned(), |t| secs(t.saturating_sub(up)));
    criterion(
        format!(
            "full recovery: every request sent {} s after PostgreSQL is back succeeds, no API restart",
            secs(options.postgres_recovery)
        ),
        late_ok && first_pay.is_some() && first_read.is_some(),
        format!(
            "first payment 200 at +{} s, first read 200 at +{} s, last failure at +{} s after PostgreSQL was back; later: {}",
            after_up(first_pay),
            after_up(first_read),
            after_up(last_failure),
            counts_text(&outcome_counts(late.iter().copied()))
        ),
    )
}

/// Judges the loads after the kill: the survivors keep paying, reads
/// move over.
pub(super) fn judge_kill(pay: &LoadRun, read: &LoadRun, killed: Duration) -> Vec<Criterion> {
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
pub(super) struct Retries {
    /// The invoices retried.
    pub(super) done: Vec<i64>,
    /// (invoice, final answer, when relative to the kill).
    pub(super) resolutions: Vec<(i64, String, Duration)>,
    /// Invoices still `idempotency_in_flight` more than 1 s after the TTL.
    pub(super) late: Vec<i64>,
    /// Every retry sent.
    pub(super) samples: Vec<Sample>,
}

/// Judges the retries: each resolved as paid (200) or already paid by the
/// killed instance (409 `invalid_transition` with the invoice in `paid`).
pub(super) fn judge_retries(
    options: &FaultOptions,
    paid: &HashSet<i64>,
    retries: &Retries,
) -> Criterion {
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
    criterion(
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
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(start_ms: u64, latency_ms: u64, status: u16, target: usize) -> Sample {
        Sample {
            start: Duration::from_millis(start_ms),
            latency: Duration::from_millis(latency_ms),
            outcome: Outcome::Status(status),
            target,
            invoice: Some(i64::try_from(start_ms).unwrap_or(0)),
            replayed: false,
            code: None,
        }
    }

    fn run(samples: Vec<Sample>) -> LoadRun {
        LoadRun {
            samples,
            ..LoadRun::default()
        }
    }

    #[test]
    fn a_500_on_a_survivor_after_the_kill_fails_it() {
        // Killed at 1 s: one payment on #0 cut, the survivors answer 200
        // then one 500; reads from 2 s all 200.
        let pay = run(vec![
            sample(900, 200, 200, 0),
            sample(1_100, 5, 200, 1),
            sample(1_200, 5, 500, 2),
        ]);
        let read = run(vec![sample(1_500, 5, 503, 1), sample(2_100, 5, 200, 2)]);
        let criteria = judge_kill(&pay, &read, Duration::from_secs(1));
        assert!(!criteria[0].ok);
        assert_eq!(
            criteria[0].detail,
            "2 payments on the survivors after the kill: 200 ×1, 500 ×1 (1 requests were cut by the kill)"
        );
        assert!(criteria[1].ok, "{}", criteria[1].detail);
        assert_eq!(
            criteria[1].detail,
            "1 reads from 1 s after the kill: 200 ×1"
        );
    }

    #[test]
    fn a_retry_finding_the_invoice_paid_passes_only_when_it_is_paid() {
        let retries = Retries {
            resolutions: vec![
                (7, "200".to_owned(), Duration::from_millis(5_600)),
                (
                    8,
                    "409 invalid_transition".to_owned(),
                    Duration::from_millis(5_700),
                ),
            ],
            ..Retries::default()
        };
        let paid = HashSet::from([7, 8]);
        let options = options_with_ttl(Duration::from_secs(5));
        let judged = judge_retries(&options, &paid, &retries);
        assert!(judged.ok, "{judged:?}");
        assert!(judged.name.contains("after the in-flight TTL (5.000 s)"));
        assert_eq!(
            judged.detail,
            "invoice 7 → 200 at kill + 5.600 s; invoice 8 → 409 invalid_transition at kill + 5.700 s"
        );
        let judged = judge_retries(&options, &HashSet::from([7]), &retries);
        assert!(!judged.ok);
    }

    fn options_with_ttl(in_flight_ttl: Duration) -> FaultOptions {
        let s = Duration::from_secs(1);
        FaultOptions {
            api_bin: std::path::PathBuf::new(),
            instances: 3,
            workers: 1,
            pay_connections: 1,
            pay_rate: 1,
            read_connections: 1,
            read_rate: 1,
            before: s,
            outage: s,
            after: s,
            in_flight_ttl,
            redis_recovery: s,
            redis_fail_fast: s,
            db_acquire_timeout: s,
            postgres_recovery: s,
            time_limit: s,
            api_log: String::new(),
            keep: false,
            webhook_lease_ttl: s,
            settle_limit: s,
        }
    }

    #[test]
    fn payments_during_a_redis_outage_must_all_answer_503_fast() {
        let at = Outage {
            down: Duration::from_secs(5),
            restarting: Duration::from_secs(11),
            up: Duration::from_millis(11_100),
        };
        let pay = run(vec![
            sample(6_000, 3, 503, 0),
            sample(7_000, 1_500, 503, 1),
            sample(12_000, 4, 200, 2),
            sample(17_000, 4, 200, 0),
        ]);
        let read = run(vec![sample(6_000, 2, 200, 0)]);
        let criteria = judge_redis(&options_with_ttl(Duration::from_secs(5)), &pay, &read, at);
        let oks: Vec<bool> = criteria.iter().map(|c| c.ok).collect();
        // All 503, but one took 1.5 s (the bound is 1 s).
        assert_eq!(oks, [true, false, true, true, true], "{criteria:?}");
        assert_eq!(criteria[0].detail, "2 payments: 503 ×2");
        assert_eq!(
            criteria[1].detail,
            "p99 1500.00 ms over 2 payments in flight during the outage, slowest 1500.00 ms, 0 client time-outs"
        );
        assert_eq!(criteria[3].detail, "first 200 0.904 s after Redis answered");
    }
}
