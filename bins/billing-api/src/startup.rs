//! Wiring: [`Application::build`] checks the settings, connects the
//! database (and migrates and seeds it), sets up coordination, binds the
//! listener and builds the actix-web server; [`Application::run_until_stopped`]
//! serves until a signal or [`ServerHandle::stop`].
//!
//! A database that refuses connections because it is full (`too many
//! clients`) does not stop the start: the instance serves, reports the
//! database down on `/health/ready`, answers 503 on `/api/v1`, logs what to
//! change, and prepares the database (migrations, seed) as soon as a
//! connection is granted. The pool opens one connection before serving and
//! the rest of its minimum in the background.
//!
//! Shutdown: on SIGTERM the server stops accepting connections, lets the
//! requests in flight finish for at most `BILLING_SHUTDOWN_TIMEOUT` (30 s by
//! default), then stops; SIGINT (Ctrl-C) and SIGQUIT stop at once. In both
//! cases transactions that did not commit roll back. After the server has
//! stopped, the database pool is closed.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use billing_concurrency::{Coordination, CoordinationError};
use billing_repository::{Backend, RepositoryError};
use billing_service::{Billing, CycleRunner};

use crate::auth::BearerAuth;
use crate::configuration::{ConfigError, Settings};
use crate::cycle::CycleMetrics;
use crate::metrics::{Metrics, MetricsError};
use crate::problem::BoxError;
use crate::seed::SeedOutcome;
use crate::state::AppState;

mod database;
mod server;

pub use database::connection_limit_message;
use database::{Preparation, open_database, prepare_database, prepare_until_accepted};
use server::build_server;

/// The target of this module's log events, kept by its submodules too.
const LOG_TARGET: &str = module_path!();

