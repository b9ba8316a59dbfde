//! Webhooks: endpoints (`/webhook-endpoints`: register with a URL and
//! event types, the signing secret shown once; list, read, enable or
//! disable, delete) and deliveries (`/webhook-deliveries`: list, read with
//! their attempts, redeliver).
//!
//! Delivery itself runs in the background (`billing-webhooks`): every
//! event is POSTed at least once to each endpoint that wants it, signed
//! with `Billing-Signature`, retried with backoff for up to 3 days.

use actix_web::{HttpRequest, HttpResponse, web};
use billing_domain::entities::{webhook_attempt, webhook_delivery, webhook_endpoint};
use billing_domain::enums::{DeliveryStatus, EndpointStatus};
use billing_repository::DeliveryFilter;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::idempotency::{self, KeyHeader, KeyParam};
use crate::problem::responses::{KeyInFlight, KeyReused, NoSuchDelivery, NoSuchEndpoint};
use crate::problem::{ApiError, Problem};
use crate::request::{JsonBody, RawBody, page_request};
use crate::response::{ListResponse, Reply};
use crate::routes::events::{CursorPage, limit};
use crate::routes::operation::KeyedCreation;
use crate::state::AppState;
use crate::wire::NewWebhookEndpoint;

/// Registers the routes of this module.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/webhook-endpoints")
                .route(web::get().to(list_endpoints))
                .route(web::post().to(create_endpoint)),
        )
        .service(
            web::resource("/webhook-endpoints/{id}")
                .route(web::get().to(get_endpoint))
                .route(web::patch().to(update_endpoint))
                .route(web::delete().to(delete_endpoint)),
        )
        .service(web::resource("/webhook-deliveries").route(web::get().to(list_deliveries)))
        .service(web::resource("/webhook-deliveries/{id}").route(web::get().to(get_delivery)))
        .service(
            web::resource("/webhook-deliveries/{id}/redeliver").route(web::post().to(redeliver)),
        );
}

const fn endpoint_status_name(status: EndpointStatus) -> &'static str {
    match status {
        EndpointStatus::Enabled => "enabled",
        EndpointStatus::Failing => "failing",
        EndpointStatus::Disabled => "disabled",
    }
}

const fn delivery_status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Succeeded => "succeeded",
        DeliveryStatus::Failed => "failed",
    }
}

/// The statuses an endpoint can be set to (`PATCH`).
pub const ENDPOINT_STATUS_NAMES: [&str; 2] = [
    endpoint_status_name(EndpointStatus::Enabled),
    endpoint_status_name(EndpointStatus::Disabled),
];

/// The statuses of a delivery, the `status` filter of their list.
pub const DELIVERY_STATUSES: [DeliveryStatus; 3] = [
    DeliveryStatus::Pending,
    DeliveryStatus::Succeeded,
    DeliveryStatus::Failed,
];

/// The names of [`DELIVERY_STATUSES`].
pub const DELIVERY_STATUS_NAMES: [&str; 3] = [
    delivery_status_name(DELIVERY_STATUSES[0]),
    delivery_status_name(DELIVERY_STATUSES[1]),
    delivery_status_name(DELIVERY_STATUSES[2]),
];

/// A webhook endpoint.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EndpointResponse {
    /// Identity.
    pub id: i64,
    /// Where events are POSTed.
    pub url: String,
    /// The event types it receives; empty: all.
    pub event_types: Vec<String>,
    /// `enabled`, `failing` (a delivery was given up: no attempts until
    /// enabled again) or `disabled`.
    #[schema(example = "enabled")]
    pub status: String,
    /// The signing secret (`whsec_…`): in the answer to the creation only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Creation time (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last change (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
}

impl From<webhook_endpoint::Model> for EndpointResponse {
    fn from(endpoint: webhook_endpoint::Model) -> Self {
        Self {
            id: endpoint.id,
            event_types: serde_json::from_str(&endpoint.event_types).unwrap_or_default(),
            url: endpoint.url,
            status: endpoint_status_name(endpoint.status).to_owned(),
            secret: None,
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        }
    }
}

/// A change of an endpoint.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointChanges {
    /// `enabled` (also resumes a `failing` endpoint) or `disabled`.
    #[schema(example = "enabled")]
    pub status: String,
}

