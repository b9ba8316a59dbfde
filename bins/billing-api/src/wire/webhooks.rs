//! The body of `POST /webhook-endpoints`.

use billing_service as service;
use serde::Deserialize;
use utoipa::ToSchema;

/// A webhook endpoint to register.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookEndpoint {
    /// Where events are POSTed: an `http` or `https` URL.
    #[schema(example = "https://example.com/billing-events")]
    pub url: String,
    /// The event types it receives (`invoice.paid` …); empty or absent:
    /// every type.
    #[serde(default)]
    pub event_types: Vec<String>,
}

impl From<NewWebhookEndpoint> for service::NewWebhookEndpoint {
    fn from(wire: NewWebhookEndpoint) -> Self {
        let NewWebhookEndpoint { url, event_types } = wire;
        Self { url, event_types }
    }
}
