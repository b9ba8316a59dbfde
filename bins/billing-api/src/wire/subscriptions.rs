//! The body of `POST /subscriptions`.

use billing_service as service;
use serde::Deserialize;
use utoipa::ToSchema;

/// A subscription to create (status `pending` until its first payment).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// The subscriber.
    #[serde(deserialize_with = "super::integer::integer")]
    pub user_id: i64,
    /// The plan; it must be active.
    #[serde(deserialize_with = "super::integer::integer")]
    pub plan_id: i64,
}

impl From<NewSubscription> for service::NewSubscription {
    fn from(wire: NewSubscription) -> Self {
        let NewSubscription { user_id, plan_id } = wire;
        Self { user_id, plan_id }
    }
}
