//! The billing use cases: what another Rust service embeds to run billing.
//!
//! [`Billing`] is the one handle (cheap to clone), built from a
//! [`Database`] and a [`Coordination`] backend (Redis, or in process for a
//! single instance). Each use case is one method; each fails with a
//! [`BillingError`] that says what went wrong in business terms.
//!
//! Every state change goes through a transition of `billing-domain` and a
//! versioned save of `billing-repository`: a caller may pass the version it
//! expects (a moved version is [`BillingError::VersionMismatch`]); without
//! one, the change is re-read and re-applied a bounded number of times when
//! another writer got in between. Payments and refunds also run under a
//! distributed lock on the invoice and inside an idempotency key, so a
//! retried or duplicated request never charges twice.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use billing_concurrency::Coordination;
//! use billing_repository::{DatabaseSettings, connect};
//! use billing_service::{Billing, BillingSettings, PageRequest, PlanFilter};
//!
//! let db = connect(&DatabaseSettings::new("sqlite://billing.db?mode=rwc")).await?;
//! billing_migration::up_locked(db.connection()).await?;
//! let billing = Billing::new(db, Coordination::embedded(), BillingSettings::default());
//! let plans = billing
//!     .list_plans(PlanFilter::ActiveOnly, PageRequest::new(1, 20)?)
//!     .await?;
//! # let _ = plans; Ok(()) }
//! ```

mod catalogue;
mod clock;
mod contention;
mod currencies;
mod cycle;
mod error;
mod events;
mod idempotency;
mod invoice_batch;
mod invoices;
mod payment;
mod plans;
pub mod rules;
mod subscriptions;
mod taxes;
mod text;
mod users;
mod versioned;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use billing_concurrency::Coordination;
use billing_repository::Database;

pub use billing_domain::page::{MAX_PAGE, MAX_PER_PAGE};
pub use billing_domain::{PageRequest, Resource};
pub use billing_repository::{Page, PlanFilter};
pub use catalogue::{Catalogue, CatalogueStats, MAX_CACHED_ROWS};
pub use clock::{Clock, SystemClock, TestClock};
pub use contention::{Contended, LockKey};
pub use currencies::{CurrencyChanges, NewCurrency};
pub use cycle::{
    CYCLE_LEASE, ChargeFuture, ChargeOutcome, ChargeRequest, CycleReport, CycleRunner,
    CycleSettings, DunningFinalAction, RenewalCharger,
};
pub use error::{BillingError, BoxError, Dependency};
pub use events::{EventPayload, EventQuery, ResourceRef};
pub use idempotency::{IdempotencyKey, Idempotent, Recorded};
pub use invoice_batch::MAX_INVOICE_BATCH;
pub use invoices::{InvoiceAction, NewInvoice, Payment, PaymentOutcome};
pub use plans::{NewPlan, PlanChanges, PlanRef};
pub use subscriptions::{NewSubscription, SubscriptionAction};
pub use taxes::{NewTax, TaxChanges};
pub use users::{CaseChanges, NewCase, NewUser, UserChanges, UserDetailsInput};
pub use webhooks::{AttemptOutcome, DueDelivery, MAX_URL_LEN, NewWebhookEndpoint, RetryPolicy};

/// Tunables of the use cases.
#[derive(Clone, Debug)]
pub struct BillingSettings {
    /// How long a payment or refund may hold its invoice's lock.
    pub payment_lock_ttl: Duration,
    /// How long a payment waits for the invoice's lock before answering
    /// [`BillingError::Locked`].
    pub payment_lock_wait: Duration,
    /// How many times a change without an expected version is re-read and
    /// re-applied when another writer got in between.
    pub max_attempts: u32,
    /// How long a new invoice can be paid (`expires_at = invoiced_at + this`).
    pub invoice_payment_window: chrono::TimeDelta,
    /// How long the outcome of a request run under an idempotency key is
    /// replayed for repeats of the key.
    pub idempotency_ttl: Duration,
    /// How long a request running under an idempotency key holds the key
    /// against concurrent repeats (they get
    /// [`BillingError::IdempotencyInFlight`]) if its process dies without
    /// releasing it.
    pub idempotency_in_flight_ttl: Duration,
    /// How many password hashes may wait for the one hashing thread; a
    /// registration beyond that fails at once with
    /// [`BillingError::Overloaded`] instead of queueing without limit.
    /// At least 1 (0 counts as 1).
    pub password_hash_queue: usize,
    /// Whether plans, currencies and taxes are served from this instance's
    /// catalogue cache (see [`Billing::catalogue_stats`]); `true` by
    /// default. Off, every read goes to the database.
    pub catalogue_cache: bool,
    /// The bound on how stale a cached catalogue read may be: a read that
    /// starts longer than this after a catalogue write was acknowledged
    /// (on any instance sharing the coordination backend) sees the write;
    /// on the writing instance, every later read sees it. Each instance
    /// reads a catalogue's generation from the backend at most once per
    /// this interval, per catalogue, while it is being read.
    pub catalogue_refresh: Duration,
    /// Whether invoice creations waiting in this instance are numbered
    /// together (one counter move and one multi-row insert per transaction,
    /// up to [`MAX_INVOICE_BATCH`]); `true` by default. Creations under an
    /// idempotency key are always written alone, with their key's record.
    pub invoice_batching: bool,
}

/// The default of [`BillingSettings::catalogue_refresh`].
pub const DEFAULT_CATALOGUE_REFRESH: Duration = Duration::from_millis(20);

