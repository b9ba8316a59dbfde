//! The events of the outbox: what kind of change a new row state is, derived
//! from the state before and after it by the lifecycles' transitions.
//!
//! Every change of a user, a subscription or an invoice is one event, named
//! `<resource>.<what happened>` (`invoice.paid`, `subscription.renewed`).
//! The type is a function of the two states only, matched exhaustively, so
//! a new status forces a decision about the event it makes.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::entities::{subscription, user, user_invoice};
use crate::enums::{InvoiceStatus, SubscriptionStatus, UserStatus};

/// The kind of resource an event is about.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// A user account (`user`).
    #[sea_orm(string_value = "user")]
    User,
    /// A subscription (`subscription`).
    #[sea_orm(string_value = "subscription")]
    Subscription,
    /// An invoice (`invoice`).
    #[sea_orm(string_value = "invoice")]
    Invoice,
}

impl ResourceKind {
    /// The stored name (`user`, `subscription`, `invoice`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Subscription => "subscription",
            Self::Invoice => "invoice",
        }
    }

    /// The kind named `name`, if any.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        [Self::User, Self::Subscription, Self::Invoice]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// What happened to a resource.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(40))")]
pub enum EventType {
    /// A user registered.
    #[sea_orm(string_value = "user.created")]
    #[serde(rename = "user.created")]
    UserCreated,
    /// A user's e-mail, role or status (other than deletion) changed.
    #[sea_orm(string_value = "user.updated")]
    #[serde(rename = "user.updated")]
    UserUpdated,
    /// A user was deleted (erased).
    #[sea_orm(string_value = "user.deleted")]
    #[serde(rename = "user.deleted")]
    UserDeleted,
    /// A subscription was created (pending its first payment).
    #[sea_orm(string_value = "subscription.created")]
    #[serde(rename = "subscription.created")]
    SubscriptionCreated,
    /// A pending subscription was paid and started.
    #[sea_orm(string_value = "subscription.activated")]
    #[serde(rename = "subscription.activated")]
    SubscriptionActivated,
    /// An active subscription was paid for another period.
    #[sea_orm(string_value = "subscription.renewed")]
    #[serde(rename = "subscription.renewed")]
    SubscriptionRenewed,
    /// An active subscription was paused.
    #[sea_orm(string_value = "subscription.paused")]
    #[serde(rename = "subscription.paused")]
    SubscriptionPaused,
    /// A paused subscription runs again (resumed, or paid while paused).
    #[sea_orm(string_value = "subscription.resumed")]
    #[serde(rename = "subscription.resumed")]
    SubscriptionResumed,
    /// A subscription was cancelled (final).
    #[sea_orm(string_value = "subscription.cancelled")]
    #[serde(rename = "subscription.cancelled")]
    SubscriptionCancelled,
    /// A subscription ran out (final).
    #[sea_orm(string_value = "subscription.expired")]
    #[serde(rename = "subscription.expired")]
    SubscriptionExpired,
    /// A subscription changed without changing status or period.
    #[sea_orm(string_value = "subscription.updated")]
    #[serde(rename = "subscription.updated")]
    SubscriptionUpdated,
    /// An invoice was issued.
    #[sea_orm(string_value = "invoice.created")]
    #[serde(rename = "invoice.created")]
    InvoiceCreated,
    /// An invoice was paid.
    #[sea_orm(string_value = "invoice.paid")]
    #[serde(rename = "invoice.paid")]
    InvoicePaid,
    /// A payment of an invoice failed (it may still be paid).
    #[sea_orm(string_value = "invoice.failed")]
    #[serde(rename = "invoice.failed")]
    InvoiceFailed,
    /// An invoice was withdrawn (final).
    #[sea_orm(string_value = "invoice.cancelled")]
    #[serde(rename = "invoice.cancelled")]
    InvoiceCancelled,
    /// A paid invoice was paid back (final).
    #[sea_orm(string_value = "invoice.refunded")]
    #[serde(rename = "invoice.refunded")]
    InvoiceRefunded,
    /// An invoice changed without changing status.
    #[sea_orm(string_value = "invoice.updated")]
    #[serde(rename = "invoice.updated")]
    InvoiceUpdated,
}

impl EventType {
    /// Every event type, in documentation order.
    pub const ALL: [Self; 17] = [
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDeleted,
        Self::SubscriptionCreated,
        Self::SubscriptionActivated,
        Self::SubscriptionRenewed,
        Self::SubscriptionPaused,
        Self::SubscriptionResumed,
        Self::SubscriptionCancelled,
        Self::SubscriptionExpired,
        Self::SubscriptionUpdated,
        Self::InvoiceCreated,
        Self::InvoicePaid,
        Self::InvoiceFailed,
        Self::InvoiceCancelled,
        Self::InvoiceRefunded,
        Self::InvoiceUpdated,
    ];

