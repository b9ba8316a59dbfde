//! Webhook endpoints and deliveries: registering where events go, queueing
//! each published event for every endpoint that wants it, the retry policy
//! of failed attempts, and redelivery. Sending is not here (this crate
//! speaks no HTTP): `billing-webhooks` sends what [`Billing::due_webhook_deliveries`]
//! returns and reports each attempt to [`Billing::record_webhook_attempt`].

use std::time::Duration;

use billing_domain::entities::webhook_endpoint::WebhookSecret;
use billing_domain::entities::{event, webhook_attempt, webhook_delivery, webhook_endpoint};
use billing_domain::enums::{DeliveryStatus, EndpointStatus};
use billing_domain::events::EventType;
use billing_repository::{
    DeliveryFilter, NewDelivery, Outbox, Page, WebhookDeliveries, WebhookEndpoints,
};
use chrono::{DateTime, TimeDelta, Utc};
use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::{Billing, BillingError, PageRequest, Resource};

/// The longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A webhook endpoint to register.
#[derive(Clone, Debug)]
pub struct NewWebhookEndpoint {
    /// Where events are POSTed: an `http` or `https` URL.
    pub url: String,
    /// The event types it receives (`invoice.paid` …); empty or absent:
    /// every type.
    pub event_types: Vec<String>,
}

/// A registered endpoint with its signing secret (shown once; a replay of
/// the creation's idempotency key shows it again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedEndpoint {
    /// The endpoint.
    pub endpoint: webhook_endpoint::Model,
    /// Its signing secret (`whsec_…`).
    pub secret: String,
}

/// How failed attempts are retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// The longest wait before the first retry (it doubles per attempt).
    pub base: Duration,
    /// The longest wait between two attempts.
    pub cap: Duration,
    /// How long after it was queued a delivery is retried before it is
    /// given up (and its endpoint marked `failing`).
    pub window: Duration,
}

