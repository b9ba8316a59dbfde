//! Properties of the subscription and invoice state machines: whatever
//! sequence of actions is tried, only allowed transitions happen, refused ones
//! change nothing, and the derived values stay consistent.

use billing_domain::entities::{subscription, user_invoice};
use billing_domain::enums::{BillingPeriod, InvoiceStatus, SubscriptionStatus};
use billing_domain::{DomainError, Resource};
use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;

use crate::support::{epoch, pending_invoice, pending_subscription};

/// The allowed subscription transitions, written out independently of the
/// crate's table (`active → active` is a renewal, `paused → active` a resume).
const SUBSCRIPTION_EDGES: &[(SubscriptionStatus, SubscriptionStatus)] = &[
    (SubscriptionStatus::Pending, SubscriptionStatus::Active),
    (SubscriptionStatus::Pending, SubscriptionStatus::Cancelled),
    (SubscriptionStatus::Active, SubscriptionStatus::Active),
    (SubscriptionStatus::Active, SubscriptionStatus::Paused),
    (SubscriptionStatus::Active, SubscriptionStatus::Cancelled),
    (SubscriptionStatus::Active, SubscriptionStatus::Expired),
    (SubscriptionStatus::Paused, SubscriptionStatus::Active),
    (SubscriptionStatus::Paused, SubscriptionStatus::Cancelled),
    (SubscriptionStatus::Paused, SubscriptionStatus::Expired),
];

/// The allowed invoice transitions.
const INVOICE_EDGES: &[(InvoiceStatus, InvoiceStatus)] = &[
    (InvoiceStatus::Pending, InvoiceStatus::Paid),
    (InvoiceStatus::Pending, InvoiceStatus::Failed),
    (InvoiceStatus::Pending, InvoiceStatus::Cancelled),
    (InvoiceStatus::Failed, InvoiceStatus::Paid),
    (InvoiceStatus::Failed, InvoiceStatus::Cancelled),
    (InvoiceStatus::Paid, InvoiceStatus::Refunded),
];

#[derive(Clone, Copy, Debug)]
enum SubAction {
    Pay(BillingPeriod),
    Resume,
    Pause,
    Cancel,
    Expire,
}

fn period() -> impl Strategy<Value = BillingPeriod> {
    prop_oneof![
        4 => Just(BillingPeriod::Monthly),
        2 => Just(BillingPeriod::Quarterly),
        2 => Just(BillingPeriod::Yearly),
        1 => Just(BillingPeriod::Lifetime),
    ]
}

fn sub_action() -> impl Strategy<Value = SubAction> {
    prop_oneof![
        3 => period().prop_map(SubAction::Pay),
        2 => Just(SubAction::Resume),
        2 => Just(SubAction::Pause),
        1 => Just(SubAction::Cancel),
        1 => Just(SubAction::Expire),
    ]
}

/// Steps of `(minutes the clock moves, action)`; the clock mostly moves
/// forward but may step back a little (skew between instances).
fn sub_steps() -> impl Strategy<Value = Vec<(i64, SubAction)>> {
    prop::collection::vec((-120i64..200_000, sub_action()), 1..25)
}

fn apply(
    sub: &mut subscription::Model,
    action: SubAction,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    match action {
        SubAction::Pay(period) => sub.pay_period(now, period),
        SubAction::Resume => sub.resume(now),
        SubAction::Pause => sub.pause(now),
        SubAction::Cancel => sub.cancel(now),
        SubAction::Expire => sub.expire(now),
    }
}

