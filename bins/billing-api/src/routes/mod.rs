//! The routes: [`health`] (liveness and readiness) and the resources of
//! `docs/API.md` under `/api/v1`, one module per resource.
//!
//! Handlers are small: they read the request (path, query, headers, body),
//! call one use case of [`billing_service::Billing`] and map its result: a
//! response DTO of the module, or an [`ApiError`](crate::ApiError) through
//! the one mapping of [`crate::problem::billing`].
//!
//! What routes share is written once: a versioned resource answers with
//! its `ETag` (and, created, its `Location`) through
//! [`Versioned`](crate::response::Versioned); creations and actions on a
//! resource run under the request's `Idempotency-Key` through
//! [`operation`]; the problem responses several operations document alike
//! are named from [`crate::problem::responses`] in their
//! `#[utoipa::path]`.
//!
//! `/metrics` lives in [`crate::metrics`] and `/openapi.json` in
//! [`crate::openapi`], next to what they render.

pub mod cases;
pub mod currencies;
pub mod events;
pub mod health;
pub mod invoices;
pub mod operation;
pub mod plans;
pub mod subscriptions;
pub mod taxes;
pub mod users;
pub mod webhooks;

use actix_web::web;

/// Registers the resource routes of the contract inside the `/api/v1`
/// scope (which already carries bearer authentication, the JSON, path and
/// query error handlers and the body limit). Each handler added here also
/// goes into [`crate::openapi::ApiDoc`]'s `paths(...)`.
///
/// Register each path once as `web::resource(path).route(web::get().to(..))
/// .route(web::patch().to(..))`: `ServiceConfig::route` and the `#[get]`
/// macros put the method guard on the resource, so a wrong method would
/// answer 404 instead of 405.
pub fn api_v1(config: &mut web::ServiceConfig) {
    currencies::configure(config);
    taxes::configure(config);
    users::configure(config);
    cases::configure(config);
    plans::configure(config);
    subscriptions::configure(config);
    invoices::configure(config);
    events::configure(config);
    webhooks::configure(config);
}
