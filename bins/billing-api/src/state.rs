//! [`AppState`]: what every handler can reach through `web::Data`: the
//! use cases ([`Billing`], which holds the database pool and the
//! coordination handle) and the settings handlers need.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use billing_concurrency::Coordination;
use billing_repository::Database;
use billing_service::Billing;

/// The shared state of the app, registered as `web::Data<AppState>`.
/// Cheap to clone: the handles inside share their pools.
#[derive(Clone, Debug)]
pub struct AppState {
    billing: Billing,
    database_max_connections: u32,
    health_timeout: Duration,
    body_limit: usize,
    database_prepared: Arc<AtomicBool>,
}

impl AppState {
    /// The state over `billing` (built on the database pool and the
    /// coordination handle). `database_max_connections` is the pool's
    /// configured maximum (for the pool metrics); `health_timeout` bounds
    /// each readiness check; `body_limit` is the largest request body (for
    /// the 413 message of raw bodies).
    #[must_use]
    pub fn new(
        billing: Billing,
        database_max_connections: u32,
        health_timeout: Duration,
        body_limit: usize,
    ) -> Self {
        Self {
            billing,
            database_max_connections,
            health_timeout,
            body_limit,
            database_prepared: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Whether the database is usable by this instance: connected,
    /// migrated and seeded. `false` while a database that refuses
    /// connections (`too many clients`) at start keeps the instance from
    /// preparing it: readiness then reports the database down and `/api/v1`
    /// answers 503.
    #[must_use]
    pub fn database_prepared(&self) -> bool {
        self.database_prepared.load(Ordering::Acquire)
    }

    /// Sets [`Self::database_prepared`] (for every clone).
    pub fn set_database_prepared(&self, prepared: bool) {
        self.database_prepared.store(prepared, Ordering::Release);
    }

    /// The use cases.
    #[must_use]
    pub fn billing(&self) -> &Billing {
        &self.billing
    }

    /// The database pool.
    #[must_use]
    pub fn database(&self) -> &Database {
        self.billing.database()
    }

    /// Locks and idempotency keys (Redis or in process).
    #[must_use]
    pub fn coordination(&self) -> &Coordination {
        self.billing.coordination()
    }

    /// The most connections the database pool opens.
    #[must_use]
    pub fn database_max_connections(&self) -> u32 {
        self.database_max_connections
    }

    /// How long a readiness check may wait for one dependency.
    #[must_use]
    pub fn health_timeout(&self) -> Duration {
        self.health_timeout
    }

    /// The largest request body accepted, in bytes (`BILLING_BODY_LIMIT`).
    #[must_use]
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }
}