/// Why the application could not start. Each message says what failed;
/// the cause is the error's `source` (print with `{:#}` in anyhow, or walk
/// the chain).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The settings do not work together.
    #[error(transparent)]
    Configuration(#[from] ConfigError),
    /// The database could not be opened.
    #[error("cannot open the database")]
    Database(#[source] RepositoryError),
    /// Applying the migrations failed (nothing of the failed run is
    /// committed on PostgreSQL).
    #[error("cannot apply the database migrations")]
    Migration(#[source] BoxError),
    /// Seeding the default currency failed.
    #[error("cannot seed the default currency (has the schema been migrated?)")]
    Seed(#[source] RepositoryError),
    /// The coordination backend could not be set up or Redis does not
    /// answer.
    #[error("cannot set up coordination over Redis at {url}")]
    Coordination {
        /// `REDIS_URL` without its password.
        url: String,
        /// What failed.
        #[source]
        source: CoordinationError,
    },
    /// The in-process coordination backend refused its settings.
    #[error("cannot set up in-process coordination")]
    EmbeddedCoordination(#[source] CoordinationError),
    /// The metrics registry could not be built.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {address}")]
    Bind {
        /// `BILLING_BIND`.
        address: SocketAddr,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The HTTP server failed to start or while running.
    #[error("the HTTP server failed")]
    Server(#[source] io::Error),
    /// The webhook HTTP client could not be built.
    #[error("the webhook sender could not be set up")]
    Webhooks(#[source] billing_webhooks::WebhookError),
}

/// A built application: connected, migrated, listening, not yet serving.
pub struct Application {
    port: u16,
    address: SocketAddr,
    server: Server,
    state: AppState,
    /// The billing cycle's task, when `BILLING_CYCLE_ENABLED`.
    cycle: Option<(CycleRunner, Duration, CycleMetrics)>,
    /// The webhook delivery task, when `BILLING_WEBHOOK_ENABLED`.
    webhooks: Option<billing_webhooks::Dispatcher>,
    /// Migrating and seeding a database that refused connections at start.
    preparing: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Builds the application from `settings`: validates them, opens the
    /// database, applies the migrations (`BILLING_MIGRATE_ON_START`), seeds
    /// the default currency, sets up coordination (Redis when `REDIS_URL`
    /// is set, checked with a ping; else in process), and binds
    /// `BILLING_BIND` (port 0 picks a free port: see [`Self::port`]).
    ///
    /// # Errors
    /// A [`StartupError`] naming the step that failed.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_routes(settings, |_config| {}).await
    }

    /// As [`Self::build`], with `extra_api_routes` registered in the
    /// `/api/v1` scope after the built-in ones (behind the same
    /// authentication and error handling). For embedding and tests.
    ///
    /// # Errors
    /// As [`Self::build`].
    pub async fn build_with_routes<F>(
        settings: Settings,
        extra_api_routes: F,
    ) -> Result<Self, StartupError>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        settings.validate()?;
        let auth = BearerAuth::new(settings.http.api_token.as_ref());
        if auth.is_open() {
            tracing::warn!(
                bind = %settings.http.bind,
                "BILLING_API_TOKEN is not set: /api/v1 is open to every client that can reach this address"
            );
        }

        let metrics = Metrics::new()?;
        let database = open_database(&settings, &metrics).await?;
        let prepared = match prepare_database(&database, &settings).await {
            Ok(seeded) => Some(seeded),
            Err(Preparation::Full(error)) => {
                tracing::error!(
                    error = %connection_limit_message(&error, &settings),
                    "the database refuses connections: serving as not ready until it accepts one"
                );
                None
            }
            Err(Preparation::Failed(error)) => return Err(error),
        };
        let coordination = connect_coordination(&settings, database.backend()).await?;
        let billing = Billing::new(database, coordination, settings.billing_settings());
        if let Some(seeded) = prepared {
            announce_seed(&billing, seeded).await;
        }
        let state = AppState::new(
            billing,
            settings.database_settings().max_connections,
            settings.http.health_timeout,
            settings.http.body_limit,
        );
        let cycle = cycle_task(&settings, &state, &metrics)?;
        let webhooks = webhook_dispatcher(&settings, &state)?;
        state.set_database_prepared(prepared.is_some());
        let preparing = prepared
            .is_none()
            .then(|| tokio::spawn(prepare_until_accepted(state.clone(), settings.clone())));

        let listener =
            TcpListener::bind(settings.http.bind).map_err(|source| StartupError::Bind {
                address: settings.http.bind,
                source,
            })?;
        let address = listener.local_addr().map_err(StartupError::Server)?;
        let server = build_server(
            listener,
            &settings,
            state.clone(),
            metrics,
            auth,
            extra_api_routes,
        )?;
        tracing::info!(%address, "billing-api listening");
        Ok(Self {
            port: address.port(),
            address,
            server,
            state,
            cycle,
            webhooks,
            preparing,
        })
    }

    /// The port the server listens on (the chosen one when
    /// `BILLING_BIND` had port 0).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address the server listens on.
    #[must_use]
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The shared state handlers see.
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle to stop the server: `handle.stop(true)` finishes the
    /// requests in flight first, as SIGTERM does.
    #[must_use]
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (signal or [`Self::handle`]),
    /// then closes the database pool.
    ///
    /// # Errors
    /// [`StartupError::Server`] when the server fails.
    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        let purging = tokio::spawn(purge_idempotency_records(self.state.clone()));
        let cycling = self.cycle.map(|(runner, interval, metrics)| {
            tokio::spawn(crate::cycle::run_forever(runner, interval, metrics))
        });
        let sending = self.webhooks.map(|dispatcher| {
            let state = self.state.clone();
            tokio::spawn(async move {
                // Not before the schema exists (a database that refused
                // connections at start is migrated later).
                while !state.database_prepared() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                dispatcher.run(std::future::pending()).await;
            })
        });
        let served = self.server.await.map_err(StartupError::Server);
        if let Some(sending) = sending {
            // A pass cut short is taken over by the next one, anywhere:
            // its deliveries are still pending.
            sending.abort();
        }
        purging.abort();
        if let Some(preparing) = self.preparing {
            preparing.abort();
        }
        if let Some(cycling) = cycling {
            // A pass cut short here is completed by the next one, anywhere.
            cycling.abort();
        }
        tracing::info!("billing-api stopped");
        if let Err(error) = self.state.database().close().await {
            tracing::warn!(error = %error, "closing the database pool failed");
        }
        served
    }
}

/// The billing cycle's task, when `BILLING_CYCLE_ENABLED`; its metrics are
/// registered either way.
fn cycle_task(
    settings: &Settings,
    state: &AppState,
    metrics: &Metrics,
) -> Result<Option<(CycleRunner, Duration, CycleMetrics)>, StartupError> {
    let cycle_metrics = CycleMetrics::register(metrics.registry()).map_err(MetricsError::from)?;
    let cycle = settings.cycle.enabled.then(|| {
        (
            CycleRunner::new(state.billing().clone(), settings.cycle.cycle_settings()),
            settings.cycle.interval,
            cycle_metrics,
        )
    });
    if cycle.is_none() {
        tracing::info!(
            "BILLING_CYCLE_ENABLED is off: this instance does not run the billing cycle"
        );
    }
    Ok(cycle)
}

/// The webhook delivery task, when `BILLING_WEBHOOK_ENABLED`.
fn webhook_dispatcher(
    settings: &Settings,
    state: &AppState,
) -> Result<Option<billing_webhooks::Dispatcher>, StartupError> {
    let webhooks = if settings.webhooks.enabled {
        Some(
            settings
                .webhooks
                .dispatcher(state.billing().clone())
                .map_err(StartupError::Webhooks)?,
        )
    } else {
        tracing::info!("BILLING_WEBHOOK_ENABLED is off: this instance does not send webhooks");
        None
    };
    Ok(webhooks)
}

/// How often expired idempotency records are deleted.
const IDEMPOTENCY_PURGE_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// Deletes expired idempotency records at start and then every
/// [`IDEMPOTENCY_PURGE_INTERVAL`] (they are ignored once expired; this only
/// reclaims their space), once the database is prepared. Failures are
/// logged and retried next time.
async fn purge_idempotency_records(state: AppState) {
    let mut interval = tokio::time::interval(IDEMPOTENCY_PURGE_INTERVAL);
    loop {
        interval.tick().await;
        if !state.database_prepared() {
            // Not migrated yet (the database refused connections at start).
            continue;
        }
        match state.billing().purge_expired_idempotency_records().await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired idempotency records deleted"),
            Err(error) => tracing::warn!(
                error = &error as &dyn std::error::Error,
                "deleting expired idempotency records failed"
            ),
        }
    }
}

/// The use cases over the database and coordination `settings` name: what
/// `billing-api cycle run-once` runs on. Unlike the server, it stops when
/// the database refuses connections.
///
/// # Errors
/// [`StartupError::Configuration`], [`StartupError::Database`],
/// [`StartupError::Migration`], [`StartupError::Seed`] and the coordination
/// errors.
pub async fn connect_billing(settings: &Settings) -> Result<Billing, StartupError> {
    settings.validate()?;
    let metrics = Metrics::new()?;
    let database = open_database(settings, &metrics).await?;
    let seeded = prepare_database(&database, settings)
        .await
        .map_err(|preparation| match preparation {
            Preparation::Full(error) => StartupError::Database(error),
            Preparation::Failed(error) => error,
        })?;
    let coordination = connect_coordination(settings, database.backend()).await?;
    let billing = Billing::new(database, coordination, settings.billing_settings());
    announce_seed(&billing, seeded).await;
    Ok(billing)
}

/// Tells the other instances' catalogue caches of a default currency the
/// start seeded (written past the use cases, so announced here).
async fn announce_seed(billing: &Billing, seeded: SeedOutcome) {
    if seeded == SeedOutcome::Created {
        billing
            .catalogue_changed(billing_service::Catalogue::Currencies)
            .await;
    }
}

/// Redis when `REDIS_URL` is set (pinged once: a wrong URL or a Redis that
/// is down stops the start), else the in-process backend.
async fn connect_coordination(
    settings: &Settings,
    database_backend: Backend,
) -> Result<Coordination, StartupError> {
    let Some(redis) = settings.redis_settings() else {
        match database_backend {
            Backend::Postgres => tracing::warn!(
                "REDIS_URL is not set: locks and idempotency keys live in this process, \
                 so run a single instance only"
            ),
            Backend::Sqlite => {}
        }
        return Coordination::embedded_with(settings.embedded_coordination_settings())
            .map_err(StartupError::EmbeddedCoordination);
    };
    let url = settings
        .redis
        .url
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let coordination =
        Coordination::redis(redis)
            .await
            .map_err(|source| StartupError::Coordination {
                url: url.clone(),
                source,
            })?;
    coordination
        .ping()
        .await
        .map_err(|source| StartupError::Coordination {
            url: url.clone(),
            source,
        })?;
    tracing::info!(url = %url, "Redis connected");
    Ok(coordination)
}
