//! Invoices: create (with the next gapless number of the year), read, list
//! a user's, and the transitions `pay`, `fail`, `cancel` and `refund`.
//!
//! Paying and refunding need an `Idempotency-Key`: each runs at most once
//! per key, under the invoice's distributed lock, in one transaction (a
//! payment also activates or renews the linked subscription). States:
//! `pending → paid | failed | cancelled`, `failed → paid | cancelled`,
//! `paid → refunded`; a pending invoice past its `expires_at` cannot be
//! paid. Any other transition is 409 `invalid_transition`.

use actix_web::{HttpRequest, HttpResponse, web};
use billing_domain::entities::user_invoice;
use billing_domain::enums::InvoiceStatus;
use billing_service::{InvoiceAction, PaymentOutcome};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::idempotency::{self, KeyParam, RequiredKeyHeader, RequiredKeyParam};
use crate::problem::responses::{KeyReused, NoSuchInvoice, NoSuchUser, VersionMismatch};
use crate::problem::{ApiError, Problem};
use crate::representation;
use crate::request::{IfMatch, IfMatchHeader, JsonBody, RawBody, page_request};
use crate::response::{ListResponse, Reply, Versioned, versioned};
use crate::routes::operation::{KeyedAction, KeyedCreation};
use crate::state::AppState;
use crate::wire::{NewInvoice, Payment};

/// Registers the routes of this module.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/invoices").route(web::post().to(create_invoice)))
        .service(web::resource("/invoices/{id}").route(web::get().to(get_invoice)))
        .service(web::resource("/invoices/{id}/pay").route(web::post().to(pay_invoice)))
        .service(web::resource("/invoices/{id}/fail").route(web::post().to(fail_invoice)))
        .service(web::resource("/invoices/{id}/cancel").route(web::post().to(cancel_invoice)))
        .service(web::resource("/invoices/{id}/refund").route(web::post().to(refund_invoice)))
        .service(web::resource("/users/{id}/invoices").route(web::get().to(list_invoices)));
}

/// An invoice. `amount = net_amount + tax_amount`, all in `currency`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct InvoiceResponse {
    /// Identity.
    pub id: i64,
    /// The customer.
    pub user_id: i64,
    /// The plan invoiced.
    pub plan_id: i64,
    /// The subscription it pays for, if any.
    pub subscription_id: Option<i64>,
    /// `INV-<year>-<6 digits>`, sequential per year without gaps.
    #[schema(example = "INV-2026-000001")]
    pub invoice_number: String,
    /// Gross amount (net + tax), as a decimal string.
    #[schema(example = "11.90")]
    pub amount: String,
    /// Net amount, as a decimal string.
    #[schema(example = "10.00")]
    pub net_amount: String,
    /// Tax amount, as a decimal string.
    #[schema(example = "1.90")]
    pub tax_amount: String,
    /// ISO 4217 code of the amounts.
    #[schema(example = "EUR")]
    pub currency: String,
    /// Where it stands.
    #[schema(value_type = crate::wire::enums::InvoiceStatus)]
    pub status: InvoiceStatus,
    /// How it was paid.
    pub payment_method: Option<String>,
    /// The payment provider's reference.
    pub payment_reference: Option<String>,
    /// When it was issued; the tax rate in force then applies (RFC 3339,
    /// UTC).
    #[schema(value_type = String, format = DateTime)]
    pub invoiced_at: DateTime<Utc>,
    /// When it was paid.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub paid_at: Option<DateTime<Utc>>,
    /// After this instant a pending invoice can no longer be paid.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Creation time (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Last change (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    /// Version, also sent as `ETag`.
    pub version: i32,
}

impl From<user_invoice::Model> for InvoiceResponse {
    /// Every field but the lock's fencing token, which is internal.
    fn from(invoice: user_invoice::Model) -> Self {
        let money = |amount| representation::money(amount, &invoice.currency);
        Self {
            amount: money(invoice.amount),
            net_amount: money(invoice.net_amount),
            tax_amount: money(invoice.tax_amount),
            id: invoice.id,
            user_id: invoice.user_id,
            plan_id: invoice.tarif_plan_id,
            subscription_id: invoice.subscription_id,
            invoice_number: invoice.invoice_number,
            currency: invoice.currency,
            status: invoice.status,
            payment_method: invoice.payment_method,
            payment_reference: invoice.payment_reference,
            invoiced_at: invoice.invoiced_at,
            paid_at: invoice.paid_at,
            expires_at: invoice.expires_at,
            created_at: invoice.created_at,
            updated_at: invoice.updated_at,
            version: invoice.version,
        }
    }
}

