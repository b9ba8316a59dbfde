//! Locks: the bounded acquire loop and [`LockGuard`], which carries the
//! fencing token and releases the lock when dropped.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::backend::{Backend, Token};
use crate::backoff::LOCK_WAIT;
use crate::error::{CoordinationError, Result, ttl_millis};

/// A held lock.
///
/// Dropping the guard releases the lock (on a spawned task for Redis, at
/// once for the embedded backend), so a lock is never left to its TTL
/// because code returned early, failed, panicked or was cancelled; call
/// [`release`](Self::release) to learn whether it was still held.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard {
    backend: Backend,
    name: String,
    token: Token,
    fencing_token: u64,
    /// When the acquire request was sent: TTLs count from no earlier.
    since: Instant,
    /// Milliseconds after `since` at which the lock expires, as far as
    /// this process can tell (updated by `extend`).
    expires_after_ms: AtomicU64,
    released: bool,
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.name)
            .field("fencing_token", &self.fencing_token)
            .field("remaining", &self.remaining())
            .finish_non_exhaustive()
    }
}

impl LockGuard {
    /// The lock's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fencing token of this acquisition: strictly greater than that of
    /// every earlier acquisition of the same lock name. Store it with the
    /// write the lock protects and refuse writes carrying an older token,
    /// so that a holder which stalled past its TTL cannot overwrite the
    /// work of the next holder.
    #[must_use]
    pub fn fencing_token(&self) -> u64 {
        self.fencing_token
    }

    /// Time left before the lock's TTL runs out, by this process's clock,
    /// counted from before the acquire (or extend) request was sent, so it
    /// never overestimates. Zero once expired.
    #[must_use]
    pub fn remaining(&self) -> Duration {
        let deadline = Duration::from_millis(self.expires_after_ms.load(Ordering::Acquire));
        deadline.saturating_sub(self.since.elapsed())
    }

    /// Whether the TTL has run out by this process's clock: another holder
    /// may have taken the lock, so writes must now rely on the fencing
    /// token (or [`extend`](Self::extend) must confirm the lock first).
    #[must_use]
    pub fn is_expired(&self) -> bool {
        self.remaining().is_zero()
    }

    /// Sets the lock to expire `ttl` from now.
    ///
    /// Returns `true` if the lock is ours for `ttl` more; `false` if
    /// another holder has acquired it since this guard did (the caller has
    /// lost it and must stop). If the TTL had lapsed but nobody took the
    /// lock in the meantime, the lock is taken again and `true` returned:
    /// no other holder can have written in the gap.
    ///
    /// # Errors
    /// [`CoordinationError::InvalidArgument`] for a TTL under 1 ms or over
    /// a year; [`CoordinationError::Unavailable`] /
    /// [`CoordinationError::Rejected`] when Redis fails.
    pub async fn extend(&self, ttl: Duration) -> Result<bool> {
        let ttl_ms = ttl_millis("lock TTL", ttl)?;
        let sent = Instant::now();
        let extended = self
            .backend
            .extend(&self.name, self.token, self.fencing_token, ttl_ms)
            .await?;
        if extended {
            let from_since = sent.saturating_duration_since(self.since).as_millis();
            let after = u64::try_from(from_since)
                .unwrap_or(u64::MAX)
                .saturating_add(ttl_ms);
            self.expires_after_ms.store(after, Ordering::Release);
        } else {
            self.expires_after_ms.store(0, Ordering::Release);
        }
        Ok(extended)
    }

    /// Releases the lock.
    ///
    /// Returns `true` if the lock was still ours: nobody else acquired it
    /// since this guard did (it is deleted if it had not yet expired).
    /// `false` means another holder took it after our TTL ran out: the work
    /// done under this guard was not exclusive, which the fencing token
    /// lets the storage detect. Another holder's lock is never touched.
    ///
    /// # Errors
    /// [`CoordinationError::Unavailable`] / [`CoordinationError::Rejected`]
    /// when Redis fails: the lock then expires at its TTL.
    pub async fn release(mut self) -> Result<bool> {
        let result = self
            .backend
            .release(&self.name, self.token, self.fencing_token)
            .await;
        // Only now: if this future is dropped mid-way, `Drop` releases.
        self.released = true;
        result
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if !self.released {
            self.backend
                .release_in_background(self.name.clone(), self.token, self.fencing_token);
        }
    }
}

/// Releases a possibly-taken lock if the acquire loop is left by an error
/// or by cancellation, when an acquire request may have taken the lock
/// without its reply arriving.
struct PendingAcquire<'a> {
    backend: &'a Backend,
    name: &'a str,
    token: Token,
    ttl: Duration,
    armed: bool,
}

impl Drop for PendingAcquire<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.backend
                .release_after_failed_acquire(self.name.to_owned(), self.token, self.ttl);
        }
    }
}

/// Takes the lock `name` for `ttl`, trying until `wait` has passed, with
/// capped exponential backoff and full jitter between tries. `wait` zero
/// means one try.
pub(crate) async fn acquire(
    backend: &Backend,
    name: &str,
    ttl: Duration,
    wait: Duration,
) -> Result<LockGuard> {
    let ttl_ms = ttl_millis("lock TTL", ttl)?;
    // The name is the Redis Cluster hash tag of the lock's two keys
    // (`…:lock:{name}`, `…:fence:{name}`); an empty tag (`{}`, or a name
    // starting with `}`) would hash each key whole, into different slots.
    if name.is_empty() || name.starts_with('}') {
        return Err(CoordinationError::InvalidArgument {
            reason: format!("a lock name must not be empty nor start with '}}', got {name:?}"),
        });
    }
    let started = Instant::now();
    // One token for every try: a retry recognises a lock taken by a try
    // whose reply was lost.
    let mut pending = PendingAcquire {
        backend,
        name,
        token: Token::random(),
        ttl,
        armed: true,
    };
    let mut tries = 0;
    loop {
        let sent = Instant::now();
        if let Some(fencing_token) = backend.try_acquire(name, pending.token, ttl_ms).await? {
            pending.armed = false;
            return Ok(LockGuard {
                backend: backend.clone(),
                name: name.to_owned(),
                token: pending.token,
                fencing_token,
                since: sent,
                expires_after_ms: AtomicU64::new(ttl_ms),
                released: false,
            });
        }
        let waited = started.elapsed();
        let Some(left) = wait.checked_sub(waited).filter(|left| !left.is_zero()) else {
            pending.armed = false;
            return Err(CoordinationError::LockNotAcquired {
                name: name.to_owned(),
                waited,
            });
        };
        tokio::time::sleep(LOCK_WAIT.delay(tries).min(left)).await;
        tries += 1;
    }
}
