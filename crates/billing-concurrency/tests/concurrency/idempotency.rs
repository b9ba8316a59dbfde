//! Idempotency keys: every outcome of `begin`, byte-exact replays, one
//! `Started` among concurrent `begin`s, owner-checked `complete` and
//! `abandon`, expiry of in-flight markers and of stored outcomes.

use std::time::{Duration, Instant};

use anyhow::bail;
use billing_concurrency::{
    CoordinationError, IdempotencyOutcome, IdempotencyTicket, StoredOutcome, fingerprint,
};
use tokio::task::JoinSet;

use crate::{Harness, Tuning, on_both_backends, within};

const SCOPE: &str = "user:42";

fn charge_fingerprint(body: &[u8]) -> String {
    fingerprint(SCOPE, "POST", "/v1/charges", body)
}

/// An outcome with bytes that a lossy encoding would break.
fn outcome() -> StoredOutcome {
    let mut bytes: Vec<u8> = (0..=255).collect();
    bytes.extend_from_slice(b"\r\n{\"id\":\"ch_1\"}\0\xff");
    bytes.extend_from_slice("set-cookie: b=é; Path=/".as_bytes());
    StoredOutcome(bytes)
}

fn started(outcome: IdempotencyOutcome) -> anyhow::Result<IdempotencyTicket> {
    match outcome {
        IdempotencyOutcome::Started(ticket) => Ok(ticket),
        other @ (IdempotencyOutcome::Replay(_)
        | IdempotencyOutcome::InFlight
        | IdempotencyOutcome::Mismatch) => bail!("expected Started, got {other:?}"),
    }
}

/// Started, then InFlight while running, then Replay of the exact bytes,
/// and Mismatch for another request with the same key, before and after
/// completion.
async fn each_outcome_and_exact_replay(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness.coordination().await?;
    let idempotency = coordination.idempotency();
    let fp = charge_fingerprint(b"{\"amount\":100}");
    let other_fp = charge_fingerprint(b"{\"amount\":999}");

    let ticket = started(idempotency.begin(SCOPE, "key-1", &fp).await?)?;
    assert_eq!((ticket.scope(), ticket.key()), (SCOPE, "key-1"));
    assert!(matches!(
        idempotency.begin(SCOPE, "key-1", &fp).await?,
        IdempotencyOutcome::InFlight
    ));
    assert!(matches!(
        idempotency.begin(SCOPE, "key-1", &other_fp).await?,
        IdempotencyOutcome::Mismatch
    ));

    let stored = outcome();
    assert!(idempotency.complete(&ticket, &stored).await?);
    // Completing twice with one ticket keeps the first outcome.
    let mut different = outcome();
    different.0.push(b'!');
    assert!(idempotency.complete(&ticket, &different).await?);

    for _ in 0..3 {
        match idempotency.begin(SCOPE, "key-1", &fp).await? {
            IdempotencyOutcome::Replay(replayed) => {
                assert_eq!(replayed.0, stored.0, "byte-identical outcome");
            }
            other @ (IdempotencyOutcome::Started(_)
            | IdempotencyOutcome::InFlight
            | IdempotencyOutcome::Mismatch) => bail!("expected Replay, got {other:?}"),
        }
    }
    assert!(matches!(
        idempotency.begin(SCOPE, "key-1", &other_fp).await?,
        IdempotencyOutcome::Mismatch
    ));
    // A completed key cannot be abandoned.
    assert!(!idempotency.abandon(&ticket).await?);

    // Scopes are separate namespaces; an empty outcome replays too.
    let other_scope = started(idempotency.begin("user:43", "key-1", &fp).await?)?;
    let empty = StoredOutcome(Vec::new());
    assert!(idempotency.complete(&other_scope, &empty).await?);
    match idempotency.begin("user:43", "key-1", &fp).await? {
        IdempotencyOutcome::Replay(replayed) => assert_eq!(replayed, empty),
        other @ (IdempotencyOutcome::Started(_)
        | IdempotencyOutcome::InFlight
        | IdempotencyOutcome::Mismatch) => bail!("expected Replay, got {other:?}"),
    }
    Ok(())
}

/// 64 concurrent `begin`s with one key: exactly one `Started`, the others
/// `InFlight`.
async fn one_of_many_concurrent_begins_starts(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness.coordination().await?;
    let fp = charge_fingerprint(b"{}");
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = JoinSet::new();
    for _ in 0..64 {
        let coordination = coordination.clone();
        let fp = fp.clone();
        let barrier = std::sync::Arc::clone(&barrier);
        tasks.spawn(async move {
            barrier.wait().await;
            coordination
                .idempotency()
                .begin(SCOPE, "double-click", &fp)
                .await
        });
    }
    let (mut started, mut in_flight) = (Vec::new(), 0);
    while let Some(task) = tasks.join_next().await {
        match task?? {
            IdempotencyOutcome::Started(ticket) => started.push(ticket),
            IdempotencyOutcome::InFlight => in_flight += 1,
            other @ (IdempotencyOutcome::Replay(_) | IdempotencyOutcome::Mismatch) => {
                bail!("unexpected {other:?}")
            }
        }
    }
    assert_eq!(started.len(), 1, "exactly one request may run");
    assert_eq!(in_flight, 63);
    Ok(())
}

