//! RFC 9457 problem details: [`Problem`] (the body), [`ProblemCode`] (the
//! stable machine-readable `code`) and [`ApiError`], the one error type of
//! every handler, which answers `application/problem+json`.
//!
//! Route handlers map service errors to an [`ApiError`] once, at the edge:
//!
//! ```
//! use billing_api::problem::{ApiError, ProblemCode};
//!
//! let error = ApiError::new(ProblemCode::VersionMismatch, "invoice 42 has version 3")
//!     .with_extension("current_version", 3);
//! assert_eq!(error.problem().status, 412);
//! ```
//!
//! Server errors never show their cause: [`ApiError::internal`] and
//! [`ApiError::dependency_unavailable`] keep it as the error's `source`,
//! log it (with the request id of the request's span) when the response is
//! built, and send a generic `detail`.
//!
//! Responses that invite a retry carry `Retry-After` (delta-seconds), set
//! here when the error is rendered, from its code
//! ([`ProblemCode::retry_after`]): 409 `locked` 1 s, 409
//! `idempotency_in_flight` the in-flight TTL (60 s by default; the
//! [`framework::problem_json_errors`] middleware puts the configured one),
//! 503 `overloaded` 1 s, 503 `dependency_unavailable` and any other 503
//! 5 s.
//!
//! Framework errors (malformed JSON, bad path or query values, oversized
//! bodies, unknown routes, wrong methods) become problems too: see
//! [`framework`]. The use cases' errors become problems in one place:
//! [`billing`].

pub mod billing;
pub mod framework;
pub mod responses;

use std::fmt;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The prefix of every problem `type`: `urn:billing:problem:<code>`. A URN
/// is an absolute URI that names the problem without promising a page to
/// fetch (RFC 9457 §3.1.1: consumers must not dereference it automatically).
pub const PROBLEM_TYPE_PREFIX: &str = "urn:billing:problem:";

/// `Retry-After` of a 503 whose cause names no better value (a dependency
/// down, or a 503 of the framework): a few seconds.
pub const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// `Retry-After` of 409 `idempotency_in_flight` when the in-flight TTL is
/// not known: the default `BILLING_IDEMPOTENCY_IN_FLIGHT_TTL`.
pub const DEFAULT_IN_FLIGHT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A boxed error kept as the cause of an [`ApiError`], for the logs.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The stable machine-readable `code` of a problem. Its `snake_case` name
/// is part of the HTTP contract (`docs/API.md`); each code has a
/// default status and title.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// 400: malformed JSON, wrong types, unknown fields, bad values.
    ValidationFailed,
    /// 400: `Idempotency-Key` missing where it is required.
    IdempotencyKeyRequired,
    /// 400 (or the framework's 4xx status): a request the server cannot
    /// process for a reason no other code names.
    BadRequest,
    /// 401: missing or wrong bearer token.
    Unauthorized,
    /// 403: the token is valid but may not do this.
    Forbidden,
    /// 404: no such resource or route.
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 409: a unique value (e-mail, slug, currency or tax code) is taken.
    AlreadyExists,
    /// 409: the state machine does not allow this transition.
    InvalidTransition,
    /// 409: the resource is still referenced and cannot be changed so.
    InUse,
    /// 409: another request holds the resource's lock.
    Locked,
    /// 409: the same `Idempotency-Key` is still being processed.
    IdempotencyInFlight,
    /// 412: `If-Match` names another version than the stored one.
    VersionMismatch,
    /// 413: the body is larger than `BILLING_BODY_LIMIT`.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: the same `Idempotency-Key` was used for another request.
    IdempotencyKeyReused,
    /// 500: a bug or an unexpected state; details are in the logs only.
    InternalError,
    /// 503: the database or Redis cannot be reached.
    DependencyUnavailable,
    /// 503: this instance has too much work of this kind queued (password
    /// hashing); retry shortly.
    Overloaded,
}

