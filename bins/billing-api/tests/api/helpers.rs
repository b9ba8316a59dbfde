//! Test harness: [`spawn_app`] / [`spawn_app_with`] build the real
//! [`Application`] on `127.0.0.1:0` over a fresh [`TestDatabase`] and run it
//! on a tokio task; [`TestApp`] holds its address and HTTP clients.
//!
//! Backends follow the database: SQLite runs with in-process coordination;
//! PostgreSQL runs with Redis when `TEST_REDIS_URL` is set (with a random
//! key prefix), else in process.
//!
//! Every app also serves a few routes of its own under `/api/v1/test/`
//! ([`test_routes`]) so that the extractor error handling, the body limit,
//! authentication and graceful shutdown can be exercised before the
//! resource routes exist.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{HttpRequest, HttpResponse, web};
use anyhow::Context as _;
use billing_api::AppState;
use billing_api::configuration::{ApiToken, DatabaseUrl, LogFilter, LogFormat, RedisUrl};
use billing_api::idempotency::{self, KeyHeader};
use billing_api::problem::ApiError;
use billing_api::request::RawBody;
use billing_api::response::Reply;
use billing_api::{Application, Settings};
use billing_service::{BillingError, NewUser};
use billing_test_support::{Backend, TestDatabase, unique_suffix};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running application and what tests need to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The port it listens on.
    pub port: u16,
    /// A client that sends `Authorization: Bearer <token>` (when the app
    /// has a token).
    pub api_client: reqwest::Client,
    /// A client without credentials.
    pub client: reqwest::Client,
    /// The token the app requires, if any.
    pub token: Option<String>,
    /// The app's database; dropped (and removed) with the last app that
    /// uses it.
    pub db: Arc<TestDatabase>,
    /// Whether the app runs on Redis (else in process).
    pub uses_redis: bool,
    handle: ServerHandle,
    server: Option<tokio::task::JoinHandle<Result<(), billing_api::StartupError>>>,
}

impl TestApp {
    /// `address` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Stops the server gracefully (requests in flight finish) and waits
    /// until it has stopped.
    pub async fn stop_gracefully(&mut self) -> anyhow::Result<()> {
        self.handle.stop(true).await;
        if let Some(server) = self.server.take() {
            server.await??;
        }
        Ok(())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command at once; the workers wind down on their own.
        let _stopping = self.handle.stop(false);
    }
}

/// How to build the app under test.
#[derive(Clone, Debug)]
pub struct TestOptions {
    /// The token to require; `None` for an open API.
    pub token: Option<String>,
    /// `BILLING_BODY_LIMIT`.
    pub body_limit: usize,
    /// Use Redis when the database is PostgreSQL and `TEST_REDIS_URL` is set.
    pub redis: bool,
    /// Use this Redis URL (e.g. a proxy) instead of `TEST_REDIS_URL`.
    pub redis_url: Option<String>,
    /// `BILLING_REDIS_CLUSTER`: `redis_url` names Redis Cluster nodes.
    pub redis_cluster: bool,
    /// `BILLING_REDIS_CA_FILE`.
    pub redis_ca_file: Option<std::path::PathBuf>,
    /// Use this database URL (e.g. through a proxy) instead of the test
    /// database's.
    pub database_url: Option<String>,
    /// `BILLING_HEALTH_TIMEOUT`.
    pub health_timeout: Duration,
    /// `BILLING_SHUTDOWN_TIMEOUT`.
    pub shutdown_timeout: Duration,
    /// `BILLING_REDIS_KEY_PREFIX`; a random one when `None`. Instances that
    /// serve the same data share one.
    pub redis_key_prefix: Option<String>,
    /// `BILLING_DB_MAX_CONNECTIONS` on PostgreSQL (5 when `None`).
    pub db_max_connections: Option<u32>,
    /// Leave `BILLING_DB_MIN_CONNECTIONS` and `BILLING_DB_MAX_CONNECTIONS`
    /// unset, as a production instance does (`db_max_connections` is then
    /// ignored).
    pub default_pool: bool,
    /// `BILLING_PASSWORD_HASH_QUEUE` (the default when `None`).
    pub password_hash_queue: Option<usize>,
    /// `BILLING_IDEMPOTENCY_IN_FLIGHT_TTL` (the default when `None`).
    pub in_flight_ttl: Option<Duration>,
    /// The billing cycle's settings; `None` turns it off
    /// (`BILLING_CYCLE_ENABLED=false`), so no background pass writes
    /// during tests that do not expect one.
    pub cycle: Option<billing_api::cycle::CycleArgs>,
    /// Webhook delivery's settings; `None` turns it off
    /// (`BILLING_WEBHOOK_ENABLED=false`), as the cycle.
    pub webhooks: Option<billing_api::webhook_delivery::WebhookArgs>,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            token: Some(format!("test-token-{}", unique_suffix())),
            body_limit: 64 * 1024,
            redis: true,
            redis_url: None,
            redis_cluster: false,
            redis_ca_file: None,
            database_url: None,
            health_timeout: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(10),
            redis_key_prefix: None,
            db_max_connections: None,
            default_pool: false,
            password_hash_queue: None,
            in_flight_ttl: None,
            cycle: None,
            webhooks: None,
        }
    }
}

