//! `/plans`: list (active ones by `sort_order`), create, read by id or
//! slug, and change tariff plans with their prices in other currencies.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use billing_domain::entities::tarif_plan;
use billing_domain::enums::BillingPeriod;
use billing_service::{PlanFilter, PlanRef};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::idempotency::KeyParam;
use crate::problem::responses::{KeyReused, NoSuchPlan, VersionMismatch};
use crate::problem::{ApiError, Problem};
use crate::representation;
use crate::request::{IfMatch, IfMatchHeader, JsonBody, page_request};
use crate::response::{ListResponse, Reply, Versioned, versioned};
use crate::routes::operation::KeyedCreation;
use crate::state::AppState;
use crate::wire::{NewPlan, PlanChanges};

/// Registers the routes of this module.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/plans")
                .route(web::get().to(list_plans))
                .route(web::post().to(create_plan)),
        )
        .service(
            web::resource("/plans/{id}")
                .route(web::get().to(get_plan))
                .route(web::patch().to(update_plan)),
        );
}

/// A tariff plan.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PlanResponse {
    /// Identity.
    pub id: i64,
    /// Display name.
    #[schema(example = "Pro")]
    pub name: String,
    /// URL name, unique.
    #[schema(example = "pro")]
    pub slug: String,
    /// Free text.
    pub description: Option<String>,
    /// Price per billing period in `currency`, as a decimal string.
    #[schema(example = "19.99")]
    pub price: String,
    /// ISO 4217 code of `price`.
    #[schema(example = "EUR")]
    pub currency: String,
    /// How long one payment lasts.
    #[schema(value_type = crate::wire::enums::BillingPeriod)]
    pub billing_period: BillingPeriod,
    /// Features and limits (a JSON object).
    #[schema(value_type = Object)]
    pub features: serde_json::Value,
    /// Whether it is offered.
    pub is_active: bool,
    /// Position in listings, ascending.
    pub sort_order: i32,
    /// Fixed prices in other currencies: ISO 4217 code → decimal string.
    #[schema(example = json!({"USD": "21.99"}))]
    pub prices: BTreeMap<String, String>,
    /// Creation time (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last change (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    /// Version, also sent as `ETag`.
    pub version: i32,
}

impl From<tarif_plan::Model> for PlanResponse {
    fn from(plan: tarif_plan::Model) -> Self {
        Self {
            id: plan.id,
            price: representation::money(plan.price, &plan.currency),
            prices: plan
                .prices
                .0
                .into_iter()
                .map(|(code, price)| {
                    let price = representation::money(price, &code);
                    (code, price)
                })
                .collect(),
            name: plan.name,
            slug: plan.slug,
            description: plan.description,
            currency: plan.currency,
            billing_period: plan.billing_period,
            features: plan.features,
            is_active: plan.is_active,
            sort_order: plan.sort_order,
            created_at: plan.created_at,
            updated_at: plan.updated_at,
            version: plan.version,
        }
    }
}

/// `?include_inactive=&page=&per_page=` of `GET /plans`.
#[derive(Clone, Copy, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanListQuery {
    /// `true` lists inactive plans too (default `false`).
    pub include_inactive: Option<bool>,
    /// The page, from 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<u64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
}

versioned!(PlanResponse, tarif_plan::Model, "/api/v1/plans/{}", id);

/// Lists the active plans (all with `include_inactive=true`) by
/// `sort_order`.
#[utoipa::path(
    get,
    path = "/api/v1/plans",
    tag = "plans",
    params(PlanListQuery),
    responses((status = 200, description = "A page of plans", body = ListResponse<PlanResponse>))
)]
pub async fn list_plans(
    state: web::Data<AppState>,
    query: web::Query<PlanListQuery>,
) -> Result<Reply, ApiError> {
    let query = query.into_inner();
    let page = page_request(query.page, query.per_page)?;
    let plans = state
        .billing()
        .list_plans(
            PlanFilter::including_inactive(query.include_inactive.unwrap_or(false)),
            page,
        )
        .await?;
    Reply::ok(&ListResponse::from_page(plans, PlanResponse::from))
}

/// Creates a plan.
#[utoipa::path(
    post,
    path = "/api/v1/plans",
    tag = "plans",
    params(KeyParam),
    request_body = NewPlan,
    responses(
        (status = 201, description = "Created", body = PlanResponse,
            headers(("Location" = String, description = "Its path"), ("ETag" = String, description = "Its version"))),
        (status = 404, description = "The currency of `price` is not configured", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The slug is taken (`already_exists`); a currency is inactive or unknown in `prices`, or a price has more decimals than its currency's minor units (`invalid_transition`); or the key is in flight", body = Problem, content_type = "application/problem+json"),
        KeyReused,
    )
)]
pub async fn create_plan(
    state: web::Data<AppState>,
    creation: KeyedCreation,
) -> Result<HttpResponse, ApiError> {
    let billing = state.billing();
    let create_plan = |new: NewPlan| billing.create_plan(new.into());
    creation
        .run(billing, create_plan, PlanResponse::created)
        .await
}

/// Reads a plan by id (digits) or by slug.
#[utoipa::path(
    get,
    path = "/api/v1/plans/{id}",
    tag = "plans",
    params(("id" = String, Path, description = "The plan's id, or its slug", example = "pro")),
    responses(
        (status = 200, description = "The plan", body = PlanResponse,
            headers(("ETag" = String, description = "Its version"))),
        NoSuchPlan,
    )
)]
pub async fn get_plan(
    state: web::Data<AppState>,
    id_or_slug: web::Path<String>,
) -> Result<Reply, ApiError> {
    let Ok(plan) = id_or_slug.parse::<PlanRef>();
    if let PlanRef::Slug(slug) = &plan {
        // A text no slug can be is not looked up.
        let could_be_slug = slug.len() <= 100
            && slug
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !could_be_slug {
            return Err(ApiError::not_found(format!("plan {slug:?} not found")));
        }
    }
    PlanResponse::reply(state.billing().plan(&plan).await?)
}

/// Changes a plan (prices, currency, features, activity …).
#[utoipa::path(
    patch,
    path = "/api/v1/plans/{id}",
    tag = "plans",
    params(("id" = i64, Path, description = "The plan's id"), IfMatchHeader),
    request_body = PlanChanges,
    responses(
        (status = 200, description = "The changed plan", body = PlanResponse,
            headers(("ETag" = String, description = "Its new version"))),
        (status = 404, description = "No such plan, or the currency of `price` is not configured", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The slug is taken (`already_exists`); a currency is inactive or unknown in `prices`, or a price has more decimals than its currency's minor units (`invalid_transition`); or the plan changed concurrently too often (`locked`)", body = Problem, content_type = "application/problem+json"),
        VersionMismatch,
    )
)]
pub async fn update_plan(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: JsonBody,
) -> Result<Reply, ApiError> {
    let changes: PlanChanges = body.parse()?;
    PlanResponse::reply(
        state
            .billing()
            .update_plan(id.into_inner(), changes.into(), if_match.0)
            .await?,
    )
}
