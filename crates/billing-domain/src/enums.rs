//! The enumerations of the schema: user status and role, support-case status,
//! billing period, subscription and invoice status. Stored as short strings.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where a user account stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Registered, not yet confirmed.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// In good standing.
    #[sea_orm(string_value = "active")]
    Active,
    /// Blocked by an operator.
    #[sea_orm(string_value = "suspended")]
    Suspended,
    /// Closed; kept for the invoices that refer to it.
    #[sea_orm(string_value = "deleted")]
    Deleted,
}

/// What a user may do.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// A customer.
    #[sea_orm(string_value = "user")]
    User,
    /// An operator of the billing system.
    #[sea_orm(string_value = "admin")]
    Admin,
    /// A seller whose plans are billed.
    #[sea_orm(string_value = "vendor")]
    Vendor,
}

/// Where a support case stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Filed, nobody on it yet.
    #[sea_orm(string_value = "open")]
    Open,
    /// Being worked on.
    #[sea_orm(string_value = "in_progress")]
    InProgress,
    /// Answered.
    #[sea_orm(string_value = "resolved")]
    Resolved,
    /// Closed for good.
    #[sea_orm(string_value = "closed")]
    Closed,
}

/// How long one payment of a plan lasts.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum BillingPeriod {
    /// One calendar month.
    #[sea_orm(string_value = "monthly")]
    Monthly,
    /// Three calendar months.
    #[sea_orm(string_value = "quarterly")]
    Quarterly,
    /// Twelve calendar months.
    #[sea_orm(string_value = "yearly")]
    Yearly,
    /// Paid once, never expires.
    #[sea_orm(string_value = "lifetime")]
    Lifetime,
}

/// Where a subscription stands; see the state machine in `lifecycle`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Created, waiting for its first payment.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// Paid and running.
    #[sea_orm(string_value = "active")]
    Active,
    /// Stopped for a while; the paused time is added back on resume.
    #[sea_orm(string_value = "paused")]
    Paused,
    /// Ended by the customer or an operator (final).
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    /// Ran out (final).
    #[sea_orm(string_value = "expired")]
    Expired,
}

/// Where an invoice stands; see the state machine in `lifecycle`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Issued, not paid yet.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// Paid.
    #[sea_orm(string_value = "paid")]
    Paid,
    /// A payment attempt failed; it may still be paid.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Withdrawn (final).
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    /// Paid, then paid back (final).
    #[sea_orm(string_value = "refunded")]
    Refunded,
}

/// How one dunning attempt (a retry of an unpaid renewal invoice) ended.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum DunningOutcome {
    /// Claimed and not finished yet: the process running it stopped before
    /// recording the outcome; the next pass runs it again (the charge has
    /// an idempotency key of its own, so it is made at most once).
    #[sea_orm(string_value = "started")]
    Started,
    /// The charge succeeded and the invoice is paid.
    #[sea_orm(string_value = "paid")]
    Paid,
    /// The payment provider declined the charge.
    #[sea_orm(string_value = "declined")]
    Declined,
    /// No charger is configured: the attempt is a reminder, and the invoice
    /// waits for a payment made elsewhere.
    #[sea_orm(string_value = "awaiting_payment")]
    AwaitingPayment,
    /// The charger failed (unreachable, timed out); counted as a failed
    /// attempt.
    #[sea_orm(string_value = "errored")]
    Errored,
}

/// Whether a webhook endpoint gets deliveries.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum EndpointStatus {
    /// Deliveries are attempted.
    #[sea_orm(string_value = "enabled")]
    Enabled,
    /// A delivery was retried for the whole retry window without success:
    /// no attempts until the endpoint is enabled again (its deliveries
    /// keep being queued).
    #[sea_orm(string_value = "failing")]
    Failing,
    /// Turned off by an operator (deliveries keep being queued).
    #[sea_orm(string_value = "disabled")]
    Disabled,
}

/// Where a webhook delivery stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not acknowledged yet; attempted when due.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// The endpoint answered 2xx.
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    /// Given up after the retry window (redeliverable).
    #[sea_orm(string_value = "failed")]
    Failed,
}
