//! The OpenAPI document of the API, generated from the handler types with
//! utoipa ([`ApiDoc`]), and `GET /openapi.json`, which serves it.
//!
//! Route authors add their handlers to `paths(...)` and their body types
//! to `components(schemas(...))`; problem responses that several
//! operations share are declared once in [`crate::problem::responses`]. Every operation under `/api/v1` gets the
//! `bearer` security requirement ([`BearerSecurity`]) and the problems any
//! request may meet ([`CommonProblems`]) automatically; the input rules
//! ([`crate::schema_rules`]) and the links of the creations
//! ([`crate::links`]) are added to the rendered document ([`document`]).

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

use crate::problem::{PROBLEM_JSON, Problem, ProblemCode};

use crate::routes;
use crate::routes::health::{DependencyStatus, HealthStatus, Liveness, Readiness};

/// The name of the bearer-token security scheme in the document.
pub const BEARER_SCHEME: &str = "bearer";

/// The OpenAPI document of `billing-api`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "billing-api",
        description = "The billing HTTP API: users, currencies, taxes, plans, subscriptions and invoices. \
            Money is a decimal string, never a number; timestamps are RFC 3339 in UTC. \
            Single resources carry their version as `ETag`; changes accept `If-Match`. \
            POSTs honour `Idempotency-Key` (required to pay and refund). \
            Errors are RFC 9457 problem details (application/problem+json) with a stable `code`. \
            Every /api/v1 request needs `Authorization: Bearer <token>` when the server has a token.",
    ),
    paths(
        crate::routes::health::live,
        crate::routes::health::ready,
        crate::metrics::metrics,
        openapi_json,
        routes::currencies::list_currencies,
        routes::currencies::create_currency,
        routes::currencies::get_currency,
        routes::currencies::update_currency,
        routes::taxes::list_taxes,
        routes::taxes::create_tax,
        routes::taxes::get_tax,
        routes::taxes::update_tax,
        routes::taxes::list_tax_rates,
        routes::users::create_user,
        routes::users::list_users,
        routes::users::get_user,
        routes::users::update_user,
        routes::users::delete_user,
        routes::users::put_user_details,
        routes::users::get_user_details,
        routes::users::delete_user_details,
        routes::cases::create_case,
        routes::cases::list_cases,
        routes::cases::get_case,
        routes::cases::update_case,
        routes::plans::list_plans,
        routes::plans::create_plan,
        routes::plans::get_plan,
        routes::plans::update_plan,
        routes::subscriptions::create_subscription,
        routes::subscriptions::get_subscription,
        routes::subscriptions::list_subscriptions,
        routes::subscriptions::activate_subscription,
        routes::subscriptions::pause_subscription,
        routes::subscriptions::cancel_subscription,
        routes::subscriptions::expire_subscription,
        routes::invoices::create_invoice,
        routes::invoices::get_invoice,
        routes::invoices::list_invoices,
        routes::invoices::pay_invoice,
        routes::invoices::refund_invoice,
        routes::invoices::fail_invoice,
        routes::invoices::cancel_invoice,
        routes::events::list_events,
        routes::events::get_event,
        routes::webhooks::create_endpoint,
        routes::webhooks::list_endpoints,
        routes::webhooks::get_endpoint,
        routes::webhooks::update_endpoint,
        routes::webhooks::delete_endpoint,
        routes::webhooks::list_deliveries,
        routes::webhooks::get_delivery,
        routes::webhooks::redeliver,
    ),
    components(schemas(
        Problem,
        ProblemCode,
        Liveness,
        Readiness,
        HealthStatus,
        DependencyStatus,
        routes::currencies::CurrencyResponse,
        routes::taxes::TaxResponse,
        routes::taxes::TaxRateResponse,
        routes::users::UserResponse,
        routes::users::UserDetailsResponse,
        routes::cases::CaseResponse,
        routes::plans::PlanResponse,
        routes::subscriptions::SubscriptionResponse,
        routes::invoices::InvoiceResponse,
        routes::events::EventResponse,
        routes::events::EventResource,
        routes::webhooks::EndpointResponse,
        routes::webhooks::EndpointChanges,
        routes::webhooks::DeliveryResponse,
        routes::webhooks::AttemptResponse,
        crate::wire::NewWebhookEndpoint,
        crate::wire::NewCurrency,
        crate::wire::CurrencyChanges,
        crate::wire::NewTax,
        crate::wire::TaxChanges,
        crate::wire::NewUser,
        crate::wire::UserChanges,
        crate::wire::UserDetailsInput,
        crate::wire::NewCase,
        crate::wire::CaseChanges,
        crate::wire::NewPlan,
        crate::wire::PlanChanges,
        crate::wire::NewSubscription,
        crate::wire::NewInvoice,
        crate::wire::Payment,
        crate::wire::enums::UserStatus,
        crate::wire::enums::UserRole,
        crate::wire::enums::CaseStatus,
        crate::wire::enums::BillingPeriod,
        crate::wire::enums::SubscriptionStatus,
        crate::wire::enums::InvoiceStatus,
    )),
    modifiers(&BearerSecurity, &CommonProblems),
    tags(
        (name = "operations", description = "Health, metrics and this document; no token needed."),
        (name = "currencies", description = "ISO 4217 currencies and their exchange rates against the default currency."),
        (name = "taxes", description = "Taxes and their rate history."),
        (name = "users", description = "Users and their personal details."),
        (name = "cases", description = "Support cases of users."),
        (name = "plans", description = "Tariff plans and their prices."),
        (name = "subscriptions", description = "Subscriptions and their lifecycle."),
        (name = "invoices", description = "Invoices, payments and refunds."),
        (name = "events", description = "Every change of a user, subscription or invoice, in commit order."),
        (name = "webhooks", description = "Webhook endpoints and the signed deliveries of events to them."),
    )
)]
pub struct ApiDoc;

