//! `webhook_endpoint`: a URL that receives the events of chosen types,
//! signed with its secret.

use std::fmt;

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::EndpointStatus;

/// The signing secret of an endpoint (`whsec_…`).
///
/// It has no `Serialize` implementation and its `Debug` output is redacted:
/// it is shown once, when the endpoint is created.
#[derive(Clone, PartialEq, Eq, DeriveValueType)]
pub struct WebhookSecret(pub String);

impl WebhookSecret {
    /// What a decoded copy carries (the secret is never serialised).
    #[must_use]
    pub fn unknown() -> Self {
        Self(String::new())
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// A webhook endpoint.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "webhook_endpoint")]
pub struct Model {
    /// Identity.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Where events are POSTed (http or https).
    pub url: String,
    /// The event types it receives, as a JSON array of names; empty: all.
    pub event_types: String,
    /// The signing secret; never serialised.
    #[serde(skip, default = "WebhookSecret::unknown")]
    pub secret: WebhookSecret,
    /// Whether deliveries are attempted.
    pub status: EndpointStatus,
    /// When the row was created.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
}

/// `webhook_endpoint` has no relations the code follows.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
