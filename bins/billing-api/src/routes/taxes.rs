//! `/taxes`: list, create, read and change taxes, and read a tax's rate
//! history (a new rate closes the open historical rate and opens a new
//! one).

use actix_web::{HttpResponse, web};
use billing_domain::entities::{tax, tax_rate};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::idempotency::KeyParam;
use crate::problem::responses::{KeyReused, Locked, NoSuchTax, VersionMismatch};
use crate::problem::{ApiError, Problem};
use crate::representation;
use crate::request::{IfMatch, IfMatchHeader, JsonBody, PageQuery};
use crate::response::{ListResponse, Reply, Versioned, versioned};
use crate::routes::operation::KeyedCreation;
use crate::state::AppState;
use crate::wire::{NewTax, TaxChanges};

/// Registers the routes of this module.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/taxes")
                .route(web::get().to(list_taxes))
                .route(web::post().to(create_tax)),
        )
        .service(
            web::resource("/taxes/{id}")
                .route(web::get().to(get_tax))
                .route(web::patch().to(update_tax)),
        )
        .service(web::resource("/taxes/{id}/rates").route(web::get().to(list_tax_rates)));
}

/// A tax.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TaxResponse {
    /// Identity.
    pub id: i64,
    /// Display name.
    #[schema(example = "German VAT")]
    pub name: String,
    /// Stable code, unique.
    #[schema(example = "DE_VAT")]
    pub code: String,
    /// Free text.
    pub description: Option<String>,
    /// The rate in force, in percent, as a decimal string.
    #[schema(example = "19.00")]
    pub rate: String,
    /// ISO 3166-1 alpha-2 country code.
    #[schema(example = "DE")]
    pub country_code: String,
    /// Region within the country, if any.
    pub region_code: Option<String>,
    /// Whether prices already contain the tax.
    pub is_inclusive: bool,
    /// Whether it may be applied to new invoices.
    pub is_active: bool,
    /// Creation time (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last change (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    /// Version, also sent as `ETag`.
    pub version: i32,
}

impl From<tax::Model> for TaxResponse {
    fn from(tax: tax::Model) -> Self {
        Self {
            id: tax.id,
            rate: representation::rate(tax.rate),
            name: tax.name,
            code: tax.code,
            description: tax.description,
            country_code: tax.country_code,
            region_code: tax.region_code,
            is_inclusive: tax.is_inclusive,
            is_active: tax.is_active,
            created_at: tax.created_at,
            updated_at: tax.updated_at,
            version: tax.version,
        }
    }
}

/// One historical rate of a tax, in force on `[valid_from, valid_to)`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TaxRateResponse {
    /// The rate in percent, as a decimal string.
    #[schema(example = "19.00")]
    pub rate: String,
    /// First instant it applies (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub valid_from: DateTime<Utc>,
    /// First instant it no longer applies; `null` while in force.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_to: Option<DateTime<Utc>>,
}

impl From<tax_rate::Model> for TaxRateResponse {
    fn from(rate: tax_rate::Model) -> Self {
        Self {
            rate: representation::rate(rate.rate),
            valid_from: rate.valid_from,
            valid_to: rate.valid_to,
        }
    }
}

versioned!(TaxResponse, tax::Model, "/api/v1/taxes/{}", id);

/// Lists the taxes by id.
#[utoipa::path(
    get,
    path = "/api/v1/taxes",
    tag = "taxes",
    params(PageQuery),
    responses((status = 200, description = "A page of taxes", body = ListResponse<TaxResponse>))
)]
pub async fn list_taxes(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<Reply, ApiError> {
    let page = query.into_inner().page()?;
    let taxes = state.billing().list_taxes(page).await?;
    Reply::ok(&ListResponse::from_page(taxes, TaxResponse::from))
}

/// Creates a tax; its rate is in force from now on.
#[utoipa::path(
    post,
    path = "/api/v1/taxes",
    tag = "taxes",
    params(KeyParam),
    request_body = NewTax,
    responses(
        (status = 201, description = "Created", body = TaxResponse,
            headers(("Location" = String, description = "Its path"), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "The code is taken (`already_exists`), or the key is in flight", body = Problem, content_type = "application/problem+json"),
        KeyReused,
    )
)]
pub async fn create_tax(
    state: web::Data<AppState>,
    creation: KeyedCreation,
) -> Result<HttpResponse, ApiError> {
    let billing = state.billing();
    let create_tax = |new: NewTax| billing.create_tax(new.into());
    creation
        .run(billing, create_tax, TaxResponse::created)
        .await
}

/// Reads a tax.
#[utoipa::path(
    get,
    path = "/api/v1/taxes/{id}",
    tag = "taxes",
    params(("id" = i64, Path, description = "The tax's id")),
    responses(
        (status = 200, description = "The tax", body = TaxResponse,
            headers(("ETag" = String, description = "Its version"))),
        NoSuchTax,
    )
)]
pub async fn get_tax(state: web::Data<AppState>, id: web::Path<i64>) -> Result<Reply, ApiError> {
    TaxResponse::reply(state.billing().tax(id.into_inner()).await?)
}

/// Changes a tax; a new `rate` closes the open historical rate now and
/// opens a new one.
#[utoipa::path(
    patch,
    path = "/api/v1/taxes/{id}",
    tag = "taxes",
    params(("id" = i64, Path, description = "The tax's id"), IfMatchHeader),
    request_body = TaxChanges,
    responses(
        (status = 200, description = "The changed tax", body = TaxResponse,
            headers(("ETag" = String, description = "Its new version"))),
        NoSuchTax,
        Locked,
        VersionMismatch,
    )
)]
pub async fn update_tax(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: JsonBody,
) -> Result<Reply, ApiError> {
    let changes: TaxChanges = body.parse()?;
    TaxResponse::reply(
        state
            .billing()
            .update_tax(id.into_inner(), changes.into(), if_match.0)
            .await?,
    )
}

/// The rate history of a tax, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/taxes/{id}/rates",
    tag = "taxes",
    params(("id" = i64, Path, description = "The tax's id"), PageQuery),
    responses(
        (status = 200, description = "A page of the rate history, newest first", body = ListResponse<TaxRateResponse>),
        NoSuchTax,
    )
)]
pub async fn list_tax_rates(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> Result<Reply, ApiError> {
    let page = query.into_inner().page()?;
    let mut history = state.billing().tax_rates(id.into_inner()).await?;
    // Newest first, whatever order the history came in.
    history.sort_by(|a, b| b.valid_from.cmp(&a.valid_from).then(b.id.cmp(&a.id)));
    let total = u64::try_from(history.len()).unwrap_or(u64::MAX);
    let skip = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let take = usize::try_from(page.limit()).unwrap_or(usize::MAX);
    let items = history
        .into_iter()
        .skip(skip)
        .take(take)
        .map(TaxRateResponse::from)
        .collect();
    Reply::ok(&ListResponse {
        items,
        page: page.page(),
        per_page: page.per_page(),
        total,
    })
}
