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

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use billing_concurrency::{Coordination, CoordinationError};
use billing_repository::{Backend, Database, RepositoryError};
use billing_service::{Billing, CycleRunner};

use crate::auth::{BearerAuth, require_bearer_token};
use crate::configuration::{ConfigError, Settings};
use crate::cycle::CycleMetrics;
use crate::metrics::{Metrics, MetricsError};
use crate::problem::{ApiError, BoxError, ErrorChain, ProblemCode, framework};
use crate::query_parameters::refuse_unknown_query_parameters;
use crate::seed::{SeedOutcome, ensure_default_currency};
use crate::state::AppState;
use crate::telemetry::request_telemetry;
use crate::{docs, metrics, openapi, routes};

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
        let cycle_metrics =
            CycleMetrics::register(metrics.registry()).map_err(MetricsError::from)?;
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

/// Opens the pool without connecting; every statement is reported to
/// `metrics` (the invoice number wait).
async fn open_database(settings: &Settings, metrics: &Metrics) -> Result<Database, StartupError> {
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
enum Preparation {
    /// The server refuses connections (`too many clients`): wait.
    Full(RepositoryError),
    /// Anything else: the start fails.
    Failed(StartupError),
}

/// Checks that one connection works, applies the migrations when enabled,
/// seeds the default currency, then lets the pool open the rest of its
/// minimum in the background. Returns what the seeding did.
async fn prepare_database(
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
        target = database.target(),
        backend = ?database.backend(),
        server_max_connections = database.server_max_connections(),
        "database connected"
    );
    if settings.database.migrate_on_start {
        billing_migration::up_locked(database.connection())
            .await
            .map_err(|e| Preparation::Failed(StartupError::Migration(Box::new(e))))?;
        tracing::info!("database migrations applied");
    }
    let seeded = ensure_default_currency(database)
        .await
        .map_err(|error| full_or(error, StartupError::Seed))?;
    match seeded {
        SeedOutcome::Created => tracing::info!(
            code = crate::seed::SEED_CURRENCY_CODE,
            "seeded the default currency"
        ),
        SeedOutcome::AlreadyPresent => {}
        SeedOutcome::CodeTakenWithoutDefault => tracing::warn!(
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
async fn prepare_until_accepted(state: AppState, settings: Settings) {
    let mut pause = Duration::from_millis(250);
    loop {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(PREPARE_RETRY_MAX);
        match prepare_database(state.database(), &settings).await {
            Ok(seeded) => {
                announce_seed(state.billing(), seeded).await;
                state.set_database_prepared(true);
                tracing::info!("the database accepts connections again: this instance is ready");
                return;
            }
            Err(Preparation::Full(error)) => tracing::warn!(
                error = %connection_limit_message(&error, &settings),
                "the database still refuses connections"
            ),
            Err(Preparation::Failed(error)) => tracing::error!(
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

/// 503 `dependency_unavailable` for `/api/v1` while the database is not
/// prepared (see [`AppState::database_prepared`]).
async fn require_prepared_database(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let prepared = request
        .app_data::<web::Data<AppState>>()
        .is_none_or(|state| state.database_prepared());
    if prepared {
        return Ok(next.call(request).await?.map_into_boxed_body());
    }
    let (http_request, _payload) = request.into_parts();
    let response = actix_web::ResponseError::error_response(&ApiError::new(
        ProblemCode::DependencyUnavailable,
        "the database refuses new connections (too many clients); this instance is not ready yet",
    ));
    Ok(ServiceResponse::new(http_request, response))
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

fn build_server<F>(
    listener: TcpListener,
    settings: &Settings,
    state: AppState,
    metrics: Metrics,
    auth: BearerAuth,
    extra_api_routes: F,
) -> Result<Server, StartupError>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let state = web::Data::new(state);
    let metrics = web::Data::new(metrics);
    let auth = web::Data::new(auth);
    let body_limit = settings.http.body_limit;
    let in_flight_ttl = settings.idempotency.in_flight_ttl;
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(metrics.clone())
            .app_data(auth.clone())
            .app_data(framework::json_config(body_limit))
            .app_data(framework::payload_config(body_limit))
            .app_data(framework::path_config())
            .app_data(framework::query_config())
            .app_data(web::Data::new(framework::RetryAfter {
                in_flight: in_flight_ttl,
            }))
            // Inner to outer: the problem rewrite sees handler responses,
            // telemetry sees the final response.
            .wrap(from_fn(framework::problem_json_errors))
            .wrap(from_fn(request_telemetry))
            // `web::resource(..).route(..)`, not `App::route` or `#[get]`:
            // those put the method guard on the resource, so a wrong method
            // would answer 404 instead of 405.
            // Every documented operation refuses unknown query parameters.
            .service(
                web::resource("/health/live")
                    .wrap(from_fn(refuse_unknown_query_parameters))
                    .route(web::get().to(routes::health::live)),
            )
            .service(
                web::resource("/health/ready")
                    .wrap(from_fn(refuse_unknown_query_parameters))
                    .route(web::get().to(routes::health::ready)),
            )
            .service(
                web::resource("/metrics")
                    .wrap(from_fn(refuse_unknown_query_parameters))
                    .route(web::get().to(metrics::metrics)),
            )
            .service(
                web::resource("/openapi.json")
                    .wrap(from_fn(refuse_unknown_query_parameters))
                    .route(web::get().to(openapi::openapi_json)),
            )
            .configure(docs::configure)
            .service(
                web::scope("/api/v1")
                    .wrap(from_fn(refuse_unknown_query_parameters))
                    .wrap(from_fn(require_prepared_database))
                    .wrap(from_fn(require_bearer_token))
                    .configure(routes::api_v1)
                    .configure(extra_api_routes.clone()),
            )
            .default_service(web::to(framework::not_found))
    })
    .shutdown_timeout(settings.http.shutdown_timeout_secs());
    if let Some(workers) = settings.http.workers {
        server = server.workers(workers.get());
    }
    let server = server.listen(listener).map_err(StartupError::Server)?;
    Ok(server.run())
}
