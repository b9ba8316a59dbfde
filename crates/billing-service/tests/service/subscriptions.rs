//! Subscribing, lifecycle transitions and bulk expiry.

use billing_domain::entities::subscription;
use billing_domain::enums::{BillingPeriod, SubscriptionStatus, UserStatus};
use billing_repository::{Repository, Subscriptions};
use billing_service::PageRequest;
use billing_service::{
    BillingError, NewSubscription, PlanChanges, SubscriptionAction, UserChanges,
};
use chrono::{Months, TimeDelta, Utc};

use crate::paid_time::pay_for;
use crate::support::{Harness, plan, seed, service_test};

async fn lifecycle_transitions(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let s = seed(b).await?;
    let sub = b
        .subscribe(NewSubscription {
            user_id: s.user.id,
            plan_id: s.plan.id,
        })
        .await?;
    assert_eq!(
        (sub.status, sub.started_at, sub.expires_at),
        (SubscriptionStatus::Pending, None, None)
    );

    let refused = b
        .transition_subscription(sub.id, SubscriptionAction::Pause, None)
        .await;
    assert!(
        matches!(refused, Err(BillingError::InvalidTransition { .. })),
        "{refused:?}"
    );
    assert_eq!(
        b.subscription(sub.id).await?,
        sub,
        "a refused transition wrote"
    );

    // Only a paid invoice starts it.
    let unpaid = b
        .transition_subscription(sub.id, SubscriptionAction::Activate, Some(1))
        .await;
    assert!(
        matches!(unpaid, Err(BillingError::InvalidTransition { .. })),
        "{unpaid:?}"
    );
    let active = pay_for(&h, s.user.id, s.plan.id, sub.id, "start").await?;
    let started = active.started_at.expect("started");
    assert_eq!(
        active.expires_at,
        started.checked_add_months(Months::new(1))
    );
    assert!(active.is_valid(Utc::now()));

    let stale = b
        .transition_subscription(sub.id, SubscriptionAction::Pause, Some(1))
        .await;
    assert!(
        matches!(stale, Err(BillingError::VersionMismatch { current: 2, .. })),
        "{stale:?}"
    );
    let paused = b
        .transition_subscription(sub.id, SubscriptionAction::Pause, Some(2))
        .await?;
    assert_eq!(paused.status, SubscriptionStatus::Paused);
    let resumed = b
        .transition_subscription(sub.id, SubscriptionAction::Activate, None)
        .await?;
    assert!(
        resumed.expires_at >= active.expires_at,
        "resume keeps the paid time"
    );
    let cancelled = b
        .transition_subscription(sub.id, SubscriptionAction::Cancel, None)
        .await?;
    assert_eq!(cancelled.status, SubscriptionStatus::Cancelled);
    for action in [
        SubscriptionAction::Activate,
        SubscriptionAction::Pause,
        SubscriptionAction::Expire,
    ] {
        let result = b.transition_subscription(sub.id, action, None).await;
        assert!(
            matches!(result, Err(BillingError::InvalidTransition { .. })),
            "{action:?} after cancel: {result:?}"
        );
    }
    assert_eq!(
        b.list_subscriptions(s.user.id, PageRequest::new(1, 20)?)
            .await?
            .total,
        1
    );
    Ok(())
}

async fn subscribing_needs_an_active_plan_and_a_buyer(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let s = seed(b).await?;
    let old = b
        .create_plan(plan("old", "5.00", BillingPeriod::Monthly))
        .await?;
    b.update_plan(
        old.id,
        PlanChanges {
            is_active: Some(false),
            ..PlanChanges::default()
        },
        None,
    )
    .await?;
    let inactive = b
        .subscribe(NewSubscription {
            user_id: s.user.id,
            plan_id: old.id,
        })
        .await;
    assert!(
        matches!(inactive, Err(BillingError::InvalidTransition { .. })),
        "{inactive:?}"
    );
    let missing = b
        .subscribe(NewSubscription {
            user_id: s.user.id,
            plan_id: 999_999,
        })
        .await;
    assert!(
        matches!(missing, Err(BillingError::NotFound { .. })),
        "{missing:?}"
    );
    b.update_user(
        s.user.id,
        UserChanges {
            status: Some(UserStatus::Suspended),
            ..UserChanges::default()
        },
        None,
    )
    .await?;
    let suspended = b
        .subscribe(NewSubscription {
            user_id: s.user.id,
            plan_id: s.plan.id,
        })
        .await;
    assert!(
        matches!(suspended, Err(BillingError::InvalidTransition { .. })),
        "{suspended:?}"
    );
    assert_eq!(
        b.list_subscriptions(s.user.id, PageRequest::new(1, 20)?)
            .await?
            .total,
        0
    );
    Ok(())
}

async fn overdue_subscriptions_expire_in_bulk(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let s = seed(b).await?;
    let now = Utc::now();
    let mut ids = Vec::new();
    for days in [-3, -1, 5] {
        let sub = b
            .subscribe(NewSubscription {
                user_id: s.user.id,
                plan_id: s.plan.id,
            })
            .await?;
        let mut active = pay_for(&h, s.user.id, s.plan.id, sub.id, &format!("k{days}")).await?;
        active.expires_at = Some(now + TimeDelta::days(days));
        Subscriptions::save(b.database(), &active, active.version).await?;
        ids.push(sub.id);
    }
    assert_eq!(b.expire_overdue_subscriptions(now).await?, 2);
    let statuses = futures_statuses(&h, &ids).await?;
    assert_eq!(
        statuses,
        [
            SubscriptionStatus::Expired,
            SubscriptionStatus::Expired,
            SubscriptionStatus::Active
        ]
    );
    assert_eq!(
        b.expire_overdue_subscriptions(now).await?,
        0,
        "expiry is idempotent"
    );
    Ok(())
}

async fn futures_statuses(h: &Harness, ids: &[i64]) -> anyhow::Result<Vec<SubscriptionStatus>> {
    let mut statuses = Vec::new();
    for id in ids {
        statuses.push(
            Repository::<subscription::Entity>::get(h.billing.database(), *id)
                .await?
                .status,
        );
    }
    Ok(statuses)
}

service_test!(
    lifecycle_transitions,
    subscribing_needs_an_active_plan_and_a_buyer,
    overdue_subscriptions_expire_in_bulk,
);
