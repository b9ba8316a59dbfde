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
//!
//! `rediss://` connects over TLS (rustls), trusting the system's roots or the
//! settings' `ca_file`; a server whose certificate is not trusted is
//! reported at once, without retries, with the TLS error in the message.
//!
//! With `cluster`, a lane holds a cluster connection instead: it routes each
//! command to the master of its key's hash slot, follows `MOVED`/`ASK` and
//! reconnects to the nodes itself; a broken one is replaced under the same
//! timeouts.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use deadpool_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use deadpool_redis::redis::cluster::{ClusterClient, ClusterClientBuilder};
use deadpool_redis::redis::cluster_async::ClusterConnection;
use deadpool_redis::redis::{
    AsyncConnectionConfig, Client, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture,
    ServerErrorKind, TlsCertificates, Value,
};
use deadpool_redis::{Manager, Pool, PoolError, Runtime};

use crate::backoff::TRANSIENT_RETRY;
use crate::error::{BoxError, CoordinationError, Result};
use crate::settings::{RedisSettings, redact_url};

/// Attempts per operation (the first try and two retries), all within the
/// operation's budget.
const MAX_ATTEMPTS: u32 = 3;

pub(crate) struct RedisClient {
    source: Source,
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

/// Where a lane gets its connection.
enum Source {
    /// One server: the deadpool-redis pool.
    Single(Pool),
    /// A Redis Cluster: a new cluster connection, opened within
    /// `connect_timeout`.
    Cluster {
        client: Box<ClusterClient>,
        connect_timeout: Duration,
    },
}

/// A connection all tasks share: to one server, or to a cluster.
#[derive(Clone)]
pub(crate) enum Connection {
    /// A multiplexed connection to one server.
    Single(MultiplexedConnection),
    /// A cluster connection: routes by hash slot, follows `MOVED`/`ASK`.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

/// Why no connection could be had.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error(transparent)]
    Pool(PoolError),
    #[error("cannot connect to the Redis Cluster")]
    Cluster(#[source] RedisError),
    #[error("no connection to the Redis Cluster within {0:?}")]
    ClusterTimeout(Duration),
}

/// The TLS handshake failed: retrying will not help. The rustls error is
/// in the message (its own `source` would repeat it in a printed chain).
#[derive(Debug, thiserror::Error)]
#[error(
    "the TLS handshake with Redis failed: {reason}; if Redis's certificate is signed by a \
     private CA, give that CA's PEM file as the CA file setting"
)]
struct TlsRefused {
    reason: String,
}

/// One connection shared by all tasks.
struct Lane {
    /// Fast path: a clone of the connection and its generation number.
    shared: Mutex<Option<(u64, Connection)>>,
    /// The pool object behind `shared`; locked while the lane is refilled,
    /// so one lane never holds two pool connections.
    checked_out: tokio::sync::Mutex<Option<deadpool_redis::Connection>>,
}

