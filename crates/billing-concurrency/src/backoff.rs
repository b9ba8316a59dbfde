//! Capped exponential backoff with full jitter, for lock waits and for
//! retries of transient Redis errors.

use std::time::Duration;

use rand::RngExt;

/// A capped exponential backoff: attempt `n` (from 0) sleeps a uniformly
/// random time in `[0, min(cap, base * 2^n)]` ("full jitter"), so waiters
/// that collided once do not collide again in lockstep.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
}

/// Waiting for a held lock: first sleeps up to 2 ms, at most 64 ms later.
pub(crate) const LOCK_WAIT: Backoff = Backoff {
    base: Duration::from_millis(2),
    cap: Duration::from_millis(64),
};

/// Retrying a transient Redis error: first sleeps up to 20 ms, at most
/// 200 ms later (and never past the operation's budget).
pub(crate) const TRANSIENT_RETRY: Backoff = Backoff {
    base: Duration::from_millis(20),
    cap: Duration::from_millis(200),
};

impl Backoff {
    /// The upper bound of the sleep before retry number `attempt` (from 0).
    pub(crate) fn ceiling(self, attempt: u32) -> Duration {
        let factor = 1_u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A random sleep before retry number `attempt` (from 0).
    pub(crate) fn delay(self, attempt: u32) -> Duration {
        let ceiling = u64::try_from(self.ceiling(attempt).as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::rng().random_range(0..=ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_then_caps() {
        assert_eq!(LOCK_WAIT.ceiling(0), Duration::from_millis(2));
        assert_eq!(LOCK_WAIT.ceiling(1), Duration::from_millis(4));
        assert_eq!(LOCK_WAIT.ceiling(5), Duration::from_millis(64));
        assert_eq!(LOCK_WAIT.ceiling(u32::MAX), Duration::from_millis(64));
    }

    #[test]
    fn delay_stays_within_ceiling() {
        for attempt in 0..10 {
            for _ in 0..100 {
                assert!(TRANSIENT_RETRY.delay(attempt) <= TRANSIENT_RETRY.ceiling(attempt));
            }
        }
    }
}
