//! Bearer-token authentication of `/api/v1`: [`BearerAuth`] (the expected
//! token) and the [`require_bearer_token`] middleware.
//!
//! With `BILLING_API_TOKEN` set, every `/api/v1` request needs
//! `Authorization: Bearer <token>`; anything else gets 401 `unauthorized`
//! (problem+json, with `WWW-Authenticate: Bearer`). Unset, the API is open:
//! [`Settings::validate`](crate::configuration::Settings::validate) then
//! refuses any bind address but loopback, and the server logs a warning at
//! start. `/health/*`, `/metrics` and `/openapi.json` never need a token.
//!
//! The comparison takes the same time whatever the presented token: both
//! sides are hashed with SHA-256 (so their lengths do not matter) and the
//! digests compared with `subtle`'s constant-time equality.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::configuration::ApiToken;
use crate::problem::ApiError;

/// The token `/api/v1` requests must present, if any. Holds only its
/// SHA-256 digest.
#[derive(Clone)]
pub struct BearerAuth {
    expected: Option<[u8; 32]>,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("required", &self.expected.is_some())
            .finish()
    }
}

/// Why a request was not let in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// No `Authorization` header, or not a `Bearer` one.
    #[error("a bearer token is required: send Authorization: Bearer <token>")]
    Missing,
    /// A bearer token that is not the configured one.
    #[error("the bearer token is not valid")]
    Invalid,
}

impl BearerAuth {
    /// Requires `token`, or nothing when `None`.
    #[must_use]
    pub fn new(token: Option<&ApiToken>) -> Self {
        Self {
            expected: token.map(|t| digest(t.expose().as_bytes())),
        }
    }

    /// Whether requests pass without a token.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.expected.is_none()
    }

    /// Checks an `Authorization` header value.
    ///
    /// # Errors
    /// [`AuthFailure::Missing`] without a bearer token,
    /// [`AuthFailure::Invalid`] with a wrong one.
    pub fn verify(&self, authorization: Option<&HeaderValue>) -> Result<(), AuthFailure> {
        let Some(expected) = &self.expected else {
            return Ok(());
        };
        let presented = authorization
            .map(HeaderValue::as_bytes)
            .and_then(bearer_token)
            .ok_or(AuthFailure::Missing)?;
        if bool::from(digest(presented).ct_eq(expected)) {
            Ok(())
        } else {
            Err(AuthFailure::Invalid)
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme
/// case-insensitive, RFC 9110 §11.1).
pub(crate) fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let scheme_end = value.iter().position(|b| *b == b' ')?;
    let (scheme, rest) = value.split_at(scheme_end);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Middleware of the `/api/v1` scope: lets a request through when
/// [`BearerAuth`] (from the app data) accepts its `Authorization` header,
/// else answers 401 `unauthorized`. Without a registered [`BearerAuth`] it
/// refuses every request (500): a wiring mistake must not open the API.
///
/// # Errors
/// Never: refusals are responses.
pub async fn require_bearer_token(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let verdict = match request.app_data::<web::Data<BearerAuth>>() {
        Some(auth) => auth
            .verify(request.headers().get(header::AUTHORIZATION))
            .map_err(Some),
        None => Err(None),
    };
    match verdict {
        Ok(()) => Ok(next.call(request).await?.map_into_boxed_body()),
        Err(failure) => {
            let (http_request, _payload) = request.into_parts();
            let response = match failure {
                Some(failure) => unauthorized_response(failure),
                None => {
                    ApiError::internal("BearerAuth is not registered as app data: refusing /api/v1")
                        .error_response()
                }
            };
            Ok(ServiceResponse::new(http_request, response))
        }
    }
}

/// 401 `unauthorized` with the RFC 6750 challenge.
fn unauthorized_response(failure: AuthFailure) -> HttpResponse {
    let challenge = match failure {
        AuthFailure::Missing => r#"Bearer realm="billing""#,
        AuthFailure::Invalid => r#"Bearer realm="billing", error="invalid_token""#,
    };
    let mut response = ApiError::unauthorized(failure.to_string()).error_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).unwrap()
    }

    #[test]
    fn tokens_are_checked() {
        let token = ApiToken::parse("0123456789abcdef").unwrap();
        let auth = BearerAuth::new(Some(&token));
        assert!(!auth.is_open());
        assert_eq!(
            auth.verify(Some(&header("Bearer 0123456789abcdef"))),
            Ok(())
        );
        assert_eq!(
            auth.verify(Some(&header("bearer  0123456789abcdef "))),
            Ok(())
        );
        assert_eq!(auth.verify(None), Err(AuthFailure::Missing));
        assert_eq!(
            auth.verify(Some(&header("Basic 0123456789abcdef"))),
            Err(AuthFailure::Missing)
        );
        assert_eq!(
            auth.verify(Some(&header("Bearer "))),
            Err(AuthFailure::Missing)
        );
        assert_eq!(
            auth.verify(Some(&header("Bearer 0123456789abcdeF"))),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            auth.verify(Some(&header("Bearer 0123456789abcdef0"))),
            Err(AuthFailure::Invalid)
        );
    }

    #[test]
    fn no_token_means_open() {
        let auth = BearerAuth::new(None);
        assert!(auth.is_open());
        assert_eq!(auth.verify(None), Ok(()));
    }
}
