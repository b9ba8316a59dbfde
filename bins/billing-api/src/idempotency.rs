//! `Idempotency-Key` over HTTP.
//!
//! - The header holds 1 to 255 visible ASCII characters; anything else is
//!   400 `validation_failed`. It is required on `POST /invoices/{id}/pay`
//!   and `/refund` ([`RequiredKeyHeader`]: 400 `idempotency_key_required`
//!   without it) and honoured on every other `POST` ([`KeyHeader`]).
//! - Keys are scoped to the caller's token (its SHA-256, hex; `anonymous`
//!   when the API is open) and the request's fingerprint is its method, its
//!   path with the query, and its body bytes as received
//!   ([`request_key`]).
//! - The first request runs; when it succeeds, its outcome is recorded in
//!   the database in the same transaction as its effect (kept 24 hours),
//!   and a repeat gets the same response, rendered from that outcome, with
//!   `Idempotent-Replayed: true` ([`run`]). An error is never recorded:
//!   nothing changed, so the client may correct the request (e.g. its
//!   `If-Match`) and retry with the same key.
//! - The same key with another fingerprint is 422
//!   `idempotency_key_reused`; while the first request runs, 409
//!   `idempotency_in_flight`.

use std::future::{Future, Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderName};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use billing_service::rules::IDEMPOTENCY_KEY_MAX_LEN;
use billing_service::{Billing, BillingError, IdempotencyKey, Idempotent, Recorded};
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use crate::auth::BearerAuth;
use crate::problem::{ApiError, ProblemCode};
use crate::response::Reply;

/// The request header that carries the key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The scope of every key when the API is open (no token).
pub const ANONYMOUS_SCOPE: &str = "anonymous";

/// The optional `Idempotency-Key` header, for the OpenAPI document.
#[derive(Clone, Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct KeyParam {
    /// Runs the request at most once per key (scoped to the token, kept 24
    /// hours): a repeat with the same method, path and body gets the first
    /// response again with `Idempotent-Replayed: true`; with another
    /// request, 422 `idempotency_key_reused`; while the first runs, 409
    /// `idempotency_in_flight`.
    #[param(
        rename = "Idempotency-Key",
        value_type = String,
        required = false,
        example = "order-1234-attempt-1"
    )]
    pub idempotency_key: Option<String>,
}

/// The required `Idempotency-Key` header, for the OpenAPI document.
#[derive(Clone, Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct RequiredKeyParam {
    /// Required: the payment or refund runs at most once per key (scoped to
    /// the token, kept 24 hours); a repeat gets the first response again
    /// with `Idempotent-Replayed: true`. Missing: 400
    /// `idempotency_key_required`.
    #[param(rename = "Idempotency-Key", example = "pay-invoice-42-1")]
    pub idempotency_key: String,
}

/// The `Idempotency-Key` header of a request, if it sent one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyHeader(pub Option<String>);

impl FromRequest for KeyHeader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(key_header(request).map(Self))
    }
}

/// The `Idempotency-Key` header of a request that needs one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequiredKeyHeader(pub String);

impl FromRequest for RequiredKeyHeader {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(key_header(request).and_then(|key| {
            key.map(Self).ok_or_else(|| {
                ApiError::new(
                    ProblemCode::IdempotencyKeyRequired,
                    format!(
                        "this request needs an Idempotency-Key header (1 to \
                         {IDEMPOTENCY_KEY_MAX_LEN} visible ASCII characters, unique per \
                         intended operation)"
                    ),
                )
            })
        }))
    }
}

/// The key of a request, checked.
fn key_header(request: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = request.headers().get_all(IDEMPOTENCY_KEY);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::validation(format!(
            "Idempotency-Key must be one value of 1 to {IDEMPOTENCY_KEY_MAX_LEN} visible ASCII \
             characters"
        ))
    };
    if values.next().is_some() {
        return Err(invalid());
    }
    let key = value.to_str().map_err(|_| invalid())?;
    IdempotencyKey::check_key(key).map_err(|_| invalid())?;
    Ok(Some(key.to_owned()))
}

