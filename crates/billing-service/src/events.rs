//! The outbox side of the use cases: which changes make events, and the one
//! place they are written ([`append_events`], in the change's transaction).
//!
//! Users, subscriptions and invoices make events; the catalogue (plans,
//! currencies, taxes), personal details and support cases do not. The
//! state an event carries is the row as the API shows it: a user's password
//! hash is never serialised.

use billing_domain::entities::event;
use billing_domain::entities::{
    currency, subscription, tarif_plan, tax, tax_rate, user, user_case, user_details, user_invoice,
};
use billing_domain::events::{self, EventType, ResourceKind};
use billing_repository::{
    EventFilter, MAX_PER_PAGE, NewEvent, Outbox, RepositoryError, Transaction,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::{Billing, BillingError, Resource};

/// A row whose changes may make an event.
pub(crate) trait Evented {
    /// Whether any change of this row makes an event.
    const EVENTED: bool;

    /// The event of the change from `before` (`None`: created) to `after`
    /// (as saved: its version is the new one), if this row makes events.
    ///
    /// # Errors
    /// [`BillingError::Internal`] when the row cannot be serialised.
    fn event(before: Option<&Self>, after: &Self) -> Result<Option<NewEvent>, BillingError>;
}

/// The event of type `event_type` about `row` (id `id`, at `version`).
fn new_event<T: Serialize>(
    event_type: EventType,
    id: i64,
    version: i32,
    row: &T,
) -> Result<Option<NewEvent>, BillingError> {
    let data = serde_json::to_string(row).map_err(|e| BillingError::Internal {
        source: Box::new(e),
    })?;
    Ok(Some(NewEvent {
        event_type,
        resource_id: id,
        resource_version: version,
        data,
        occurred_at: crate::now(),
    }))
}

impl Evented for user::Model {
    const EVENTED: bool = true;

    fn event(before: Option<&Self>, after: &Self) -> Result<Option<NewEvent>, BillingError> {
        new_event(
            events::user_event(before, after),
            after.id,
            after.version,
            after,
        )
    }
}

impl Evented for subscription::Model {
    const EVENTED: bool = true;

    fn event(before: Option<&Self>, after: &Self) -> Result<Option<NewEvent>, BillingError> {
        new_event(
            events::subscription_event(before, after),
            after.id,
            after.version,
            after,
        )
    }
}

impl Evented for user_invoice::Model {
    const EVENTED: bool = true;

    fn event(before: Option<&Self>, after: &Self) -> Result<Option<NewEvent>, BillingError> {
        new_event(
            events::invoice_event(before, after),
            after.id,
            after.version,
            after,
        )
    }
}

macro_rules! without_events {
    ($($module:ident),+ $(,)?) => {$(
        impl Evented for $module::Model {
            const EVENTED: bool = false;

            fn event(_: Option<&Self>, _: &Self) -> Result<Option<NewEvent>, BillingError> {
                Ok(None)
            }
        }
    )+};
}

without_events!(currency, tarif_plan, tax, tax_rate, user_case, user_details);

/// Writes `events` to the outbox in `tx` (one statement), after the
/// versioned updates of their rows: the one place events are written.
///
/// # Errors
/// [`BillingError::Unavailable`] or [`BillingError::Internal`] from the
/// database.
pub(crate) async fn append_events(
    tx: &Transaction,
    events: impl IntoIterator<Item = Option<NewEvent>>,
) -> Result<(), BillingError> {
    let events: Vec<NewEvent> = events.into_iter().flatten().collect();
    Ok(Outbox::append(tx, events).await?)
}

/// The event of the change of `after` from `before`, for
/// [`append_events`].
///
/// # Errors
/// As [`Evented::event`].
pub(crate) fn event_of<M: Evented>(
    before: Option<&M>,
    after: &M,
) -> Result<Option<NewEvent>, BillingError> {
    M::event(before, after)
}

/// `data` (a user's state in an event) with its e-mail replaced by
/// `erased_email`: what erasing a user leaves in its events.
pub(crate) fn scrub_user_data(data: &str, erased_email: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(data) {
        Ok(serde_json::Value::Object(mut fields)) => {
            if fields.contains_key("email") {
                fields.insert(
                    "email".to_owned(),
                    serde_json::Value::String(erased_email.to_owned()),
                );
            }
            serde_json::Value::Object(fields).to_string()
        }
        // Not a user's state: nothing personal to keep, so nothing kept.
        Ok(_) | Err(_) => "{}".to_owned(),
    }
}

/// What to list of the published events (see [`Billing::list_events`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events published after the event with this id (the last one a
    /// reader saw).
    pub after: Option<i64>,
    /// At most this many (1 to [`MAX_PER_PAGE`]).
    pub limit: u64,
    /// Only these types (all when empty).
    pub types: Vec<EventType>,
    /// Only events about this kind of resource.
    pub resource_kind: Option<ResourceKind>,
    /// Only events about the resource with this id.
    pub resource_id: Option<i64>,
}

