//! [`Metrics`]: the Prometheus registry of one instance, and the
//! `GET /metrics` route that renders it in the text exposition format.
//!
//! Crate choice: `prometheus` (tikv) with `default-features = false` is
//! eight small dependencies (no protobuf, no HTTP server, no process
//! collector) and gives counters, gauges and histograms with labels and a
//! correct text encoder. `metrics` + `metrics-exporter-prometheus` pulls in
//! more (a recorder, quanta, sketches, an HTTP exporter unless disabled) for
//! no gain here, and a hand-written registry would re-implement the
//! exposition format's escaping and histogram rules.
//!
//! What is measured:
//!
//! - `billing_http_requests_total{method, route, status}` and
//!   `billing_http_request_duration_seconds{method, route, status}`: `route`
//!   is the matched pattern (`/api/v1/invoices/{id}`), `unmatched` for
//!   unknown paths, and `method` one of the standard methods or `OTHER`, so
//!   the number of series stays bounded whatever clients send;
//! - `billing_http_requests_in_flight`;
//! - `billing_db_pool_connections{state="idle"|"in_use"}` and
//!   `billing_db_pool_max_connections`, read from the pool at each scrape;
//! - business events, counted from the answers (a replayed answer counts
//!   as a replay only, never twice as a payment):
//!   `billing_payments_total{outcome}` and `billing_refunds_total{outcome}`
//!   (`outcome`: `succeeded` for a 2xx, `refused` for a 4xx such as an
//!   invoice already paid, `failed` for a 5xx),
//!   `billing_idempotent_replays_total{route}` (answers replayed from an
//!   `Idempotency-Key`),
//!   `billing_lock_contention_total{route, kind}` (requests refused because
//!   another request held the resource: `kind="lock"`, answer `locked`, or
//!   held its idempotency key: `kind="idempotency_key"`, answer
//!   `idempotency_in_flight`);
//! - `billing_invoice_number_wait_seconds`: how long taking the next
//!   invoice number took, including the wait for the year's counter row
//!   that concurrent invoice creations hold until they commit (the
//!   statement on `invoice_sequence`, observed on the database handle; on
//!   PostgreSQL the same statement inserts the invoices, one observation
//!   per batch of creations numbered together).
//! - the catalogue cache, read at each scrape:
//!   `billing_catalogue_reads_total{outcome="hit"|"load"|"bypass"}`,
//!   `billing_catalogue_hit_ratio` (hits over all reads),
//!   `billing_catalogue_invalidations_total` (changes learnt from another
//!   instance), `billing_catalogue_invalidation_delay_seconds_sum` /
//!   `_count` / `_max` (from a change's announcement to its discovery here)
//!   and `billing_catalogue_channel_failures_total`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpResponse, web};
use billing_repository::{Backend, Database};
use billing_service::CatalogueStats;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::problem::{ApiError, ProblemCode};

mod catalogue;

use catalogue::CatalogueMetrics;

/// Latency buckets in seconds: 2.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets of the invoice number wait in seconds: 0.5 ms to 5 s.
const NUMBERING_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The route that pays an invoice.
const PAY_ROUTE: &str = "/api/v1/invoices/{id}/pay";
/// The route that refunds an invoice.
const REFUND_ROUTE: &str = "/api/v1/invoices/{id}/refund";

/// The `route` label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// A metric could not be registered or encoded (a programming error: a
/// duplicate or malformed name).
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// The metrics of one instance. Cheap to clone; clones share the registry.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    in_flight: IntGauge,
    pool_connections: IntGaugeVec,
    pool_max: IntGauge,
    payments: IntCounterVec,
    refunds: IntCounterVec,
    replays: IntCounterVec,
    contention: IntCounterVec,
    numbering_wait: prometheus::Histogram,
    catalogue: CatalogueMetrics,
}

/// The request counter, the latency histogram and the in-flight gauge.
fn http_metrics() -> Result<(IntCounterVec, HistogramVec, IntGauge), MetricsError> {
    let labels = &["method", "route", "status"];
    let requests = IntCounterVec::new(
        Opts::new(
            "billing_http_requests_total",
            "HTTP requests answered, by method, route pattern and status.",
        ),
        labels,
    )?;
    let latency = HistogramVec::new(
        HistogramOpts::new(
            "billing_http_request_duration_seconds",
            "Time from receiving a request to sending the response head, by method, route pattern and status.",
        )
        .buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )?;
    let in_flight = IntGauge::new(
        "billing_http_requests_in_flight",
        "HTTP requests being processed.",
    )?;
    Ok((requests, latency, in_flight))
}

/// The pool's connections by state and its maximum.
fn pool_metrics() -> Result<(IntGaugeVec, IntGauge), MetricsError> {
    let pool_connections = IntGaugeVec::new(
        Opts::new(
            "billing_db_pool_connections",
            "Open database connections of this instance, idle or in use.",
        ),
        &["state"],
    )?;
    let pool_max = IntGauge::new(
        "billing_db_pool_max_connections",
        "The most database connections this instance opens.",
    )?;
    Ok((pool_connections, pool_max))
}

