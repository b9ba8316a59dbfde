//! The state machines of subscriptions, invoices and users.
//!
//! | subscription from | pay (an invoice paid) | resume | pause  | cancel    | expire  |
//! |-------------------|-----------------------|--------|--------|-----------|---------|
//! | `pending`         | start                 | –      | –      | cancelled | –       |
//! | `active`          | renew                 | –      | paused | cancelled | expired |
//! | `paused`          | resume and renew      | active | –      | cancelled | expired |
//! | `cancelled`       | –                     | –      | –      | –         | –       |
//! | `expired`         | –                     | –      | –      | –         | –       |
//!
//! Only `pay` adds a billing period: a subscription gains time only through
//! a paid invoice. `resume` gives back the paid time a pause froze, nothing
//! more, so it is refused on a pending or active subscription.
//!
//! | invoice from | pay  | fail   | cancel    | refund   |
//! |--------------|------|--------|-----------|----------|
//! | `pending`    | paid | failed | cancelled | –        |
//! | `failed`     | paid | –      | cancelled | –        |
//! | `paid`       | –    | –      | –         | refunded |
//! | `cancelled`  | –    | –      | –         | –        |
//! | `refunded`   | –    | –      | –         | –        |
//!
//! Subscription: `pending → active (paid) | cancelled`, `active → active
//! (renewal, paid) | paused | cancelled | expired`, `paused → active (resume,
//! or paid) | cancelled | expired`; `cancelled` and `expired` are final.
//!
//! Invoice: `pending → paid | failed | cancelled`, `failed → paid |
//! cancelled`, `paid → refunded`; `cancelled` and `refunded` are final. An
//! unpaid invoice (pending *or* failed) cannot be paid at or after its
//! `expires_at`.
//!
//! The transition methods ([`subscription`](crate::entities::subscription)
//! `pay_period`/`resume`/`pause`/`cancel`/`expire`, [`user_invoice`](crate::entities::user_invoice)
//! `mark_paid`/`mark_failed`/`mark_cancelled`/`mark_refunded`) take `&mut
//! self`, check everything first and only then change the model: on error the
//! model is exactly as before. They never touch `version` or `updated_at`,
//! which belong to the repository.
//!
//! User: `pending | active | suspended` change freely; any of them may
//! become `deleted`, which erases the personal data (e-mail, password hash,
//! and, by the caller, details and case text) and is final: a deleted user
//! is read-only.
//!
//! Every decision is an exhaustive `match` without a `_` arm, so a new status
//! does not compile until each rule has been revisited.

mod invoice;
mod subscription;
mod user;

pub use invoice::MAX_PAYMENT_FIELD_CHARS;
pub use user::{ERASED_PASSWORD_HASH, ERASED_TEXT};

use crate::Resource;
use crate::enums::{InvoiceStatus, SubscriptionStatus};
use crate::error::DomainError;

impl SubscriptionStatus {
    /// The stored string (`"active"`).
    ///
    /// ```
    /// use billing_domain::enums::SubscriptionStatus;
    /// assert_eq!(SubscriptionStatus::Paused.as_str(), "paused");
    /// ```
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    /// Whether no transition leaves this status.
    #[must_use]
    pub const fn is_final(self) -> bool {
        match self {
            Self::Pending | Self::Active | Self::Paused => false,
            Self::Cancelled | Self::Expired => true,
        }
    }

    /// The transition table. `Active → Active` is the renewal of a running
    /// subscription by a payment; `Paused → Active` is a resume (or a
    /// payment).
    ///
    /// ```
    /// use billing_domain::enums::SubscriptionStatus::*;
    /// assert!(Pending.can_transition_to(Active));
    /// assert!(Active.can_transition_to(Active)); // renewal
    /// assert!(!Pending.can_transition_to(Paused));
    /// assert!(!Cancelled.can_transition_to(Active));
    /// ```
    #[must_use]
    pub const fn can_transition_to(self, next: Self) -> bool {
        match self {
            Self::Pending => match next {
                Self::Active | Self::Cancelled => true,
                Self::Pending | Self::Paused | Self::Expired => false,
            },
            Self::Active => match next {
                Self::Active | Self::Paused | Self::Cancelled | Self::Expired => true,
                Self::Pending => false,
            },
            Self::Paused => match next {
                Self::Active | Self::Cancelled | Self::Expired => true,
                Self::Pending | Self::Paused => false,
            },
            Self::Cancelled | Self::Expired => false,
        }
    }
}