/// The settings of an app under test: loopback port 0, small pools, two
/// workers.
pub fn test_settings(db: &TestDatabase, options: &TestOptions) -> anyhow::Result<Settings> {
    let database_url = options.database_url.as_deref().unwrap_or(db.url());
    let redis_url = match (&options.redis_url, db.backend()) {
        (Some(url), _) => Some(url.clone()),
        (None, Backend::Postgres) if options.redis => billing_test_support::redis_url(),
        (None, Backend::Postgres | Backend::Sqlite) => None,
    };
    let (min, max) = match db.backend() {
        Backend::Postgres if !options.default_pool => {
            (Some(1), Some(options.db_max_connections.unwrap_or(5)))
        }
        Backend::Postgres | Backend::Sqlite => (None, None),
    };
    let mut settings = Settings::default();
    if let Some(queue) = options.password_hash_queue {
        settings.rules.password_hash_queue = queue;
    }
    if let Some(ttl) = options.in_flight_ttl {
        settings.idempotency.in_flight_ttl = ttl;
    }
    settings.database.url = DatabaseUrl::parse(database_url).map_err(anyhow::Error::msg)?;
    settings.database.min_connections = min;
    settings.database.max_connections = max;
    settings.database.acquire_timeout = Duration::from_secs(2);
    settings.redis.url = redis_url
        .as_deref()
        .map(RedisUrl::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    settings.redis.key_prefix = options
        .redis_key_prefix
        .clone()
        .unwrap_or_else(|| format!("billing-test-{}", unique_suffix()));
    settings.redis.cluster = options.redis_cluster;
    settings.redis.ca_file.clone_from(&options.redis_ca_file);
    settings.http.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.http.api_token = options
        .token
        .as_deref()
        .map(ApiToken::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    settings.http.body_limit = options.body_limit;
    settings.http.health_timeout = options.health_timeout;
    settings.http.shutdown_timeout = options.shutdown_timeout;
    settings.http.workers = std::num::NonZeroUsize::new(2);
    settings.log.filter = LogFilter::parse("info").map_err(anyhow::Error::msg)?;
    settings.log.format = LogFormat::Human;
    settings.cycle = options
        .cycle
        .clone()
        .unwrap_or_else(|| billing_api::cycle::CycleArgs {
            enabled: false,
            ..billing_api::cycle::CycleArgs::default()
        });
    settings.webhooks =
        options
            .webhooks
            .clone()
            .unwrap_or_else(|| billing_api::webhook_delivery::WebhookArgs {
                enabled: false,
                ..billing_api::webhook_delivery::WebhookArgs::default()
            });
    Ok(settings)
}

/// Spawns the app over `db` with the default [`TestOptions`].
pub async fn spawn_app(db: TestDatabase) -> anyhow::Result<TestApp> {
    spawn_app_with(db, TestOptions::default()).await
}

/// Spawns the app over `db` as `options` say.
pub async fn spawn_app_with(db: TestDatabase, options: TestOptions) -> anyhow::Result<TestApp> {
    spawn_instance(Arc::new(db), options).await
}

/// Spawns `count` instances of the app over one database (and, on
/// PostgreSQL with `TEST_REDIS_URL`, one Redis with one key prefix), as a
/// deployment of several instances would run. They share `options`' token.
pub async fn spawn_instances(
    db: TestDatabase,
    count: usize,
    mut options: TestOptions,
) -> anyhow::Result<Vec<TestApp>> {
    let db = Arc::new(db);
    options
        .redis_key_prefix
        .get_or_insert_with(|| format!("billing-test-{}", unique_suffix()));
    let mut apps = Vec::with_capacity(count);
    for _ in 0..count {
        apps.push(spawn_instance(Arc::clone(&db), options.clone()).await?);
    }
    Ok(apps)
}

/// Starts `count` instances over one database at the same moment (all
/// start-ups run concurrently), as a deployment rolling out several
/// instances together does; otherwise as [`spawn_instances`]. Each result
/// is the instance or why it did not start.
pub async fn spawn_instances_at_once(
    db: TestDatabase,
    count: usize,
    mut options: TestOptions,
) -> Vec<anyhow::Result<TestApp>> {
    let db = Arc::new(db);
    options
        .redis_key_prefix
        .get_or_insert_with(|| format!("billing-test-{}", unique_suffix()));
    let starts = (0..count).map(|_| spawn_instance(Arc::clone(&db), options.clone()));
    futures::future::join_all(starts).await
}

/// Starts the app again over `app`'s database, with `app`'s token, as a
/// restarted process would (stop `app` first).
pub async fn restart(app: &TestApp) -> anyhow::Result<TestApp> {
    let options = TestOptions {
        token: app.token.clone(),
        ..TestOptions::default()
    };
    spawn_instance(Arc::clone(&app.db), options).await
}

/// Spawns one instance over `db`.
pub async fn spawn_instance(
    db: Arc<TestDatabase>,
    options: TestOptions,
) -> anyhow::Result<TestApp> {
    init_test_logging();
    let settings = test_settings(&db, &options)?;
    let uses_redis = settings.redis.url.is_some();
    let application = Application::build_with_routes(settings, test_routes)
        .await
        .context("building the application")?;
    let port = application.port();
    let handle = application.handle();
    let server = tokio::spawn(application.run_until_stopped());

    let mut headers = HeaderMap::new();
    if let Some(token) = &options.token {
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
    }
    billing_webhooks::install_crypto_provider();
    let api_client = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    Ok(TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        api_client,
        client,
        token: options.token,
        db,
        uses_redis,
        handle,
        server: Some(server),
    })
}

/// Logs of the apps under test, on stdout, when `TEST_LOG` is set.
fn init_test_logging() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let filter = LogFilter::parse("debug,sqlx=warn,sea_orm=info").expect("a valid filter");
            let _ = billing_api::telemetry::init(&filter, LogFormat::Human);
        }
    });
}

