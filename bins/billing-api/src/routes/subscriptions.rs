//! Subscriptions: subscribe (`pending` until the first payment), read,
//! list a user's, and the lifecycle transitions `activate`, `pause`,
//! `cancel` and `expire`.
//!
//! States: `pending → active | cancelled`, `active → paused | cancelled |
//! expired`, `paused → active | cancelled | expired`; any other transition
//! is 409 `invalid_transition` and writes nothing.

use actix_web::{HttpResponse, web};
use billing_domain::entities::subscription;
use billing_domain::enums::SubscriptionStatus;
use billing_service::SubscriptionAction;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::idempotency::KeyParam;
use crate::problem::responses::{
    KeyReused, NoSuchSubscription, NoSuchUser, TransitionRefused, VersionMismatch,
};
use crate::problem::{ApiError, Problem};
use crate::request::{IfMatchHeader, PageQuery};
use crate::response::{ListResponse, Reply, Versioned, versioned};
use crate::routes::operation::{KeyedAction, KeyedCreation};
use crate::state::AppState;
use crate::wire::NewSubscription;

/// Registers the routes of this module.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/subscriptions").route(web::post().to(create_subscription)))
        .service(web::resource("/subscriptions/{id}").route(web::get().to(get_subscription)))
        .service(
            web::resource("/subscriptions/{id}/activate")
                .route(web::post().to(activate_subscription)),
        )
        .service(
            web::resource("/subscriptions/{id}/pause").route(web::post().to(pause_subscription)),
        )
        .service(
            web::resource("/subscriptions/{id}/cancel").route(web::post().to(cancel_subscription)),
        )
        .service(
            web::resource("/subscriptions/{id}/expire").route(web::post().to(expire_subscription)),
        )
        .service(
            web::resource("/users/{id}/subscriptions").route(web::get().to(list_subscriptions)),
        );
}

/// A subscription, with whether it is valid now and the days left.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SubscriptionResponse {
    /// Identity.
    pub id: i64,
    /// The subscriber.
    pub user_id: i64,
    /// The plan.
    pub plan_id: i64,
    /// Where it stands.
    #[schema(value_type = crate::wire::enums::SubscriptionStatus)]
    pub status: SubscriptionStatus,
    /// First activation (RFC 3339, UTC).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<DateTime<Utc>>,
    /// End of the paid time; `null` for lifetime plans and before the
    /// first activation.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was cancelled.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// When the current pause began.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub paused_at: Option<DateTime<Utc>>,
    /// Whether the subscriber may use the plan now (active and not
    /// expired).
    pub is_valid: bool,
    /// Whole days of paid time left, rounded up; `null` when it never ends
    /// (lifetime).
    #[schema(minimum = 0)]
    pub days_remaining: Option<u32>,
    /// Creation time (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last change (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    /// Version, also sent as `ETag`.
    pub version: i32,
}

impl SubscriptionResponse {
    /// The subscription as seen at `now`.
    #[must_use]
    pub fn at(subscription: subscription::Model, now: DateTime<Utc>) -> Self {
        Self {
            is_valid: subscription.is_valid(now),
            days_remaining: subscription.days_remaining(now),
            id: subscription.id,
            user_id: subscription.user_id,
            plan_id: subscription.tarif_plan_id,
            status: subscription.status,
            started_at: subscription.started_at,
            expires_at: subscription.expires_at,
            cancelled_at: subscription.cancelled_at,
            paused_at: subscription.paused_at,
            created_at: subscription.created_at,
            updated_at: subscription.updated_at,
            version: subscription.version,
        }
    }
}

impl From<subscription::Model> for SubscriptionResponse {
    /// The subscription as seen now.
    fn from(subscription: subscription::Model) -> Self {
        Self::at(subscription, Utc::now())
    }
}

versioned!(
    SubscriptionResponse,
    subscription::Model,
    "/api/v1/subscriptions/{}",
    id
);

/// Subscribes a user to an active plan: a `pending` subscription, which
/// the first payment of an invoice for it activates.
#[utoipa::path(
    post,
    path = "/api/v1/subscriptions",
    tag = "subscriptions",
    params(KeyParam),
    request_body = NewSubscription,
    responses(
        (status = 201, description = "Created (pending)", body = SubscriptionResponse,
            headers(("Location" = String, description = "Its path"), ("ETag" = String, description = "Its version"))),
        (status = 404, description = "No such user or plan", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The user is deleted or suspended, or the plan is not offered (`invalid_transition`), or the Idempotency-Key is in flight", body = Problem, content_type = "application/problem+json"),
        KeyReused,
    )
)]
pub async fn create_subscription(
    state: web::Data<AppState>,
    creation: KeyedCreation,
) -> Result<HttpResponse, ApiError> {
    let billing = state.billing();
    let subscribe = |new: NewSubscription| billing.subscribe(new.into());
    creation
        .run(billing, subscribe, SubscriptionResponse::created)
        .await
}