/// `abandon` frees the key for a retry; only the owner can abandon.
async fn abandon_allows_retry(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness.coordination().await?;
    let idempotency = coordination.idempotency();
    let fp = charge_fingerprint(b"{}");
    let first = started(idempotency.begin(SCOPE, "retry-me", &fp).await?)?;
    assert!(idempotency.abandon(&first).await?);
    assert!(!idempotency.abandon(&first).await?, "already abandoned");
    let second = started(idempotency.begin(SCOPE, "retry-me", &fp).await?)?;
    // The first request's late abandon or complete does not touch the
    // second request's claim.
    assert!(!idempotency.abandon(&first).await?);
    assert!(!idempotency.complete(&first, &outcome()).await?);
    assert!(matches!(
        idempotency.begin(SCOPE, "retry-me", &fp).await?,
        IdempotencyOutcome::InFlight
    ));
    assert!(idempotency.complete(&second, &outcome()).await?);
    Ok(())
}

/// The in-flight marker has its own short TTL: a crashed request blocks its
/// key only that long, and its late `complete` cannot overwrite the newer
/// owner's outcome.
async fn in_flight_marker_expires(harness: Harness) -> anyhow::Result<()> {
    let in_flight_ttl = Duration::from_millis(300);
    let coordination = harness
        .open(Tuning {
            in_flight_ttl,
            ..Tuning::default()
        })
        .await?;
    let idempotency = coordination.idempotency();
    let fp = charge_fingerprint(b"{}");
    let crashed = started(idempotency.begin(SCOPE, "crash", &fp).await?)?;
    tokio::time::sleep(in_flight_ttl * 2).await;
    let begun = Instant::now();
    let retry = started(idempotency.begin(SCOPE, "crash", &fp).await?)?;
    assert!(
        !idempotency.complete(&crashed, &outcome()).await?,
        "the expired owner's late complete must be refused"
    );
    let mut newer = outcome();
    newer.0 = b"newer".to_vec();
    let completed = idempotency.complete(&retry, &newer).await?;
    if within(in_flight_ttl, begun) {
        assert!(completed);
        match idempotency.begin(SCOPE, "crash", &fp).await? {
            IdempotencyOutcome::Replay(replayed) => assert_eq!(replayed, newer),
            other @ (IdempotencyOutcome::Started(_)
            | IdempotencyOutcome::InFlight
            | IdempotencyOutcome::Mismatch) => bail!("expected Replay, got {other:?}"),
        }
    }
    Ok(())
}

/// Stored outcomes expire after the idempotency TTL.
async fn completed_keys_expire(harness: Harness) -> anyhow::Result<()> {
    let idempotency_ttl = Duration::from_millis(300);
    let coordination = harness
        .open(Tuning {
            idempotency_ttl,
            ..Tuning::default()
        })
        .await?;
    let idempotency = coordination.idempotency();
    let fp = charge_fingerprint(b"{}");
    let ticket = started(idempotency.begin(SCOPE, "expiring", &fp).await?)?;
    let completed_at = Instant::now();
    assert!(idempotency.complete(&ticket, &outcome()).await?);
    let replay = idempotency.begin(SCOPE, "expiring", &fp).await?;
    if within(idempotency_ttl, completed_at) {
        assert!(
            matches!(replay, IdempotencyOutcome::Replay(_)),
            "{replay:?}"
        );
    }
    tokio::time::sleep(idempotency_ttl * 2).await;
    started(idempotency.begin(SCOPE, "expiring", &fp).await?)?;
    Ok(())
}

/// Keys are validated.
async fn keys_are_validated(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness.coordination().await?;
    let idempotency = coordination.idempotency();
    for (scope, key) in [(SCOPE, String::new()), (SCOPE, "k".repeat(256))] {
        let result = idempotency.begin(scope, &key, "fp").await;
        assert!(
            matches!(result, Err(CoordinationError::InvalidArgument { .. })),
            "{result:?}"
        );
    }
    // Scope and key are not confused by separators inside them.
    let fp = charge_fingerprint(b"{}");
    let a = started(idempotency.begin("a:b", "c", &fp).await?)?;
    let b = started(idempotency.begin("a", "b:c", &fp).await?)?;
    assert!(idempotency.abandon(&a).await? && idempotency.abandon(&b).await?);
    Ok(())
}

on_both_backends!(
    each_outcome_and_exact_replay,
    one_of_many_concurrent_begins_starts,
    abandon_allows_retry,
    in_flight_marker_expires,
    completed_keys_expire,
    keys_are_validated,
);