/// One attempt of a delivery.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AttemptResponse {
    /// When the request was sent (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub attempted_at: DateTime<Utc>,
    /// The HTTP status answered, if any.
    pub status_code: Option<i32>,
    /// Why no status was answered (`timed out`, `connection failed` …).
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
}

impl From<webhook_attempt::Model> for AttemptResponse {
    fn from(attempt: webhook_attempt::Model) -> Self {
        Self {
            attempted_at: attempt.attempted_at,
            status_code: attempt.status_code,
            error: attempt.error,
            duration_ms: attempt.duration_ms,
        }
    }
}

/// One event owed to one endpoint.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    /// Identity.
    pub id: i64,
    /// The endpoint.
    pub endpoint_id: i64,
    /// The event.
    pub event_id: i64,
    /// The event's type.
    #[schema(example = "invoice.paid")]
    pub event_type: String,
    /// `pending` (to be attempted), `succeeded` (2xx) or `failed` (given
    /// up after 3 days; redeliverable).
    #[schema(example = "pending")]
    pub status: String,
    /// How many attempts were made.
    pub attempts: i32,
    /// When the next attempt is due (pending deliveries).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last attempt, if one was answered.
    pub last_status_code: Option<i32>,
    /// When it was queued, or queued again by a redelivery (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Its attempts, oldest first (when one delivery is read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptResponse>>,
}

impl From<webhook_delivery::Model> for DeliveryResponse {
    fn from(delivery: webhook_delivery::Model) -> Self {
        Self {
            id: delivery.id,
            endpoint_id: delivery.endpoint_id,
            event_id: delivery.event_id,
            event_type: delivery.event_type.as_str().to_owned(),
            status: delivery_status_name(delivery.status).to_owned(),
            attempts: delivery.attempts,
            next_attempt_at: delivery.next_attempt_at,
            last_status_code: delivery.last_status_code,
            created_at: delivery.created_at,
            attempt_log: None,
        }
    }
}

/// `?page=&per_page=` of the endpoints.
#[derive(Clone, Copy, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EndpointListQuery {
    /// The page, from 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<u64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
}

/// `?after=&limit=&endpoint_id=&event_id=&status=` of the deliveries.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListQuery {
    /// Only deliveries after the one with this id (the last one read).
    pub after: Option<i64>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    /// Only to this endpoint.
    pub endpoint_id: Option<i64>,
    /// Only of this event.
    pub event_id: Option<i64>,
    /// Only in this status: `pending`, `succeeded` or `failed`.
    pub status: Option<String>,
}

/// Registers a webhook endpoint; the answer holds its signing secret,
/// shown this once.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-endpoints",
    tag = "webhooks",
    params(KeyParam),
    request_body = NewWebhookEndpoint,
    responses(
        (status = 201, description = "Registered; `secret` is shown only here", body = EndpointResponse,
            headers(("Location" = String, description = "Its path"))),
        (status = 400, description = "A URL that is not http(s), or an unknown event type", body = Problem, content_type = "application/problem+json"),
        KeyInFlight,
        KeyReused,
    )
)]
pub async fn create_endpoint(
    state: web::Data<AppState>,
    creation: KeyedCreation,
) -> Result<HttpResponse, ApiError> {
    let billing = state.billing();
    let create = |new: NewWebhookEndpoint| billing.create_webhook_endpoint(new.into());
    creation
        .run(billing, create, |created| {
            let location = format!("/api/v1/webhook-endpoints/{}", created.endpoint.id);
            let mut response = EndpointResponse::from(created.endpoint);
            response.secret = Some(created.secret);
            Reply::created(&response, &location)
        })
        .await
}

/// Lists the webhook endpoints by id.
#[utoipa::path(
    get,
    path = "/api/v1/webhook-endpoints",
    tag = "webhooks",
    params(EndpointListQuery),
    responses(
        (status = 200, description = "A page of endpoints", body = ListResponse<EndpointResponse>),
    )
)]
pub async fn list_endpoints(
    state: web::Data<AppState>,
    query: web::Query<EndpointListQuery>,
) -> Result<Reply, ApiError> {
    let page = page_request(query.page, query.per_page)?;
    let endpoints = state.billing().list_webhook_endpoints(page).await?;
    Reply::ok(&ListResponse::from_page(endpoints, EndpointResponse::from))
}

