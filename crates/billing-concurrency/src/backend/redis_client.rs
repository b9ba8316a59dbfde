//! The Redis client: a deadpool-redis pool of multiplexed connections with
//! connect and command timeouts, and bounded retries with jittered backoff
//! for transient (connection, I/O, timeout) errors only.
//!
//! deadpool-redis health-checks a connection with a `PING` round trip every
//! time it is checked out, which would double the round trips of every
//! operation. Since a redis-rs multiplexed connection is built to be shared
//! (concurrent commands are pipelined on it), the client checks each of the
//! pool's `pool_size` connections out once into a *lane* and lets every
//! task use the lanes round-robin. A lane whose connection fails with an
//! I/O error is emptied (the connection is taken out of the pool and
//! dropped) and refilled from the pool, under its timeouts, by the next
//! command on that lane.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use deadpool_redis::redis::aio::MultiplexedConnection;
use deadpool_redis::redis::{AsyncConnectionConfig, ErrorKind, RedisError, ServerErrorKind};
use deadpool_redis::{Manager, Pool, PoolError, Runtime};

use crate::backoff::TRANSIENT_RETRY;
use crate::error::{BoxError, CoordinationError, Result};
use crate::settings::{RedisSettings, redact_url};

/// Attempts per operation (the first try and two retries), all within the
/// operation's budget.
const MAX_ATTEMPTS: u32 = 3;

pub(crate) struct RedisClient {
    pool: Pool,
    lanes: Box<[Lane]>,
    next_lane: AtomicUsize,
    /// `connect_timeout + command_timeout`: an operation, retries included,
    /// fails by then.
    budget: Duration,
    url: String,
}

/// The operation's budget ran out during an attempt.
#[derive(Debug, thiserror::Error)]
#[error("no answer from Redis within {budget:?}")]
struct BudgetExceeded {
    budget: Duration,
    /// The error of the attempt before, if any.
    #[source]
    last: Option<BoxError>,
}

/// One pool connection shared by all tasks.
struct Lane {
    /// Fast path: a clone of the connection and its generation number.
    shared: Mutex<Option<(u64, MultiplexedConnection)>>,
    /// The pool object behind `shared`; locked while the lane is refilled,
    /// so one lane never holds two pool connections.
    checked_out: tokio::sync::Mutex<Option<deadpool_redis::Connection>>,
}

/// Why one attempt failed.
enum Failure {
    /// No connection could be had: nothing was sent.
    Connect(PoolError),
    /// The command failed on the connection of generation `generation`.
    Command {
        lane: usize,
        generation: u64,
        error: RedisError,
    },
}

