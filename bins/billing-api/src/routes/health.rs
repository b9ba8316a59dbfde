//! `GET /health/live` and `GET /health/ready`.
//!
//! Liveness says the process serves HTTP; readiness says it can do its
//! work: the database answers and, with Redis, Redis answers. Each check
//! is bounded by `BILLING_HEALTH_TIMEOUT` (1 s by default) and both run at
//! once, so a hung dependency makes readiness answer 503 within that time
//! instead of hanging the probe.

use std::future::Future;
use std::time::Duration;

use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpResponse, web};
use billing_concurrency::BackendKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::problem::ErrorChain;
use crate::state::AppState;

/// The overall verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Everything checked works.
    Ok,
    /// A dependency is down: the instance should get no traffic.
    Unavailable,
}

/// The state of one dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DependencyStatus {
    /// It answered in time.
    Ok,
    /// It failed or did not answer in time.
    Down,
    /// The in-process coordination backend is used (no Redis to check).
    Embedded,
}

/// Body of `GET /health/live`: `{"status": "ok"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Liveness {
    /// Always `ok` while the process serves.
    pub status: HealthStatus,
}

/// Body of `GET /health/ready`:
/// `{"status": "ok", "database": "ok", "redis": "ok" | "embedded"}`, or
/// with `"status": "unavailable"` and the failing part `"down"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// `ok` when every dependency is usable.
    pub status: HealthStatus,
    /// The database.
    pub database: DependencyStatus,
    /// Redis, or `embedded` without Redis.
    pub redis: DependencyStatus,
}

/// Whether the process serves HTTP. Checks no dependency.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "operations",
    responses((status = 200, description = "The process serves requests", body = Liveness))
)]
pub async fn live() -> HttpResponse {
    no_store(&mut HttpResponse::Ok()).json(Liveness {
        status: HealthStatus::Ok,
    })
}

/// Whether the instance can serve the API: pings the database and Redis
/// (each bounded by `BILLING_HEALTH_TIMEOUT`).
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Every dependency answers", body = Readiness,
            example = json!({"status": "ok", "database": "ok", "redis": "ok"})),
        (status = 503, description = "A dependency is down; it is named", body = Readiness,
            example = json!({"status": "unavailable", "database": "ok", "redis": "down"})),
    )
)]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let timeout = state.health_timeout();
    let database = async {
        if state.database_prepared() {
            check("database", timeout, state.database().ping()).await
        } else {
            // Start-up is still waiting for the database to accept a
            // connection (it refused with `too many clients`).
            DependencyStatus::Down
        }
    };
    let redis = async {
        match state.coordination().backend_kind() {
            BackendKind::Embedded => DependencyStatus::Embedded,
            BackendKind::Redis => check("redis", timeout, state.coordination().ping()).await,
        }
    };
    let (database, redis) = tokio::join!(database, redis);
    let all_up = [database, redis].iter().all(|status| match status {
        DependencyStatus::Ok | DependencyStatus::Embedded => true,
        DependencyStatus::Down => false,
    });
    let (mut response, status) = if all_up {
        (HttpResponse::Ok(), HealthStatus::Ok)
    } else {
        (
            HttpResponse::ServiceUnavailable(),
            HealthStatus::Unavailable,
        )
    };
    no_store(&mut response).json(Readiness {
        status,
        database,
        redis,
    })
}

/// Runs one ping, bounded by `timeout`; logs why a dependency is down.
async fn check<E>(
    dependency: &'static str,
    timeout: Duration,
    ping: impl Future<Output = Result<(), E>>,
) -> DependencyStatus
where
    E: std::error::Error + 'static,
{
    match tokio::time::timeout(timeout, ping).await {
        Ok(Ok(())) => DependencyStatus::Ok,
        Ok(Err(error)) => {
            tracing::warn!(dependency, error = %ErrorChain(&error), "readiness check failed");
            DependencyStatus::Down
        }
        Err(_elapsed) => {
            tracing::warn!(
                dependency,
                timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                "readiness check timed out"
            );
            DependencyStatus::Down
        }
    }
}

fn no_store(response: &mut actix_web::HttpResponseBuilder) -> &mut actix_web::HttpResponseBuilder {
    response.insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")))
}