/// The default of [`BillingSettings::password_hash_queue`]: with about
/// 30 ms per argon2id hash, a full queue is served within about a second.
pub const DEFAULT_PASSWORD_HASH_QUEUE: usize = 32;

impl BillingSettings {
    /// The longest idempotency TTL and payment lock TTL accepted.
    pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

    /// Checks that the settings can work.
    ///
    /// # Errors
    /// [`BillingError::InvalidSettings`] naming the field at fault: a zero
    /// lock TTL, no attempt allowed
    /// (`max_attempts` 0), a payment window that is not positive, a TTL
    /// outside 1 ms – 365 days, an in-flight TTL longer than the
    /// idempotency TTL, or an empty password hashing queue.
    pub fn validate(&self) -> Result<(), BillingError> {
        let invalid = |setting: &'static str, reason: String| {
            Err(BillingError::InvalidSettings { setting, reason })
        };
        for (setting, value) in [
            ("payment_lock_ttl", self.payment_lock_ttl),
            ("idempotency_ttl", self.idempotency_ttl),
            ("idempotency_in_flight_ttl", self.idempotency_in_flight_ttl),
        ] {
            if value < Duration::from_millis(1) || value > Self::MAX_TTL {
                return invalid(
                    setting,
                    format!("must be between 1ms and 365 days, got {value:?}"),
                );
            }
        }
        if self.idempotency_in_flight_ttl > self.idempotency_ttl {
            return invalid(
                "idempotency_in_flight_ttl",
                "must not exceed idempotency_ttl".to_owned(),
            );
        }
        if self.max_attempts == 0 {
            return invalid("max_attempts", "must be at least 1".to_owned());
        }
        if self.password_hash_queue == 0 {
            return invalid("password_hash_queue", "must be at least 1".to_owned());
        }
        if self.invoice_payment_window <= chrono::TimeDelta::zero() {
            return invalid(
                "invoice_payment_window",
                "must be longer than zero".to_owned(),
            );
        }
        Ok(())
    }
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            payment_lock_ttl: Duration::from_secs(15),
            payment_lock_wait: Duration::from_secs(5),
            max_attempts: 5,
            invoice_payment_window: chrono::TimeDelta::days(30),
            idempotency_ttl: Duration::from_secs(24 * 60 * 60),
            idempotency_in_flight_ttl: Duration::from_secs(60),
            password_hash_queue: DEFAULT_PASSWORD_HASH_QUEUE,
            catalogue_cache: true,
            catalogue_refresh: DEFAULT_CATALOGUE_REFRESH,
            invoice_batching: true,
        }
    }
}

/// The billing use cases over one database and one coordination backend.
/// Clones share both.
#[derive(Clone, Debug)]
pub struct Billing {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Database,
    coordination: Coordination,
    settings: BillingSettings,
    hasher: users::PasswordHasher,
    clock: Arc<dyn Clock>,
    catalogue: catalogue::CatalogueCache,
    batcher: invoice_batch::InvoiceBatcher,
}

impl Billing {
    /// The use cases over `db` (already migrated) and `coordination`.
    #[must_use]
    pub fn new(db: Database, coordination: Coordination, settings: BillingSettings) -> Self {
        Self::new_with_clock(db, coordination, settings, Arc::new(SystemClock))
    }

    /// The use cases reading the time from `clock`: what invoices are
    /// dated, payments stamped, subscriptions renewed and the billing cycle
    /// runs by. Bookkeeping (`created_at`, `updated_at`, idempotency TTLs,
    /// locks) keeps the system clock.
    #[must_use]
    pub fn new_with_clock(
        db: Database,
        coordination: Coordination,
        settings: BillingSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                coordination,
                hasher: users::PasswordHasher::new(settings.password_hash_queue),
                catalogue: catalogue::CatalogueCache::new(
                    settings.catalogue_cache,
                    settings.catalogue_refresh,
                ),
                settings,
                clock,
                batcher: invoice_batch::InvoiceBatcher::default(),
            }),
        }
    }

    /// The current instant by the clock the use cases read.
    #[must_use]
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }

    /// The database handle (for health checks and metrics).
    #[must_use]
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// The coordination handle (for health checks).
    #[must_use]
    pub fn coordination(&self) -> &Coordination {
        &self.inner.coordination
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> &BillingSettings {
        &self.inner.settings
    }

    /// What this instance's catalogue cache has done so far (for metrics).
    #[must_use]
    pub fn catalogue_stats(&self) -> CatalogueStats {
        self.inner.catalogue.stats()
    }

    /// Tells every instance that `catalogue` changed, for a change written
    /// without these use cases (straight through `billing-repository`, as
    /// a start-up seed does): this instance forgets its copy at once, the
    /// others within [`BillingSettings::catalogue_refresh`]. The use cases
    /// do this themselves.
    pub async fn catalogue_changed(&self, catalogue: Catalogue) {
        self.inner
            .catalogue
            .changed(catalogue, &self.inner.coordination)
            .await;
    }

    fn catalogue(&self) -> &catalogue::CatalogueCache {
        &self.inner.catalogue
    }

    fn batcher(&self) -> &invoice_batch::InvoiceBatcher {
        &self.inner.batcher
    }

    fn db(&self) -> &Database {
        &self.inner.db
    }

    fn hasher(&self) -> &users::PasswordHasher {
        &self.inner.hasher
    }
}

/// The current instant, truncated to microseconds as both databases store it.
fn now() -> chrono::DateTime<chrono::Utc> {
    billing_repository::now()
}