/// The body of `POST /api/v1/test/echo`: strict, like the real bodies.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EchoBody {
    /// Any text.
    pub name: String,
    /// Any integer.
    pub amount: i64,
}

/// The query of `GET /api/v1/test/list`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// A page number.
    pub page: u32,
}

/// The query of `GET /api/v1/test/slow`.
#[derive(Debug, Deserialize)]
pub struct SlowQuery {
    /// How long to take.
    pub ms: u64,
}

/// Routes for the tests, under `/api/v1/test/`.
pub fn test_routes(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/test/echo").route(web::post().to(echo)))
        .service(web::resource("/test/raw").route(web::post().to(raw)))
        .service(web::resource("/test/items/{id}").route(web::get().to(item)))
        .service(web::resource("/test/list").route(web::get().to(list)))
        .service(web::resource("/test/slow").route(web::get().to(slow)))
        .service(web::resource("/test/fail").route(web::get().to(fail)))
        .service(web::resource("/test/locked").route(web::get().to(locked)))
        .service(web::resource("/test/plain-503").route(web::get().to(plain_unavailable)))
        .service(web::resource("/test/slow-idempotent").route(web::post().to(slow_idempotent)));
}

/// 409 `locked`, as a use case reports a busy invoice lock.
async fn locked() -> Result<HttpResponse, ApiError> {
    Err(BillingError::Locked {
        contended: billing_service::Contended::Lock(billing_service::LockKey::of(
            billing_service::Resource::Invoice,
            42,
        )),
    }
    .into())
}