impl ProblemCode {
    /// The code as sent (`validation_failed`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationFailed => "validation_failed",
            Self::IdempotencyKeyRequired => "idempotency_key_required",
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::AlreadyExists => "already_exists",
            Self::InvalidTransition => "invalid_transition",
            Self::InUse => "in_use",
            Self::Locked => "locked",
            Self::IdempotencyInFlight => "idempotency_in_flight",
            Self::VersionMismatch => "version_mismatch",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::InternalError => "internal_error",
            Self::DependencyUnavailable => "dependency_unavailable",
            Self::Overloaded => "overloaded",
        }
    }

    /// The status this code answers with.
    #[must_use]
    pub fn status(self) -> StatusCode {
        match self {
            Self::ValidationFailed | Self::IdempotencyKeyRequired | Self::BadRequest => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::AlreadyExists
            | Self::InvalidTransition
            | Self::InUse
            | Self::Locked
            | Self::IdempotencyInFlight => StatusCode::CONFLICT,
            Self::VersionMismatch => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::DependencyUnavailable | Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The short human-readable summary of the problem type (the same for
    /// every occurrence).
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::ValidationFailed => "The request is not valid",
            Self::IdempotencyKeyRequired => "An Idempotency-Key header is required",
            Self::BadRequest => "The request cannot be processed",
            Self::Unauthorized => "Authentication required",
            Self::Forbidden => "Not allowed",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::AlreadyExists => "Already exists",
            Self::InvalidTransition => "Transition not allowed",
            Self::InUse => "The resource is in use",
            Self::Locked => "The resource is locked",
            Self::IdempotencyInFlight => "A request with this Idempotency-Key is in progress",
            Self::VersionMismatch => "Version mismatch",
            Self::PayloadTooLarge => "Request body too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::IdempotencyKeyReused => "Idempotency-Key reused for another request",
            Self::InternalError => "Internal error",
            Self::DependencyUnavailable => "Service temporarily unavailable",
            Self::Overloaded => "The server is overloaded",
        }
    }

    /// How long a client should wait before retrying, as sent in
    /// `Retry-After`: `locked` 1 s (locks are held for one payment),
    /// `idempotency_in_flight` [`DEFAULT_IN_FLIGHT_RETRY_AFTER`] (the
    /// default in-flight TTL, after which the key is free even if its
    /// request died), `overloaded` 1 s (the hashing queue drains within
    /// about a second), `dependency_unavailable` [`UNAVAILABLE_RETRY_AFTER`];
    /// `None` for errors a retry cannot fix.
    #[must_use]
    pub fn retry_after(self) -> Option<Duration> {
        match self {
            Self::Locked | Self::Overloaded => Some(Duration::from_secs(1)),
            Self::IdempotencyInFlight => Some(DEFAULT_IN_FLIGHT_RETRY_AFTER),
            Self::DependencyUnavailable => Some(UNAVAILABLE_RETRY_AFTER),
            Self::ValidationFailed
            | Self::IdempotencyKeyRequired
            | Self::BadRequest
            | Self::Unauthorized
            | Self::Forbidden
            | Self::NotFound
            | Self::MethodNotAllowed
            | Self::AlreadyExists
            | Self::InvalidTransition
            | Self::InUse
            | Self::VersionMismatch
            | Self::PayloadTooLarge
            | Self::UnsupportedMediaType
            | Self::IdempotencyKeyReused
            | Self::InternalError => None,
        }
    }

    /// The problem `type` URI: `urn:billing:problem:<code>`.
    #[must_use]
    pub fn type_uri(self) -> String {
        format!("{PROBLEM_TYPE_PREFIX}{}", self.as_str())
    }

    /// The code for an error status the framework produced on its own
    /// (no handler chose a code): 400 `validation_failed`, 401, 403, 404,
    /// 405, 413, 415 by name, 503 `dependency_unavailable`, other 4xx
    /// `bad_request`, other 5xx `internal_error`.
    #[must_use]
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::BAD_REQUEST => Self::ValidationFailed,
            StatusCode::UNAUTHORIZED => Self::Unauthorized,
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::SERVICE_UNAVAILABLE => Self::DependencyUnavailable,
            s if s.is_server_error() => Self::InternalError,
            _ => Self::BadRequest,
        }
    }
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An RFC 9457 problem details object, as sent:
/// `{"type": "...", "title": "...", "status": 409, "detail": "...", "code": "invalid_transition"}`
/// plus any extension members (`current_version`, …) at the top level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:billing:problem:version_mismatch",
    "title": "Version mismatch",
    "status": 412,
    "detail": "invoice 42 has version 3, not 2",
    "code": "version_mismatch",
    "current_version": 3
}))]
pub struct Problem {
    /// `urn:billing:problem:<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, for a human.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: ProblemCode,
    /// Extension members, e.g. `current_version` for `version_mismatch`.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extensions: Map<String, Value>,
}

