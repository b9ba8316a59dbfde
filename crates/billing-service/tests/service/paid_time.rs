//! Paid time: a subscription period is added only by a paid invoice. The
//! manual `activate` only resumes a paused subscription (giving back the
//! paused time); it neither starts nor renews one.

use billing_domain::entities::subscription;
use billing_domain::enums::SubscriptionStatus;
use billing_service::{
    BillingError, IdempotencyKey, Idempotent, NewInvoice, NewSubscription, Payment,
    SubscriptionAction,
};
use chrono::{Months, TimeDelta};

use crate::support::{Harness, seed, service_test};

/// Pays a fresh invoice for `subscription` and returns the subscription as
/// the payment left it.
pub async fn pay_for(
    h: &Harness,
    user_id: i64,
    plan_id: i64,
    subscription: i64,
    key: &str,
) -> anyhow::Result<subscription::Model> {
    let invoice = h
        .billing
        .create_invoice(NewInvoice {
            user_id,
            plan_id,
            subscription_id: Some(subscription),
            currency: None,
            tax_code: None,
        })
        .await?;
    let key = IdempotencyKey::for_request("tests", key, "POST", "/pay", b"{}")?;
    let payment = Payment {
        payment_method: "card".into(),
        payment_reference: None,
    };
    let Idempotent::Fresh(outcome) = h
        .billing
        .pay_invoice(invoice.id, payment, None, &key)
        .await?
    else {
        anyhow::bail!("the payment did not run");
    };
    outcome
        .subscription
        .ok_or_else(|| anyhow::anyhow!("the payment did not touch the subscription"))
}

fn assert_refused(result: &Result<subscription::Model, BillingError>, what: &str) {
    assert!(
        matches!(result, Err(BillingError::InvalidTransition { .. })),
        "{what}: {result:?}"
    );
}

async fn only_a_paid_invoice_adds_a_period(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let s = seed(b).await?;
    let sub = b
        .subscribe(NewSubscription {
            user_id: s.user.id,
            plan_id: s.plan.id,
        })
        .await?;

    // Starting without paying is refused and writes nothing.
    let start = b
        .transition_subscription(sub.id, SubscriptionAction::Activate, None)
        .await;
    assert_refused(&start, "activate a pending subscription");
    assert_eq!(b.subscription(sub.id).await?, sub, "a refused start wrote");

    // The first payment starts it for one month.
    let active = pay_for(&h, s.user.id, s.plan.id, sub.id, "first").await?;
    assert_eq!(active.status, SubscriptionStatus::Active);
    let started = active.started_at.expect("started");
    let first_end = started.checked_add_months(Months::new(1));
    assert_eq!(active.expires_at, first_end);

    // Activating an active subscription, again and again, adds nothing.
    for attempt in 0..3 {
        let renew = b
            .transition_subscription(sub.id, SubscriptionAction::Activate, None)
            .await;
        assert_refused(
            &renew,
            &format!("activate an active subscription ({attempt})"),
        );
        let renew = b
            .transition_subscription(sub.id, SubscriptionAction::Activate, Some(active.version))
            .await;
        assert_refused(&renew, "activate an active subscription with If-Match");
    }
    assert_eq!(
        b.subscription(sub.id).await?,
        active,
        "a refused renewal wrote"
    );

    // A pause and a resume give back the paused time only: not a period.
    let paused = b
        .transition_subscription(sub.id, SubscriptionAction::Pause, None)
        .await?;
    let resumed = b
        .transition_subscription(sub.id, SubscriptionAction::Activate, None)
        .await?;
    assert_eq!(resumed.status, SubscriptionStatus::Active);
    let resumed_end = resumed.expires_at.expect("an expiry");
    let paused_for = resumed.updated_at - paused.paused_at.expect("paused_at");
    assert!(
        resumed_end >= first_end.expect("an expiry")
            && resumed_end <= first_end.expect("an expiry") + paused_for + TimeDelta::seconds(1),
        "a resume added more than the paused time: {resumed_end} vs {first_end:?}"
    );
    let again = b
        .transition_subscription(sub.id, SubscriptionAction::Activate, None)
        .await;
    assert_refused(&again, "activate right after a resume");

    // A second paid invoice renews it: one more month from the current end.
    let renewed = pay_for(&h, s.user.id, s.plan.id, sub.id, "second").await?;
    assert_eq!(renewed.status, SubscriptionStatus::Active);
    assert_eq!(
        renewed.expires_at,
        resumed_end.checked_add_months(Months::new(1)),
        "a payment renews an active subscription"
    );
    assert_eq!(renewed.started_at, active.started_at, "started once");

    // A payment of a paused subscription resumes and renews it.
    b.transition_subscription(sub.id, SubscriptionAction::Pause, None)
        .await?;
    let paid_while_paused = pay_for(&h, s.user.id, s.plan.id, sub.id, "third").await?;
    assert_eq!(paid_while_paused.status, SubscriptionStatus::Active);
    assert!(
        paid_while_paused.expires_at
            >= renewed
                .expires_at
                .and_then(|end| end.checked_add_months(Months::new(1))),
        "a payment of a paused subscription renews it"
    );
    Ok(())
}

async fn final_subscriptions_stay_final(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let s = seed(b).await?;
    for action in [SubscriptionAction::Cancel, SubscriptionAction::Expire] {
        let sub = b
            .subscribe(NewSubscription {
                user_id: s.user.id,
                plan_id: s.plan.id,
            })
            .await?;
        pay_for(&h, s.user.id, s.plan.id, sub.id, &format!("{action:?}")).await?;
        let ended = b.transition_subscription(sub.id, action, None).await?;
        for next in [
            SubscriptionAction::Activate,
            SubscriptionAction::Pause,
            SubscriptionAction::Cancel,
            SubscriptionAction::Expire,
        ] {
            let result = b.transition_subscription(sub.id, next, None).await;
            assert_refused(&result, &format!("{next:?} after {action:?}"));
        }
        assert_eq!(b.subscription(sub.id).await?, ended);
    }
    Ok(())
}

service_test!(
    only_a_paid_invoice_adds_a_period,
    final_subscriptions_stay_final
);