    /// The name (`invoice.paid`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDeleted => "user.deleted",
            Self::SubscriptionCreated => "subscription.created",
            Self::SubscriptionActivated => "subscription.activated",
            Self::SubscriptionRenewed => "subscription.renewed",
            Self::SubscriptionPaused => "subscription.paused",
            Self::SubscriptionResumed => "subscription.resumed",
            Self::SubscriptionCancelled => "subscription.cancelled",
            Self::SubscriptionExpired => "subscription.expired",
            Self::SubscriptionUpdated => "subscription.updated",
            Self::InvoiceCreated => "invoice.created",
            Self::InvoicePaid => "invoice.paid",
            Self::InvoiceFailed => "invoice.failed",
            Self::InvoiceCancelled => "invoice.cancelled",
            Self::InvoiceRefunded => "invoice.refunded",
            Self::InvoiceUpdated => "invoice.updated",
        }
    }

    /// The type named `name`, if any.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The kind of resource events of this type are about.
    #[must_use]
    pub const fn resource_kind(self) -> ResourceKind {
        match self {
            Self::UserCreated | Self::UserUpdated | Self::UserDeleted => ResourceKind::User,
            Self::SubscriptionCreated
            | Self::SubscriptionActivated
            | Self::SubscriptionRenewed
            | Self::SubscriptionPaused
            | Self::SubscriptionResumed
            | Self::SubscriptionCancelled
            | Self::SubscriptionExpired
            | Self::SubscriptionUpdated => ResourceKind::Subscription,
            Self::InvoiceCreated
            | Self::InvoicePaid
            | Self::InvoiceFailed
            | Self::InvoiceCancelled
            | Self::InvoiceRefunded
            | Self::InvoiceUpdated => ResourceKind::Invoice,
        }
    }
}

/// The event of a user's change from `before` (`None`: it was created) to
/// `after`.
#[must_use]
pub fn user_event(before: Option<&user::Model>, after: &user::Model) -> EventType {
    let Some(before) = before else {
        return EventType::UserCreated;
    };
    match (before.status, after.status) {
        (UserStatus::Pending | UserStatus::Active | UserStatus::Suspended, UserStatus::Deleted) => {
            EventType::UserDeleted
        }
        (
            UserStatus::Pending | UserStatus::Active | UserStatus::Suspended | UserStatus::Deleted,
            UserStatus::Pending | UserStatus::Active | UserStatus::Suspended,
        )
        | (UserStatus::Deleted, UserStatus::Deleted) => EventType::UserUpdated,
    }
}

/// The event of a subscription's change from `before` (`None`: it was
/// created) to `after`.
#[must_use]
pub fn subscription_event(
    before: Option<&subscription::Model>,
    after: &subscription::Model,
) -> EventType {
    use SubscriptionStatus::{Active, Cancelled, Expired, Paused, Pending};
    let Some(before) = before else {
        return EventType::SubscriptionCreated;
    };
    match (before.status, after.status) {
        (Pending, Active) => EventType::SubscriptionActivated,
        (Active, Active) if after.expires_at != before.expires_at => EventType::SubscriptionRenewed,
        (Paused, Active) => EventType::SubscriptionResumed,
        (Active, Paused) => EventType::SubscriptionPaused,
        (Pending | Active | Paused, Cancelled) => EventType::SubscriptionCancelled,
        (Pending | Active | Paused, Expired) => EventType::SubscriptionExpired,
        // The same status otherwise, or a move the lifecycle refuses
        // (so never written through it): a plain update.
        (Active, Active)
        | (Pending, Pending | Paused)
        | (Paused, Paused | Pending)
        | (Active, Pending)
        | (Cancelled | Expired, Pending | Active | Paused | Cancelled | Expired) => {
            EventType::SubscriptionUpdated
        }
    }
}

/// The event of an invoice's change from `before` (`None`: it was issued)
/// to `after`.
#[must_use]
pub fn invoice_event(
    before: Option<&user_invoice::Model>,
    after: &user_invoice::Model,
) -> EventType {
    use InvoiceStatus::{Cancelled, Failed, Paid, Pending, Refunded};
    let Some(before) = before else {
        return EventType::InvoiceCreated;
    };
    match (before.status, after.status) {
        (Pending | Failed, Paid) => EventType::InvoicePaid,
        (Pending, Failed) => EventType::InvoiceFailed,
        (Pending | Failed, Cancelled) => EventType::InvoiceCancelled,
        (Paid, Refunded) => EventType::InvoiceRefunded,
        // The same status, or a move the lifecycle refuses.
        (Pending, Pending | Refunded)
        | (Failed, Pending | Failed | Refunded)
        | (Paid, Pending | Paid | Failed | Cancelled)
        | (Cancelled | Refunded, Pending | Paid | Failed | Cancelled | Refunded) => {
            EventType::InvoiceUpdated
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_name_their_resource() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert!(kind.as_str().starts_with(kind.resource_kind().as_str()));
            assert_eq!(sea_orm::ActiveEnum::to_value(&kind), kind.as_str());
        }
        assert_eq!(
            <EventType as sea_orm::Iterable>::iter().count(),
            EventType::ALL.len()
        );
        assert_eq!(EventType::parse("invoice.nope"), None);
    }
}