/// The JSON of an event as readers and webhook receivers get it.
#[derive(Debug, Serialize)]
pub struct EventPayload<'a> {
    /// The event's id (deduplicate by it).
    pub id: i64,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The resource that changed.
    pub resource: ResourceRef,
    /// Its state after the change.
    pub data: &'a RawValue,
    /// When the change was made.
    pub occurred_at: DateTime<Utc>,
}

/// The resource an event is about.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ResourceRef {
    /// `user`, `subscription` or `invoice`.
    pub kind: ResourceKind,
    /// Its id.
    pub id: i64,
    /// Its version after the change.
    pub version: i32,
}

impl<'a> EventPayload<'a> {
    /// The payload of `event`.
    ///
    /// # Errors
    /// [`BillingError::Internal`] when the stored state is not JSON.
    pub fn of(event: &'a event::Model) -> Result<Self, BillingError> {
        let data: &RawValue = serde_json::from_str(&event.data).map_err(BillingError::internal)?;
        Ok(Self {
            id: event.id,
            event_type: event.event_type,
            resource: ResourceRef {
                kind: event.resource_kind,
                id: event.resource_id,
                version: event.resource_version,
            },
            data,
            occurred_at: event.occurred_at,
        })
    }

    /// The payload as the JSON text a webhook sends.
    ///
    /// # Errors
    /// [`BillingError::Internal`] when it cannot be serialised.
    pub fn to_json(&self) -> Result<String, BillingError> {
        serde_json::to_string(self).map_err(BillingError::internal)
    }
}

impl Billing {
    /// Published events matching `query`, in publication order: commit
    /// order for the events of one resource. Events committed since the
    /// last publication are published first, so a change acknowledged
    /// before this call is listed. Paging with `after` = the last id seen
    /// never skips an event: one that commits later is published after
    /// every event listed so far.
    ///
    /// # Errors
    /// [`BillingError::Validation`] for a limit out of range;
    /// [`BillingError::NotFound`] for an `after` that names no published
    /// event.
    pub async fn list_events(&self, query: EventQuery) -> Result<Vec<event::Model>, BillingError> {
        if query.limit == 0 || query.limit > MAX_PER_PAGE {
            return Err(BillingError::invalid(format!(
                "limit: between 1 and {MAX_PER_PAGE}"
            )));
        }
        self.publish_events().await?;
        let after_position = match query.after {
            None => None,
            Some(id) => {
                // Which ids exist is state, not input: as any reference
                // to a missing row, 404.
                let unknown = || BillingError::not_found(Resource::Event, id);
                match Outbox::get(self.db(), id).await {
                    Ok(event) => Some(event.position.ok_or_else(unknown)?),
                    Err(RepositoryError::NotFound { .. }) => return Err(unknown()),
                    Err(other) => return Err(other.into()),
                }
            }
        };
        let filter = EventFilter {
            after_position,
            types: query.types,
            resource_kind: query.resource_kind,
            resource_id: query.resource_id,
        };
        Ok(Outbox::list(self.db(), &filter, query.limit).await?)
    }

    /// Published event `id`.
    ///
    /// # Errors
    /// [`BillingError::NotFound`] (also for an event not published yet).
    pub async fn event(&self, id: i64) -> Result<event::Model, BillingError> {
        self.publish_events().await?;
        match Outbox::get(self.db(), id).await {
            Ok(event) if event.position.is_some() => Ok(event),
            Ok(_) | Err(RepositoryError::NotFound { .. }) => {
                Err(BillingError::not_found(Resource::Event, id))
            }
            Err(other) => Err(other.into()),
        }
    }
}