/// Reads a subscription, with `is_valid` and `days_remaining` as of now.
#[utoipa::path(
    get,
    path = "/api/v1/subscriptions/{id}",
    tag = "subscriptions",
    params(("id" = i64, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionResponse,
            headers(("ETag" = String, description = "Its version"))),
        NoSuchSubscription,
    )
)]
pub async fn get_subscription(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<Reply, ApiError> {
    SubscriptionResponse::reply(state.billing().subscription(id.into_inner()).await?)
}

/// Lists a user's subscriptions by id.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}/subscriptions",
    tag = "subscriptions",
    params(("id" = i64, Path, description = "The user's id"), PageQuery),
    responses(
        (status = 200, description = "A page of subscriptions", body = ListResponse<SubscriptionResponse>),
        NoSuchUser,
    )
)]
pub async fn list_subscriptions(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> Result<Reply, ApiError> {
    let page = query.into_inner().page()?;
    let subscriptions = state
        .billing()
        .list_subscriptions(id.into_inner(), page)
        .await?;
    let now = Utc::now();
    Reply::ok(&ListResponse::from_page(subscriptions, |s| {
        SubscriptionResponse::at(s, now)
    }))
}

/// Runs one lifecycle transition (under the request's idempotency key, if
/// any).
async fn transition(
    state: &AppState,
    request: KeyedAction,
    action: SubscriptionAction,
) -> Result<HttpResponse, ApiError> {
    let billing = state.billing();
    let run = |id, if_match| billing.transition_subscription(id, action, if_match);
    request.run(billing, run, SubscriptionResponse::reply).await
}

/// Resumes a paused subscription (the paused time is added back). It
/// neither starts a pending subscription nor renews an active one: only a
/// paid invoice adds a billing period (409 `invalid_transition`).
#[utoipa::path(
    post,
    path = "/api/v1/subscriptions/{id}/activate",
    tag = "subscriptions",
    params(("id" = i64, Path, description = "The subscription's id"), IfMatchHeader, KeyParam),
    responses(
        (status = 200, description = "The resumed subscription", body = SubscriptionResponse,
            headers(("ETag" = String, description = "Its new version"))),
        NoSuchSubscription,
        (status = 409, description = "Not paused (`invalid_transition`: pending and active subscriptions gain time only by a paid invoice), changed concurrently too often (`locked`), or the key is in flight", body = Problem, content_type = "application/problem+json"),
        VersionMismatch,
        KeyReused,
    )
)]
pub async fn activate_subscription(
    state: web::Data<AppState>,
    request: KeyedAction,
) -> Result<HttpResponse, ApiError> {
    transition(&state, request, SubscriptionAction::Activate).await
}

/// Pauses an active subscription.
#[utoipa::path(
    post,
    path = "/api/v1/subscriptions/{id}/pause",
    tag = "subscriptions",
    params(("id" = i64, Path, description = "The subscription's id"), IfMatchHeader, KeyParam),
    responses(
        (status = 200, description = "The paused subscription", body = SubscriptionResponse,
            headers(("ETag" = String, description = "Its new version"))),
        NoSuchSubscription,
        TransitionRefused,
        VersionMismatch,
        KeyReused,
    )
)]
pub async fn pause_subscription(
    state: web::Data<AppState>,
    request: KeyedAction,
) -> Result<HttpResponse, ApiError> {
    transition(&state, request, SubscriptionAction::Pause).await
}

/// Cancels a subscription for good.
#[utoipa::path(
    post,
    path = "/api/v1/subscriptions/{id}/cancel",
    tag = "subscriptions",
    params(("id" = i64, Path, description = "The subscription's id"), IfMatchHeader, KeyParam),
    responses(
        (status = 200, description = "The cancelled subscription", body = SubscriptionResponse,
            headers(("ETag" = String, description = "Its new version"))),
        NoSuchSubscription,
        TransitionRefused,
        VersionMismatch,
        KeyReused,
    )
)]
pub async fn cancel_subscription(
    state: web::Data<AppState>,
    request: KeyedAction,
) -> Result<HttpResponse, ApiError> {
    transition(&state, request, SubscriptionAction::Cancel).await
}

/// Marks an active or paused subscription as expired.
#[utoipa::path(
    post,
    path = "/api/v1/subscriptions/{id}/expire",
    tag = "subscriptions",
    params(("id" = i64, Path, description = "The subscription's id"), IfMatchHeader, KeyParam),
    responses(
        (status = 200, description = "The expired subscription", body = SubscriptionResponse,
            headers(("ETag" = String, description = "Its new version"))),
        NoSuchSubscription,
        TransitionRefused,
        VersionMismatch,
        KeyReused,
    )
)]
pub async fn expire_subscription(
    state: web::Data<AppState>,
    request: KeyedAction,
) -> Result<HttpResponse, ApiError> {
    transition(&state, request, SubscriptionAction::Expire).await
}
