//! Logging and request telemetry: [`init`] installs the `tracing`
//! subscriber (human or JSON lines on stdout, filtered by `BILLING_LOG`, or
//! `RUST_LOG` when `BILLING_LOG` is unset),
//! and the [`request_telemetry`] middleware gives every request a
//! [`RequestId`], a span, one log line when it is answered, an
//! `X-Request-Id` response header and its metrics.
//!
//! The request id is the client's `X-Request-Id` when it sends a sensible
//! one (1 to 128 characters of `A-Z a-z 0-9 - _ . : / + = @`), so a
//! request can be followed through a proxy, else a new random (v4) UUID.
//!
//! Why not `tracing-actix-web`: it always generates its own id (an
//! incoming `X-Request-Id` is ignored), sets no response header and logs
//! nothing by itself; the few lines here do all three and record the
//! metrics from the same measurement.

use std::future::{Ready, ready};
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::configuration::{LogFilter, LogFormat};
use crate::metrics::{Metrics, UNMATCHED_ROUTE};

/// The request-id header, read from requests and set on every response.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-supplied request id that is kept.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The logging subscriber could not be installed (one already is, or the
/// filter does not parse).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up logging: {0}")]
pub struct TelemetryError(String);

/// Installs the global `tracing` subscriber: `filter` as an `EnvFilter`,
/// human-readable (colored on a terminal) or JSON lines on stdout. Records
/// of the `log` crate are forwarded to it.
///
/// # Errors
/// [`TelemetryError`] when a subscriber is already installed or the filter
/// does not parse.
pub fn init(filter: &LogFilter, format: LogFormat) -> Result<(), TelemetryError> {
    let env_filter = EnvFilter::builder()
        .parse(filter.as_str())
        .map_err(|e| TelemetryError(e.to_string()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stdout);
    let installed = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|e| TelemetryError(e.to_string()))
}

/// The id of the request being served: the client's `X-Request-Id` or a
/// new UUID. Extract it in a handler (`request_id: RequestId`); it is also
/// a field of the request's span, so every log line of the request carries
/// it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The client's id if it is acceptable, else a new one.
    #[must_use]
    pub fn from_header_or_new(header: Option<&HeaderValue>) -> Self {
        header
            .and_then(|value| value.to_str().ok())
            .filter(|value| is_acceptable_request_id(value))
            .map_or_else(Self::generate, |value| Self(Arc::from(value)))
    }

    /// A new random (version 4) UUID.
    #[must_use]
    pub fn generate() -> Self {
        let random: u128 = rand::random();
        // Version 4 and RFC 4122 variant bits.
        let uuid =
            (random & !(0xF_u128 << 76) | (0x4_u128 << 76)) & !(0x3_u128 << 62) | (0x2_u128 << 62);
        let hex = format!("{uuid:032x}");
        Self(Arc::from(format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromRequest for RequestId {
    type Error = std::convert::Infallible;
    type Future = Ready<Result<Self, Self::Error>>;

    /// The id [`request_telemetry`] assigned, or a new one when the
    /// middleware is not installed.
    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Ok(request
            .extensions()
            .get::<Self>()
            .cloned()
            .unwrap_or_else(Self::generate)))
    }
}

fn is_acceptable_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_REQUEST_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
}

/// Middleware wrapping the whole app: assigns the [`RequestId`], runs the
/// request in an `http_request` span (`request_id`, `method`, `path`), logs
/// one line when it is answered (`status`, `route`, `latency_ms`; `ERROR`
/// for 5xx, `DEBUG` for successful health and metrics probes, `INFO`
/// otherwise), sets `X-Request-Id` on the response and records the request
/// in [`Metrics`] (when registered as app data) by route pattern.
///
/// # Errors
/// The error of an inner middleware that fails instead of answering,
/// unchanged (logged and counted with its status first).
pub async fn request_telemetry(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = RequestId::from_header_or_new(request.headers().get(&REQUEST_ID_HEADER));
    request.extensions_mut().insert(request_id.clone());
    let metrics = request.app_data::<web::Data<Metrics>>().cloned();
    let _in_flight = metrics.as_ref().map(|m| m.request_started());
    let method = request.method().clone();
    let span = tracing::info_span!(
        "http_request",
        request_id = %request_id,
        method = %method,
        path = %request.path(),
    );
    // No clone of the request may live across this call: routing needs the
    // only reference to it.
    let outcome = next.call(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);

    let mut response = match outcome {
        Ok(response) => response.map_into_boxed_body(),
        Err(error) => {
            // Only a middleware that fails instead of answering gets here
            // (none of ours does); actix-web answers with the error's own
            // response, which has no route and no request id header.
            let status = error.as_response_error().status_code();
            if let Some(metrics) = &metrics {
                metrics.observe_request(&method, UNMATCHED_ROUTE, status, elapsed);
            }
            span.in_scope(|| log_request(status, UNMATCHED_ROUTE, latency_ms));
            return Err(error);
        }
    };

    let status = response.status();
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    if let Some(metrics) = &metrics {
        metrics.observe_request(&method, &route, status, elapsed);
        let replayed = response
            .headers()
            .get(&crate::response::IDEMPOTENT_REPLAYED)
            .is_some_and(|value| value.as_bytes() == b"true");
        let code = response
            .response()
            .extensions()
            .get::<crate::problem::ProblemCode>()
            .copied();
        metrics.observe_outcome(&method, &route, status, replayed, code);
    }
    span.in_scope(|| log_request(status, &route, latency_ms));
    Ok(response)
}

fn log_request(status: StatusCode, route: &str, latency_ms: u64) {
    let status_code = status.as_u16();
    if status.is_server_error() {
        tracing::error!(status = status_code, route, latency_ms, "request answered");
    } else if status.is_success() && (route.starts_with("/health/") || route == "/metrics") {
        tracing::debug!(status = status_code, route, latency_ms, "request answered");
    } else {
        tracing::info!(status = status_code, route, latency_ms, "request answered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_v4_uuids() {
        let id = RequestId::generate();
        let text = id.as_str();
        assert_eq!(text.len(), 36, "{text}");
        assert_eq!(&text[14..15], "4", "{text}");
        assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"), "{text}");
        assert_ne!(RequestId::generate(), id);
    }

    #[test]
    fn client_ids_are_kept_only_when_sensible() {
        let kept = RequestId::from_header_or_new(Some(&HeaderValue::from_static("abc-123")));
        assert_eq!(kept.as_str(), "abc-123");
        let spaced = RequestId::from_header_or_new(Some(&HeaderValue::from_static("a b")));
        assert_ne!(spaced.as_str(), "a b");
        let long = "x".repeat(129);
        let replaced = RequestId::from_header_or_new(Some(&HeaderValue::from_str(&long).unwrap()));
        assert_eq!(replaced.as_str().len(), 36);
    }
}