/// Whose keys a request uses: the hex SHA-256 of its bearer token, or
/// [`ANONYMOUS_SCOPE`] when the API is open.
#[must_use]
pub fn scope(request: &HttpRequest) -> String {
    let open = request
        .app_data::<web::Data<BearerAuth>>()
        .is_none_or(|auth| auth.is_open());
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| crate::auth::bearer_token(value.as_bytes()));
    match (open, token) {
        (false, Some(token)) => hex(&Sha256::digest(token)),
        (true, _) | (false, None) => ANONYMOUS_SCOPE.to_owned(),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// The key `key` of `request` with `body`: scoped to the caller, with the
/// fingerprint of the method, the path and query, and the body bytes.
///
/// # Errors
/// 400 `validation_failed` for a malformed key.
pub fn request_key(
    request: &HttpRequest,
    key: &str,
    body: &[u8],
) -> Result<IdempotencyKey, ApiError> {
    let path = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.path(), |pq| pq.as_str());
    Ok(IdempotencyKey::for_request(
        &scope(request),
        key,
        request.method().as_str(),
        path,
        body,
    )?)
}

/// Runs the use case `work` under `key` when there is one (its effect
/// commits at most once per key; a repeat replays the recorded outcome),
/// else just runs it; `render` turns the outcome, fresh or replayed, into
/// the response, so a replay is the same response as the first, marked
/// `Idempotent-Replayed: true`.
///
/// # Errors
/// The use case's errors; the key's own refusals (`in flight`, `reused`,
/// a dependency down).
pub async fn run<T, F>(
    billing: &Billing,
    key: Option<&IdempotencyKey>,
    work: F,
    render: impl FnOnce(T) -> Result<Reply, ApiError>,
) -> Result<HttpResponse, ApiError>
where
    T: Recorded,
    F: Future<Output = Result<T, BillingError>>,
{
    let outcome = match key {
        None => Idempotent::Fresh(work.await?),
        Some(key) => billing.idempotently(key, work).await?,
    };
    respond(outcome, render)
}

/// The response to an idempotent outcome: rendered, and marked when it is a
/// replay.
///
/// # Errors
/// `render`'s.
pub fn respond<T>(
    outcome: Idempotent<T>,
    render: impl FnOnce(T) -> Result<Reply, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let replayed = outcome.is_replayed();
    let reply = render(outcome.into_inner())?;
    Ok(if replayed {
        reply.into_replayed_response()
    } else {
        reply.into_response()
    })
}

/// The key of an optional header, for [`run`].
///
/// # Errors
/// As [`request_key`].
pub fn optional_key(
    request: &HttpRequest,
    header: &KeyHeader,
    body: &[u8],
) -> Result<Option<IdempotencyKey>, ApiError> {
    header
        .0
        .as_deref()
        .map(|key| request_key(request, key, body))
        .transpose()
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn header(value: Option<&str>) -> Result<Option<String>, String> {
        let mut request = TestRequest::default();
        if let Some(value) = value {
            request = request.insert_header((IDEMPOTENCY_KEY, value));
        }
        key_header(&request.to_http_request()).map_err(|e| e.code().to_string())
    }

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert_eq!(header(None), Ok(None));
        assert_eq!(header(Some("pay-42-1")), Ok(Some("pay-42-1".to_owned())));
        let longest = "k".repeat(255);
        assert_eq!(header(Some(&longest)), Ok(Some(longest.clone())));
        for bad in ["", "has space", &"k".repeat(256)] {
            assert_eq!(
                header(Some(bad)),
                Err("validation_failed".to_owned()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_scope_is_the_token_hash_or_anonymous() {
        let token = crate::configuration::ApiToken::parse("0123456789abcdef").unwrap();
        let request = TestRequest::default()
            .app_data(web::Data::new(BearerAuth::new(Some(&token))))
            .insert_header((header::AUTHORIZATION, "Bearer 0123456789abcdef"))
            .to_http_request();
        assert_eq!(scope(&request), hex(&Sha256::digest(b"0123456789abcdef")));
        assert_eq!(scope(&request).len(), 64);
        let open = TestRequest::default()
            .app_data(web::Data::new(BearerAuth::new(None)))
            .insert_header((header::AUTHORIZATION, "Bearer whatever"))
            .to_http_request();
        assert_eq!(scope(&open), ANONYMOUS_SCOPE);
    }

    #[test]
    fn the_fingerprint_covers_method_path_query_and_body() {
        let request = |uri: &str| TestRequest::post().uri(uri).to_http_request();
        let key = |uri: &str, body: &[u8]| request_key(&request(uri), "k", body).unwrap();
        assert_eq!(key("/a?x=1", b"{}"), key("/a?x=1", b"{}"));
        assert_ne!(key("/a?x=1", b"{}"), key("/a?x=2", b"{}"));
        assert_ne!(key("/a", b"{}"), key("/b", b"{}"));
        assert_ne!(key("/a", b"{}"), key("/a", b"{ }"));
    }
}
