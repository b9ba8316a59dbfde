//! The billing cycle over months of a settable clock: renewals issued once
//! per period and paid through the payment path, dunning on its schedule
//! with and without a charger, expiry, closing of unpaid invoices, the
//! database's refusal of a second renewal, and three runners sharing the
//! work while one is killed mid-pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use billing_domain::entities::{dunning_attempt, subscription, subscription_renewal, user_invoice};
use billing_domain::enums::{DunningOutcome, InvoiceStatus, SubscriptionStatus};
use billing_repository::{DunningAttempts, Renewals, RepositoryError};
use billing_service::{
    Billing, BillingSettings, ChargeFuture, ChargeOutcome, ChargeRequest, CycleReport, CycleRunner,
    CycleSettings, DunningFinalAction, IdempotencyKey, NewInvoice, NewSubscription, NewUser,
    Payment, RenewalCharger, TestClock, UserDetailsInput,
};
use chrono::{Months, TimeDelta};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::support::{Harness, Seed, dec, seed, service_test};

/// The harness's database and coordination, read through `clock`.
fn clocked(h: &Harness, clock: &TestClock) -> Billing {
    Billing::new_with_clock(
        h.billing.database().clone(),
        h.billing.coordination().clone(),
        BillingSettings::default(),
        Arc::new(clock.clone()),
    )
}

async fn pay(b: &Billing, invoice: i64, key: &str) -> anyhow::Result<()> {
    let key = IdempotencyKey::for_request("tests", key, "POST", "/pay", b"{}")?;
    let payment = Payment {
        payment_method: "card".into(),
        payment_reference: None,
    };
    b.pay_invoice(invoice, payment, None, &key).await?;
    Ok(())
}

/// A subscription of the seed user to the seed plan, paid for one month.
async fn active_subscription(
    b: &Billing,
    s: &Seed,
    key: &str,
) -> anyhow::Result<subscription::Model> {
    let sub = b
        .subscribe(NewSubscription {
            user_id: s.user.id,
            plan_id: s.plan.id,
        })
        .await?;
    let invoice = b
        .create_invoice(NewInvoice {
            user_id: s.user.id,
            plan_id: s.plan.id,
            subscription_id: Some(sub.id),
            currency: None,
            tax_code: None,
        })
        .await?;
    pay(b, invoice.id, key).await?;
    Ok(b.subscription(sub.id).await?)
}

async fn renewals_of(b: &Billing, sub: i64) -> anyhow::Result<Vec<subscription_renewal::Model>> {
    Ok(Renewals::of_subscription(b.database(), sub).await?)
}

async fn attempts_of(b: &Billing, invoice: i64) -> anyhow::Result<Vec<dunning_attempt::Model>> {
    Ok(DunningAttempts::of_invoice(b.database(), invoice).await?)
}

async fn pass(runner: &CycleRunner) -> anyhow::Result<CycleReport> {
    let report = runner.run_once().await?;
    assert!(
        !report.lease_held_elsewhere,
        "a lone runner found the lease taken"
    );
    Ok(report)
}

