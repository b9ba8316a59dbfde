//! Support cases: open and list a user's cases (`/users/{id}/cases`), read
//! and change one (`/cases/{id}`; `closed` is final).

use actix_web::{HttpResponse, web};
use billing_domain::entities::user_case;
use billing_domain::enums::CaseStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::idempotency::KeyParam;
use crate::problem::responses::{KeyReused, NoSuchCase, NoSuchUser, VersionMismatch};
use crate::problem::{ApiError, Problem};
use crate::request::{IfMatch, IfMatchHeader, JsonBody, page_request};
use crate::response::{ListResponse, Reply, Versioned, versioned};
use crate::routes::operation::KeyedCreation;
use crate::state::AppState;
use crate::wire::{CaseChanges, NewCase};

/// Registers the routes of this module.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/users/{id}/cases")
                .route(web::get().to(list_cases))
                .route(web::post().to(create_case)),
        )
        .service(
            web::resource("/cases/{id}")
                .route(web::get().to(get_case))
                .route(web::patch().to(update_case)),
        );
}

/// A support case.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CaseResponse {
    /// Identity.
    pub id: i64,
    /// The user the case is about.
    pub user_id: i64,
    /// One-line summary.
    pub subject: String,
    /// Full text.
    pub description: String,
    /// Where the case stands.
    #[schema(value_type = crate::wire::enums::CaseStatus)]
    pub status: CaseStatus,
    /// Creation time (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last change (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    /// Version, also sent as `ETag`.
    pub version: i32,
}

impl From<user_case::Model> for CaseResponse {
    fn from(case: user_case::Model) -> Self {
        Self {
            id: case.id,
            user_id: case.user_id,
            subject: case.subject,
            description: case.description,
            status: case.status,
            created_at: case.created_at,
            updated_at: case.updated_at,
            version: case.version,
        }
    }
}

/// `?status=&page=&per_page=` of a user's cases.
#[derive(Clone, Copy, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CaseListQuery {
    /// Only cases with this status.
    #[param(value_type = Option<crate::wire::enums::CaseStatus>)]
    pub status: Option<CaseStatus>,
    /// The page, from 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<u64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
}

versioned!(CaseResponse, user_case::Model, "/api/v1/cases/{}", id);

/// Opens a support case for a user (status `open`).
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/cases",
    tag = "cases",
    params(("id" = i64, Path, description = "The user's id"), KeyParam),
    request_body = NewCase,
    responses(
        (status = 201, description = "Opened", body = CaseResponse,
            headers(("Location" = String, description = "Its path"), ("ETag" = String, description = "Its version"))),
        NoSuchUser,
        (status = 409, description = "The user is deleted (`invalid_transition`), or the Idempotency-Key is in flight", body = Problem, content_type = "application/problem+json"),
        KeyReused,
    )
)]
pub async fn create_case(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    creation: KeyedCreation,
) -> Result<HttpResponse, ApiError> {
    let billing = state.billing();
    let user_id = id.into_inner();
    let open_case = |new: NewCase| billing.open_case(user_id, new.into());
    creation
        .run(billing, open_case, CaseResponse::created)
        .await
}

/// Lists a user's support cases by id, optionally of one status.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}/cases",
    tag = "cases",
    params(("id" = i64, Path, description = "The user's id"), CaseListQuery),
    responses(
        (status = 200, description = "A page of cases", body = ListResponse<CaseResponse>),
        NoSuchUser,
    )
)]
pub async fn list_cases(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<CaseListQuery>,
) -> Result<Reply, ApiError> {
    let query = query.into_inner();
    let page = page_request(query.page, query.per_page)?;
    let cases = state
        .billing()
        .list_cases(id.into_inner(), query.status, page)
        .await?;
    Reply::ok(&ListResponse::from_page(cases, CaseResponse::from))
}

/// Reads a support case.
#[utoipa::path(
    get,
    path = "/api/v1/cases/{id}",
    tag = "cases",
    params(("id" = i64, Path, description = "The case's id")),
    responses(
        (status = 200, description = "The case", body = CaseResponse,
            headers(("ETag" = String, description = "Its version"))),
        NoSuchCase,
    )
)]
pub async fn get_case(state: web::Data<AppState>, id: web::Path<i64>) -> Result<Reply, ApiError> {
    CaseResponse::reply(state.billing().case(id.into_inner()).await?)
}

/// Changes a support case: its status, subject or description.
#[utoipa::path(
    patch,
    path = "/api/v1/cases/{id}",
    tag = "cases",
    params(("id" = i64, Path, description = "The case's id"), IfMatchHeader),
    request_body = CaseChanges,
    responses(
        (status = 200, description = "The changed case", body = CaseResponse,
            headers(("ETag" = String, description = "Its new version"))),
        NoSuchCase,
        (status = 409, description = "The case is closed or its user deleted (`invalid_transition`), or changed concurrently too often (`locked`)", body = Problem, content_type = "application/problem+json"),
        VersionMismatch,
    )
)]
pub async fn update_case(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: JsonBody,
) -> Result<Reply, ApiError> {
    let changes: CaseChanges = body.parse()?;
    CaseResponse::reply(
        state
            .billing()
            .update_case(id.into_inner(), changes.into(), if_match.0)
            .await?,
    )
}
