//! Responses of the resource routes: [`Reply`], a response built once from
//! a use case's outcome (fresh, or replayed from an idempotency key), and
//! [`ListResponse`], the envelope of every list.
//!
//! Single resources carry their `version` as `ETag: "<version>"`; created
//! ones a `Location` header with their path. A resource with a version
//! implements [`Versioned`], which answers both once for all.

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Responder};
use billing_repository::Page;
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::ApiError;

/// The header that marks a response replayed from an idempotency key.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

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

    /// The response to send.
    #[must_use]
    pub fn into_response(self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        for (name, value) in self.headers {
            response.insert_header((name, value));
        }
        response.body(self.body)
    }

    /// The response of a replay: the same response, built from the recorded
    /// outcome, with `Idempotent-Replayed: true`.
    #[must_use]
    pub fn into_replayed_response(mut self) -> HttpResponse {
        self.headers
            .push((IDEMPOTENT_REPLAYED, HeaderValue::from_static("true")));
        self.into_response()
    }
}

impl Responder for Reply {
    type Body = BoxBody;

    fn respond_to(self, _request: &HttpRequest) -> HttpResponse {
        self.into_response()
    }
}

/// A resource that carries its `version` (sent as `ETag`) and lives at a
/// path of its own (sent as `Location` when it is created).
pub trait Versioned: Serialize + Sized {
    /// The stored record the resource shows.
    type Model;

    /// Its version.
    fn version(&self) -> i32;

    /// Its path, `/api/v1/...`.
    fn path(&self) -> String;

    /// 200 with the resource of `model` and its `ETag`.
    ///
    /// # Errors
    /// As [`Reply::json`].
    fn reply(model: Self::Model) -> Result<Reply, ApiError>
    where
        Self: From<Self::Model>,
    {
        let resource = Self::from(model);
        Ok(Reply::ok(&resource)?.with_etag(resource.version()))
    }

    /// 201 with the resource of `model`, its `Location` and its `ETag`.
    ///
    /// # Errors
    /// As [`Reply::created`].
    fn created(model: Self::Model) -> Result<Reply, ApiError>
    where
        Self: From<Self::Model>,
    {
        let resource = Self::from(model);
        Ok(Reply::created(&resource, &resource.path())?.with_etag(resource.version()))
    }
}

/// Implements [`Versioned`] for a response type with a `version` field:
/// its model, and its path with the field that names it in place of `{}`.
///
/// ```text
/// versioned!(PlanResponse, tarif_plan::Model, "/api/v1/plans/{}", id);
/// ```
macro_rules! versioned {
    ($response:ty, $model:ty, $path:literal, $key:ident) => {
        impl $crate::response::Versioned for $response {
            type Model = $model;

            fn version(&self) -> i32 {
                self.version
            }

            fn path(&self) -> String {
                format!($path, self.$key)
            }
        }
    };
}
pub(crate) use versioned;

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
    fn a_page_is_written_as_the_list_envelope() {
        let page = Page {
            items: vec!["AAA".to_owned()],
            page: 1,
            per_page: 1,
            total: 5,
        };
        let json = serde_json::to_string(&ListResponse::from_page(page, |code| code)).unwrap();
        assert_eq!(json, r#"{"items":["AAA"],"page":1,"per_page":1,"total":5}"#);
    }

    #[test]
    fn a_replay_is_the_same_response_marked_replayed() {
        let reply = Reply::created(&serde_json::json!({"id": 7}), "/api/v1/users/7")
            .unwrap()
            .with_etag(1);
        let fresh = reply.clone().into_response();
        let replayed = reply.into_replayed_response();
        assert_eq!(replayed.status(), StatusCode::CREATED);
        for name in ["content-type", "location", "etag"] {
            assert_eq!(
                replayed.headers().get(name),
                fresh.headers().get(name),
                "{name}"
            );
        }
        assert_eq!(
            replayed.headers().get("location").unwrap(),
            "/api/v1/users/7"
        );
        assert_eq!(replayed.headers().get("etag").unwrap(), "\"1\"");
        assert!(fresh.headers().get("idempotent-replayed").is_none());
        assert_eq!(
            replayed.headers().get("idempotent-replayed").unwrap(),
            "true"
        );
        let fresh_body = fresh.into_body().try_into_bytes().unwrap();
        let replayed_body = replayed.into_body().try_into_bytes().unwrap();
        assert_eq!(replayed_body, fresh_body);
    }
}
