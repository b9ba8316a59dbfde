//! Locks: mutual exclusion, TTL expiry, fencing tokens, token-checked
//! release and extend, release on drop, panic and cancellation, bounded
//! waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use billing_concurrency::{CoordinationError, LockGuard};
use tokio::task::JoinSet;

use crate::{Harness, Tuning, on_both_backends, within};

const LONG: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(150);
/// Longer than [`SHORT`] with margin.
const PAST_SHORT: Duration = Duration::from_millis(400);
/// A generous bound for "promptly" (far below [`LONG`]).
const PROMPTLY: Duration = Duration::from_secs(5);

fn is_not_acquired<T>(result: &Result<T, CoordinationError>) -> bool {
    matches!(result, Err(CoordinationError::LockNotAcquired { .. }))
}

/// 32 tasks increment a counter with a non-atomic read-yield-write 50 times
/// each under one lock: no update is lost, and the fencing tokens seen in
/// lock order strictly increase.
async fn mutual_exclusion(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness.coordination().await?;
    let counter = Arc::new(AtomicU64::new(0));
    let fences = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = JoinSet::new();
    for _ in 0..32 {
        let coordination = coordination.clone();
        let counter = Arc::clone(&counter);
        let fences = Arc::clone(&fences);
        tasks.spawn(async move {
            for _ in 0..50 {
                let guard = coordination.lock("counter", LONG).await?;
                let seen = counter.load(Ordering::Relaxed);
                tokio::task::yield_now().await;
                counter.store(seen + 1, Ordering::Relaxed);
                fences
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .push(guard.fencing_token());
                ensure!(guard.release().await?, "lock lost while held");
            }
            anyhow::Ok(())
        });
    }
    while let Some(task) = tasks.join_next().await {
        task??;
    }
    assert_eq!(counter.load(Ordering::Relaxed), 1600);
    let fences = fences.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    assert_eq!(fences.len(), 1600);
    assert!(
        fences.windows(2).all(|w| w[0] < w[1]),
        "fencing tokens must strictly increase in lock order"
    );
    Ok(())
}

/// A holder that never releases (crashed) blocks the lock only until its
/// TTL.
async fn free_after_ttl(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness.coordination().await?;
    let acquired = Instant::now();
    let crashed = coordination.lock("ttl", SHORT).await?;
    // Simulates a crashed process: the guard is never dropped nor released.
    std::mem::forget(crashed);
    let meanwhile = coordination.try_lock("ttl", LONG, Duration::ZERO).await;
    if within(SHORT, acquired) {
        assert!(is_not_acquired(&meanwhile), "{meanwhile:?}");
    }
    tokio::time::sleep(PAST_SHORT).await;
    let next = coordination
        .try_lock("ttl", LONG, Duration::ZERO)
        .await
        .context("the lock must be free once its TTL has passed")?;
    assert!(next.release().await?);
    Ok(())
}

/// A holder that sleeps past its TTL while another takes the lock learns on
/// `extend` and `release` that it lost it; its release (a wrong token now)
/// and extend leave the new holder's lock in place, and its fencing token
/// is older.
async fn expired_holder_cannot_touch_next_holder(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness.coordination().await?;
    let stale = coordination.lock("account", SHORT).await?;
    tokio::time::sleep(PAST_SHORT).await;
    assert!(stale.is_expired());
    let next = coordination.try_lock("account", LONG, PROMPTLY).await?;
    assert!(next.fencing_token() > stale.fencing_token());

    assert!(
        !stale.extend(LONG).await?,
        "extend must report the lost lock"
    );
    assert!(stale.is_expired());
    assert!(!stale.release().await?, "release must report the lost lock");

    // The new holder still holds it, with its TTL untouched.
    let meanwhile = coordination.try_lock("account", LONG, Duration::ZERO).await;
    assert!(is_not_acquired(&meanwhile), "{meanwhile:?}");
    assert!(!next.is_expired());
    let next_fence = next.fencing_token();
    assert!(next.release().await?, "the new holder's lock was kept");
    let after = coordination
        .try_lock("account", LONG, Duration::ZERO)
        .await?;
    assert!(after.fencing_token() > next_fence);
    assert!(after.release().await?);
    Ok(())
}