fn check_subscription_invariants(
    sub: &subscription::Model,
    now: DateTime<Utc>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(sub.version, 1);
    prop_assert_eq!(sub.updated_at, epoch());
    match sub.status {
        SubscriptionStatus::Pending => {
            prop_assert!(sub.started_at.is_none());
            prop_assert_eq!(sub.days_remaining(now), Some(0));
        }
        SubscriptionStatus::Active => {
            prop_assert!(sub.started_at.is_some());
            prop_assert!(sub.paused_at.is_none());
            prop_assert!(sub.cancelled_at.is_none());
            // Valid exactly when paid time is left.
            prop_assert_eq!(sub.is_valid(now), sub.days_remaining(now) != Some(0));
            if let (Some(expires_at), Some(days)) = (sub.expires_at, sub.days_remaining(now)) {
                let left = expires_at - now;
                prop_assert!(TimeDelta::days(i64::from(days)) >= left);
                if days > 0 {
                    prop_assert!(TimeDelta::days(i64::from(days) - 1) < left);
                }
            }
        }
        SubscriptionStatus::Paused => {
            prop_assert!(sub.started_at.is_some());
            prop_assert!(sub.paused_at.is_some());
            prop_assert!(!sub.is_valid(now));
        }
        SubscriptionStatus::Cancelled => {
            prop_assert!(sub.cancelled_at.is_some());
            prop_assert!(!sub.is_valid(now));
            prop_assert_eq!(sub.days_remaining(now), Some(0));
        }
        SubscriptionStatus::Expired => {
            prop_assert!(sub.started_at.is_some());
            prop_assert!(sub.expires_at.is_some());
            prop_assert!(!sub.is_valid(now));
            prop_assert_eq!(sub.days_remaining(now), Some(0));
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum InvAction {
    Pay,
    Fail,
    Cancel,
    Refund,
}

fn inv_action() -> impl Strategy<Value = InvAction> {
    prop_oneof![
        3 => Just(InvAction::Pay),
        2 => Just(InvAction::Fail),
        1 => Just(InvAction::Cancel),
        1 => Just(InvAction::Refund),
    ]
}

proptest! {
    #[test]
    fn subscriptions_only_take_allowed_transitions(steps in sub_steps()) {
        let mut sub = pending_subscription();
        let mut now = epoch();
        let mut started_at = None;
        for (minutes, action) in steps {
            now += TimeDelta::minutes(minutes);
            let before = sub.clone();
            match apply(&mut sub, action, now) {
                Ok(()) => {
                    prop_assert!(
                        SUBSCRIPTION_EDGES.contains(&(before.status, sub.status)),
                        "{:?} → {:?} by {:?}", before.status, sub.status, action
                    );
                    // Payment, resume and pause never shorten the paid time.
                    if let SubAction::Pay(_) | SubAction::Resume | SubAction::Pause = action
                        && let Some(old) = before.expires_at
                    {
                        prop_assert!(sub.expires_at.is_none_or(|new| new >= old));
                    }
                    // Only a payment adds time: anything else at most gives
                    // back the time a pause froze.
                    if !matches!(action, SubAction::Pay(_)) {
                        let given_back = before
                            .paused_at
                            .map_or(TimeDelta::zero(), |paused_at| (now - paused_at).max(TimeDelta::zero()));
                        prop_assert_eq!(sub.expires_at.is_none(), before.expires_at.is_none() && sub.status != SubscriptionStatus::Expired);
                        if let (Some(old), Some(new)) = (before.expires_at, sub.expires_at) {
                            prop_assert!(new <= old + given_back, "{:?} added time", action);
                        }
                        prop_assert!(before.status != SubscriptionStatus::Pending || sub.status != SubscriptionStatus::Active);
                    }
                }
                Err(err) => {
                    prop_assert_eq!(&sub, &before, "a refused {:?} changed the model", action);
                    let is_transition_error = matches!(err, DomainError::InvalidTransition { entity: Resource::Subscription, .. });
                    prop_assert!(is_transition_error, "{:?}", err);
                    let allowed = match action {
                        SubAction::Pay(_) => before.status.can_transition_to(SubscriptionStatus::Active),
                        SubAction::Resume => before.status == SubscriptionStatus::Paused,
                        SubAction::Pause => before.status.can_transition_to(SubscriptionStatus::Paused),
                        SubAction::Cancel => before.status.can_transition_to(SubscriptionStatus::Cancelled),
                        SubAction::Expire => before.status.can_transition_to(SubscriptionStatus::Expired),
                    };
                    prop_assert!(!allowed, "{:?} from {:?} refused", action, before.status);
                }
            }
            if before.status.is_final() {
                prop_assert_eq!(&sub, &before, "a final subscription changed");
            }
            // started_at is set once.
            if started_at.is_none() {
                started_at = sub.started_at;
            }
            prop_assert_eq!(sub.started_at, started_at);
            check_subscription_invariants(&sub, now)?;
            // Later instants never raise the days left of a running subscription.
            let later = now + TimeDelta::hours(13);
            if let (Some(d_now), Some(d_later)) = (sub.days_remaining(now), sub.days_remaining(later)) {
                prop_assert!(d_later <= d_now);
            }
        }
    }

    #[test]
    fn a_pause_gives_back_exactly_the_paused_time(
        start_minutes in 0i64..1_000_000,
        active_minutes in 0i64..40_000,
        paused_minutes in 0i64..500_000,
        p in period(),
    ) {
        let mut sub = pending_subscription();
        let start = epoch() + TimeDelta::minutes(start_minutes);
        sub.pay_period(start, p).unwrap();
        let expires_before = sub.expires_at;
        let paused_at = start + TimeDelta::minutes(active_minutes);
        sub.pause(paused_at).unwrap();
        let frozen = sub.days_remaining(paused_at + TimeDelta::minutes(paused_minutes));
        let resumed_at = paused_at + TimeDelta::minutes(paused_minutes);
        sub.resume(resumed_at).unwrap();
        prop_assert_eq!(sub.expires_at, expires_before.map(|e| e + TimeDelta::minutes(paused_minutes)));
        prop_assert_eq!(sub.days_remaining(resumed_at), frozen);
    }

    #[test]
    fn days_remaining_is_never_negative_and_shrinks_over_time(
        start_minutes in 0i64..1_000_000,
        probe_minutes in -1_000_000i64..1_000_000,
        p in period(),
    ) {
        let mut sub = pending_subscription();
        let start = epoch() + TimeDelta::minutes(start_minutes);
        sub.pay_period(start, p).unwrap();
        let probe = start + TimeDelta::minutes(probe_minutes);
        match sub.days_remaining(probe) {
            None => prop_assert_eq!(p, BillingPeriod::Lifetime),
            Some(days) => {
                let expires_at = sub.expires_at.unwrap();
                prop_assert_eq!(days == 0, probe >= expires_at);
                prop_assert!(sub.days_remaining(probe + TimeDelta::days(1)).unwrap() <= days);
            }
        }
    }

    #[test]
    fn invoices_only_take_allowed_transitions(
        expiry_hours in prop::option::of(0i64..200),
        steps in prop::collection::vec((0i64..50, inv_action()), 1..12),
    ) {
        let expires_at = expiry_hours.map(|h| epoch() + TimeDelta::hours(h));
        let mut inv: user_invoice::Model = pending_invoice(expires_at);
        let mut now = epoch();
        for (hours, action) in steps {
            now += TimeDelta::hours(hours);
            let before = inv.clone();
            let result = match action {
                InvAction::Pay => inv.mark_paid(now, "card", Some("ref-1")),
                InvAction::Fail => inv.mark_failed(),
                InvAction::Cancel => inv.mark_cancelled(),
                InvAction::Refund => inv.mark_refunded(),
            };
            match result {
                Ok(()) => {
                    prop_assert!(INVOICE_EDGES.contains(&(before.status, inv.status)),
                        "{:?} → {:?} by {:?}", before.status, inv.status, action);
                    if let InvAction::Pay = action {
                        prop_assert!(expires_at.is_none_or(|e| now < e), "paid after expiry");
                        prop_assert_eq!(inv.paid_at, Some(now));
                    }
                }
                Err(DomainError::InvoiceExpired { expires_at: e }) => {
                    prop_assert_eq!(&inv, &before);
                    prop_assert!(before.status.is_unpaid());
                    prop_assert_eq!(Some(e), expires_at);
                    prop_assert!(now >= e);
                }
                Err(err) => {
                    prop_assert_eq!(&inv, &before);
                    let is_transition_error = matches!(err, DomainError::InvalidTransition { entity: Resource::Invoice, .. });
                    prop_assert!(is_transition_error, "{:?}", err);
                }
            }
            prop_assert_eq!(inv.version, 1);
            match inv.status {
                InvoiceStatus::Paid | InvoiceStatus::Refunded => {
                    prop_assert!(inv.paid_at.is_some() && inv.payment_method.is_some());
                }
                InvoiceStatus::Pending | InvoiceStatus::Failed | InvoiceStatus::Cancelled => {
                    prop_assert!(inv.paid_at.is_none());
                }
            }
        }
    }
}