impl InvoiceStatus {
    /// The stored string (`"paid"`).
    ///
    /// ```
    /// use billing_domain::enums::InvoiceStatus;
    /// assert_eq!(InvoiceStatus::Refunded.as_str(), "refunded");
    /// ```
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
        }
    }

    /// Whether no transition leaves this status.
    #[must_use]
    pub const fn is_final(self) -> bool {
        match self {
            Self::Pending | Self::Paid | Self::Failed => false,
            Self::Cancelled | Self::Refunded => true,
        }
    }

    /// Whether the invoice still waits for its money (pending or failed).
    #[must_use]
    pub const fn is_unpaid(self) -> bool {
        match self {
            Self::Pending | Self::Failed => true,
            Self::Paid | Self::Cancelled | Self::Refunded => false,
        }
    }

    /// The transition table.
    ///
    /// ```
    /// use billing_domain::enums::InvoiceStatus::*;
    /// assert!(Pending.can_transition_to(Paid));
    /// assert!(Failed.can_transition_to(Paid));
    /// assert!(Paid.can_transition_to(Refunded));
    /// assert!(!Paid.can_transition_to(Paid));
    /// assert!(!Pending.can_transition_to(Refunded));
    /// ```
    #[must_use]
    pub const fn can_transition_to(self, next: Self) -> bool {
        match self {
            Self::Pending => match next {
                Self::Paid | Self::Failed | Self::Cancelled => true,
                Self::Pending | Self::Refunded => false,
            },
            Self::Failed => match next {
                Self::Paid | Self::Cancelled => true,
                Self::Pending | Self::Failed | Self::Refunded => false,
            },
            Self::Paid => match next {
                Self::Refunded => true,
                Self::Pending | Self::Paid | Self::Failed | Self::Cancelled => false,
            },
            Self::Cancelled | Self::Refunded => false,
        }
    }
}

fn subscription_transition(
    from: SubscriptionStatus,
    to: SubscriptionStatus,
    action: &'static str,
) -> Result<(), DomainError> {
    if from.can_transition_to(to) {
        Ok(())
    } else {
        Err(DomainError::InvalidTransition {
            entity: Resource::Subscription,
            from: from.as_str(),
            action,
        })
    }
}

fn invoice_transition(
    from: InvoiceStatus,
    to: InvoiceStatus,
    action: &'static str,
) -> Result<(), DomainError> {
    if from.can_transition_to(to) {
        Ok(())
    } else {
        Err(DomainError::InvalidTransition {
            entity: Resource::Invoice,
            from: from.as_str(),
            action,
        })
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::*;

    #[test]
    fn as_str_matches_the_stored_strings() {
        for status in SubscriptionStatus::iter() {
            assert_eq!(status.as_str(), status.to_value());
        }
        for status in InvoiceStatus::iter() {
            assert_eq!(status.as_str(), status.to_value());
        }
    }

    #[test]
    fn subscription_table_is_exactly_the_documented_one() {
        use SubscriptionStatus::*;
        let allowed = [
            (Pending, Active),
            (Pending, Cancelled),
            (Active, Active),
            (Active, Paused),
            (Active, Cancelled),
            (Active, Expired),
            (Paused, Active),
            (Paused, Cancelled),
            (Paused, Expired),
        ];
        for from in SubscriptionStatus::iter() {
            for to in SubscriptionStatus::iter() {
                assert_eq!(
                    from.can_transition_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
            let has_exit = SubscriptionStatus::iter().any(|to| from.can_transition_to(to));
            assert_eq!(from.is_final(), !has_exit, "{from:?}");
        }
    }

    #[test]
    fn invoice_table_is_exactly_the_documented_one() {
        use InvoiceStatus::*;
        let allowed = [
            (Pending, Paid),
            (Pending, Failed),
            (Pending, Cancelled),
            (Failed, Paid),
            (Failed, Cancelled),
            (Paid, Refunded),
        ];
        for from in InvoiceStatus::iter() {
            for to in InvoiceStatus::iter() {
                assert_eq!(
                    from.can_transition_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
            let has_exit = InvoiceStatus::iter().any(|to| from.can_transition_to(to));
            assert_eq!(from.is_final(), !has_exit, "{from:?}");
        }
    }

    #[test]
    fn unpaid_means_pending_or_failed() {
        use InvoiceStatus::*;
        let unpaid: Vec<_> = InvoiceStatus::iter().filter(|s| s.is_unpaid()).collect();
        assert_eq!(unpaid, vec![Pending, Failed]);
    }
}