async fn six_months_of_renewals_then_dunning_cancels(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let clock = TestClock::new(h.billing.now());
    let b = clocked(&h, &clock);
    b.put_user_details(
        s.user.id,
        UserDetailsInput {
            country_code: Some("DE".into()),
            ..UserDetailsInput::default()
        },
        None,
    )
    .await?;
    let runner = CycleRunner::new(b.clone(), CycleSettings::default());
    let mut sub = active_subscription(&b, &s, "first").await?;

    for month in 1..=6_u32 {
        let end = sub.expires_at.expect("paid until");
        // Four days before the end: not due yet (lead 3 days).
        clock.set(end - TimeDelta::days(4));
        assert_eq!(
            pass(&runner).await?.renewals_issued,
            0,
            "month {month}: too early"
        );
        clock.set(end - TimeDelta::days(2));
        assert_eq!(pass(&runner).await?.renewals_issued, 1, "month {month}");
        // A second pass in the same period issues nothing more.
        assert_eq!(
            pass(&runner).await?.renewals_issued,
            0,
            "month {month}: twice"
        );
        let renewals = renewals_of(&b, sub.id).await?;
        assert_eq!(renewals.len(), month as usize);
        let renewal = renewals.last().expect("one per month");
        assert_eq!(renewal.period_start, end);
        let invoice = b.invoice(renewal.invoice_id).await?;
        assert_eq!(invoice.status, InvoiceStatus::Pending);
        assert_eq!(invoice.subscription_id, Some(sub.id));
        assert_eq!(invoice.currency, "EUR");
        // The plan's 10.00 with the customer's 19 % German VAT.
        assert_eq!(invoice.net_amount.0, dec("10.00"));
        assert_eq!(invoice.tax_amount.0, dec("1.90"));
        assert_eq!(invoice.amount.0, dec("11.90"));
        pay(&b, invoice.id, &format!("renewal-{month}")).await?;
        sub = b.subscription(sub.id).await?;
        assert_eq!(sub.status, SubscriptionStatus::Active);
        // Paid before the end: one calendar month on from the old end.
        assert_eq!(
            sub.expires_at,
            end.checked_add_months(Months::new(1)),
            "month {month}: one period added from the old end"
        );
    }

    // Month 7 is not paid: dunning after 1, 3 and 5 days, then cancelled.
    let end = sub.expires_at.expect("paid until");
    clock.set(end - TimeDelta::days(1));
    assert_eq!(pass(&runner).await?.renewals_issued, 1);
    let invoice = renewals_of(&b, sub.id)
        .await?
        .last()
        .expect("issued")
        .invoice_id;
    clock.set(end + TimeDelta::hours(12));
    assert_eq!(
        pass(&runner).await?.dunning_attempts(),
        0,
        "not due before a day"
    );
    assert_eq!(
        b.subscription(sub.id).await?.status,
        SubscriptionStatus::Active
    );
    for (day, made) in [(1, 1), (2, 1), (3, 2), (4, 2)] {
        clock.set(end + TimeDelta::days(day));
        let report = pass(&runner).await?;
        assert_eq!(attempts_of(&b, invoice).await?.len(), made, "day {day}");
        assert_eq!(report.dunning_closed, 0, "day {day}");
        // Running again the same day attempts nothing twice.
        assert_eq!(
            pass(&runner).await?.dunning_attempts(),
            0,
            "day {day}: twice"
        );
    }
    clock.set(end + TimeDelta::days(5));
    let report = pass(&runner).await?;
    assert_eq!(report.dunning_awaiting_payment, 1);
    assert_eq!(report.dunning_closed, 1);
    let attempts = attempts_of(&b, invoice).await?;
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a.attempt, a.outcome))
            .collect::<Vec<_>>(),
        [1, 2, 3].map(|n| (n, DunningOutcome::AwaitingPayment))
    );
    assert_eq!(b.invoice(invoice).await?.status, InvoiceStatus::Cancelled);
    let cancelled = b.subscription(sub.id).await?;
    assert_eq!(cancelled.status, SubscriptionStatus::Cancelled);
    // Nothing more happens to it, however long the cycle runs.
    clock.advance(TimeDelta::days(60));
    let report = pass(&runner).await?;
    assert_eq!(
        (
            report.renewals_issued,
            report.dunning_attempts(),
            report.subscriptions_expired
        ),
        (0, 0, 0)
    );
    assert_eq!(b.subscription(sub.id).await?, cancelled);
    Ok(())
}

/// Declines the first attempt, pays the second; counts its calls.
#[derive(Debug, Default)]
struct SecondTimeLucky {
    calls: AtomicU32,
    keys: std::sync::Mutex<Vec<String>>,
}

