//! Coordination between API instances: distributed locks with fencing
//! tokens, and idempotency keys, over Redis or in process.
//!
//! Payments are why this exists: a customer who double-clicks, a client that
//! retries after a timeout, or two instances receiving the same webhook must
//! produce exactly one charge.
//!
//! - [`Coordination`] is the one handle (cheap to clone), over Redis
//!   ([`Coordination::redis`]) or in process ([`Coordination::embedded`],
//!   valid for a single instance only).
//! - Locks: [`Coordination::lock`], [`Coordination::try_lock`] and
//!   [`Coordination::with_lock`]; a [`LockGuard`] carries a fencing token
//!   that strictly increases per lock name.
//! - Generation counters: [`Coordination::generation`] and
//!   [`Coordination::bump_generation`], for caches that must learn of a
//!   change made by another instance.
//! - Idempotency keys: [`Coordination::idempotency`] gives
//!   [`Idempotency::begin`] / [`Idempotency::complete`] /
//!   [`Idempotency::abandon`], with [`fingerprint`] for the request; what
//!   is replayed is a [`StoredOutcome`], bytes the embedder encodes (this
//!   crate knows nothing of HTTP).
//!
//! ```no_run
//! # async fn demo() -> Result<(), billing_concurrency::CoordinationError> {
//! use std::time::Duration;
//! use billing_concurrency::{Coordination, RedisSettings};
//!
//! let coordination = Coordination::redis(RedisSettings::new("redis://127.0.0.1:6379")).await?;
//! let invoice = coordination
//!     .with_lock("invoice:42", Duration::from_secs(10), async |guard| {
//!         // ... write, storing guard.fencing_token() with the row ...
//!         guard.fencing_token()
//!     })
//!     .await?;
//! # let _ = invoice;
//! # Ok(())
//! # }
//! ```

mod backend;
mod backoff;
mod error;
mod idempotency;
mod lock;
mod settings;

use std::sync::Arc;
use std::time::Duration;

pub use crate::error::{BoxError, CoordinationError, Result};
pub use crate::idempotency::{
    Idempotency, IdempotencyOutcome, IdempotencyTicket, MAX_KEY_LEN, StoredOutcome, fingerprint,
};
pub use crate::lock::LockGuard;
pub use crate::settings::{
    DEFAULT_IDEMPOTENCY_TTL, DEFAULT_IN_FLIGHT_TTL, DEFAULT_LOCK_WAIT, EmbeddedSettings,
    RedisSettings,
};

use crate::backend::Backend;
use crate::backend::embedded::EmbeddedStore;
use crate::backend::redis_store::RedisStore;

/// Which backend a [`Coordination`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Redis: shared by every instance connected to it.
    Redis,
    /// In process: valid for one instance only.
    Embedded,
}

/// The coordination handle: locks and idempotency keys on one backend.
/// Clones share the backend (and, for Redis, its connections).
#[derive(Clone, Debug)]
pub struct Coordination {
    backend: Backend,
}

impl Coordination {
    /// Coordination over Redis.
    ///
    /// Checks the settings and builds the connection pool; it does not
    /// connect, so Redis need not be up yet: [`ping`](Self::ping) tells.
    ///
    /// # Errors
    /// [`CoordinationError::InvalidSettings`] for a malformed URL, several
    /// URLs without `cluster`, a CA file that cannot be read or parsed (or
    /// one given for a URL other than `rediss://`), a zero pool size or
    /// timeout, an empty key prefix or one with `{` or `}`, or an
    /// out-of-range TTL.
    pub async fn redis(settings: RedisSettings) -> Result<Self> {
        let store = RedisStore::new(settings)?;
        Ok(Self {
            backend: Backend::Redis(Arc::new(store)),
        })
    }

    /// In-process coordination with default settings.
    ///
    /// Locks and idempotency keys live in this process only: correct for a
    /// single instance (the embedded deployment, tests), not for several
    /// instances behind a load balancer.
    #[must_use]
    pub fn embedded() -> Self {
        Self {
            backend: Backend::Embedded(Arc::new(EmbeddedStore::new(EmbeddedSettings::default()))),
        }
    }

    /// In-process coordination with the given settings (see
    /// [`embedded`](Self::embedded)).
    ///
    /// # Errors
    /// [`CoordinationError::InvalidSettings`] for an out-of-range TTL.
    pub fn embedded_with(settings: EmbeddedSettings) -> Result<Self> {
        settings.validate()?;
        Ok(Self {
            backend: Backend::Embedded(Arc::new(EmbeddedStore::new(settings))),
        })
    }