/// Fencing tokens strictly increase across holders of one name; names are
/// independent.
async fn fencing_tokens_increase(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness.coordination().await?;
    let mut last = 0;
    for _ in 0..10 {
        let guard = coordination.lock("fenced", LONG).await?;
        assert!(guard.fencing_token() > last);
        last = guard.fencing_token();
        assert_eq!(guard.name(), "fenced");
        assert!(guard.release().await?);
    }
    let other = coordination.lock("other", LONG).await?;
    assert!(other.fencing_token() >= 1);
    assert!(other.release().await?);
    let again = coordination.lock("fenced", LONG).await?;
    assert!(again.fencing_token() > last);
    drop(again);
    Ok(())
}

/// `extend` keeps the lock past its first TTL; a lock whose TTL lapsed
/// while nobody took it can still be extended (no one else wrote).
async fn extend_keeps_the_lock(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness.coordination().await?;
    let guard = coordination.lock("long-job", SHORT).await?;
    let extended_at = Instant::now();
    assert!(guard.extend(LONG).await?);
    tokio::time::sleep(PAST_SHORT).await;
    assert!(!guard.is_expired());
    assert!(guard.remaining() <= LONG);
    let meanwhile = coordination
        .try_lock("long-job", LONG, Duration::ZERO)
        .await;
    assert!(is_not_acquired(&meanwhile), "{meanwhile:?}");
    assert!(extended_at.elapsed() < LONG);
    assert!(guard.release().await?);

    let lapsed = coordination.lock("lapsed", SHORT).await?;
    tokio::time::sleep(PAST_SHORT).await;
    assert!(lapsed.is_expired());
    assert!(lapsed.extend(LONG).await?, "nobody took it: still ours");
    assert!(!lapsed.is_expired());
    let meanwhile = coordination.try_lock("lapsed", LONG, Duration::ZERO).await;
    assert!(is_not_acquired(&meanwhile), "{meanwhile:?}");
    assert!(lapsed.release().await?);
    Ok(())
}

/// `try_lock` gives up at its deadline with `LockNotAcquired`, not before.
async fn wait_is_bounded(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness.coordination().await?;
    let holder = coordination.lock("busy", LONG).await?;
    let started = Instant::now();
    let wait = Duration::from_millis(300);
    let result = coordination.try_lock("busy", LONG, wait).await;
    let waited = started.elapsed();
    match result {
        Err(CoordinationError::LockNotAcquired { name, waited: told }) => {
            assert_eq!(name, "busy");
            assert!(told >= wait, "{told:?}");
        }
        other => anyhow::bail!("expected LockNotAcquired, got {other:?}"),
    }
    assert!(waited >= wait && waited < PROMPTLY, "{waited:?}");
    assert!(holder.release().await?);
    let invalid = coordination.lock("busy", Duration::ZERO).await;
    assert!(
        matches!(invalid, Err(CoordinationError::InvalidArgument { .. })),
        "{invalid:?}"
    );
    Ok(())
}

/// `with_lock` passes the guard, returns the output and releases on
/// success and on error.
async fn with_lock_releases_after_success_and_error(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness.coordination().await?;
    let fence = coordination
        .with_lock("job", LONG, async |guard: &LockGuard| guard.fencing_token())
        .await?;
    assert!(fence >= 1);
    let free = coordination.try_lock("job", LONG, Duration::ZERO).await?;
    assert!(free.fencing_token() > fence);
    assert!(free.release().await?);

    let failed: Result<(), &str> = coordination
        .with_lock("job", LONG, async |_guard: &LockGuard| Err("declined"))
        .await?;
    assert_eq!(failed, Err("declined"));
    let free = coordination.try_lock("job", LONG, Duration::ZERO).await?;
    assert!(free.release().await?);
    Ok(())
}