/// A 503 that is not an [`ApiError`] (as a framework or middleware might
/// answer).
async fn plain_unavailable() -> HttpResponse {
    HttpResponse::ServiceUnavailable().body("down for maintenance")
}

/// Sleeps `ms`, then registers a user, under the request's
/// `Idempotency-Key`: a slow use case.
async fn slow_idempotent(
    state: web::Data<AppState>,
    request: HttpRequest,
    key: KeyHeader,
    query: web::Query<SlowQuery>,
    body: RawBody,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency::optional_key(&request, &key, &body.0)?;
    let ms = query.ms;
    let billing = state.billing();
    let work = async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        billing
            .register_user(NewUser {
                email: format!("slow-{}@example.com", unique_suffix()),
                password: "correct horse battery".to_owned(),
                role: None,
            })
            .await
    };
    idempotency::run(billing, key.as_ref(), work, |user| {
        Reply::ok(&serde_json::json!({ "slept_ms": ms, "user_id": user.id }))
    })
    .await
}

async fn echo(body: web::Json<EchoBody>) -> HttpResponse {
    HttpResponse::Ok().json(body.into_inner())
}

async fn raw(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "bytes": body.len() }))
}

async fn item(id: web::Path<i64>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "id": id.into_inner() }))
}

async fn list(query: web::Query<ListQuery>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "page": query.page }))
}

async fn slow(query: web::Query<SlowQuery>) -> HttpResponse {
    tokio::time::sleep(Duration::from_millis(query.ms)).await;
    HttpResponse::Ok().json(serde_json::json!({ "slept_ms": query.ms }))
}

async fn fail() -> Result<HttpResponse, ApiError> {
    Err(ApiError::internal(
        "SELECT secret_column FROM secret_table failed: connection reset",
    ))
}

/// Asserts `response` is a problem with `status` and `code`, and returns
/// its body.
pub async fn assert_problem(
    response: reqwest::Response,
    status: u16,
    code: &str,
) -> anyhow::Result<serde_json::Value> {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of {}",
        response.url()
    );
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().await?;
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(
        body["type"],
        format!("urn:billing:problem:{code}"),
        "{body}"
    );
    assert!(body["title"].is_string(), "{body}");
    assert!(body["detail"].is_string(), "{body}");
    Ok(body)
}

/// A loopback TCP proxy to a server that can be made to hang: while hung,
/// it keeps every connection open (and accepts new ones) but forwards
/// nothing, like a server that stopped answering.
pub struct HangingProxy {
    address: SocketAddr,
    hung: watch::Sender<bool>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl HangingProxy {
    /// Starts forwarding to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (hung, _) = watch::channel(false);
        let states = hung.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let state = states.subscribe();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    tokio::join!(
                        relay(in_read, out_write, state.clone()),
                        relay(out_read, in_write, state)
                    );
                });
            }
        });
        Ok(Self {
            address,
            hung,
            acceptor,
        })
    }

    /// The proxy's address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops (`true`) or resumes (`false`) forwarding.
    pub fn set_hung(&self, hung: bool) {
        self.hung.send_replace(hung);
    }
}

impl Drop for HangingProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut hung: watch::Receiver<bool>,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if hung.wait_for(|hung| !*hung).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

/// `host:port` of a `scheme://[user[:password]@]host[:port][/…]` URL,
/// resolved; `default_port` when the URL names none.
pub async fn socket_address(url: &str, default_port: u16) -> anyhow::Result<SocketAddr> {
    let rest = url.split_once("://").context("not a URL")?.1;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    };
    tokio::net::lookup_host(&host_port)
        .await?
        .next()
        .with_context(|| format!("cannot resolve {host_port}"))
}

/// `url` with its `host:port` replaced by `address` (user, path and query
/// kept).
pub fn replace_host_port(url: &str, address: SocketAddr) -> anyhow::Result<String> {
    let (scheme, rest) = url.split_once("://").context("not a URL")?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let user = authority.rsplit_once('@').map(|(user, _)| user);
    Ok(match user {
        Some(user) => format!("{scheme}://{user}@{address}{tail}"),
        None => format!("{scheme}://{address}{tail}"),
    })
}
