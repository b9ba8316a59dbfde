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
    Counter, Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::problem::ApiError;

/// Latency buckets in seconds: 2.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

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
    catalogue: CatalogueMetrics,
}

#[derive(Debug)]
struct CatalogueMetrics {
    reads: IntCounterVec,
    hit_ratio: Gauge,
    invalidations: IntCounter,
    delay_sum: Counter,
    delay_count: IntCounter,
    delay_max: Gauge,
    channel_failures: IntCounter,
}

impl CatalogueMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let reads = IntCounterVec::new(
            Opts::new(
                "billing_catalogue_reads_total",
                "Plan, currency and tax reads: answered from memory (hit), loading the catalogue into memory (load), or sent to the database (bypass).",
            ),
            &["outcome"],
        )?;
        let hit_ratio = Gauge::new(
            "billing_catalogue_hit_ratio",
            "Catalogue reads answered from memory over all catalogue reads.",
        )?;
        let invalidations = IntCounter::new(
            "billing_catalogue_invalidations_total",
            "Catalogue changes this instance learnt of through their generation.",
        )?;
        let delay_sum = Counter::new(
            "billing_catalogue_invalidation_delay_seconds_sum",
            "Total time from a catalogue change's announcement to its discovery by this instance.",
        )?;
        let delay_count = IntCounter::new(
            "billing_catalogue_invalidation_delay_seconds_count",
            "Catalogue changes whose discovery delay is in the sum.",
        )?;
        let delay_max = Gauge::new(
            "billing_catalogue_invalidation_delay_seconds_max",
            "The longest time from a catalogue change's announcement to its discovery by this instance.",
        )?;
        let channel_failures = IntCounter::new(
            "billing_catalogue_channel_failures_total",
            "Failed reads or announcements of a catalogue generation (reads went to the database meanwhile).",
        )?;
        registry.register(Box::new(reads.clone()))?;
        registry.register(Box::new(hit_ratio.clone()))?;
        registry.register(Box::new(invalidations.clone()))?;
        registry.register(Box::new(delay_sum.clone()))?;
        registry.register(Box::new(delay_count.clone()))?;
        registry.register(Box::new(delay_max.clone()))?;
        registry.register(Box::new(channel_failures.clone()))?;
        Ok(Self {
            reads,
            hit_ratio,
            invalidations,
            delay_sum,
            delay_count,
            delay_max,
            channel_failures,
        })
    }

    /// Brings the metrics up to `stats` (cumulative since start).
    fn record(&self, stats: &CatalogueStats) {
        fn raise(counter: &IntCounter, to: u64) {
            counter.inc_by(to.saturating_sub(counter.get()));
        }
        raise(&self.reads.with_label_values(&["hit"]), stats.hits);
        raise(&self.reads.with_label_values(&["load"]), stats.loads);
        raise(&self.reads.with_label_values(&["bypass"]), stats.bypasses);
        raise(&self.invalidations, stats.invalidations);
        raise(&self.delay_count, stats.invalidation_delay_count);
        raise(&self.channel_failures, stats.channel_failures);
        self.delay_sum.inc_by(seconds_added(
            stats.invalidation_delay_micros_sum,
            self.delay_sum.get(),
        ));
        self.delay_max
            .set(micros_as_seconds(stats.invalidation_delay_micros_max));
        let reads = stats
            .hits
            .saturating_add(stats.loads)
            .saturating_add(stats.bypasses);
        if reads > 0 {
            self.hit_ratio.set(ratio(stats.hits, reads));
        }
    }
}

/// How much a counter at `current` seconds must rise to reach `total_micros`.
#[allow(clippy::float_arithmetic, reason = "a difference of seconds")]
fn seconds_added(total_micros: u64, current: f64) -> f64 {
    (micros_as_seconds(total_micros) - current).max(0.0)
}

/// `part / whole`.
#[allow(
    clippy::float_arithmetic,
    clippy::cast_precision_loss,
    reason = "a ratio of counts far below 2^52"
)]
fn ratio(part: u64, whole: u64) -> f64 {
    part as f64 / whole as f64
}

/// Microseconds as seconds.
#[allow(
    clippy::float_arithmetic,
    clippy::cast_precision_loss,
    reason = "durations far below 2^52 microseconds"
)]
fn micros_as_seconds(micros: u64) -> f64 {
    micros as f64 / 1_000_000.0
}

impl Metrics {
    /// A fresh registry with every metric of the API.
    ///
    /// # Errors
    /// [`MetricsError`] if a metric cannot be registered (never with the
    /// fixed names used here).
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
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
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        let catalogue = CatalogueMetrics::new(&registry)?;
        Ok(Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                latency,
                in_flight,
                pool_connections,
                pool_max,
                catalogue,
            }),
        })
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
    description = "Request counts and latencies by route pattern and status, requests in flight, database pool usage, catalogue cache reads, hit ratio and invalidation delay.",
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
}