/// A panic inside `with_lock`, a cancelled `with_lock` and a guard dropped
/// without `release()` all free the lock promptly, long before its TTL.
async fn lock_released_on_panic_cancel_and_drop(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness.coordination().await?;

    let panicking = coordination.clone();
    let task = tokio::spawn(async move {
        panicking
            .with_lock("panics", LONG, async |_guard: &LockGuard| {
                if std::hint::black_box(true) {
                    panic!("work failed");
                }
            })
            .await
    });
    let joined = task.await;
    assert!(joined.is_err_and(|e| e.is_panic()));
    let started = Instant::now();
    let after_panic = coordination.try_lock("panics", LONG, PROMPTLY).await?;
    assert!(started.elapsed() < PROMPTLY);
    assert!(after_panic.release().await?);

    let cancelled = coordination.clone();
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        cancelled
            .with_lock("cancelled", LONG, async |_guard: &LockGuard| {
                let _ = held_tx.send(());
                std::future::pending::<()>().await;
            })
            .await
    });
    held_rx.await?;
    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    let after_cancel = coordination.try_lock("cancelled", LONG, PROMPTLY).await?;
    assert!(after_cancel.release().await?);

    let dropped = coordination.lock("dropped", LONG).await?;
    drop(dropped);
    let after_drop = coordination.try_lock("dropped", LONG, PROMPTLY).await?;
    assert!(after_drop.release().await?);

    // A waiter cancelled while waiting leaves nothing behind.
    let holder = coordination.lock("waited", LONG).await?;
    let waiter = coordination.clone();
    let task = tokio::spawn(async move { waiter.try_lock("waited", LONG, LONG).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    task.abort();
    let _ = task.await;
    assert!(holder.release().await?);
    let after_waiter = coordination.try_lock("waited", LONG, PROMPTLY).await?;
    assert!(after_waiter.release().await?);
    Ok(())
}

/// Handles opened with different tuning share locks on Redis (two API
/// instances); the lock wait from the settings bounds `lock`.
async fn lock_uses_configured_wait(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness
        .open(Tuning {
            lock_wait: Duration::from_millis(200),
            ..Tuning::default()
        })
        .await?;
    let holder = coordination.lock("configured", LONG).await?;
    let started = Instant::now();
    let result = coordination.lock("configured", LONG).await;
    assert!(is_not_acquired(&result), "{result:?}");
    assert!(started.elapsed() < PROMPTLY);
    assert!(holder.release().await?);
    Ok(())
}

on_both_backends!(
    mutual_exclusion,
    free_after_ttl,
    expired_holder_cannot_touch_next_holder,
    fencing_tokens_increase,
    extend_keeps_the_lock,
    wait_is_bounded,
    with_lock_releases_after_success_and_error,
    lock_released_on_panic_cancel_and_drop,
    lock_uses_configured_wait,
    fencing_tokens_follow_the_clock,
    names_that_would_split_a_lock_are_refused,
);

/// The name is the lock keys' Redis Cluster hash tag: an empty name, or
/// one starting with `}`, would hash the lock and its fencing counter to
/// different slots, so both backends refuse it; `}` elsewhere is fine.
async fn names_that_would_split_a_lock_are_refused(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness.coordination().await?;
    for name in ["", "}", "}invoice:1"] {
        let result = coordination.try_lock(name, LONG, Duration::ZERO).await;
        assert!(
            matches!(result, Err(CoordinationError::InvalidArgument { .. })),
            "{name:?}: {result:?}"
        );
    }
    for name in ["a}b", "{x}", "idempotency:user:1:{key}"] {
        let guard = coordination.try_lock(name, LONG, Duration::ZERO).await?;
        assert!(guard.release().await?, "{name:?}");
    }
    Ok(())
}

/// Fencing tokens are never below the clock in microseconds, so a token
/// stored with a write before a restart that lost the counters stays older
/// than every token handed out after it.
async fn fencing_tokens_follow_the_clock(harness: Harness) -> anyhow::Result<()> {
    let coordination = harness.coordination().await?;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros();
    let guard = coordination.lock("clock", LONG).await?;
    let token = u128::from(guard.fencing_token());
    assert!(guard.release().await?);
    // Redis' clock may differ from ours a little; a second is generous.
    assert!(
        token + 1_000_000 >= before,
        "token {token} is behind the clock {before}"
    );
    Ok(())
}
