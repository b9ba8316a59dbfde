//! Problems for the errors actix-web produces before or instead of a
//! handler: the extractor configurations ([`json_config`],
//! [`path_config`], [`query_config`], [`payload_config`]), the default
//! service for unknown routes ([`not_found`]) and the
//! [`problem_json_errors`] middleware that turns any remaining error
//! response without a JSON body (a 405 of a resource, a 413 of a raw
//! payload, a 400 of a header extractor) into `application/problem+json`,
//! and gives every 503 a `Retry-After`.
//!
//! What no service of the app can reach: actix-http's HTTP/1 dispatcher
//! answers a request it cannot parse (a malformed request line, a header
//! with a control character, an invalid URI, a bad chunk size) with 400, a
//! request head over its buffer limit with 431 and a request head that
//! does not arrive within the client request timeout with 408 — each with
//! an empty body, built in `actix-http` 3.20.0 `src/h1/dispatcher.rs`
//! (`InnerDispatcher::poll_request`, the `Err(ParseError::TooLarge)` and
//! `Err(err)` arms, and `poll_head_timer`) and written without calling any
//! service, so no middleware, error handler or configuration of actix-web
//! can change them.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use std::time::Duration;

use super::{
    ApiError, PROBLEM_JSON, Problem, ProblemCode, UNAVAILABLE_RETRY_AFTER, retry_after_value,
};

/// The configured delays [`problem_json_errors`] puts in `Retry-After`
/// where the error itself cannot know them, registered as
/// `web::Data<RetryAfter>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter {
    /// `BILLING_IDEMPOTENCY_IN_FLIGHT_TTL`: after it, a key whose request
    /// died is free again (409 `idempotency_in_flight`).
    pub in_flight: Duration,
}

/// JSON bodies: at most `limit` bytes, `Content-Type: application/json`
/// required, and every failure as a problem: 413 `payload_too_large`, 415
/// `unsupported_media_type`, 400 `validation_failed` naming what is wrong
/// (malformed JSON, a wrong type, an unknown or missing field).
#[must_use]
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |error, _request| json_error(&error, limit).into())
}

/// Raw bodies (`web::Bytes`, `String`): at most `limit` bytes; a larger one
/// is a 413 that [`problem_json_errors`] turns into a problem.
#[must_use]
pub fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(limit)
}

/// Path parameters that do not parse (`/invoices/abc` for an integer id):
/// 400 `validation_failed`.
#[must_use]
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|error, _request| path_error(&error).into())
}

/// Query strings that do not parse (`?page=x`): 400 `validation_failed`.
#[must_use]
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _request| query_error(&error).into())
}

/// The problem for a JSON body that could not be read or parsed.
#[must_use]
pub fn json_error(error: &JsonPayloadError, limit: usize) -> ApiError {
    match error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::payload_too_large(limit)
        }
        JsonPayloadError::ContentType => ApiError::new(
            ProblemCode::UnsupportedMediaType,
            "the request body must be JSON, sent with Content-Type: application/json",
        ),
        JsonPayloadError::Deserialize(e) => match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ApiError::validation(format!("the request body is not valid JSON: {e}"))
            }
            serde_json::error::Category::Data => {
                ApiError::validation(format!("the request body is invalid: {e}"))
            }
            serde_json::error::Category::Io => {
                ApiError::validation(format!("the request body could not be read: {e}"))
            }
        },
        JsonPayloadError::Payload(e) if e.status_code() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::payload_too_large(limit)
        }
        JsonPayloadError::Payload(e) => {
            ApiError::validation(format!("the request body could not be read: {e}"))
        }
        JsonPayloadError::Serialize(e) => ApiError::internal(e.to_string()),
        // `JsonPayloadError` is non-exhaustive: a future kind keeps the
        // status actix-web gives it.
        other => ApiError::from(Problem::with_status(
            other.status_code(),
            ProblemCode::for_status(other.status_code()),
            "the request body could not be processed",
        )),
    }
}

fn path_error(error: &PathError) -> ApiError {
    match error {
        PathError::Deserialize(e) => {
            ApiError::validation(format!("a path parameter is invalid: {e}"))
        }
        // Non-exhaustive upstream enum.
        other => ApiError::validation(format!("a path parameter is invalid: {other}")),
    }
}

fn query_error(error: &QueryPayloadError) -> ApiError {
    match error {
        QueryPayloadError::Deserialize(e) => {
            ApiError::validation(format!("the query string is invalid: {e}"))
        }
        // Non-exhaustive upstream enum.
        other => ApiError::validation(format!("the query string is invalid: {other}")),
    }
}

