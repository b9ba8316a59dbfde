//! The shapes several routes share, written once: creating a resource
//! ([`KeyedCreation`]) and running an action on one ([`KeyedAction`]: a
//! lifecycle transition), each under the request's optional
//! `Idempotency-Key` (see [`crate::idempotency`]).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use billing_service::{Billing, BillingError, Recorded};
use serde::de::DeserializeOwned;

use crate::idempotency::{self, KeyHeader};
use crate::problem::ApiError;
use crate::request::{IfMatch, JsonBody, RawBody};
use crate::response::Reply;

/// What a creation (`POST /x`) takes from its request: the optional
/// `Idempotency-Key` and the JSON body, kept as received for the key's
/// fingerprint. Extracted in that order, as separate extractors would be.
pub struct KeyedCreation {
    request: HttpRequest,
    key: KeyHeader,
    body: JsonBody,
}

impl FromRequest for KeyedCreation {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let parts = <(HttpRequest, KeyHeader, JsonBody)>::from_request(request, payload);
        Box::pin(async move {
            let (request, key, body) = parts.await?;
            Ok(Self { request, key, body })
        })
    }
}

impl KeyedCreation {
    /// Creates a resource: the key is checked first, then the body is
    /// parsed and handed to `create`, whose use case runs under the key (at
    /// most once per key); `render` answers what it created, fresh or
    /// replayed (e.g. [`Versioned::created`](crate::response::Versioned::created)).
    ///
    /// # Errors
    /// A malformed key or body (400), the use case's errors and the key's
    /// own refusals (see [`idempotency::run`]).
    pub async fn run<N, T, F>(
        self,
        billing: &Billing,
        create: impl FnOnce(N) -> F,
        render: impl FnOnce(T) -> Result<Reply, ApiError>,
    ) -> Result<HttpResponse, ApiError>
    where
        N: DeserializeOwned,
        T: Recorded,
        F: Future<Output = Result<T, BillingError>>,
    {
        let key = idempotency::optional_key(&self.request, &self.key, self.body.bytes())?;
        let new: N = self.body.parse()?;
        idempotency::run(billing, key.as_ref(), create(new), render).await
    }
}

/// What an action on one resource (`POST /x/{id}/<action>`, no body to
/// read) takes from its request: the resource's id, `If-Match`, the
/// optional `Idempotency-Key` and the body as received, which the key's
/// fingerprint covers. Extracted in that order, as separate extractors
/// would be.
pub struct KeyedAction {
    request: HttpRequest,
    id: i64,
    if_match: IfMatch,
    key: KeyHeader,
    body: RawBody,
}

/// The extractors [`KeyedAction`] is made of, in order.
type KeyedActionParts = (HttpRequest, web::Path<i64>, IfMatch, KeyHeader, RawBody);

impl FromRequest for KeyedAction {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let parts = KeyedActionParts::from_request(request, payload);
        Box::pin(async move {
            let (request, id, if_match, key, body) = parts.await?;
            Ok(Self {
                request,
                id: id.into_inner(),
                if_match,
                key,
                body,
            })
        })
    }
}

impl KeyedAction {
    /// Runs `action(id, if_match)` under the request's key, if any (at most
    /// once per key); `render` answers its outcome, fresh or replayed.
    ///
    /// # Errors
    /// A malformed key (400), the use case's errors and the key's own
    /// refusals (see [`idempotency::run`]).
    pub async fn run<T, F>(
        self,
        billing: &Billing,
        action: impl FnOnce(i64, Option<i32>) -> F,
        render: impl FnOnce(T) -> Result<Reply, ApiError>,
    ) -> Result<HttpResponse, ApiError>
    where
        T: Recorded,
        F: Future<Output = Result<T, BillingError>>,
    {
        let key = idempotency::optional_key(&self.request, &self.key, &self.body.0)?;
        let work = action(self.id, self.if_match.0);
        idempotency::run(billing, key.as_ref(), work, render).await
    }
}
