//! The only code that talks to the billing database: connection pool,
//! transactions and optimistic-locking repositories over sea-orm, for
//! PostgreSQL and SQLite.
//!
//! Its promise: no update is ever lost. Two writers that read the same
//! version of a row cannot both write; the loser gets
//! [`RepositoryError::ConcurrentModification`] and the row holds exactly the
//! winner's change (see [`Repository::save`]).
//!
//! ```no_run
//! use billing_repository::{DatabaseSettings, Users, connect};
//!
//! # async fn demo() -> Result<(), billing_repository::RepositoryError> {
//! let db = connect(&DatabaseSettings::new("postgres://billing@127.0.0.1:5432/billing")).await?;
//! if let Some(user) = Users::find_by_email(&db, "Ada@Example.com").await? {
//!     let mut changed = user.clone();
//!     changed.role = billing_domain::enums::UserRole::Admin;
//!     let stored = Users::save(&db, &changed, user.version).await?;
//!     assert_eq!(stored.version, user.version + 1);
//! }
//! # Ok(()) }
//! ```
//!
//! Every repository function takes an [`Executor`]: the [`Database`] pool,
//! or a [`Transaction`] to group several calls (see
//! [`Database::transaction`]).

mod database;
mod error;
mod repositories;
mod repository;
mod settings;

pub use database::{
    Backend, Database, Executor, StatementEvent, Transaction, TransactionFuture, connect,
};
pub use error::{BoxError, RepositoryError};
pub use repositories::currencies::Currencies;
pub use repositories::cycle::{DunningAttempts, ExpiryKey, RenewalContext, Renewals};
pub use repositories::events::{EventFilter, NewEvent, Outbox};
pub use repositories::idempotency_records::IdempotencyRecords;
pub use repositories::invoices::Invoices;
pub use repositories::joined::{PaymentRows, PricingQuery, PricingRows};
pub use repositories::payments::{PaymentWrite, PaymentWritten};
pub use repositories::plans::{PlanFilter, Plans};
pub use repositories::subscriptions::Subscriptions;
pub use repositories::taxes::{TaxRates, TaxWithRate, Taxes};
pub use repositories::user_cases::UserCases;
pub use repositories::user_details::UserDetailsRepository;
pub use repositories::users::{Users, normalize_email};
pub use repositories::webhooks::{
    DeliveryFilter, NewDelivery, WebhookDeliveries, WebhookEndpoints,
};
pub use repository::{MAX_PER_PAGE, Page, Repository, Versioned, now};
pub use settings::DatabaseSettings;
