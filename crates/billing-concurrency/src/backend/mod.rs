//! Dispatch between the Redis and the embedded backend (an enum, no trait
//! objects), and the random [`Token`]s that identify a lock holder or the
//! owner of an idempotency key.

pub(crate) mod embedded;
pub(crate) mod redis_client;
pub(crate) mod redis_store;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;

use self::embedded::EmbeddedStore;
use self::redis_store::RedisStore;
use crate::error::Result;
use crate::idempotency::{IdempotencyOutcome, IdempotencyTicket, StoredOutcome};

/// 128 random bits naming one lock acquisition or one idempotency claim;
/// only the holder knows it, so only the holder can release or extend.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Token(u128);

impl Token {
    pub(crate) fn random() -> Self {
        Self(rand::rng().random())
    }

    /// The token as 32 hex digits, the form stored in Redis.
    pub(crate) fn hex(self) -> String {
        format!("{:032x}", self.0)
    }
}

/// The backend behind a [`Coordination`](crate::Coordination).
#[derive(Clone)]
pub(crate) enum Backend {
    Redis(Arc<RedisStore>),
    Embedded(Arc<EmbeddedStore>),
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redis(store) => f.debug_tuple("Redis").field(store).finish(),
            Self::Embedded(_) => f.write_str("Embedded"),
        }
    }
}

/// The embedded backend never waits, so a task looping over it would never
/// yield to the scheduler: spend the task's cooperative budget, which
/// yields now and then like any tokio I/O.
async fn cooperate() {
    tokio::task::coop::consume_budget().await;
}

impl Backend {
    /// How long `lock` and `with_lock` wait.
    pub(crate) fn lock_wait(&self) -> Duration {
        match self {
            Self::Redis(store) => store.settings().lock_wait,
            Self::Embedded(store) => store.settings().lock_wait,
        }
    }

    pub(crate) async fn ping(&self) -> Result<()> {
        match self {
            Self::Redis(store) => store.ping().await,
            Self::Embedded(_) => {
                cooperate().await;
                Ok(())
            }
        }
    }

    pub(crate) async fn generation(&self, name: &str) -> Result<u64> {
        match self {
            Self::Redis(store) => store.generation(name).await,
            Self::Embedded(store) => {
                cooperate().await;
                Ok(store.generation(name))
            }
        }
    }

    pub(crate) async fn bump_generation(&self, name: &str) -> Result<u64> {
        match self {
            Self::Redis(store) => store.bump_generation(name).await,
            Self::Embedded(store) => {
                cooperate().await;
                Ok(store.bump_generation(name))
            }
        }
    }

    /// One attempt to take the lock: the fencing token if it was free.
    pub(crate) async fn try_acquire(
        &self,
        name: &str,
        token: Token,
        ttl_ms: u64,
    ) -> Result<Option<u64>> {
        match self {
            Self::Redis(store) => store.try_acquire(name, token, ttl_ms).await,
            Self::Embedded(store) => {
                cooperate().await;
                Ok(store.try_acquire(name, token, ttl_ms))
            }
        }
    }

    /// Releases the lock if `token` holds it; `true` if nobody else has
    /// acquired it since `fence` was handed out.
    pub(crate) async fn release(&self, name: &str, token: Token, fence: u64) -> Result<bool> {
        match self {
            Self::Redis(store) => store.release(name, token, fence).await,
            Self::Embedded(store) => {
                cooperate().await;
                Ok(store.release(name, token, fence))
            }
        }
    }

    /// Sets the lock's TTL to `ttl_ms` if nobody else has acquired it since
    /// `fence` was handed out.
    pub(crate) async fn extend(
        &self,
        name: &str,
        token: Token,
        fence: u64,
        ttl_ms: u64,
    ) -> Result<bool> {
        match self {
            Self::Redis(store) => store.extend(name, token, fence, ttl_ms).await,
            Self::Embedded(store) => {
                cooperate().await;
                Ok(store.extend(name, token, fence, ttl_ms))
            }
        }
    }

    /// Releases without waiting for the answer: at once in process, on a
    /// spawned task for Redis. Used when a guard is dropped.
    pub(crate) fn release_in_background(&self, name: String, token: Token, fence: u64) {
        match self {
            Self::Embedded(store) => {
                let _still_ours = store.release(&name, token, fence);
            }
            Self::Redis(store) => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let store = Arc::clone(store);
                    drop(runtime.spawn(async move {
                        match store.release(&name, token, fence).await {
                            Ok(_) => tracing::debug!(lock = %name, "dropped lock guard released"),
                            Err(error) => tracing::warn!(
                                lock = %name,
                                error = &error as &dyn std::error::Error,
                                "could not release a dropped lock guard; it expires at its TTL"
                            ),
                        }
                    }));
                }
                Err(_) => tracing::warn!(
                    lock = %name,
                    "lock guard dropped outside a tokio runtime; it expires at its TTL"
                ),
            },
        }
    }

    /// Releases a lock that a failed acquire (Redis unreachable, a reply
    /// lost) may have taken after all: the acquire request can reach Redis
    /// late, e.g. when a hung connection resumes, and would then hold the
    /// lock until its TTL with nobody to release it. So, in the background,
    /// the release is tried again while Redis cannot be reached (with
    /// growing pauses, until `ttl` has passed); once Redis answers, it is
    /// sent once more a moment later, in case the late acquire arrives
    /// after the first answer. The release only deletes a lock holding
    /// `token`, so it never touches another holder's lock.
    pub(crate) fn release_after_failed_acquire(&self, name: String, token: Token, ttl: Duration) {
        let Self::Redis(store) = self else {
            // In process, an acquire either happened or did not.
            self.release_in_background(name, token, 0);
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(lock = %name, "a failed acquire outside a tokio runtime may hold its lock until its TTL");
            return;
        };
        let store = Arc::clone(store);
        drop(runtime.spawn(async move {
            let deadline = tokio::time::Instant::now() + ttl;
            let mut pause = Duration::from_millis(100);
            let mut answered = 0;
            while answered < 2 && tokio::time::Instant::now() < deadline {
                match store.release(&name, token, 0).await {
                    Ok(true) => {
                        tracing::debug!(lock = %name, "released a lock taken by a failed acquire");
                        return;
                    }
                    Ok(false) => {
                        answered += 1;
                        pause = Duration::from_secs(1);
                    }
                    Err(_) => pause = (pause * 2).min(Duration::from_secs(1)),
                }
                tokio::time::sleep(pause).await;
            }
        }));
    }

    pub(crate) async fn begin(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
        owner: Token,
    ) -> Result<IdempotencyOutcome> {
        match self {
            Self::Redis(store) => store.begin(scope, key, fingerprint, owner).await,
            Self::Embedded(store) => {
                cooperate().await;
                Ok(store.begin(scope, key, fingerprint, owner))
            }
        }
    }

    pub(crate) async fn complete(
        &self,
        ticket: &IdempotencyTicket,
        outcome: &StoredOutcome,
    ) -> Result<bool> {
        match self {
            Self::Redis(store) => store.complete(ticket, outcome).await,
            Self::Embedded(store) => {
                cooperate().await;
                Ok(store.complete(ticket, outcome))
            }
        }
    }

    pub(crate) async fn abandon(&self, ticket: &IdempotencyTicket) -> Result<bool> {
        match self {
            Self::Redis(store) => store.abandon(ticket).await,
            Self::Embedded(store) => {
                cooperate().await;
                Ok(store.abandon(ticket))
            }
        }
    }
}