/// Documents the problems every `/api/v1` operation may answer besides its
/// own: 400 `validation_failed` (a bad path, query, header or body), 401
/// `unauthorized`, 413 and 415 for operations that read a body, 500
/// `internal_error` and 503 `dependency_unavailable`; all as
/// `application/problem+json` with the [`Problem`] schema.
#[derive(Clone, Copy, Debug)]
pub struct CommonProblems;

impl CommonProblems {
    fn problem(description: &str) -> RefOr<Response> {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    PROBLEM_JSON,
                    Content::new(Some(Ref::from_schema_name("Problem"))),
                )
                .build(),
        )
    }
}

impl Modify for CommonProblems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            if !path.starts_with("/api/v1") {
                continue;
            }
            let operations = [
                (&mut item.get, false),
                (&mut item.put, true),
                (&mut item.post, true),
                (&mut item.delete, false),
                (&mut item.patch, true),
            ];
            for (operation, reads_body) in operations {
                let Some(operation) = operation.as_mut() else {
                    continue;
                };
                let has_json_body = operation.request_body.is_some();
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| Self::problem(description));
                };
                add(
                    "400",
                    "`validation_failed`: a malformed path, query, header or body, or a value the rules refuse",
                );
                add("401", "`unauthorized`: no or a wrong bearer token");
                if reads_body {
                    add("413", "`payload_too_large`: the body exceeds the limit");
                }
                if has_json_body {
                    add(
                        "415",
                        "`unsupported_media_type`: the body is not sent as application/json",
                    );
                }
                add(
                    "500",
                    "`internal_error`: a fault of the server; the X-Request-Id header identifies it in the logs",
                );
                add(
                    "503",
                    "`dependency_unavailable`: the database or Redis cannot be reached; `overloaded`: this instance has too many registrations queued; retry after the `Retry-After` header's seconds",
                );
            }
        }
    }
}

/// Declares the `bearer` security scheme and requires it on every
/// operation under `/api/v1`.
#[derive(Clone, Copy, Debug)]
pub struct BearerSecurity;

impl Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        for (path, item) in &mut openapi.paths.paths {
            if !path.starts_with("/api/v1") {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                operation.security = Some(vec![SecurityRequirement::new(
                    BEARER_SCHEME,
                    Vec::<String>::new(),
                )]);
            }
        }
    }
}

/// The document as JSON, rendered once per process: [`ApiDoc`] with the
/// input rules and the links of the creations.
#[must_use]
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        serde_json::to_value(ApiDoc::openapi())
            .and_then(|mut document| {
                crate::schema_rules::add_input_rules(&mut document);
                crate::links::add_links(&mut document);
                serde_json::to_string(&document)
            })
            .unwrap_or_else(|e| format!(r#"{{"error":"cannot render the OpenAPI document: {e}"}}"#))
    })
}

/// `GET /openapi.json`: this API's OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .content_type("application/json")
        .body(document())
}