/// The default service: 404 `not_found` for every path no route matches.
///
/// # Errors
/// Always: the 404 problem.
pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "no resource at {}",
        request.path()
    )))
}

/// Middleware: replaces the body of every 4xx/5xx response that is not
/// already JSON (`application/problem+json` from an [`ApiError`], or
/// `application/json` such as the readiness report) with a problem for its
/// status, keeping the other headers (`Allow`, `WWW-Authenticate`,
/// `X-Request-Id`, …). A client error's message becomes the `detail`; a
/// server error's is logged and replaced by a generic one.
///
/// `Retry-After`: a 409 `idempotency_in_flight` gets the configured
/// in-flight TTL ([`RetryAfter`]); any 503 without one (the readiness
/// report, a framework 503) gets [`UNAVAILABLE_RETRY_AFTER`].
///
/// # Errors
/// The error of an inner middleware that fails instead of answering,
/// unchanged.
pub async fn problem_json_errors(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let retry_after = request
        .app_data::<web::Data<RetryAfter>>()
        .map(|data| *data.get_ref());
    // An `Err` only comes from a middleware that fails instead of
    // answering (none of ours does: authentication answers its 401 as a
    // response); actix-web answers it with the error's own response. The
    // request cannot be kept to build one here: a clone of it would make
    // routing panic.
    let response = next.call(request).await?.map_into_boxed_body();
    let mut response = as_problem(response);
    set_retry_after(&mut response, retry_after.as_ref());
    Ok(response)
}

/// `Retry-After` where only the app knows it (see
/// [`problem_json_errors`]).
fn set_retry_after(response: &mut ServiceResponse<BoxBody>, delays: Option<&RetryAfter>) {
    let in_flight = response
        .response()
        .error()
        .and_then(|error| error.as_error::<ApiError>())
        .is_some_and(|error| error.code() == ProblemCode::IdempotencyInFlight);
    let delay = match delays {
        Some(delays) if in_flight => Some(delays.in_flight),
        Some(_) | None => None,
    };
    let headers = response.headers_mut();
    if let Some(delay) = delay {
        headers.insert(header::RETRY_AFTER, retry_after_value(delay));
    } else if !headers.contains_key(header::RETRY_AFTER)
        && response.status() == StatusCode::SERVICE_UNAVAILABLE
    {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            retry_after_value(UNAVAILABLE_RETRY_AFTER),
        );
    }
}

/// The response with a problem body if it is an error without a JSON one.
fn as_problem(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let detail = framework_detail(&response);
    let problem = Problem::with_status(status, ProblemCode::for_status(status), detail);
    let (http_request, original) = response.into_parts();
    let mut replacement = problem.to_response();
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && !(name == header::RETRY_AFTER && replacement.headers().contains_key(name))
        {
            replacement
                .headers_mut()
                .append(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(http_request, replacement)
}

/// The `detail` for a framework error response.
fn framework_detail(response: &ServiceResponse<BoxBody>) -> String {
    let status = response.status();
    if status.is_server_error() {
        if let Some(error) = response.response().error() {
            tracing::error!(status = status.as_u16(), error = %error, "request failed");
        }
        return "an internal error occurred; the X-Request-Id response header identifies it in the server logs"
            .to_owned();
    }
    let request = response.request();
    match status {
        StatusCode::NOT_FOUND => format!("no resource at {}", request.path()),
        StatusCode::METHOD_NOT_ALLOWED => {
            format!("{} is not allowed on {}", request.method(), request.path())
        }
        StatusCode::PAYLOAD_TOO_LARGE => "the request body exceeds the configured limit".to_owned(),
        _ => response.response().error().map_or_else(
            || {
                status
                    .canonical_reason()
                    .unwrap_or("bad request")
                    .to_owned()
            },
            ToString::to_string,
        ),
    }
}

/// Whether the response already carries a JSON body (problem or not).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case(PROBLEM_JSON)
                || essence.eq_ignore_ascii_case("application/json")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_map_to_problems() {
        let overflow = JsonPayloadError::Overflow { limit: 10 };
        assert_eq!(
            json_error(&overflow, 10).code(),
            ProblemCode::PayloadTooLarge
        );
        assert_eq!(
            json_error(&JsonPayloadError::ContentType, 10).code(),
            ProblemCode::UnsupportedMediaType
        );
        let syntax = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let error = json_error(&JsonPayloadError::Deserialize(syntax), 10);
        assert_eq!(error.code(), ProblemCode::ValidationFailed);
        assert!(error.problem().detail.contains("not valid JSON"), "{error}");
    }
}
