//! OpenAPI schemas of the domain enums that appear in the request bodies
//! and the responses.
//!
//! `billing-domain` carries no OpenAPI dependency, so each enum has a
//! schema-only twin here with the same variants and the same `snake_case`
//! names. Fields refer to them with `#[schema(value_type = ...)]`. The
//! `From` conversions match the domain enums exhaustively, so a new domain
//! variant does not compile until its twin has it too; the tests check that
//! the names in the schemas are the ones serde writes.

use billing_domain::enums;
use serde::Serialize;
use utoipa::ToSchema;

/// Where a user account stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(rename_all = "snake_case")]
pub enum UserStatus {
    /// Registered, not yet confirmed.
    Pending,
    /// In good standing.
    Active,
    /// Blocked by an operator.
    Suspended,
    /// Closed; kept for the invoices that refer to it.
    Deleted,
}

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(rename_all = "snake_case")]
pub enum UserRole {
    /// A customer.
    User,
    /// An operator of the billing system.
    Admin,
    /// A seller whose plans are billed.
    Vendor,
}

/// Where a support case stands (`closed` is final).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Filed, nobody on it yet.
    Open,
    /// Being worked on.
    InProgress,
    /// Answered.
    Resolved,
    /// Closed for good.
    Closed,
}

/// How long one payment of a plan lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(rename_all = "snake_case")]
pub enum BillingPeriod {
    /// One calendar month.
    Monthly,
    /// Three calendar months.
    Quarterly,
    /// Twelve calendar months.
    Yearly,
    /// Paid once, never expires.
    Lifetime,
}

/// Where a subscription stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Created, waiting for its first payment.
    Pending,
    /// Paid and running.
    Active,
    /// Stopped for a while.
    Paused,
    /// Ended (final).
    Cancelled,
    /// Ran out (final).
    Expired,
}

/// Where an invoice stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Issued, not paid yet.
    Pending,
    /// Paid.
    Paid,
    /// A payment attempt failed; it may still be paid.
    Failed,
    /// Withdrawn (final).
    Cancelled,
    /// Paid, then paid back (final).
    Refunded,
}

impl From<enums::UserStatus> for UserStatus {
    fn from(value: enums::UserStatus) -> Self {
        match value {
            enums::UserStatus::Pending => Self::Pending,
            enums::UserStatus::Active => Self::Active,
            enums::UserStatus::Suspended => Self::Suspended,
            enums::UserStatus::Deleted => Self::Deleted,
        }
    }
}

impl From<enums::UserRole> for UserRole {
    fn from(value: enums::UserRole) -> Self {
        match value {
            enums::UserRole::User => Self::User,
            enums::UserRole::Admin => Self::Admin,
            enums::UserRole::Vendor => Self::Vendor,
        }
    }
}

impl From<enums::CaseStatus> for CaseStatus {
    fn from(value: enums::CaseStatus) -> Self {
        match value {
            enums::CaseStatus::Open => Self::Open,
            enums::CaseStatus::InProgress => Self::InProgress,
            enums::CaseStatus::Resolved => Self::Resolved,
            enums::CaseStatus::Closed => Self::Closed,
        }
    }
}

impl From<enums::BillingPeriod> for BillingPeriod {
    fn from(value: enums::BillingPeriod) -> Self {
        match value {
            enums::BillingPeriod::Monthly => Self::Monthly,
            enums::BillingPeriod::Quarterly => Self::Quarterly,
            enums::BillingPeriod::Yearly => Self::Yearly,
            enums::BillingPeriod::Lifetime => Self::Lifetime,
        }
    }
}

impl From<enums::SubscriptionStatus> for SubscriptionStatus {
    fn from(value: enums::SubscriptionStatus) -> Self {
        match value {
            enums::SubscriptionStatus::Pending => Self::Pending,
            enums::SubscriptionStatus::Active => Self::Active,
            enums::SubscriptionStatus::Paused => Self::Paused,
            enums::SubscriptionStatus::Cancelled => Self::Cancelled,
            enums::SubscriptionStatus::Expired => Self::Expired,
        }
    }
}

impl From<enums::InvoiceStatus> for InvoiceStatus {
    fn from(value: enums::InvoiceStatus) -> Self {
        match value {
            enums::InvoiceStatus::Pending => Self::Pending,
            enums::InvoiceStatus::Paid => Self::Paid,
            enums::InvoiceStatus::Failed => Self::Failed,
            enums::InvoiceStatus::Cancelled => Self::Cancelled,
            enums::InvoiceStatus::Refunded => Self::Refunded,
        }
    }
}

#[cfg(test)]
mod tests {
    use billing_domain::enums;
    use sea_orm::Iterable;
    use serde_json::Value;
    use utoipa::PartialSchema;

    use super::*;

    /// The `enum` values of a schema.
    fn schema_names<S: PartialSchema>() -> Vec<Value> {
        let schema = serde_json::to_value(S::schema()).expect("a schema serialises");
        schema["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("not an enum schema: {schema}"))
            .clone()
    }

    /// What serde writes for every domain variant, through the twin and
    /// directly.
    fn check<D, S>()
    where
        D: Iterable + Serialize + Copy,
        S: PartialSchema + Serialize + From<D>,
    {
        let domain: Vec<Value> = D::iter()
            .map(|v| serde_json::to_value(v).expect("serialises"))
            .collect();
        let twins: Vec<Value> = D::iter()
            .map(|v| serde_json::to_value(S::from(v)).expect("serialises"))
            .collect();
        assert_eq!(domain, twins);
        assert_eq!(domain, schema_names::<S>());
    }

    #[test]
    fn twins_have_the_names_of_the_domain_enums() {
        check::<enums::UserStatus, UserStatus>();
        check::<enums::UserRole, UserRole>();
        check::<enums::CaseStatus, CaseStatus>();
        check::<enums::BillingPeriod, BillingPeriod>();
        check::<enums::SubscriptionStatus, SubscriptionStatus>();
        check::<enums::InvoiceStatus, InvoiceStatus>();
    }
}