impl Problem {
    /// A problem with `code`'s status, type and title.
    #[must_use]
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self::with_status(code.status(), code, detail)
    }

    /// A problem with another status than `code`'s own (for framework
    /// errors such as 408 or 431 that have no code of their own).
    #[must_use]
    pub fn with_status(status: StatusCode, code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            type_uri: code.type_uri(),
            title: code.title().to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code,
            extensions: Map::new(),
        }
    }

    /// The status as a [`StatusCode`] (500 if `status` is not a valid
    /// code).
    #[must_use]
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The `application/problem+json` response carrying this problem, with
    /// `Retry-After` when its code invites a retry
    /// ([`ProblemCode::retry_after`]) or its status is 503.
    #[must_use]
    pub fn to_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        let retry_after = self.code.retry_after().or_else(|| {
            (self.status_code() == StatusCode::SERVICE_UNAVAILABLE)
                .then_some(UNAVAILABLE_RETRY_AFTER)
        });
        if let Some(delay) = retry_after {
            response.insert_header((header::RETRY_AFTER, retry_after_value(delay)));
        }
        match serde_json::to_vec(self) {
            Ok(body) => response.body(body),
            // A `Map<String, Value>` always serializes; this is unreachable.
            Err(_) => response.body(
                r#"{"type":"urn:billing:problem:internal_error","title":"Internal error","status":500,"detail":"an internal error occurred","code":"internal_error"}"#,
            ),
        }
    }
}

/// The error of every handler: a [`Problem`] to send and, for server
/// errors, the cause to log.
///
/// `Display` shows the status, code and detail (never the cause);
/// `source()` gives the cause.
#[derive(Debug)]
pub struct ApiError {
    problem: Problem,
    source: Option<BoxError>,
}

impl ApiError {
    /// An error with `code`'s status and this `detail` (shown to the
    /// client: never put internals here).
    #[must_use]
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            problem: Problem::new(code, detail),
            source: None,
        }
    }

    /// 400 `validation_failed`.
    #[must_use]
    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(ProblemCode::ValidationFailed, detail)
    }

    /// 404 `not_found`.
    #[must_use]
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ProblemCode::NotFound, detail)
    }

    /// 401 `unauthorized`.
    #[must_use]
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ProblemCode::Unauthorized, detail)
    }

    /// 413 `payload_too_large`, naming the limit.
    #[must_use]
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            ProblemCode::PayloadTooLarge,
            format!("the request body exceeds the limit of {limit} bytes"),
        )
    }

    /// 500 `internal_error` with a generic detail; `cause` is logged when
    /// the response is built, never sent.
    #[must_use]
    pub fn internal(cause: impl Into<BoxError>) -> Self {
        Self {
            problem: Problem::new(
                ProblemCode::InternalError,
                "an internal error occurred; the X-Request-Id response header identifies it in the server logs",
            ),
            source: Some(cause.into()),
        }
    }

    /// 503 `dependency_unavailable` (the database or Redis cannot be
    /// reached) with a generic detail; `cause` is logged, never sent.
    #[must_use]
    pub fn dependency_unavailable(cause: impl Into<BoxError>) -> Self {
        Self {
            problem: Problem::new(
                ProblemCode::DependencyUnavailable,
                "a service this API depends on is unavailable; retry later",
            ),
            source: Some(cause.into()),
        }
    }

    /// Adds an extension member (`current_version`, …) to the body.
    ///
    /// The standard members (`type`, `title`, `status`, `detail`, `code`)
    /// cannot be replaced this way: such a name is ignored.
    #[must_use]
    pub fn with_extension(mut self, name: &str, value: impl Into<Value>) -> Self {
        const RESERVED: [&str; 5] = ["type", "title", "status", "detail", "code"];
        if !RESERVED.contains(&name) {
            self.problem
                .extensions
                .insert(name.to_owned(), value.into());
        }
        self
    }

    /// Keeps `cause` as the source (logged for server errors, at debug
    /// level for client errors).
    #[must_use]
    pub fn with_source(mut self, cause: impl Into<BoxError>) -> Self {
        self.source = Some(cause.into());
        self
    }

    /// The problem that is sent.
    #[must_use]
    pub fn problem(&self) -> &Problem {
        &self.problem
    }

    /// The problem's code.
    #[must_use]
    pub fn code(&self) -> ProblemCode {
        self.problem.code
    }
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self {
            problem,
            source: None,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.problem.status, self.problem.code, self.problem.detail
        )
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.problem.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if self.problem.code == ProblemCode::Overloaded {
            // Load shedding works as designed: one line per refusal, not an
            // error report.
            tracing::warn!(
                code = %self.problem.code,
                status = status.as_u16(),
                detail = %self.problem.detail,
                "request refused: overloaded"
            );
        } else if status.is_server_error() {
            match &self.source {
                Some(cause) => tracing::error!(
                    code = %self.problem.code,
                    status = status.as_u16(),
                    error = %ErrorChain(cause.as_ref()),
                    "request failed"
                ),
                None => tracing::error!(
                    code = %self.problem.code,
                    status = status.as_u16(),
                    detail = %self.problem.detail,
                    "request failed"
                ),
            }
        } else if let Some(cause) = &self.source {
            tracing::debug!(
                code = %self.problem.code,
                status = status.as_u16(),
                error = %ErrorChain(cause.as_ref()),
                "request rejected"
            );
        }
        let mut response = self.problem.to_response();
        // For the metrics middleware, which sees the response only.
        response.extensions_mut().insert(self.problem.code);
        response
    }
}

