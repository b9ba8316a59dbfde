//! [`Resource`]: every kind of thing the API and the errors name, with its
//! API name and its table.

use std::fmt;

/// A kind of thing the API names (a user, an invoice, a plan …), or a table
/// of the schema an error can name.
///
/// [`Resource::as_str`] is the word the API's messages use (`plan`,
/// `invoice`, `user details`); [`Resource::table`] is the table that holds
/// it (`tarif_plan`, `user_invoice`, `user_details`).
///
/// ```
/// use billing_domain::Resource;
///
/// assert_eq!(Resource::Plan.to_string(), "plan");
/// assert_eq!(Resource::Plan.table(), "tarif_plan");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// A user (`user`).
    User,
    /// A user's personal details (`user_details`).
    UserDetails,
    /// A support case (`user_case`).
    Case,
    /// A configured currency (`currency`).
    Currency,
    /// A tax (`tax`).
    Tax,
    /// One historical rate of a tax (`tax_rate`).
    TaxRate,
    /// A tariff plan (`tarif_plan`).
    Plan,
    /// A subscription (`subscription`).
    Subscription,
    /// An invoice (`user_invoice`).
    Invoice,
    /// The invoice number counter of a year (`invoice_sequence`).
    InvoiceSequence,
    /// The record of a subscription's renewal (`subscription_renewal`).
    SubscriptionRenewal,
    /// One dunning attempt of an unpaid invoice (`dunning_attempt`).
    DunningAttempt,
    /// An event of the outbox (`event`).
    Event,
    /// A webhook endpoint (`webhook_endpoint`).
    WebhookEndpoint,
    /// The delivery of an event to an endpoint (`webhook_delivery`).
    WebhookDelivery,
    /// One attempt of a delivery (`webhook_attempt`).
    WebhookAttempt,
    /// A stored idempotency key outcome (`idempotency_record`).
    IdempotencyRecord,
}

impl Resource {
    /// Every resource, in declaration order.
    pub const ALL: [Self; 17] = [
        Self::User,
        Self::UserDetails,
        Self::Case,
        Self::Currency,
        Self::Tax,
        Self::TaxRate,
        Self::Plan,
        Self::Subscription,
        Self::Invoice,
        Self::InvoiceSequence,
        Self::SubscriptionRenewal,
        Self::DunningAttempt,
        Self::Event,
        Self::WebhookEndpoint,
        Self::WebhookDelivery,
        Self::WebhookAttempt,
        Self::IdempotencyRecord,
    ];

    /// The name the API's messages use: `plan`, `invoice`, `user details`.
    /// The kinds the API has no word of its own for go by their table.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UserDetails => "user details",
            Self::Case => "case",
            Self::TaxRate => "tax rate",
            Self::Plan => "plan",
            Self::Invoice => "invoice",
            Self::User
            | Self::Currency
            | Self::Tax
            | Self::Subscription
            | Self::InvoiceSequence
            | Self::SubscriptionRenewal
            | Self::DunningAttempt
            | Self::Event
            | Self::WebhookEndpoint
            | Self::WebhookDelivery
            | Self::WebhookAttempt
            | Self::IdempotencyRecord => self.table(),
        }
    }

    /// The table of the schema that holds it: `tarif_plan`,
    /// `user_invoice`, `user_details`.
    #[must_use]
    pub const fn table(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::UserDetails => "user_details",
            Self::Case => "user_case",
            Self::Currency => "currency",
            Self::Tax => "tax",
            Self::TaxRate => "tax_rate",
            Self::Plan => "tarif_plan",
            Self::Subscription => "subscription",
            Self::Invoice => "user_invoice",
            Self::InvoiceSequence => "invoice_sequence",
            Self::SubscriptionRenewal => "subscription_renewal",
            Self::DunningAttempt => "dunning_attempt",
            Self::Event => "event",
            Self::WebhookEndpoint => "webhook_endpoint",
            Self::WebhookDelivery => "webhook_delivery",
            Self::WebhookAttempt => "webhook_attempt",
            Self::IdempotencyRecord => "idempotency_record",
        }
    }
}

impl fmt::Display for Resource {
    /// The API name ([`Resource::as_str`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_has_its_api_name_and_table() {
        let expected = [
            (Resource::User, "user", "user"),
            (Resource::UserDetails, "user details", "user_details"),
            (Resource::Case, "case", "user_case"),
            (Resource::Currency, "currency", "currency"),
            (Resource::Tax, "tax", "tax"),
            (Resource::TaxRate, "tax rate", "tax_rate"),
            (Resource::Plan, "plan", "tarif_plan"),
            (Resource::Subscription, "subscription", "subscription"),
            (Resource::Invoice, "invoice", "user_invoice"),
            (
                Resource::InvoiceSequence,
                "invoice_sequence",
                "invoice_sequence",
            ),
            (
                Resource::SubscriptionRenewal,
                "subscription_renewal",
                "subscription_renewal",
            ),
            (
                Resource::DunningAttempt,
                "dunning_attempt",
                "dunning_attempt",
            ),
            (Resource::Event, "event", "event"),
            (
                Resource::WebhookEndpoint,
                "webhook_endpoint",
                "webhook_endpoint",
            ),
            (
                Resource::WebhookDelivery,
                "webhook_delivery",
                "webhook_delivery",
            ),
            (
                Resource::WebhookAttempt,
                "webhook_attempt",
                "webhook_attempt",
            ),
            (
                Resource::IdempotencyRecord,
                "idempotency_record",
                "idempotency_record",
            ),
        ];
        assert_eq!(expected.len(), Resource::ALL.len());
        for ((resource, name, table), listed) in expected.into_iter().zip(Resource::ALL) {
            assert_eq!(resource, listed);
            assert_eq!(resource.as_str(), name);
            assert_eq!(resource.to_string(), name);
            assert_eq!(resource.table(), table);
        }
    }

    #[test]
    fn names_and_tables_are_unique() {
        let mut names: Vec<_> = Resource::ALL.iter().map(|r| r.as_str()).collect();
        let mut tables: Vec<_> = Resource::ALL.iter().map(|r| r.table()).collect();
        names.sort_unstable();
        names.dedup();
        tables.sort_unstable();
        tables.dedup();
        assert_eq!(names.len(), Resource::ALL.len());
        assert_eq!(tables.len(), Resource::ALL.len());
    }
}