/// Reads a webhook endpoint (without its secret).
#[utoipa::path(
    get,
    path = "/api/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointResponse),
        NoSuchEndpoint,
    )
)]
pub async fn get_endpoint(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<Reply, ApiError> {
    let endpoint = state.billing().webhook_endpoint(id.into_inner()).await?;
    Reply::ok(&EndpointResponse::from(endpoint))
}

/// Enables or disables a webhook endpoint.
#[utoipa::path(
    patch,
    path = "/api/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The endpoint's id")),
    request_body = EndpointChanges,
    responses(
        (status = 200, description = "The changed endpoint", body = EndpointResponse),
        (status = 400, description = "A status other than `enabled` or `disabled`", body = Problem, content_type = "application/problem+json"),
        NoSuchEndpoint,
    )
)]
pub async fn update_endpoint(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    body: JsonBody,
) -> Result<Reply, ApiError> {
    let changes: EndpointChanges = body.parse()?;
    let status = [EndpointStatus::Enabled, EndpointStatus::Disabled]
        .into_iter()
        .find(|status| endpoint_status_name(*status) == changes.status)
        .ok_or_else(|| {
            ApiError::validation(format!(
                "status must be enabled or disabled, not `{}`",
                changes.status
            ))
        })?;
    let endpoint = state
        .billing()
        .set_webhook_endpoint_status(id.into_inner(), status)
        .await?;
    Reply::ok(&EndpointResponse::from(endpoint))
}

/// Deletes a webhook endpoint with its deliveries.
#[utoipa::path(
    delete,
    path = "/api/v1/webhook-endpoints/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Deleted"),
        NoSuchEndpoint,
    )
)]
pub async fn delete_endpoint(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<Reply, ApiError> {
    state
        .billing()
        .delete_webhook_endpoint(id.into_inner())
        .await?;
    Ok(Reply::no_content())
}

/// Lists deliveries by id.
#[utoipa::path(
    get,
    path = "/api/v1/webhook-deliveries",
    tag = "webhooks",
    params(DeliveryListQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = CursorPage<DeliveryResponse>),
        (status = 400, description = "A bad status or limit", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_deliveries(
    state: web::Data<AppState>,
    query: web::Query<DeliveryListQuery>,
) -> Result<Reply, ApiError> {
    let query = query.into_inner();
    let limit = limit(query.limit)?;
    let status = query
        .status
        .as_deref()
        .map(|name| {
            DELIVERY_STATUSES
                .into_iter()
                .find(|status| delivery_status_name(*status) == name)
                .ok_or_else(|| {
                    ApiError::validation(format!(
                        "status must be pending, succeeded or failed, not `{name}`"
                    ))
                })
        })
        .transpose()?;
    let filter = DeliveryFilter {
        after_id: query.after,
        endpoint_id: query.endpoint_id,
        event_id: query.event_id,
        status,
    };
    let deliveries = state
        .billing()
        .list_webhook_deliveries(filter, limit)
        .await?;
    let next_after = deliveries.last().map(|d| d.id);
    Reply::ok(&CursorPage {
        items: deliveries.into_iter().map(DeliveryResponse::from).collect(),
        limit,
        next_after,
    })
}

/// Reads a delivery with its attempts.
#[utoipa::path(
    get,
    path = "/api/v1/webhook-deliveries/{id}",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The delivery's id")),
    responses(
        (status = 200, description = "The delivery and its attempts", body = DeliveryResponse),
        NoSuchDelivery,
    )
)]
pub async fn get_delivery(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<Reply, ApiError> {
    let (delivery, attempts) = state.billing().webhook_delivery(id.into_inner()).await?;
    let mut response = DeliveryResponse::from(delivery);
    response.attempt_log = Some(attempts.into_iter().map(AttemptResponse::from).collect());
    Reply::ok(&response)
}

/// Queues a delivery again (due at once, with a new 3-day retry window),
/// whatever its status.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-deliveries/{id}/redeliver",
    tag = "webhooks",
    params(("id" = i64, Path, description = "The delivery's id"), KeyParam),
    responses(
        (status = 200, description = "Queued again", body = DeliveryResponse),
        NoSuchDelivery,
        KeyInFlight,
        KeyReused,
    )
)]
pub async fn redeliver(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<i64>,
    key: KeyHeader,
    body: RawBody,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency::optional_key(&request, &key, &body.0)?;
    idempotency::run(
        state.billing(),
        key.as_ref(),
        state.billing().redeliver_webhook(id.into_inner()),
        |delivery| Reply::ok(&DeliveryResponse::from(delivery)),
    )
    .await
}