/// `?status=&page=&per_page=` of a user's invoices.
#[derive(Clone, Copy, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceListQuery {
    /// Only invoices with this status.
    #[param(value_type = Option<crate::wire::enums::InvoiceStatus>)]
    pub status: Option<InvoiceStatus>,
    /// The page, from 1 (default 1).
    #[param(minimum = 1)]
    pub page: Option<u64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<u64>,
}

versioned!(
    InvoiceResponse,
    user_invoice::Model,
    "/api/v1/invoices/{}",
    id
);

/// The response to a payment or a refund: the invoice as the payment left
/// it.
fn payment_reply(outcome: PaymentOutcome) -> Result<Reply, ApiError> {
    InvoiceResponse::reply(outcome.invoice)
}

/// Creates a `pending` invoice: the plan's price in the invoice currency
/// (the plan's own, a fixed price of the plan, or converted from the
/// default currency), the tax in force now, and the next invoice number of
/// the year.
#[utoipa::path(
    post,
    path = "/api/v1/invoices",
    tag = "invoices",
    params(KeyParam),
    request_body = NewInvoice,
    responses(
        (status = 201, description = "Created (pending)", body = InvoiceResponse,
            headers(("Location" = String, description = "Its path"), ("ETag" = String, description = "Its version"))),
        (status = 404, description = "No such user, plan, subscription, currency or tax", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The user is deleted or suspended, the subscription is not the user's for this plan, a currency or the tax is inactive or has no rate in force (`invalid_transition`), the Idempotency-Key is in flight, or the records changed concurrently too often (`locked`)", body = Problem, content_type = "application/problem+json"),
        KeyReused,
    )
)]
pub async fn create_invoice(
    state: web::Data<AppState>,
    creation: KeyedCreation,
) -> Result<HttpResponse, ApiError> {
    let billing = state.billing();
    let create_invoice = |new: NewInvoice| billing.create_invoice(new.into());
    creation
        .run(billing, create_invoice, InvoiceResponse::created)
        .await
}

/// Reads an invoice.
#[utoipa::path(
    get,
    path = "/api/v1/invoices/{id}",
    tag = "invoices",
    params(("id" = i64, Path, description = "The invoice's id")),
    responses(
        (status = 200, description = "The invoice", body = InvoiceResponse,
            headers(("ETag" = String, description = "Its version"))),
        NoSuchInvoice,
    )
)]
pub async fn get_invoice(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<Reply, ApiError> {
    InvoiceResponse::reply(state.billing().invoice(id.into_inner()).await?)
}

/// Lists a user's invoices by id, optionally of one status.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}/invoices",
    tag = "invoices",
    params(("id" = i64, Path, description = "The user's id"), InvoiceListQuery),
    responses(
        (status = 200, description = "A page of invoices", body = ListResponse<InvoiceResponse>),
        NoSuchUser,
    )
)]
pub async fn list_invoices(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<InvoiceListQuery>,
) -> Result<Reply, ApiError> {
    let query = query.into_inner();
    let page = page_request(query.page, query.per_page)?;
    let invoices = state
        .billing()
        .list_invoices(id.into_inner(), query.status, page)
        .await?;
    Reply::ok(&ListResponse::from_page(invoices, InvoiceResponse::from))
}