impl RenewalCharger for SecondTimeLucky {
    fn charge<'a>(&'a self, request: ChargeRequest<'a>) -> ChargeFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.keys
            .lock()
            .expect("keys")
            .push(request.idempotency_key.to_owned());
        let attempt = request.attempt;
        Box::pin(async move {
            Ok(if attempt == 1 {
                ChargeOutcome::Declined {
                    reason: "insufficient funds".into(),
                }
            } else {
                ChargeOutcome::Paid {
                    payment_method: "card".into(),
                    payment_reference: Some(format!("ch_{attempt}")),
                }
            })
        })
    }
}

async fn a_charger_retries_until_paid(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let clock = TestClock::new(h.billing.now());
    let b = clocked(&h, &clock);
    let charger = Arc::new(SecondTimeLucky::default());
    let runner =
        CycleRunner::new(b.clone(), CycleSettings::default()).with_charger(charger.clone());
    let sub = active_subscription(&b, &s, "first").await?;
    let end = sub.expires_at.expect("paid until");
    clock.set(end - TimeDelta::days(1));
    pass(&runner).await?;
    let invoice = renewals_of(&b, sub.id).await?[0].invoice_id;

    clock.set(end + TimeDelta::days(1));
    assert_eq!(pass(&runner).await?.dunning_declined, 1);
    assert_eq!(b.invoice(invoice).await?.status, InvoiceStatus::Failed);
    clock.set(end + TimeDelta::days(3));
    assert_eq!(pass(&runner).await?.dunning_paid, 1);
    let paid = b.invoice(invoice).await?;
    assert_eq!(paid.status, InvoiceStatus::Paid);
    assert_eq!(paid.payment_reference.as_deref(), Some("ch_2"));
    let renewed = b.subscription(sub.id).await?;
    assert_eq!(renewed.status, SubscriptionStatus::Active);
    // Paid after the end: one period from the payment (the domain's rule).
    assert_eq!(
        renewed.expires_at,
        (end + TimeDelta::days(3)).checked_add_months(Months::new(1))
    );
    // Day 5 and later: the paid invoice is not retried.
    clock.set(end + TimeDelta::days(5));
    assert_eq!(pass(&runner).await?.dunning_attempts(), 0);
    assert_eq!(charger.calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        *charger.keys.lock().expect("keys"),
        [
            format!("dunning-{invoice}-1"),
            format!("dunning-{invoice}-2")
        ]
    );
    let outcomes: Vec<_> = attempts_of(&b, invoice)
        .await?
        .iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes, [DunningOutcome::Declined, DunningOutcome::Paid]);
    Ok(())
}

async fn unrenewed_subscriptions_expire_and_old_invoices_close(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let clock = TestClock::new(h.billing.now());
    let b = clocked(&h, &clock);
    let settings = CycleSettings {
        dunning_schedule: Vec::new(),
        dunning_final_action: DunningFinalAction::Suspend,
        ..CycleSettings::default()
    };
    let runner = CycleRunner::new(b.clone(), settings);
    let sub = active_subscription(&b, &s, "first").await?;
    let end = sub.expires_at.expect("paid until");
    // An invoice nobody pays, outside the cycle, issued a week before the end.
    clock.set(end - TimeDelta::days(7));
    let stray = b
        .create_invoice(NewInvoice {
            user_id: s.user.id,
            plan_id: s.plan.id,
            subscription_id: None,
            currency: Some("USD".into()),
            tax_code: None,
        })
        .await?;
    // Within the grace period it stays active (its renewal is pending).
    clock.set(end + TimeDelta::days(6));
    let report = pass(&runner).await?;
    assert_eq!(
        (report.renewals_issued, report.subscriptions_expired),
        (1, 0)
    );
    assert_eq!(
        b.subscription(sub.id).await?.status,
        SubscriptionStatus::Active
    );
    clock.set(end + TimeDelta::days(8));
    assert_eq!(pass(&runner).await?.subscriptions_expired, 1);
    let expired = b.subscription(sub.id).await?;
    assert_eq!(expired.status, SubscriptionStatus::Expired);
    assert_eq!(expired.expires_at, Some(end));
    assert_eq!(
        pass(&runner).await?.subscriptions_expired,
        0,
        "expired twice"
    );
    // The 30-day payment window of the stray invoice ends.
    assert_eq!(b.invoice(stray.id).await?.status, InvoiceStatus::Pending);
    clock.set(stray.expires_at.expect("window"));
    let report = pass(&runner).await?;
    assert!(report.invoices_closed >= 1, "{report:?}");
    assert_eq!(b.invoice(stray.id).await?.status, InvoiceStatus::Cancelled);
    // The renewal of the expired subscription closes at its window too and
    // can no longer be paid.
    let renewal = renewals_of(&b, sub.id).await?[0].invoice_id;
    let window = b.invoice(renewal).await?.expires_at.expect("window");
    clock.set(window - TimeDelta::microseconds(1));
    pass(&runner).await?;
    assert_eq!(b.invoice(renewal).await?.status, InvoiceStatus::Pending);
    clock.set(window);
    pass(&runner).await?;
    assert_eq!(b.invoice(renewal).await?.status, InvoiceStatus::Cancelled);
    assert_eq!(pass(&runner).await?.invoices_closed, 0, "closed twice");
    Ok(())
}

