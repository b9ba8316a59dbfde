//! The actix-web server: the application's data, middleware and routes, and
//! the middleware that answers 503 while the database is not prepared.

use std::net::TcpListener;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpServer, web};

use super::StartupError;
use crate::auth::{BearerAuth, require_bearer_token};
use crate::configuration::Settings;
use crate::metrics::Metrics;
use crate::problem::{ApiError, ProblemCode, framework};
use crate::query_parameters::refuse_unknown_query_parameters;
use crate::state::AppState;
use crate::telemetry::request_telemetry;
use crate::{docs, metrics, openapi, routes};

/// 503 `dependency_unavailable` for `/api/v1` while the database is not
/// prepared (see [`AppState::database_prepared`]).
async fn require_prepared_database(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let prepared = request
        .app_data::<web::Data<AppState>>()
        .is_none_or(|state| state.database_prepared());
    if prepared {
        return Ok(next.call(request).await?.map_into_boxed_body());
    }
    let (http_request, _payload) = request.into_parts();
    let response = actix_web::ResponseError::error_response(&ApiError::new(
        ProblemCode::DependencyUnavailable,
        "the database refuses new connections (too many clients); this instance is not ready yet",
    ));
    Ok(ServiceResponse::new(http_request, response))
}

/// The actix-web server over `listener`: the shared data, the middleware, the
/// operational routes and the `/api/v1` scope with `extra_api_routes`.
pub(super) fn build_server<F>(
    listener: TcpListener,
    settings: &Settings,
    state: AppState,
    metrics: Metrics,
    auth: BearerAuth,
    extra_api_routes: F,
) -> Result<Server, StartupError>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let state = web::Data::new(state);
    let metrics = web::Data::new(metrics);
    let auth = web::Data::new(auth);
    let body_limit = settings.http.body_limit;
    let in_flight_ttl = settings.idempotency.in_flight_ttl;
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(metrics.clone())
            .app_data(auth.clone())
            .app_data(framework::json_config(body_limit))
            .app_data(framework::payload_config(body_limit))
            .app_data(framework::path_config())
            .app_data(framework::query_config())
            .app_data(web::Data::new(framework::RetryAfter {
                in_flight: in_flight_ttl,
            }))
            // Inner to outer: the problem rewrite sees handler responses,
            // telemetry sees the final response.
            .wrap(from_fn(framework::problem_json_errors))
            .wrap(from_fn(request_telemetry))
            // `web::resource(..).route(..)`, not `App::route` or `#[get]`:
            // those put the method guard on the resource, so a wrong method
            // would answer 404 instead of 405.
            // Every documented operation refuses unknown query parameters.
            .service(
                web::resource("/health/live")
                    .wrap(from_fn(refuse_unknown_query_parameters))
                    .route(web::get().to(routes::health::live)),
            )
            .service(
                web::resource("/health/ready")
                    .wrap(from_fn(refuse_unknown_query_parameters))
                    .route(web::get().to(routes::health::ready)),
            )
            .service(
                web::resource("/metrics")
                    .wrap(from_fn(refuse_unknown_query_parameters))
                    .route(web::get().to(metrics::metrics)),
            )
            .service(
                web::resource("/openapi.json")
                    .wrap(from_fn(refuse_unknown_query_parameters))
                    .route(web::get().to(openapi::openapi_json)),
            )
            .configure(docs::configure)
            .service(
                web::scope("/api/v1")
                    .wrap(from_fn(refuse_unknown_query_parameters))
                    .wrap(from_fn(require_prepared_database))
                    .wrap(from_fn(require_bearer_token))
                    .configure(routes::api_v1)
                    .configure(extra_api_routes.clone()),
            )
            .default_service(web::to(framework::not_found))
    })
    .shutdown_timeout(settings.http.shutdown_timeout_secs());
    if let Some(workers) = settings.http.workers {
        server = server.workers(workers.get());
    }
    let server = server.listen(listener).map_err(StartupError::Server)?;
    Ok(server.run())
}