/// Pays a pending (or failed) invoice at most once: marks it paid and, in
/// the same transaction, activates the linked subscription (renews an
/// active one, resumes and renews a paused one).
#[utoipa::path(
    post,
    path = "/api/v1/invoices/{id}/pay",
    tag = "invoices",
    params(("id" = i64, Path, description = "The invoice's id"), RequiredKeyParam, IfMatchHeader),
    request_body = Payment,
    responses(
        (status = 200, description = "The paid invoice (a replay carries `Idempotent-Replayed: true`)", body = InvoiceResponse,
            headers(("ETag" = String, description = "Its new version"), ("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        NoSuchInvoice,
        (status = 409, description = "Already paid, cancelled, refunded or expired (`invalid_transition`), another request holds the invoice (`locked`), or the key is in flight (`idempotency_in_flight`)", body = Problem, content_type = "application/problem+json"),
        VersionMismatch,
        KeyReused,
    )
)]
pub async fn pay_invoice(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<i64>,
    key: RequiredKeyHeader,
    if_match: IfMatch,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency::request_key(&request, &key.0, body.bytes())?;
    let payment: Payment = body.parse()?;
    idempotency::respond(
        state
            .billing()
            .pay_invoice(id.into_inner(), payment.into(), if_match.0, &key)
            .await?,
        payment_reply,
    )
}

/// Refunds a paid invoice at most once (the subscription is left as it
/// is).
#[utoipa::path(
    post,
    path = "/api/v1/invoices/{id}/refund",
    tag = "invoices",
    params(("id" = i64, Path, description = "The invoice's id"), RequiredKeyParam, IfMatchHeader),
    responses(
        (status = 200, description = "The refunded invoice (a replay carries `Idempotent-Replayed: true`)", body = InvoiceResponse,
            headers(("ETag" = String, description = "Its new version"), ("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        NoSuchInvoice,
        (status = 409, description = "Not paid (`invalid_transition`), another request holds the invoice (`locked`), or the key is in flight (`idempotency_in_flight`)", body = Problem, content_type = "application/problem+json"),
        VersionMismatch,
        KeyReused,
    )
)]
pub async fn refund_invoice(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<i64>,
    key: RequiredKeyHeader,
    if_match: IfMatch,
    body: RawBody,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency::request_key(&request, &key.0, &body.0)?;
    idempotency::respond(
        state
            .billing()
            .refund_invoice(id.into_inner(), if_match.0, &key)
            .await?,
        payment_reply,
    )
}

/// Runs `fail` or `cancel` (under the request's idempotency key, if any).
async fn transition(
    state: &AppState,
    request: KeyedAction,
    action: InvoiceAction,
) -> Result<HttpResponse, ApiError> {
    let billing = state.billing();
    let run = |id, if_match| billing.transition_invoice(id, action, if_match);
    request.run(billing, run, InvoiceResponse::reply).await
}

/// Records a failed payment attempt on a pending invoice (it may still be
/// paid before it expires).
#[utoipa::path(
    post,
    path = "/api/v1/invoices/{id}/fail",
    tag = "invoices",
    params(("id" = i64, Path, description = "The invoice's id"), IfMatchHeader, KeyParam),
    responses(
        (status = 200, description = "The failed invoice", body = InvoiceResponse,
            headers(("ETag" = String, description = "Its new version"))),
        NoSuchInvoice,
        (status = 409, description = "Not pending (`invalid_transition`), changed concurrently too often (`locked`), or the key is in flight", body = Problem, content_type = "application/problem+json"),
        VersionMismatch,
        KeyReused,
    )
)]
pub async fn fail_invoice(
    state: web::Data<AppState>,
    request: KeyedAction,
) -> Result<HttpResponse, ApiError> {
    transition(&state, request, InvoiceAction::Fail).await
}

/// Withdraws a pending or failed invoice.
#[utoipa::path(
    post,
    path = "/api/v1/invoices/{id}/cancel",
    tag = "invoices",
    params(("id" = i64, Path, description = "The invoice's id"), IfMatchHeader, KeyParam),
    responses(
        (status = 200, description = "The cancelled invoice", body = InvoiceResponse,
            headers(("ETag" = String, description = "Its new version"))),
        NoSuchInvoice,
        (status = 409, description = "Paid, refunded or cancelled already (`invalid_transition`), changed concurrently too often (`locked`), or the key is in flight", body = Problem, content_type = "application/problem+json"),
        VersionMismatch,
        KeyReused,
    )
)]
pub async fn cancel_invoice(
    state: web::Data<AppState>,
    request: KeyedAction,
) -> Result<HttpResponse, ApiError> {
    transition(&state, request, InvoiceAction::Cancel).await
}
