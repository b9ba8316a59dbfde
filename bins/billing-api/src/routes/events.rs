//! Events: the outbox, read in publication order (`GET /events`, paged by
//! `after=<event id>`) and one by one (`GET /events/{id}`).
//!
//! Every change of a user, a subscription or an invoice is one event,
//! written in the change's transaction; the order is the commit order of
//! each resource's changes, and paging with `after` = the last id read
//! never skips an event that committed late.

use actix_web::web;
use billing_domain::entities::event;
use billing_domain::events::{EventType, ResourceKind};
use billing_service::EventQuery;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::problem::responses::NoSuchEvent;
use crate::problem::{ApiError, Problem};
use crate::response::Reply;
use crate::state::AppState;

/// The default page size of the cursor-paged lists.
pub const DEFAULT_LIMIT: u64 = 50;
/// The largest page size of the cursor-paged lists.
pub const MAX_LIMIT: u64 = 100;
/// The names of the kinds of resource events are about.
pub const RESOURCE_KIND_NAMES: [&str; 3] = [
    ResourceKind::User.as_str(),
    ResourceKind::Subscription.as_str(),
    ResourceKind::Invoice.as_str(),
];

/// Registers the routes of this module.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/events").route(web::get().to(list_events)))
        .service(web::resource("/events/{id}").route(web::get().to(get_event)));
}

/// The resource an event is about.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventResource {
    /// `user`, `subscription` or `invoice`.
    #[schema(example = "invoice")]
    pub kind: String,
    /// Its id.
    pub id: i64,
    /// Its version after the change (1, 2, 3 … without gaps per resource).
    pub version: i32,
}

/// One event. Webhook requests carry the same JSON.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventResponse {
    /// Identity; the same in every delivery of the event, so receivers
    /// deduplicate by it.
    pub id: i64,
    /// What happened, e.g. `invoice.paid` (see docs/API.md for the list).
    #[serde(rename = "type")]
    #[schema(example = "invoice.paid")]
    pub event_type: String,
    /// The resource that changed.
    pub resource: EventResource,
    /// The resource's stored fields after the change (never a password
    /// hash; a deleted user's events hold no e-mail).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// When the change was made (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: DateTime<Utc>,
}

impl TryFrom<event::Model> for EventResponse {
    type Error = ApiError;

    fn try_from(event: event::Model) -> Result<Self, ApiError> {
        Ok(Self {
            id: event.id,
            event_type: event.event_type.as_str().to_owned(),
            resource: EventResource {
                kind: event.resource_kind.as_str().to_owned(),
                id: event.resource_id,
                version: event.resource_version,
            },
            data: serde_json::from_str(&event.data).map_err(ApiError::internal)?,
            occurred_at: event.occurred_at,
        })
    }
}

/// A page of a cursor-paged list: pass `next_after` as `after` for the
/// next page (`null` when this page is empty: ask again later with the
/// same `after`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CursorPage<T> {
    /// The items, in list order.
    pub items: Vec<T>,
    /// The page size asked for (1 to 100).
    pub limit: u64,
    /// The id of the last item, for `after`.
    pub next_after: Option<i64>,
}

/// `?after=&limit=&type=&resource_kind=&resource_id=` of the events.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventListQuery {
    /// Only events after the event with this id (the last one read); 404
    /// when no such event exists.
    pub after: Option<i64>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    /// Only events of these types, comma-separated without spaces
    /// (`invoice.paid,invoice.refunded`).
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Only events about this kind of resource: `user`, `subscription` or
    /// `invoice`.
    pub resource_kind: Option<String>,
    /// Only events about resources with this id (of the kind
    /// `resource_kind` names, if given).
    pub resource_id: Option<i64>,
}

/// A checked page size.
///
/// # Errors
/// 400 `validation_failed` outside `1..=100`.
pub fn limit(limit: Option<u64>) -> Result<u64, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::validation(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )))
    }
}

fn event_query(query: EventListQuery) -> Result<EventQuery, ApiError> {
    let mut types = Vec::new();
    for name in query.event_type.iter().flat_map(|t| t.split(',')) {
        types.push(
            EventType::parse(name)
                .ok_or_else(|| ApiError::validation(format!("unknown event type `{name}`")))?,
        );
    }
    let resource_kind = query
        .resource_kind
        .as_deref()
        .map(|name| {
            ResourceKind::parse(name).ok_or_else(|| {
                ApiError::validation(format!(
                    "resource_kind must be user, subscription or invoice, not `{name}`"
                ))
            })
        })
        .transpose()?;
    Ok(EventQuery {
        after: query.after,
        limit: limit(query.limit)?,
        types,
        resource_kind,
        resource_id: query.resource_id,
    })
}

/// Lists events in publication order (commit order per resource).
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(EventListQuery),
    responses(
        (status = 200, description = "A page of events", body = CursorPage<EventResponse>),
        (status = 400, description = "A bad filter or limit", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`after` names no event", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_events(
    state: web::Data<AppState>,
    query: web::Query<EventListQuery>,
) -> Result<Reply, ApiError> {
    let query = event_query(query.into_inner())?;
    let limit = query.limit;
    let events = state.billing().list_events(query).await?;
    let next_after = events.last().map(|event| event.id);
    let items = events
        .into_iter()
        .map(EventResponse::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Reply::ok(&CursorPage {
        items,
        limit,
        next_after,
    })
}

/// Reads one event.
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    tag = "events",
    params(("id" = i64, Path, description = "The event's id")),
    responses(
        (status = 200, description = "The event", body = EventResponse),
        NoSuchEvent,
    )
)]
pub async fn get_event(state: web::Data<AppState>, id: web::Path<i64>) -> Result<Reply, ApiError> {
    let event = state.billing().event(id.into_inner()).await?;
    Reply::ok(&EventResponse::try_from(event)?)
}
