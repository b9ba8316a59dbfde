//! `/currencies`: list, create, read and change currencies (exchange rates
//! against the default currency; one currency is the default).

use actix_web::{HttpResponse, web};
use billing_domain::entities::currency;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::idempotency::KeyParam;
use crate::problem::responses::{KeyReused, NoSuchCurrency, VersionMismatch};
use crate::problem::{ApiError, Problem};
use crate::representation;
use crate::request::{IfMatch, IfMatchHeader, JsonBody, PageQuery};
use crate::response::{ListResponse, Reply, Versioned, versioned};
use crate::routes::operation::KeyedCreation;
use crate::state::AppState;
use crate::wire::{CurrencyChanges, NewCurrency};

/// Registers the routes of this module.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/currencies")
                .route(web::get().to(list_currencies))
                .route(web::post().to(create_currency)),
        )
        .service(
            web::resource("/currencies/{code}")
                .route(web::get().to(get_currency))
                .route(web::patch().to(update_currency)),
        );
}

/// A currency.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CurrencyResponse {
    /// Identity.
    pub id: i64,
    /// ISO 4217 code.
    #[schema(example = "EUR")]
    pub code: String,
    /// Name.
    #[schema(example = "Euro")]
    pub name: String,
    /// Symbol, if any.
    #[schema(example = "€")]
    pub symbol: Option<String>,
    /// Units of this currency per one unit of the default currency, as a
    /// decimal string.
    #[schema(example = "1.08")]
    pub exchange_rate: String,
    /// Minor units (EUR 2, JPY 0).
    pub decimal_places: i16,
    /// Whether this is the default currency.
    pub is_default: bool,
    /// Whether plans and invoices may use it.
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

impl From<currency::Model> for CurrencyResponse {
    fn from(currency: currency::Model) -> Self {
        Self {
            id: currency.id,
            exchange_rate: representation::rate(currency.exchange_rate),
            code: currency.code,
            name: currency.name,
            symbol: currency.symbol,
            decimal_places: currency.decimal_places,
            is_default: currency.is_default,
            is_active: currency.is_active,
            created_at: currency.created_at,
            updated_at: currency.updated_at,
            version: currency.version,
        }
    }
}

versioned!(
    CurrencyResponse,
    currency::Model,
    "/api/v1/currencies/{}",
    code
);

/// The code in a path, upper-cased; a value that cannot be a currency code
/// is not looked up (404 at once).
fn code_in_path(code: &str) -> Result<String, ApiError> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(code.to_ascii_uppercase())
    } else {
        Err(ApiError::not_found(format!("currency {code:?} not found")))
    }
}

/// Lists the currencies by id.
#[utoipa::path(
    get,
    path = "/api/v1/currencies",
    tag = "currencies",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of currencies", body = ListResponse<CurrencyResponse>),
    )
)]
pub async fn list_currencies(
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<Reply, ApiError> {
    let page = query.into_inner().page()?;
    let currencies = state.billing().list_currencies(page).await?;
    Reply::ok(&ListResponse::from_page(currencies, CurrencyResponse::from))
}

/// Creates a currency. The first one must be the default (rate 1); one
/// created with `is_default: true` becomes the default and every rate is
/// rebased on it.
#[utoipa::path(
    post,
    path = "/api/v1/currencies",
    tag = "currencies",
    params(KeyParam),
    request_body = NewCurrency,
    responses(
        (status = 201, description = "Created", body = CurrencyResponse,
            headers(("Location" = String, description = "Its path"), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "The code is taken (`already_exists`); no default currency exists yet, a default would be inactive, or a rebased rate would be out of range (`invalid_transition`); or the key is in flight", body = Problem, content_type = "application/problem+json"),
        KeyReused,
    )
)]
pub async fn create_currency(
    state: web::Data<AppState>,
    creation: KeyedCreation,
) -> Result<HttpResponse, ApiError> {
    let billing = state.billing();
    let create_currency = |new: NewCurrency| billing.create_currency(new.into());
    creation
        .run(billing, create_currency, CurrencyResponse::created)
        .await
}

/// Reads a currency by its ISO code (case-insensitive).
#[utoipa::path(
    get,
    path = "/api/v1/currencies/{code}",
    tag = "currencies",
    params(("code" = String, Path, description = "ISO 4217 code", example = "EUR")),
    responses(
        (status = 200, description = "The currency", body = CurrencyResponse,
            headers(("ETag" = String, description = "Its version"))),
        NoSuchCurrency,
    )
)]
pub async fn get_currency(
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> Result<Reply, ApiError> {
    let code = code_in_path(&code)?;
    let currency = state.billing().currency(&code).await?;
    CurrencyResponse::reply(currency)
}

/// Changes a currency's rate, name, symbol, active flag, or makes it the
/// default (rebasing every rate on it).
#[utoipa::path(
    patch,
    path = "/api/v1/currencies/{code}",
    tag = "currencies",
    params(("code" = String, Path, description = "ISO 4217 code", example = "USD"), IfMatchHeader),
    request_body = CurrencyChanges,
    responses(
        (status = 200, description = "The changed currency", body = CurrencyResponse,
            headers(("ETag" = String, description = "Its new version"))),
        NoSuchCurrency,
        (status = 409, description = "The default would be inactive or no longer a default, or a rebased rate would be out of range (`invalid_transition`); or changed concurrently too often (`locked`)", body = Problem, content_type = "application/problem+json"),
        VersionMismatch,
    )
)]
pub async fn update_currency(
    state: web::Data<AppState>,
    code: web::Path<String>,
    if_match: IfMatch,
    body: JsonBody,
) -> Result<Reply, ApiError> {
    let code = code_in_path(&code)?;
    let changes: CurrencyChanges = body.parse()?;
    let currency = state
        .billing()
        .update_currency(&code, changes.into(), if_match.0)
        .await?;
    CurrencyResponse::reply(currency)
}