async fn the_database_refuses_a_second_renewal_of_a_period(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let clock = TestClock::new(h.billing.now());
    let b = clocked(&h, &clock);
    let sub = active_subscription(&b, &s, "first").await?;
    let at = clock.now_for_tests();
    // Eight concurrent renewals of one period: one invoice.
    let tries = (0..8).map(|_| {
        let b = b.clone();
        let sub = sub.clone();
        tokio::spawn(async move { b.renew_subscription(&sub, at).await })
    });
    let mut issued = Vec::new();
    for result in futures::future::join_all(tries).await {
        if let Some(invoice) = result?? {
            issued.push(invoice);
        }
    }
    assert_eq!(issued.len(), 1, "{issued:?}");
    let renewals = renewals_of(&b, sub.id).await?;
    assert_eq!(renewals.len(), 1);
    let invoices = user_invoice::Entity::find()
        .filter(user_invoice::Column::SubscriptionId.eq(sub.id))
        .count(b.database().connection())
        .await?;
    assert_eq!(invoices, 2, "the first invoice and one renewal");
    // Not only the service: the table itself refuses the pair.
    let direct = Renewals::insert(
        b.database(),
        sub.id,
        renewals[0].period_start,
        issued[0].id,
        at,
    )
    .await;
    assert!(
        matches!(direct, Err(RepositoryError::AlreadyExists { .. })),
        "{direct:?}"
    );
    // A second claim of one dunning attempt is refused the same way.
    let invoice = issued[0].id;
    assert!(
        DunningAttempts::claim(b.database(), invoice, 1, at)
            .await?
            .is_some()
    );
    assert!(
        DunningAttempts::claim(b.database(), invoice, 1, at)
            .await?
            .is_none()
    );
    Ok(())
}

/// A helper trait so the test reads the clock it set.
trait NowForTests {
    fn now_for_tests(&self) -> chrono::DateTime<chrono::Utc>;
}

impl NowForTests for TestClock {
    fn now_for_tests(&self) -> chrono::DateTime<chrono::Utc> {
        billing_service::Clock::now(self)
    }
}