/// Why one attempt failed.
enum Failure {
    /// No connection could be had: nothing was sent.
    Connect(ConnectError),
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
        let url = redact_url(&settings.url);
        let tls = settings
            .url
            .split(',')
            .any(|node| node.trim_start().starts_with("rediss://"));
        let certificates = tls_certificates(settings, &url, tls)?;
        if tls {
            // rustls needs a process-wide crypto provider; ring is the one the
            // rest of the tree uses. Already installed (by us or by the
            // embedding program): keep that one.
            let _already_installed = rustls::crypto::ring::default_provider().install_default();
        }
        let source = if settings.cluster {
            Source::cluster(settings, &url, certificates)?
        } else {
            Source::single(settings, &url, certificates)?
        };
        let lanes = (0..settings.pool_size)
            .map(|_| Lane {
                shared: Mutex::new(None),
                checked_out: tokio::sync::Mutex::new(None),
            })
            .collect();
        Ok(Self {
            source,
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
        F: FnMut(Connection) -> Fut,
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
                    Verdict::Transient(transient) => transient,
                    Verdict::Permanent(permanent) => {
                        return Err(CoordinationError::Rejected {
                            operation,
                            source: permanent,
                        });
                    }
                    Verdict::Unreachable(cause) => {
                        return Err(CoordinationError::Unavailable {
                            operation,
                            attempts,
                            elapsed: started.elapsed(),
                            source: cause,
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
        F: FnMut(Connection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let (generation, connection) = self.connection(lane).await.map_err(Failure::Connect)?;
        call(connection).await.map_err(|error| Failure::Command {
            lane,
            generation,
            error,
        })
    }

    /// The lane's connection, checking one out of the pool (or opening a
    /// cluster connection) if it has none.
    async fn connection(&self, index: usize) -> Result<(u64, Connection), ConnectError> {
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
        let connection = match &self.source {
            Source::Single(pool) => {
                let object = pool.get().await.map_err(ConnectError::Pool)?;
                let connection = MultiplexedConnection::clone(&object);
                *checked_out = Some(object);
                Connection::Single(connection)
            }
            Source::Cluster {
                client,
                connect_timeout,
            } => {
                let connection =
                    tokio::time::timeout(*connect_timeout, client.get_async_connection())
                        .await
                        .map_err(|_elapsed| ConnectError::ClusterTimeout(*connect_timeout))?
                        .map_err(ConnectError::Cluster)?;
                Connection::Cluster(connection)
            }
        };
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        *lane.shared.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((generation, connection.clone()));
        Ok((generation, connection))
    }

    /// Splits a failure into transient (worth a retry), permanent (Redis
    /// refused) and unreachable for good (TLS refused), and empties the lane
    /// when its connection looks broken.
    fn triage(&self, failure: Failure) -> Verdict {
        match failure {
            Failure::Connect(error) => {
                if let Some(refused) = tls_refused(&error) {
                    return Verdict::Unreachable(Box::new(refused));
                }
                match error {
                    ConnectError::Pool(PoolError::Timeout(_)) | ConnectError::ClusterTimeout(_) => {
                        Verdict::Transient(Box::new(error))
                    }
                    ConnectError::Pool(PoolError::Backend(redis))
                    | ConnectError::Cluster(redis) => Verdict::of(redis),
                    ConnectError::Pool(
                        PoolError::Closed
                        | PoolError::NoRuntimeSpecified
                        | PoolError::PostCreateHook(_),
                    ) => Verdict::Permanent(Box::new(error)),
                }
            }
            Failure::Command {
                lane,
                generation,
                error,
            } => {
                if error.is_io_error() || error.is_unrecoverable_error() || is_failover(&error) {
                    self.lanes[lane].discard(generation);
                }
                Verdict::of(error)
            }
        }
    }
}

impl Source {
    /// A Redis Cluster of the nodes the URL lists (comma-separated).
    fn cluster(
        settings: &RedisSettings,
        url: &str,
        certificates: Option<TlsCertificates>,
    ) -> Result<Self> {
        let nodes: Vec<&str> = settings.url.split(',').map(str::trim).collect();
        let mut builder = ClusterClientBuilder::new(nodes)
            .connection_timeout(settings.connect_timeout)
            .response_timeout(settings.command_timeout);
        if let Some(certificates) = certificates {
            builder = builder.certs(certificates);
        }
        let client = builder.build().map_err(|e| {
            invalid(
                "url",
                format!("({url}) cannot be used as Redis Cluster nodes"),
                Box::new(e),
            )
        })?;
        Ok(Self::Cluster {
            client: Box::new(client),
            connect_timeout: settings.connect_timeout,
        })
    }

    /// The deadpool-redis pool of one server.
    fn single(
        settings: &RedisSettings,
        url: &str,
        certificates: Option<TlsCertificates>,
    ) -> Result<Self> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.command_timeout));
        let manager = match certificates {
            Some(certificates) => Client::build_with_tls(settings.url.as_str(), certificates)
                .and_then(|client| {
                    Manager::new_with_config(client.get_connection_info().clone(), config)
                }),
            None => Manager::new_with_config(settings.url.as_str(), config),
        }
        .map_err(|e| invalid("url", format!("({url}) cannot be used"), Box::new(e)))?;
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .wait_timeout(Some(settings.connect_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.command_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| {
                invalid(
                    "pool_size",
                    "cannot build the Redis pool".to_owned(),
                    Box::new(e),
                )
            })?;
        Ok(Self::Single(pool))
    }
}

/// A setting that cannot be used, and the error that says why.
fn invalid(setting: &'static str, reason: String, source: BoxError) -> CoordinationError {
    CoordinationError::InvalidSettings {
        setting,
        reason,
        source: Some(source),
    }
}

/// The CA certificates of `ca_file` to trust, if it is set (`url`, redacted,
/// is `rediss://` when `tls`).
fn tls_certificates(
    settings: &RedisSettings,
    url: &str,
    tls: bool,
) -> Result<Option<TlsCertificates>> {
    if settings.ca_file.is_some() && !tls {
        return Err(CoordinationError::InvalidSettings {
            setting: "ca_file",
            reason: format!("is set but the Redis URL ({url}) is not rediss://"),
            source: None,
        });
    }
    let certificates = match &settings.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                invalid(
                    "ca_file",
                    format!("({}) cannot be read", path.display()),
                    Box::new(e),
                )
            })?;
            check_certificates(&pem).map_err(|reason| CoordinationError::InvalidSettings {
                setting: "ca_file",
                reason: format!("({}) {reason}", path.display()),
                source: None,
            })?;
            Some(TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            })
        }
        None => None,
    };
    Ok(certificates)
}

/// Checks that `pem` holds at least one certificate and nothing unreadable.
fn check_certificates(pem: &[u8]) -> Result<(), String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut count = 0_usize;
    for certificate in CertificateDer::pem_slice_iter(pem) {
        certificate.map_err(|e| format!("holds an unreadable certificate: {e}"))?;
        count += 1;
    }
    if count == 0 {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned());
    }
    Ok(())
}

/// What to do about a failed attempt.
enum Verdict {
    /// Retry within the budget.
    Transient(BoxError),
    /// Redis refused: `Rejected`, no retry.
    Permanent(BoxError),
    /// Redis cannot be reached with these settings: `Unavailable`, no retry.
    Unreachable(BoxError),
}

impl Verdict {
    fn of(error: RedisError) -> Self {
        if is_transient(&error) {
            Self::Transient(Box::new(error))
        } else {
            Self::Permanent(Box::new(error))
        }
    }
}

/// The TLS error behind a failed connection, if the handshake failed (an
/// untrusted or mismatched certificate, a server that does not speak TLS).
fn tls_refused(error: &ConnectError) -> Option<TlsRefused> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(TlsRefused {
                reason: tls.to_string(),
            });
        }
        cause = wrapped(current).or_else(|| current.source());
    }
    None
}

/// The error inside a wrapper whose `source` skips it: `io::Error` (its
/// `source` is the wrapped error's source) and the `Arc` redis-rs keeps
/// its causes in.
fn wrapped<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    if let Some(shared) = error.downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>() {
        return Some(&**shared);
    }
    let io = error.downcast_ref::<std::io::Error>()?;
    io.get_ref()
        .map(|inner| inner as &(dyn std::error::Error + 'static))
}

impl Lane {
    fn shared(&self) -> Option<(u64, Connection)> {
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
