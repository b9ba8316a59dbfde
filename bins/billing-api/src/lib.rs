//! `billing-api`: the actix-web binary over the billing crates, implementing
//! the HTTP API of `docs/API.md`.
//!
//! One command starts it on a bare machine (a SQLite file and in-process
//! coordination); the same binary runs as one of many instances on
//! PostgreSQL and Redis.
//!
//! - [`configuration`] — [`Settings`]: flags and environment variables;
//! - [`startup`] — [`Application`]: wiring, listener, server, shutdown;
//! - [`cycle`] — the billing cycle: its settings, background task,
//!   `cycle run-once` and metrics;
//! - [`state`] — [`AppState`]: the handles handlers share;
//! - [`problem`] — [`ApiError`] / [`Problem`]: RFC 9457 error bodies, and
//!   problems for the framework's own errors;
//! - [`auth`] — bearer-token authentication of `/api/v1`;
//! - [`telemetry`] — logging, request ids, request logs;
//! - [`metrics`] — Prometheus metrics and `GET /metrics`;
//! - [`openapi`] — the OpenAPI document and `GET /openapi.json`;
//!   [`schema_rules`] states every input rule in it, [`links`] links each
//!   creation to the operations that use what it created;
//! - [`docs`] — `GET /docs`: the document as a page, assets embedded;
//! - [`probe`] — `billing-api probe`, the container health check;
//! - [`routes`] — the routes: `/health/*` and the resources of `/api/v1`;
//! - [`request`] / [`response`] — JSON bodies kept as received, `If-Match`,
//!   pages; responses built once, with `ETag` and `Location`;
//! - [`idempotency`] — `Idempotency-Key`: scope, fingerprint, replay;
//! - [`query_parameters`] — unknown query parameters refused, by the
//!   OpenAPI document;
//! - [`representation`] — money, rates and timestamps in responses;
//! - [`seed`] — the default currency of a fresh database;
//! - [`wire`] — the request bodies as sent, converted into the service's
//!   commands.

pub mod auth;
pub mod configuration;
pub mod cycle;
pub mod docs;
pub mod idempotency;
pub mod links;
pub mod metrics;
pub mod openapi;
pub mod probe;
pub mod problem;
pub mod query_parameters;
pub mod representation;
pub mod request;
pub mod response;
pub mod routes;
pub mod schema_rules;
pub mod seed;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod webhook_delivery;
pub mod wire;

pub use configuration::Settings;
pub use problem::{ApiError, Problem, ProblemCode};
pub use startup::{Application, StartupError};
pub use state::AppState;