/// The payments, refunds, replays and contention counters.
fn business_counters() -> Result<[IntCounterVec; 4], MetricsError> {
    let payments = IntCounterVec::new(
        Opts::new(
            "billing_payments_total",
            "Invoice payments answered (not replays), by outcome: succeeded, refused (4xx), failed (5xx).",
        ),
        &["outcome"],
    )?;
    let refunds = IntCounterVec::new(
        Opts::new(
            "billing_refunds_total",
            "Invoice refunds answered (not replays), by outcome: succeeded, refused (4xx), failed (5xx).",
        ),
        &["outcome"],
    )?;
    let replays = IntCounterVec::new(
        Opts::new(
            "billing_idempotent_replays_total",
            "Answers replayed from an Idempotency-Key instead of running the request again, by route pattern.",
        ),
        &["route"],
    )?;
    let contention = IntCounterVec::new(
        Opts::new(
            "billing_lock_contention_total",
            "Requests refused because another request held the resource (kind=lock) or the same idempotency key (kind=idempotency_key), by route pattern.",
        ),
        &["route", "kind"],
    )?;
    Ok([payments, refunds, replays, contention])
}

/// The invoice number wait histogram.
fn numbering_wait_histogram() -> Result<prometheus::Histogram, MetricsError> {
    let numbering_wait = prometheus::Histogram::with_opts(
        HistogramOpts::new(
            "billing_invoice_number_wait_seconds",
            "Time to take the next invoice number, including the wait for the year's counter held by concurrent invoice creations.",
        )
        .buckets(NUMBERING_BUCKETS.to_vec()),
    )?;
    Ok(numbering_wait)
}