async fn three_runners_one_killed_keep_the_invariants(h: Harness) -> anyhow::Result<()> {
    const SUBSCRIBERS: usize = 24;
    let s = seed(&h.billing).await?;
    let clock = TestClock::new(h.billing.now());
    let b = clocked(&h, &clock);
    let mut subs = Vec::new();
    for i in 0..SUBSCRIBERS {
        let user = b
            .register_user(NewUser {
                email: format!("user{i}@example.com"),
                password: "correct horse battery".into(),
                role: None,
            })
            .await?;
        let each = Seed {
            user,
            eur: s.eur.clone(),
            usd: s.usd.clone(),
            vat: s.vat.clone(),
            plan: s.plan.clone(),
        };
        subs.push(active_subscription(&b, &each, &format!("first-{i}")).await?);
    }
    let end = subs
        .iter()
        .filter_map(|s| s.expires_at)
        .max()
        .expect("paid until");
    // All are due, and their first dunning attempt too.
    clock.set(end + TimeDelta::days(1) + TimeDelta::hours(1));
    let settings = CycleSettings {
        batch_size: 3,
        lease_ttl: Duration::from_secs(2),
        ..CycleSettings::default()
    };
    let runner = |b: &Billing| CycleRunner::new(b.clone(), settings.clone());
    // The first instance takes the lease and is killed half way through
    // its pass.
    let first = runner(&b);
    let killed = tokio::spawn(async move { first.run_once().await });
    let renewed = || async {
        subscription_renewal::Entity::find()
            .count(b.database().connection())
            .await
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while renewed().await? < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first pass did not start"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    killed.abort();
    assert!(
        killed.await.is_err_and(|e| e.is_cancelled()),
        "killed after its pass"
    );
    // A commit already sent when the task died lands now or never.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let left_done = renewed().await?;
    assert!(
        (1..SUBSCRIBERS as u64).contains(&left_done),
        "the kill was not mid-pass: {left_done} renewals"
    );
    // Two instances keep running passes (at the same time) until one has
    // completed a pass: the dead one's lease runs out first.
    let survivors: Vec<_> = (0..2)
        .map(|_| {
            let runner = runner(&b);
            tokio::spawn(async move {
                let mut reports = Vec::new();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
                while tokio::time::Instant::now() < deadline {
                    let report = runner.run_once().await?;
                    let ran = !report.lease_held_elsewhere;
                    reports.push(report);
                    if ran {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok::<_, billing_service::BillingError>(reports)
            })
        })
        .collect();
    let mut issued = 0;
    let mut passes = 0;
    for survivor in survivors {
        for report in survivor.await?? {
            if !report.lease_held_elsewhere {
                passes += 1;
                issued += report.renewals_issued;
            }
        }
    }
    assert!(passes >= 1, "no survivor completed a pass");
    assert_eq!(
        issued + left_done,
        SUBSCRIBERS as u64,
        "the survivors issued exactly what the killed pass left"
    );
    let last = runner(&b).run_once().await?;
    assert_eq!((last.renewals_issued, last.dunning_attempts()), (0, 0));

    let mut renewals_total = 0;
    for sub in &subs {
        let renewals = renewals_of(&b, sub.id).await?;
        assert_eq!(renewals.len(), 1, "subscription {}: {renewals:?}", sub.id);
        renewals_total += 1;
        let invoices = user_invoice::Entity::find()
            .filter(user_invoice::Column::SubscriptionId.eq(sub.id))
            .count(b.database().connection())
            .await?;
        assert_eq!(invoices, 2, "subscription {}: one renewal invoice", sub.id);
        let attempts = attempts_of(&b, renewals[0].invoice_id).await?;
        let numbers: Vec<_> = attempts.iter().map(|a| a.attempt).collect();
        assert_eq!(numbers, [1], "subscription {}: one attempt, once", sub.id);
        assert!(
            attempts
                .iter()
                .all(|a| a.outcome == DunningOutcome::AwaitingPayment),
            "{attempts:?}"
        );
    }
    assert_eq!(renewals_total, SUBSCRIBERS);
    Ok(())
}

service_test!(
    six_months_of_renewals_then_dunning_cancels,
    a_charger_retries_until_paid,
    unrenewed_subscriptions_expire_and_old_invoices_close,
    the_database_refuses_a_second_renewal_of_a_period,
    three_runners_one_killed_keep_the_invariants
);
