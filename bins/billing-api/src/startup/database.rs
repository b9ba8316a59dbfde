//! Opening and preparing the database at start: the pool, the first
//! connection, the migrations and the seed, and the retries while the server
//! refuses connections because it is full.

use std::time::Duration;

use billing_repository::{Database, RepositoryError};

use super::{LOG_TARGET, StartupError, announce_seed};
use crate::configuration::Settings;
use crate::metrics::Metrics;
use crate::problem::ErrorChain;
use crate::seed::{SeedOutcome, ensure_default_currency};
use crate::state::AppState;

/// Opens the pool without connecting; every statement is reported to
/// `metrics` (the invoice number wait).
pub(super) async fn open_database(
    settings: &Settings,
    metrics: &Metrics,
) -> Result<Database, StartupError> {
    let mut database_settings = settings.database_settings();
    // `prepare_database` checks the first connection itself, so that a
    // full server does not stop the start.
    database_settings.lazy = true;
    let database = billing_repository::connect(&database_settings)
        .await
        .map_err(StartupError::Database)?;
    let metrics = metrics.clone();
    Ok(database
        .with_statement_observer(move |event| metrics.observe_statement(event.sql, event.elapsed)))
}

/// Why the database could not be prepared.
pub(super) enum Preparation {
    /// The server refuses connections (`too many clients`): wait.
    Full(RepositoryError),
    /// Anything else: the start fails.
    Failed(StartupError),
}

/// Checks that one connection works, applies the migrations when enabled,
/// seeds the default currency, then lets the pool open the rest of its
/// minimum in the background. Returns what the seeding did.
pub(super) async fn prepare_database(
    database: &Database,
    settings: &Settings,
) -> Result<SeedOutcome, Preparation> {
    let full_or = |error: RepositoryError, failed: fn(RepositoryError) -> StartupError| {
        if error.is_connection_limit_reached() {
            Preparation::Full(error)
        } else {
            Preparation::Failed(failed(error))
        }
    };
    database
        .check_connection()
        .await
        .map_err(|error| full_or(error, StartupError::Database))?;
    tracing::info!(
        target: LOG_TARGET,
        target = database.target(),
        backend = ?database.backend(),
        server_max_connections = database.server_max_connections(),
        "database connected"
    );
    if settings.database.migrate_on_start {
        billing_migration::up_locked(database.connection())
            .await
            .map_err(|e| Preparation::Failed(StartupError::Migration(Box::new(e))))?;
        tracing::info!(target: LOG_TARGET, "database migrations applied");
    }
    let seeded = ensure_default_currency(database)
        .await
        .map_err(|error| full_or(error, StartupError::Seed))?;
    match seeded {
        SeedOutcome::Created => tracing::info!(
            target: LOG_TARGET,
            code = crate::seed::SEED_CURRENCY_CODE,
            "seeded the default currency"
        ),
        SeedOutcome::AlreadyPresent => {}
        SeedOutcome::CodeTakenWithoutDefault => tracing::warn!(
            target: LOG_TARGET,
            code = crate::seed::SEED_CURRENCY_CODE,
            "no currency is the default and the seed currency exists as a non-default one; \
             mark one currency as default"
        ),
    }
    database.fill_in_background();
    Ok(seeded)
}

/// The longest pause between two attempts to prepare a full database.
const PREPARE_RETRY_MAX: Duration = Duration::from_secs(5);

/// Retries [`prepare_database`] until it succeeds, then marks the database
/// prepared (readiness turns 200). Failures are logged; the instance keeps
/// serving as not ready meanwhile.
pub(super) async fn prepare_until_accepted(state: AppState, settings: Settings) {
    let mut pause = Duration::from_millis(250);
    loop {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(PREPARE_RETRY_MAX);
        match prepare_database(state.database(), &settings).await {
            Ok(seeded) => {
                announce_seed(state.billing(), seeded).await;
                state.set_database_prepared(true);
                tracing::info!(target: LOG_TARGET, "the database accepts connections again: this instance is ready");
                return;
            }
            Err(Preparation::Full(error)) => tracing::warn!(
                target: LOG_TARGET,
                error = %connection_limit_message(&error, &settings),
                "the database still refuses connections"
            ),
            Err(Preparation::Failed(error)) => tracing::error!(
                target: LOG_TARGET,
                error = %ErrorChain(&error),
                "preparing the database failed; retrying"
            ),
        }
    }
}

/// The one line that says why the database refuses this instance and what
/// to change.
#[must_use]
pub fn connection_limit_message(error: &RepositoryError, settings: &Settings) -> String {
    let database = settings.database_settings();
    let server_max = error_server_max_connections(error).map_or_else(
        || "its max_connections".to_owned(),
        |max| format!("its max_connections ({max})"),
    );
    format!(
        "{error}: the instances sharing this server ask for more connections than {server_max} \
         allows; lower BILLING_DB_MAX_CONNECTIONS (now {}) and BILLING_DB_MIN_CONNECTIONS (now {}) \
         on each instance so that instances x BILLING_DB_MAX_CONNECTIONS stays below the server's \
         max_connections, or raise max_connections on the server",
        database.max_connections, database.min_connections
    )
}

/// The server's `max_connections` an error reports, if any.
fn error_server_max_connections(error: &RepositoryError) -> Option<u32> {
    if let RepositoryError::ConnectionLimitReached {
        server_max_connections,
        ..
    } = error
    {
        *server_max_connections
    } else {
        None
    }
}