/// `delay` as a `Retry-After` value: whole seconds, rounded up, at least 1.
#[must_use]
pub fn retry_after_value(delay: Duration) -> HeaderValue {
    let secs = delay
        .as_secs()
        .saturating_add(u64::from(delay.subsec_nanos() > 0))
        .max(1);
    HeaderValue::from(secs)
}

/// Displays an error and its sources on one line: `outer: inner: root`.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_names() {
        for code in [
            ProblemCode::ValidationFailed,
            ProblemCode::IdempotencyKeyRequired,
            ProblemCode::BadRequest,
            ProblemCode::Unauthorized,
            ProblemCode::Forbidden,
            ProblemCode::NotFound,
            ProblemCode::MethodNotAllowed,
            ProblemCode::AlreadyExists,
            ProblemCode::InvalidTransition,
            ProblemCode::InUse,
            ProblemCode::Locked,
            ProblemCode::IdempotencyInFlight,
            ProblemCode::VersionMismatch,
            ProblemCode::PayloadTooLarge,
            ProblemCode::UnsupportedMediaType,
            ProblemCode::IdempotencyKeyReused,
            ProblemCode::InternalError,
            ProblemCode::DependencyUnavailable,
            ProblemCode::Overloaded,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                Value::String(code.as_str().to_owned())
            );
        }
    }

    #[test]
    fn problem_body_has_the_standard_members_and_extensions() {
        let error = ApiError::new(ProblemCode::VersionMismatch, "stale")
            .with_extension("current_version", 3)
            .with_extension("status", 200);
        let body = serde_json::to_value(error.problem()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "type": "urn:billing:problem:version_mismatch",
                "title": "Version mismatch",
                "status": 412,
                "detail": "stale",
                "code": "version_mismatch",
                "current_version": 3
            })
        );
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let error = ApiError::internal("SELECT * FROM secret failed");
        assert!(!error.problem().detail.contains("SELECT"));
        assert!(!error.to_string().contains("SELECT"));
        assert_eq!(error.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        let response = error.error_response();
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            PROBLEM_JSON
        );
    }

    fn retry_after_of(error: &ApiError) -> Option<String> {
        error
            .error_response()
            .headers()
            .get(header::RETRY_AFTER)
            .map(|value| value.to_str().unwrap().to_owned())
    }

    #[test]
    fn retryable_errors_say_when_to_retry() {
        let cases = [
            (ProblemCode::Locked, 409, Some("1")),
            (ProblemCode::IdempotencyInFlight, 409, Some("60")),
            (ProblemCode::Overloaded, 503, Some("1")),
            (ProblemCode::DependencyUnavailable, 503, Some("5")),
            (ProblemCode::VersionMismatch, 412, None),
            (ProblemCode::AlreadyExists, 409, None),
            (ProblemCode::ValidationFailed, 400, None),
            (ProblemCode::InternalError, 500, None),
        ];
        for (code, status, retry_after) in cases {
            let error = ApiError::new(code, "detail");
            assert_eq!(error.status_code().as_u16(), status, "{code}");
            assert_eq!(retry_after_of(&error).as_deref(), retry_after, "{code}");
        }
        // Any 503, whatever its code, says when to retry.
        let error = ApiError::from(Problem::with_status(
            StatusCode::SERVICE_UNAVAILABLE,
            ProblemCode::BadRequest,
            "down",
        ));
        assert_eq!(retry_after_of(&error).as_deref(), Some("5"));
        assert_eq!(retry_after_value(Duration::from_millis(1)), "1");
        assert_eq!(retry_after_value(Duration::from_millis(2500)), "3");
        assert_eq!(retry_after_value(Duration::ZERO), "1");
    }

    #[test]
    fn framework_statuses_get_codes() {
        assert_eq!(
            ProblemCode::for_status(StatusCode::BAD_REQUEST),
            ProblemCode::ValidationFailed
        );
        assert_eq!(
            ProblemCode::for_status(StatusCode::REQUEST_TIMEOUT),
            ProblemCode::BadRequest
        );
        assert_eq!(
            ProblemCode::for_status(StatusCode::BAD_GATEWAY),
            ProblemCode::InternalError
        );
    }
}
