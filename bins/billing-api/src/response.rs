//! Responses of the resource routes: [`Reply`], a response built once that
//! can be sent, stored under an idempotency key and replayed byte for byte,
//! and [`ListResponse`], the envelope of every list.
//!
//! Single resources carry their `version` as `ETag: "<version>"`; created
//! ones a `Location` header with their path.

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Responder};
use billing_repository::Page;
use billing_service::StoredResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::ApiError;

/// The header that marks a response replayed from an idempotency key.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The headers a [`Reply`] keeps: only these are stored for replays.
const KEPT_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

/// A response built once: its status, the headers that matter
/// (`Content-Type`, `Location`, `ETag`) and its body bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
}

impl Reply {
    /// `status` with `value` as its JSON body.
    ///
    /// # Errors
    /// 500 when `value` cannot be serialised (a bug).
    pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Self, ApiError> {
        let body = serde_json::to_vec(value).map_err(ApiError::internal)?;
        Ok(Self {
            status,
            headers: vec![(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        })
    }

    /// 200 with `value` as its JSON body.
    ///
    /// # Errors
    /// As [`Self::json`].
    pub fn ok<T: Serialize>(value: &T) -> Result<Self, ApiError> {
        Self::json(StatusCode::OK, value)
    }

    /// 201 with `value` as its JSON body and `Location: <location>`.
    ///
    /// # Errors
    /// As [`Self::json`]; 500 when `location` is not a valid header value.
    pub fn created<T: Serialize>(value: &T, location: &str) -> Result<Self, ApiError> {
        let location = HeaderValue::from_str(location).map_err(ApiError::internal)?;
        let mut reply = Self::json(StatusCode::CREATED, value)?;
        reply.headers.push((header::LOCATION, location));
        Ok(reply)
    }

    /// 204 without a body.
    #[must_use]
    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The problem body of a client error, to store it for replays.
    #[must_use]
    pub fn problem(error: &ApiError) -> Self {
        let problem = error.problem();
        Self {
            status: problem.status_code(),
            headers: vec![(
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::problem::PROBLEM_JSON),
            )],
            // A problem always serialises (see `Problem::to_response`).
            body: serde_json::to_vec(problem).unwrap_or_default(),
        }
    }

    /// Adds `ETag: "<version>"`.
    #[must_use]
    pub fn with_etag(mut self, version: i32) -> Self {
        self.headers.push((header::ETAG, etag(version)));
        self
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body bytes.
    #[must_use]
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// What an idempotency key keeps of this response.
    #[must_use]
    pub fn to_stored(&self) -> StoredResponse {
        StoredResponse {
            status: self.status.as_u16(),
            headers: self
                .headers
                .iter()
                .filter_map(|(name, value)| {
                    value
                        .to_str()
                        .ok()
                        .map(|value| (name.as_str().to_owned(), value.to_owned()))
                })
                .collect(),
            body: self.body.clone(),
        }
    }

    /// The response to send.
    #[must_use]
    pub fn into_response(self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        for (name, value) in self.headers {
            response.insert_header((name, value));
        }
        response.body(self.body)
    }

    /// The response of a replay: the stored status, headers and body, and
    /// `Idempotent-Replayed: true`.
    #[must_use]
    pub fn replay(stored: StoredResponse) -> HttpResponse {
        let status =
            StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = HttpResponse::build(status);
        for (name, value) in &stored.headers {
            let parsed = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            );
            match parsed {
                (Ok(name), Ok(value)) if KEPT_HEADERS.contains(&name) => {
                    response.insert_header((name, value));
                }
                (Ok(_) | Err(_), Ok(_) | Err(_)) => {
                    tracing::warn!(header = %name, "a stored header is not replayed");
                }
            }
        }
        response.insert_header((IDEMPOTENT_REPLAYED, HeaderValue::from_static("true")));
        response.body(stored.body)
    }
}

impl Responder for Reply {
    type Body = BoxBody;

    fn respond_to(self, _request: &HttpRequest) -> HttpResponse {
        self.into_response()
    }
}

/// `"<version>"`: the strong entity tag of a resource's version.
#[must_use]
pub fn etag(version: i32) -> HeaderValue {
    // Digits and quotes are always a valid header value.
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// The envelope of every list: `{"items": [...], "page": 1, "per_page":
/// 20, "total": 57}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct ListResponse<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The page number, from 1.
    pub page: u64,
    /// The page size asked for (1 to 100).
    pub per_page: u64,
    /// How many items all pages hold together.
    pub total: u64,
}

impl<T> ListResponse<T> {
    /// A page of the use cases with each item mapped to its response.
    #[must_use]
    pub fn from_page<M>(page: Page<M>, item: impl FnMut(M) -> T) -> Self {
        let page = page.map(item);
        Self {
            items: page.items,
            page: page.page,
            per_page: page.per_page,
            total: page.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    #[test]
    fn a_reply_is_stored_and_replayed_unchanged() {
        let reply = Reply::created(&serde_json::json!({"id": 7}), "/api/v1/users/7")
            .unwrap()
            .with_etag(1);
        let stored = reply.to_stored();
        assert_eq!(stored.status, 201);
        assert_eq!(
            stored.headers,
            vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("location".to_owned(), "/api/v1/users/7".to_owned()),
                ("etag".to_owned(), "\"1\"".to_owned()),
            ]
        );
        let replayed = Reply::replay(stored.clone());
        assert_eq!(replayed.status(), StatusCode::CREATED);
        assert_eq!(
            replayed.headers().get("location").unwrap(),
            "/api/v1/users/7"
        );
        assert_eq!(replayed.headers().get("etag").unwrap(), "\"1\"");
        assert_eq!(
            replayed.headers().get("idempotent-replayed").unwrap(),
            "true"
        );
        let body = replayed.into_body().try_into_bytes().unwrap();
        assert_eq!(body.as_ref(), stored.body.as_slice());
    }
}