impl Metrics {
    /// A fresh registry with every metric of the API.
    ///
    /// # Errors
    /// [`MetricsError`] if a metric cannot be registered (never with the
    /// fixed names used here).
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let (requests, latency, in_flight) = http_metrics()?;
        let (pool_connections, pool_max) = pool_metrics()?;
        let [payments, refunds, replays, contention] = business_counters()?;
        let numbering_wait = numbering_wait_histogram()?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        registry.register(Box::new(payments.clone()))?;
        registry.register(Box::new(refunds.clone()))?;
        registry.register(Box::new(replays.clone()))?;
        registry.register(Box::new(contention.clone()))?;
        registry.register(Box::new(numbering_wait.clone()))?;
        // Present from the start, so a dashboard sees zeros, not gaps.
        for outcome in ["succeeded", "refused", "failed"] {
            payments.with_label_values(&[outcome]);
            refunds.with_label_values(&[outcome]);
        }
        let catalogue = CatalogueMetrics::new(&registry)?;
        Ok(Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                latency,
                in_flight,
                pool_connections,
                pool_max,
                payments,
                refunds,
                replays,
                contention,
                numbering_wait,
                catalogue,
            }),
        })
    }

    /// Counts the business event an answer stands for, if any: a payment
    /// or refund (not when `replayed`), a replay, a refusal for contention
    /// (`code` is the problem code of an error answer).
    pub fn observe_outcome(
        &self,
        method: &Method,
        route: &str,
        status: StatusCode,
        replayed: bool,
        code: Option<ProblemCode>,
    ) {
        if replayed {
            self.inner.replays.with_label_values(&[route]).inc();
        } else if method == Method::POST && (route == PAY_ROUTE || route == REFUND_ROUTE) {
            let outcome = if status.is_success() {
                "succeeded"
            } else if status.is_client_error() {
                "refused"
            } else {
                "failed"
            };
            let counter = if route == PAY_ROUTE {
                &self.inner.payments
            } else {
                &self.inner.refunds
            };
            counter.with_label_values(&[outcome]).inc();
        }
        let kind = if code == Some(ProblemCode::Locked) {
            Some("lock")
        } else if code == Some(ProblemCode::IdempotencyInFlight) {
            Some("idempotency_key")
        } else {
            None
        };
        if let Some(kind) = kind {
            self.inner
                .contention
                .with_label_values(&[route, kind])
                .inc();
        }
    }

    /// Records one statement of `database` if it takes an invoice number.
    pub fn observe_statement(&self, sql: &str, elapsed: Duration) {
        // SQLite moves the counter in a statement of its own; PostgreSQL in
        // the statement that also inserts the invoices.
        if sql.starts_with("INSERT INTO invoice_sequence")
            || sql.starts_with("WITH seq AS (INSERT INTO invoice_sequence")
        {
            self.inner.numbering_wait.observe(elapsed.as_secs_f64());
        }
    }

    /// Counts one answered request and its latency.
    pub fn observe_request(
        &self,
        method: &Method,
        route: &str,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let status = status.as_str();
        let labels = [method_label(method), route, status];
        self.inner.requests.with_label_values(&labels).inc();
        self.inner
            .latency
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Marks a request as started; the returned guard marks it finished when
    /// dropped (also when the request is cancelled).
    #[must_use]
    pub fn request_started(&self) -> InFlightGuard {
        self.inner.in_flight.inc();
        InFlightGuard {
            gauge: self.inner.in_flight.clone(),
        }
    }

    /// Sets the catalogue cache metrics from its counters.
    pub fn record_catalogue(&self, stats: &CatalogueStats) {
        self.inner.catalogue.record(stats);
    }

    /// Sets the pool gauges from the pool of `database`.
    pub fn record_pool(&self, database: &Database, max_connections: u32) {
        let (open, idle) = match database.backend() {
            Backend::Postgres => {
                let pool = database.connection().get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            Backend::Sqlite => {
                let pool = database.connection().get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        };
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        let open = i64::from(open);
        self.inner
            .pool_connections
            .with_label_values(&["idle"])
            .set(idle);
        self.inner
            .pool_connections
            .with_label_values(&["in_use"])
            .set(open.saturating_sub(idle).max(0));
        self.inner.pool_max.set(i64::from(max_connections));
    }

    /// The registry, for metrics registered by other parts of the API
    /// (the billing cycle's).
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The registry in the Prometheus text format.
    ///
    /// # Errors
    /// [`MetricsError`] if encoding fails (a malformed metric).
    pub fn render(&self) -> Result<String, MetricsError> {
        let families = self.inner.registry.gather();
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&families, &mut buffer)?;
        // The encoder writes UTF-8 only; a failure here is a bug in it.
        String::from_utf8(buffer).map_err(|e| MetricsError(prometheus::Error::Msg(e.to_string())))
    }
}

/// Decrements the in-flight gauge when dropped.
#[derive(Debug)]
pub struct InFlightGuard {
    gauge: IntGauge,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// The standard methods by name, anything else as `OTHER`.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("OTHER", |(_, label)| label)
}

/// `GET /metrics`: the metrics of this instance in the Prometheus text
/// format (version 0.0.4).
///
/// # Errors
/// 500 `internal_error` if encoding fails.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics of this instance",
    description = "Request counts and latencies by route pattern and status, requests in flight, database pool usage, payments, refunds, idempotent replays, lock contention, the invoice number wait, and catalogue cache reads, hit ratio and invalidation delay.",
    responses(
        (status = 200, description = "Prometheus text exposition format", content_type = "text/plain; version=0.0.4", body = String),
        (status = 500, description = "Encoding failed", content_type = "application/problem+json", body = crate::problem::Problem),
    )
)]
pub async fn metrics(
    metrics: web::Data<Metrics>,
    state: web::Data<crate::state::AppState>,
) -> Result<HttpResponse, ApiError> {
    metrics.record_pool(state.database(), state.database_max_connections());
    metrics.record_catalogue(&state.billing().catalogue_stats());
    let body = metrics.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_pattern_and_status() {
        let metrics = Metrics::new().unwrap();
        metrics.observe_request(
            &Method::GET,
            "/health/live",
            StatusCode::OK,
            Duration::from_millis(3),
        );
        metrics.observe_request(
            &Method::from_bytes(b"BREW").unwrap(),
            UNMATCHED_ROUTE,
            StatusCode::NOT_FOUND,
            Duration::from_millis(1),
        );
        {
            let _guard = metrics.request_started();
        }
        let text = metrics.render().unwrap();
        assert!(
            text.contains(
                r#"billing_http_requests_total{method="GET",route="/health/live",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"billing_http_requests_total{method="OTHER",route="unmatched",status="404"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("billing_http_request_duration_seconds_bucket"));
        assert!(text.contains("billing_http_requests_in_flight 0"));
    }

    #[test]
    fn refusals_for_a_held_resource_count_as_contention() {
        let metrics = Metrics::new().unwrap();
        let pay = "/api/v1/invoices/{id}/pay";
        metrics.observe_outcome(
            &Method::POST,
            pay,
            StatusCode::CONFLICT,
            false,
            Some(ProblemCode::Locked),
        );
        metrics.observe_outcome(
            &Method::POST,
            pay,
            StatusCode::CONFLICT,
            false,
            Some(ProblemCode::IdempotencyInFlight),
        );
        metrics.observe_outcome(
            &Method::POST,
            pay,
            StatusCode::CONFLICT,
            false,
            Some(ProblemCode::InvalidTransition),
        );
        metrics.observe_statement(
            "INSERT INTO invoice_sequence (year, last_number, updated_at) VALUES ($1, 1, $2)",
            Duration::from_millis(40),
        );
        metrics.observe_statement("SELECT 1", Duration::from_millis(40));
        let text = metrics.render().unwrap();
        for line in [
            r#"billing_lock_contention_total{kind="lock",route="/api/v1/invoices/{id}/pay"} 1"#,
            r#"billing_lock_contention_total{kind="idempotency_key",route="/api/v1/invoices/{id}/pay"} 1"#,
            r#"billing_payments_total{outcome="refused"} 3"#,
            "billing_invoice_number_wait_seconds_count 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