impl fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClient")
            .field("url", &self.url)
            .field("pool_size", &self.lanes.len())
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl RedisClient {
    /// Builds the pool; connects lazily, so Redis need not be up.
    pub(crate) fn new(settings: &RedisSettings) -> Result<Self> {
        let invalid = |reason: String, source: BoxError| CoordinationError::InvalidSettings {
            reason,
            source: Some(source),
        };
        let url = redact_url(&settings.url);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.command_timeout));
        let manager = Manager::new_with_config(settings.url.as_str(), config)
            .map_err(|e| invalid(format!("cannot use Redis URL {url:?}"), Box::new(e)))?;
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .wait_timeout(Some(settings.connect_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.command_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| invalid("cannot build the Redis pool".to_owned(), Box::new(e)))?;
        let lanes = (0..settings.pool_size)
            .map(|_| Lane {
                shared: Mutex::new(None),
                checked_out: tokio::sync::Mutex::new(None),
            })
            .collect();
        Ok(Self {
            pool,
            lanes,
            next_lane: AtomicUsize::new(0),
            budget: settings.budget(),
            url,
        })
    }

    /// Runs `call` on a connection, retrying transient failures with
    /// jittered backoff: at most [`MAX_ATTEMPTS`] attempts, never past the
    /// budget. `call` must be safe to repeat: an attempt whose reply was
    /// lost may have taken effect.
    pub(crate) async fn run<T, F, Fut>(&self, operation: &'static str, mut call: F) -> Result<T>
    where
        F: FnMut(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let started = Instant::now();
        let deadline = tokio::time::Instant::from_std(started + self.budget);
        let lane = self.next_lane.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        let mut attempts = 0;
        let mut last_error: Option<BoxError> = None;
        loop {
            attempts += 1;
            let attempt = tokio::time::timeout_at(deadline, self.attempt(lane, &mut call)).await;
            let error: BoxError = match attempt {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(failure)) => match self.triage(failure) {
                    Ok(transient) => transient,
                    Err(permanent) => {
                        return Err(CoordinationError::Rejected {
                            operation,
                            source: permanent,
                        });
                    }
                },
                Err(_elapsed) => Box::new(BudgetExceeded {
                    budget: self.budget,
                    last: last_error.take(),
                }),
            };
            let delay = TRANSIENT_RETRY.delay(attempts - 1);
            if attempts >= MAX_ATTEMPTS || tokio::time::Instant::now() + delay >= deadline {
                return Err(CoordinationError::Unavailable {
                    operation,
                    attempts,
                    elapsed: started.elapsed(),
                    source: error,
                });
            }
            tracing::debug!(
                operation,
                attempts,
                error = &*error as &dyn std::error::Error,
                "transient Redis error, retrying"
            );
            last_error = Some(error);
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt<T, F, Fut>(&self, lane: usize, call: &mut F) -> Result<T, Failure>
    where
        F: FnMut(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let (generation, connection) = self.connection(lane).await.map_err(Failure::Connect)?;
        call(connection).await.map_err(|error| Failure::Command {
            lane,
            generation,
            error,
        })
    }

    /// The lane's connection, checking one out of the pool if it has none.
    async fn connection(&self, index: usize) -> Result<(u64, MultiplexedConnection), PoolError> {
        static GENERATION: AtomicU64 = AtomicU64::new(0);
        let lane = &self.lanes[index];
        if let Some(shared) = lane.shared() {
            return Ok(shared);
        }
        let mut checked_out = lane.checked_out.lock().await;
        if let Some(shared) = lane.shared() {
            return Ok(shared);
        }
        if let Some(broken) = checked_out.take() {
            // Out of the pool for good: the pool opens a fresh one below.
            drop(deadpool_redis::Connection::take(broken));
        }
        let object = self.pool.get().await?;
        let connection = MultiplexedConnection::clone(&object);
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        *checked_out = Some(object);
        *lane.shared.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((generation, connection.clone()));
        Ok((generation, connection))
    }

    /// Splits a failure into transient (`Ok`, worth a retry) and permanent
    /// (`Err`), and empties the lane when its connection looks broken.
    fn triage(&self, failure: Failure) -> Result<BoxError, BoxError> {
        match failure {
            Failure::Connect(error) => match error {
                PoolError::Timeout(_) => Ok(Box::new(error)),
                PoolError::Backend(redis) => {
                    if is_transient(&redis) {
                        Ok(Box::new(redis))
                    } else {
                        Err(Box::new(redis))
                    }
                }
                PoolError::Closed
                | PoolError::NoRuntimeSpecified
                | PoolError::PostCreateHook(_) => Err(Box::new(error)),
            },
            Failure::Command {
                lane,
                generation,
                error,
            } => {
                if error.is_io_error() || error.is_unrecoverable_error() || is_failover(&error) {
                    self.lanes[lane].discard(generation);
                }
                if is_transient(&error) {
                    Ok(Box::new(error))
                } else {
                    Err(Box::new(error))
                }
            }
        }
    }
}

impl Lane {
    fn shared(&self) -> Option<(u64, MultiplexedConnection)> {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Empties the lane if it still holds the connection of `generation`.
    fn discard(&self, generation: u64) {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.as_ref().is_some_and(|(g, _)| *g == generation) {
            *shared = None;
        }
    }
}

/// Connection, I/O and timeout errors, and a server that is loading or
/// failing over: worth a retry. Script, type and permission errors are not.
fn is_transient(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || is_failover(error)
}

fn is_failover(error: &RedisError) -> bool {
    let kind = error.kind();
    kind == ErrorKind::Server(ServerErrorKind::BusyLoading)
        || kind == ErrorKind::Server(ServerErrorKind::TryAgain)
        || kind == ErrorKind::Server(ServerErrorKind::MasterDown)
        || kind == ErrorKind::Server(ServerErrorKind::ReadOnly)
}