impl Default for RetryPolicy {
    /// 30 s, doubling, at most 12 h apart, for 3 days (about 17 attempts).
    fn default() -> Self {
        Self {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(12 * 60 * 60),
            window: Duration::from_secs(3 * 24 * 60 * 60),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempts` (from 1): half of
    /// `min(cap, base × 2^(attempts−1))` plus a random part up to the
    /// other half, so endpoints that failed together are not retried in
    /// lockstep.
    #[must_use]
    pub fn delay(&self, attempts: u32) -> Duration {
        let factor = 1_u32
            .checked_shl(attempts.saturating_sub(1).min(20))
            .unwrap_or(u32::MAX);
        let ceiling = self.base.saturating_mul(factor).min(self.cap);
        let half = ceiling / 2;
        let micros = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(rand::rng().random_range(0..=micros))
    }
}

/// How one attempt ended, as the sender saw it.
#[derive(Clone, Debug)]
pub struct AttemptOutcome {
    /// When the request was sent.
    pub attempted_at: DateTime<Utc>,
    /// The HTTP status answered, if any.
    pub status_code: Option<u16>,
    /// Why no status was answered (time-out, connection refused, …).
    pub error: Option<String>,
    /// How long it took.
    pub duration: Duration,
}

impl AttemptOutcome {
    /// Whether the endpoint acknowledged the event (2xx).
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.status_code
            .is_some_and(|code| (200..300).contains(&code))
    }
}

/// A delivery due now, with what sending it needs.
#[derive(Clone, Debug)]
pub struct DueDelivery {
    /// The delivery.
    pub delivery: webhook_delivery::Model,
    /// Its endpoint, secret included.
    pub endpoint: webhook_endpoint::Model,
    /// Its event, as published (scrubbed if its user was erased).
    pub event: event::Model,
}

/// The event types an endpoint receives (empty: all), from its stored list.
fn endpoint_types(endpoint: &webhook_endpoint::Model) -> Vec<EventType> {
    serde_json::from_str::<Vec<String>>(&endpoint.event_types)
        .unwrap_or_default()
        .iter()
        .filter_map(|name| EventType::parse(name))
        .collect()
}

/// Whether `endpoint` receives events of type `event_type`.
fn wants(endpoint: &webhook_endpoint::Model, event_type: EventType) -> bool {
    let types = endpoint_types(endpoint);
    types.is_empty() || types.contains(&event_type)
}

/// `url` if it is an absolute `http`/`https` URL with a host and no
/// credentials.
fn valid_url(url: &str) -> Result<String, BillingError> {
    if url.len() > MAX_URL_LEN {
        return Err(BillingError::invalid(format!(
            "url: at most {MAX_URL_LEN} characters"
        )));
    }
    if !crate::rules::is_webhook_url(url) {
        return Err(BillingError::invalid(
            "url: an http or https URL with a host name or IPv4 address, \
             without credentials or whitespace",
        ));
    }
    let parsed = url::Url::parse(url)
        .map_err(|e| BillingError::invalid(format!("url: not a valid URL ({e})")))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => {
            return Err(BillingError::invalid(format!(
                "url: the scheme must be http or https, not {other}"
            )));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(BillingError::invalid("url: a host is required"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(BillingError::invalid(
            "url: credentials in the URL are refused",
        ));
    }
    Ok(parsed.to_string())
}

/// A new signing secret: `whsec_` and 32 random bytes in hex.
fn new_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("whsec_{}", hex::encode(bytes))
}

impl Billing {
    /// Registers a webhook endpoint (status `enabled`); returns it with its
    /// signing secret, which is not shown again (but to a replay of the
    /// same idempotency key).
    ///
    /// # Errors
    /// [`BillingError::Validation`] for a URL that is not http(s) or an
    /// unknown event type.
    pub async fn create_webhook_endpoint(
        &self,
        new: NewWebhookEndpoint,
    ) -> Result<CreatedEndpoint, BillingError> {
        let url = valid_url(&new.url)?;
        let mut types = Vec::with_capacity(new.event_types.len());
        for name in &new.event_types {
            let kind = EventType::parse(name).ok_or_else(|| {
                BillingError::invalid(format!("event_types: unknown event type {name:?}"))
            })?;
            if !types.contains(&kind.as_str()) {
                types.push(kind.as_str());
            }
        }
        let types = serde_json::to_string(&types).map_err(BillingError::internal)?;
        let secret = new_secret();
        self.recording_transaction(move |tx| {
            let (url, types, secret) = (url.clone(), types.clone(), secret.clone());
            Box::pin(async move {
                let mut endpoint =
                    WebhookEndpoints::insert(tx, url, types, WebhookSecret(secret.clone())).await?;
                // The outcome is serialised for the idempotency record.
                endpoint.secret = WebhookSecret::unknown();
                Ok(Some(CreatedEndpoint { endpoint, secret }))
            })
        })
        .await
    }

    /// Webhook endpoint `id`.
    ///
    /// # Errors
    /// [`BillingError::NotFound`].
    pub async fn webhook_endpoint(&self, id: i64) -> Result<webhook_endpoint::Model, BillingError> {
        Ok(WebhookEndpoints::get(self.db(), id).await?)
    }

    /// A page of the webhook endpoints, by id.
    ///
    /// # Errors
    /// [`BillingError::Unavailable`] when the database cannot be read.
    pub async fn list_webhook_endpoints(
        &self,
        page: PageRequest,
    ) -> Result<Page<webhook_endpoint::Model>, BillingError> {
        Ok(WebhookEndpoints::list(self.db(), page).await?)
    }

    /// Enables or disables endpoint `id` (enabling a `failing` endpoint
    /// resumes its deliveries).
    ///
    /// # Errors
    /// [`BillingError::NotFound`].
    pub async fn set_webhook_endpoint_status(
        &self,
        id: i64,
        status: EndpointStatus,
    ) -> Result<webhook_endpoint::Model, BillingError> {
        WebhookEndpoints::get(self.db(), id).await?;
        Ok(WebhookEndpoints::set_status(self.db(), id, status).await?)
    }

    /// Deletes endpoint `id` with its deliveries and their attempts.
    ///
    /// # Errors
    /// [`BillingError::NotFound`].
    pub async fn delete_webhook_endpoint(&self, id: i64) -> Result<(), BillingError> {
        let deleted = self
            .db()
            .transaction(move |tx| Box::pin(async move { WebhookEndpoints::delete(tx, id).await }))
            .await?;
        if deleted {
            Ok(())
        } else {
            Err(BillingError::not_found(Resource::WebhookEndpoint, id))
        }
    }

    /// Publishes the committed events not published yet (see
    /// `billing_repository::Outbox::publish`) and queues a delivery of
    /// each for every endpoint that wants it, in one transaction; returns
    /// how many events it published.
    ///
    /// # Errors
    /// [`BillingError::Unavailable`] when the database cannot be reached.
    pub async fn publish_events(&self) -> Result<usize, BillingError> {
        self.db()
            .transaction(|tx| {
                Box::pin(async move {
                    let events = Outbox::publish(tx).await?;
                    if events.is_empty() {
                        return Ok::<_, BillingError>(0);
                    }
                    let endpoints = WebhookEndpoints::all(tx).await?;
                    let deliveries = events
                        .iter()
                        .flat_map(|event| {
                            endpoints
                                .iter()
                                .filter(|endpoint| wants(endpoint, event.event_type))
                                .map(|endpoint| NewDelivery {
                                    endpoint_id: endpoint.id,
                                    event: event.clone(),
                                })
                        })
                        .collect();
                    WebhookDeliveries::queue(tx, deliveries).await?;
                    Ok(events.len())
                })
            })
            .await
    }

    /// Up to `limit` deliveries due now, each the first pending one of its
    /// endpoint and resource, with their endpoints and events.
    ///
    /// # Errors
    /// [`BillingError::Unavailable`] when the database cannot be reached.
    pub async fn due_webhook_deliveries(
        &self,
        limit: u64,
    ) -> Result<Vec<DueDelivery>, BillingError> {
        let deliveries = WebhookDeliveries::due(self.db(), crate::now(), limit).await?;
        let mut due = Vec::with_capacity(deliveries.len());
        let mut endpoints: Vec<webhook_endpoint::Model> = Vec::new();
        for delivery in deliveries {
            let endpoint = match endpoints.iter().find(|e| e.id == delivery.endpoint_id) {
                Some(endpoint) => endpoint.clone(),
                None => {
                    let endpoint = WebhookEndpoints::get(self.db(), delivery.endpoint_id).await?;
                    endpoints.push(endpoint.clone());
                    endpoint
                }
            };
            let event = Outbox::get(self.db(), delivery.event_id).await?;
            due.push(DueDelivery {
                delivery,
                endpoint,
                event,
            });
        }
        Ok(due)
    }

    /// Records an attempt of `due` and decides what follows: `succeeded`
    /// on a 2xx; otherwise another attempt after `policy`'s delay, or,
    /// past its window, `failed` and the endpoint marked `failing`.
    /// Returns the delivery's new status.
    ///
    /// # Errors
    /// [`BillingError::Unavailable`] when the database cannot be reached.
    pub async fn record_webhook_attempt(
        &self,
        due: &DueDelivery,
        outcome: AttemptOutcome,
        policy: &RetryPolicy,
    ) -> Result<DeliveryStatus, BillingError> {
        let attempts = u32::try_from(due.delivery.attempts).unwrap_or(0) + 1;
        let now = crate::now();
        let (status, next) = if outcome.succeeded() {
            (DeliveryStatus::Succeeded, None)
        } else {
            let next = now + TimeDelta::from_std(policy.delay(attempts)).unwrap_or(TimeDelta::MAX);
            let deadline = due.delivery.created_at
                + TimeDelta::from_std(policy.window).unwrap_or(TimeDelta::MAX);
            if next > deadline {
                (DeliveryStatus::Failed, None)
            } else {
                (DeliveryStatus::Pending, Some(next))
            }
        };
        let attempt = webhook_attempt::Model {
            id: 0,
            delivery_id: due.delivery.id,
            attempted_at: outcome.attempted_at,
            status_code: outcome.status_code.map(i32::from),
            error: outcome
                .error
                .map(|e| e.chars().take(512).collect::<String>()),
            duration_ms: i64::try_from(outcome.duration.as_millis()).unwrap_or(i64::MAX),
        };
        let endpoint_id = due.endpoint.id;
        self.db()
            .transaction(move |tx| {
                Box::pin(async move {
                    WebhookDeliveries::record_attempt(tx, attempt, status, next).await?;
                    match status {
                        DeliveryStatus::Failed => {
                            WebhookEndpoints::set_status(tx, endpoint_id, EndpointStatus::Failing)
                                .await?;
                        }
                        DeliveryStatus::Pending | DeliveryStatus::Succeeded => {}
                    }
                    Ok::<_, BillingError>(())
                })
            })
            .await?;
        Ok(status)
    }

    /// Deliveries matching `filter`, by id, at most `limit`.
    ///
    /// # Errors
    /// [`BillingError::Unavailable`] when the database cannot be reached.
    pub async fn list_webhook_deliveries(
        &self,
        filter: DeliveryFilter,
        limit: u64,
    ) -> Result<Vec<webhook_delivery::Model>, BillingError> {
        Ok(WebhookDeliveries::list(self.db(), &filter, limit).await?)
    }

    /// Delivery `id` and its attempts, oldest first.
    ///
    /// # Errors
    /// [`BillingError::NotFound`].
    pub async fn webhook_delivery(
        &self,
        id: i64,
    ) -> Result<(webhook_delivery::Model, Vec<webhook_attempt::Model>), BillingError> {
        let delivery = WebhookDeliveries::get(self.db(), id).await?;
        let attempts = WebhookDeliveries::attempts(self.db(), id).await?;
        Ok((delivery, attempts))
    }

    /// Queues delivery `id` again, due at once, with a new retry window.
    ///
    /// # Errors
    /// [`BillingError::NotFound`].
    pub async fn redeliver_webhook(
        &self,
        id: i64,
    ) -> Result<webhook_delivery::Model, BillingError> {
        WebhookDeliveries::get(self.db(), id).await?;
        self.recording_transaction(move |tx| {
            Box::pin(async move { Ok(Some(WebhookDeliveries::redeliver(tx, id).await?)) })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_are_accepted() {
        assert!(valid_url("https://example.com/hook").is_ok());
        assert!(valid_url("http://127.0.0.1:9000/").is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "gopher://x",
            "example.com/hook",
            "https://user:pw@example.com/",
            "",
        ] {
            assert!(valid_url(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn retry_delays_double_within_jitter_and_cap() {
        let policy = RetryPolicy::default();
        for attempts in 1..30 {
            let ceiling = policy
                .base
                .saturating_mul(1 << (attempts - 1).min(20))
                .min(policy.cap);
            let delay = policy.delay(attempts);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{attempts}: {delay:?}"
            );
        }
        // About 17 attempts fit the three days.
        let total: Duration = (1..=17)
            .map(|n| policy.base.saturating_mul(1 << (n - 1)).min(policy.cap))
            .sum();
        assert!(total >= policy.window / 2);
    }

    #[test]
    fn secrets_are_prefixed_and_random() {
        let (a, b) = (new_secret(), new_secret());
        assert!(a.starts_with("whsec_") && a.len() == 70);
        assert_ne!(a, b);
    }
}