    /// Which backend this is (for a health endpoint: `embedded`, or
    /// `ok`/`down` from [`ping`](Self::ping) for Redis).
    #[must_use]
    pub fn backend_kind(&self) -> BackendKind {
        match &self.backend {
            Backend::Redis(_) => BackendKind::Redis,
            Backend::Embedded(_) => BackendKind::Embedded,
        }
    }

    /// Checks that the backend answers (always `Ok` when embedded).
    ///
    /// # Errors
    /// [`CoordinationError::Unavailable`] when Redis cannot be reached
    /// within `connect_timeout + command_timeout`, or at once when its TLS
    /// certificate is not trusted (its cause names the TLS error).
    pub async fn ping(&self) -> Result<()> {
        self.backend.ping().await
    }

    /// Takes the lock `name` for `ttl`, waiting up to the configured
    /// `lock_wait` (10 s by default) if it is held.
    ///
    /// # Errors
    /// [`CoordinationError::LockNotAcquired`] when the wait ran out;
    /// [`CoordinationError::InvalidArgument`] for a TTL under 1 ms or over a
    /// year, or a name that is empty or starts with `}`;
    /// [`CoordinationError::Unavailable`] /
    /// [`CoordinationError::Rejected`] when Redis fails.
    pub async fn lock(&self, name: &str, ttl: Duration) -> Result<LockGuard> {
        lock::acquire(&self.backend, name, ttl, self.backend.lock_wait()).await
    }

    /// Takes the lock `name` for `ttl`, waiting up to `wait` if it is held
    /// (`Duration::ZERO`: a single try). Between tries it sleeps with capped
    /// exponential backoff and full jitter.
    ///
    /// # Errors
    /// As [`lock`](Self::lock).
    pub async fn try_lock(&self, name: &str, ttl: Duration, wait: Duration) -> Result<LockGuard> {
        lock::acquire(&self.backend, name, ttl, wait).await
    }

    /// Runs `work` while holding the lock `name` (taken as by
    /// [`lock`](Self::lock)), then releases it; `work` gets the guard, for
    /// its fencing token or to extend it.
    ///
    /// The lock is released whether `work` returns, fails, panics or the
    /// returned future is dropped (cancelled). If the lock turns out to
    /// have been taken by another holder meanwhile (the TTL ran out), the
    /// output is still returned, since the work has happened, and a warning
    /// is logged: work that must be exclusive has to check the fencing
    /// token where it writes, or use [`lock`](Self::lock) and
    /// [`LockGuard::release`] to see the outcome.
    ///
    /// # Errors
    /// As [`lock`](Self::lock); `work`'s own errors are in `T`.
    pub async fn with_lock<T, F>(&self, name: &str, ttl: Duration, work: F) -> Result<T>
    where
        F: AsyncFnOnce(&LockGuard) -> T,
    {
        let guard = self.lock(name, ttl).await?;
        let output = work(&guard).await;
        match guard.release().await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                lock = name,
                "lock was taken by another holder before with_lock finished; its TTL was too short"
            ),
            Err(error) => tracing::warn!(
                lock = name,
                error = &error as &dyn std::error::Error,
                "could not release the lock after with_lock; it expires at its TTL"
            ),
        }
        Ok(output)
    }

    /// The current generation of `name` (a catalogue, say): 0 until it is
    /// first bumped, then a value that changes with every
    /// [`bump_generation`](Self::bump_generation) seen by every instance
    /// sharing the backend. A cache compares it for equality with the
    /// generation its copy was read at; it never goes back to a value read
    /// before, even across a Redis restart that lost it.
    ///
    /// # Errors
    /// [`CoordinationError::Unavailable`] / [`CoordinationError::Rejected`]
    /// when Redis fails (never when embedded).
    pub async fn generation(&self, name: &str) -> Result<u64> {
        self.backend.generation(name).await
    }

    /// Raises the generation of `name` and returns the new value: call it
    /// after a change of what `name` names has committed.
    ///
    /// # Errors
    /// As [`generation`](Self::generation).
    pub async fn bump_generation(&self, name: &str) -> Result<u64> {
        self.backend.bump_generation(name).await
    }

    /// The idempotency-key operations.
    #[must_use]
    pub fn idempotency(&self) -> Idempotency<'_> {
        Idempotency {
            backend: &self.backend,
        }
    }
}
