//! What the resource routes read from a request besides the path: the body
//! as its raw bytes ([`JsonBody`], [`RawBody`]; an idempotency key's
//! fingerprint covers the bytes as received), `If-Match` ([`IfMatch`]) and
//! the list parameters ([`PageQuery`], [`page_request`]).
//!
//! Every failure is a problem: a body over `BILLING_BODY_LIMIT` is 413
//! `payload_too_large`, a JSON body without `Content-Type:
//! application/json` 415, malformed JSON, wrong types, unknown fields and
//! text with NUL characters 400 `validation_failed`, an `If-Match` that
//! names no version 400.

use std::future::{Future, Ready, ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::IntoParams;

use crate::problem::{ApiError, framework};
use crate::state::AppState;

/// The page size when `per_page` is absent.
pub const DEFAULT_PER_PAGE: u64 = 20;
pub use billing_service::{MAX_PAGE, MAX_PER_PAGE, PageRequest};
/// The most digits of a version in `If-Match`.
pub const MAX_VERSION_DIGITS: usize = 9;
/// `If-Match` as [`IfMatch::parse`] reads it: `*` or one version, quoted
/// (`"3"`) or bare (`3`), optionally weak (`W/"3"`), of at most
/// [`MAX_VERSION_DIGITS`] digits.
pub const IF_MATCH_PATTERN: &str = r#"^[ \t]*(?:\*|(?:W/)?(?:"[0-9]{1,9}"|[0-9]{1,9}))[ \t]*$"#;

type BodyFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

/// A JSON request body: `Content-Type: application/json` (or `+json`),
/// at most `BILLING_BODY_LIMIT` bytes, kept as received and parsed with
/// [`Self::parse`] when the handler is ready for it (after its headers are
/// checked).
#[derive(Clone, Debug)]
pub struct JsonBody {
    bytes: web::Bytes,
}

impl JsonBody {
    /// The body as received.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The body as a `T`.
    ///
    /// # Errors
    /// 400 `validation_failed` naming the problem: not JSON, a wrong type,
    /// a missing or unknown field, a NUL character in a text.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        // Every request body is a JSON object; serde would also read a
        // struct from an array (`[null, null]`).
        let first = self.bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| *b != b'{') {
            return Err(ApiError::validation(
                "the request body must be a JSON object",
            ));
        }
        let value = serde_json::from_slice::<T>(&self.bytes)
            .map_err(|e| framework::json_error(&JsonPayloadError::Deserialize(e), usize::MAX))?;
        reject_nul_characters(&self.bytes)?;
        Ok(value)
    }
}

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = BodyFuture<Self>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !is_json(request) {
            return Box::pin(ready(Err(ApiError::new(
                crate::ProblemCode::UnsupportedMediaType,
                "the request body must be JSON, sent with Content-Type: application/json",
            ))));
        }
        let bytes = RawBody::from_request(request, payload);
        Box::pin(async move {
            let RawBody(bytes) = bytes.await?;
            Ok(Self { bytes })
        })
    }
}

/// A request body of any type, at most `BILLING_BODY_LIMIT` bytes, as
/// received: the body of the `POST`s that take none, kept for the
/// idempotency fingerprint.
#[derive(Clone, Debug)]
pub struct RawBody(pub web::Bytes);

impl FromRequest for RawBody {
    type Error = ApiError;
    type Future = BodyFuture<Self>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = request
            .app_data::<web::Data<AppState>>()
            .map_or(crate::configuration::DEFAULT_BODY_LIMIT, |state| {
                state.body_limit()
            });
        let bytes = web::Bytes::from_request(request, payload);
        Box::pin(async move {
            bytes.await.map(Self).map_err(|error| {
                if error.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::payload_too_large(limit)
                } else {
                    ApiError::validation(format!("the request body could not be read: {error}"))
                }
            })
        })
    }
}

/// Whether the request says its body is JSON (`application/json` or a
/// `+json` type).
fn is_json(request: &HttpRequest) -> bool {
    match request.mime_type() {
        Ok(Some(mime)) => {
            mime.subtype().as_str() == "json" || mime.suffix().is_some_and(|s| s.as_str() == "json")
        }
        Ok(None) | Err(_) => false,
    }
}

/// Refuses text with NUL characters, which PostgreSQL cannot store, in
/// any string or object key of the body.
fn reject_nul_characters(bytes: &[u8]) -> Result<(), ApiError> {
    // A NUL can only be written `\u0000` in JSON text: look closer only then.
    if !bytes.windows(6).any(|w| w == b"\\u0000") {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::validation(format!("the request body is not valid JSON: {e}")))?;
    if contains_nul(&value) {
        return Err(ApiError::validation(
            "text must not contain NUL characters (\\u0000)",
        ));
    }
    Ok(())
}

fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(members) => members
            .iter()
            .any(|(key, value)| key.contains('\0') || contains_nul(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// The version a client expects, from `If-Match: "<version>"`; `None`
/// without the header or with `If-Match: *`. A weak tag (`W/"3"`) and a
/// bare number (`3`) are accepted too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfMatch(pub Option<i32>);

impl IfMatch {
    /// Parses the `If-Match` values of a request.
    ///
    /// # Errors
    /// 400 `validation_failed` for several values, or one that is not a
    /// version.
    pub fn parse(request: &HttpRequest) -> Result<Self, ApiError> {
        let mut values = request.headers().get_all(header::IF_MATCH);
        let Some(value) = values.next() else {
            return Ok(Self(None));
        };
        let invalid = || {
            ApiError::validation(
                "If-Match must name one version, as returned in the ETag header: If-Match: \"3\"",
            )
        };
        if values.next().is_some() {
            return Err(invalid());
        }
        let text = value.to_str().map_err(|_| invalid())?.trim();
        if text == "*" {
            return Ok(Self(None));
        }
        let tag = text.strip_prefix("W/").unwrap_or(text);
        let digits = match tag.strip_prefix('"') {
            Some(quoted) => quoted.strip_suffix('"').ok_or_else(invalid)?,
            None => tag,
        };
        if digits.is_empty()
            || digits.len() > MAX_VERSION_DIGITS
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid());
        }
        digits
            .parse::<i32>()
            .map(|v| Self(Some(v)))
            .map_err(|_| invalid())
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Self::parse(request))
    }
}

/// The `If-Match` header of a change, for the OpenAPI document.
#[derive(Clone, Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfMatchHeader {
    /// The version the change expects, as sent in `ETag` (`"3"`; `W/"3"`
    /// and `3` are accepted too). Another stored version: 412
    /// `version_mismatch` with `current_version`, nothing written. Absent
    /// or `*`: the change applies to the version read, re-read and
    /// re-validated if another writer got in between.
    #[param(rename = "If-Match", value_type = String, required = false, example = "\"3\"")]
    pub if_match: Option<String>,
}

/// `?page=&per_page=` of a list without filters.
#[derive(Clone, Copy, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The page, from 1 (default 1) to 1000000000.
    #[param(minimum = 1)]
    pub page: Option<u64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
}

impl PageQuery {
    /// The page asked for, checked.
    ///
    /// # Errors
    /// As [`page_request`].
    pub fn page(self) -> Result<PageRequest, ApiError> {
        page_request(self.page, self.per_page)
    }
}

/// The [`PageRequest`] of `?page=&per_page=`: `page` (default 1) and
/// `per_page` (default 20), checked.
///
/// # Errors
/// 400 `validation_failed` for a page outside `1..=MAX_PAGE` (`page must
/// be between 1 and 1000000000`), then for a page size outside
/// `1..=MAX_PER_PAGE` (`per_page must be between 1 and 100`).
pub fn page_request(page: Option<u64>, per_page: Option<u64>) -> Result<PageRequest, ApiError> {
    PageRequest::new(page.unwrap_or(1), per_page.unwrap_or(DEFAULT_PER_PAGE))
        .map_err(|refusal| ApiError::validation(refusal.to_string()))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn if_match(values: &[&str]) -> Result<Option<i32>, String> {
        let mut request = TestRequest::default();
        for value in values {
            request = request.append_header((header::IF_MATCH, *value));
        }
        IfMatch::parse(&request.to_http_request())
            .map(|m| m.0)
            .map_err(|e| e.code().to_string())
    }

    #[test]
    fn if_match_names_a_version() {
        assert_eq!(if_match(&[]), Ok(None));
        assert_eq!(if_match(&["*"]), Ok(None));
        assert_eq!(if_match(&["\"3\""]), Ok(Some(3)));
        assert_eq!(if_match(&["W/\"3\""]), Ok(Some(3)));
        assert_eq!(if_match(&[" 12 "]), Ok(Some(12)));
        for bad in [
            "",
            "\"\"",
            "\"3",
            "\"-1\"",
            "abc",
            "\"1\", \"2\"",
            "99999999999",
        ] {
            assert_eq!(
                if_match(&[bad]),
                Err("validation_failed".to_owned()),
                "{bad:?}"
            );
        }
        assert_eq!(
            if_match(&["\"1\"", "\"2\""]),
            Err("validation_failed".to_owned())
        );
    }

    #[test]
    fn pages_are_checked() {
        assert_eq!(
            page_request(None, None).unwrap(),
            PageRequest::new(1, 20).unwrap()
        );
        assert_eq!(
            page_request(Some(3), Some(100)).unwrap(),
            PageRequest::new(3, 100).unwrap()
        );
        let refusal = |page, per_page| {
            let error = page_request(page, per_page).unwrap_err();
            (error.code().to_string(), error.problem().detail.clone())
        };
        let page = (
            "validation_failed".to_owned(),
            "page must be between 1 and 1000000000".to_owned(),
        );
        let per_page = (
            "validation_failed".to_owned(),
            "per_page must be between 1 and 100".to_owned(),
        );
        assert_eq!(refusal(Some(0), None), page);
        assert_eq!(refusal(Some(MAX_PAGE + 1), None), page);
        assert_eq!(refusal(Some(0), Some(0)), page);
        assert_eq!(refusal(None, Some(0)), per_page);
        assert_eq!(refusal(None, Some(101)), per_page);
    }

    #[test]
    fn nul_characters_are_refused_anywhere() {
        assert!(reject_nul_characters(br#"{"a": "b"}"#).is_ok());
        assert!(reject_nul_characters(br#"{"a": "\\u0000"}"#).is_ok());
        assert!(reject_nul_characters(br#"{"a": "x\u0000"}"#).is_err());
        assert!(reject_nul_characters(br#"{"a": {"b": ["\u0000"]}}"#).is_err());
        assert!(reject_nul_characters(br#"{"\u0000": 1}"#).is_err());
    }
}
