//! Delivery end to end: signed, in order per resource, through 500s and
//! time-outs, nothing for a rolled-back change, given up after the retry
//! window, redelivered, shared by instances, and taken over when an
//! instance dies mid-pass.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_domain::enums::{DeliveryStatus, EndpointStatus};
use billing_repository::DeliveryFilter;
use billing_service::{
    Billing, EventQuery, IdempotencyKey, InvoiceAction, NewInvoice, NewSubscription,
    NewWebhookEndpoint, Payment, RetryPolicy, SubscriptionAction,
};
use billing_webhooks::{DispatchSettings, Dispatcher};
use sea_orm::{ConnectionTrait, DatabaseBackend};

use crate::receiver::{Answer, Receiver, Script};
use crate::support::{Harness, seed, webhook_test};

fn settings(timeout: Duration, window: Duration) -> DispatchSettings {
    DispatchSettings {
        request_timeout: timeout,
        concurrency: 4,
        batch_size: 16,
        lease_ttl: Duration::from_secs(5),
        poll_interval: Duration::from_millis(10),
        retry: RetryPolicy {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(80),
            window,
        },
    }
}

async fn endpoint(billing: &Billing, receiver: &Receiver) -> anyhow::Result<i64> {
    let created = billing
        .create_webhook_endpoint(NewWebhookEndpoint {
            url: receiver.url.clone(),
            event_types: Vec::new(),
        })
        .await?;
    *receiver.secret.lock().expect("not poisoned") = created.secret;
    Ok(created.endpoint.id)
}

async fn pending(billing: &Billing, status: DeliveryStatus) -> anyhow::Result<usize> {
    Ok(billing
        .list_webhook_deliveries(
            DeliveryFilter {
                status: Some(status),
                ..DeliveryFilter::default()
            },
            100,
        )
        .await?
        .len())
}

/// Runs passes until nothing is pending (or `limit` passes).
async fn drain(dispatcher: &Dispatcher, billing: &Billing) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        dispatcher.run_once().await?;
        billing.publish_events().await?;
        if pending(billing, DeliveryStatus::Pending).await? == 0 {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "deliveries still pending");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn key(name: &str) -> IdempotencyKey {
    IdempotencyKey::for_request("tests", name, "POST", "/pay", b"{}").expect("valid key")
}

fn card() -> Payment {
    Payment {
        payment_method: "card".into(),
        payment_reference: None,
    }
}

/// A scripted sequence of changes, one of them rolled back; returns the
/// invoice whose payment rolled back.
async fn script_changes(billing: &Billing) -> anyhow::Result<i64> {
    let (user, plan) = seed(billing).await?;
    let sub = billing
        .subscribe(NewSubscription {
            user_id: user,
            plan_id: plan,
        })
        .await?;
    let new_invoice = || NewInvoice {
        user_id: user,
        plan_id: plan,
        subscription_id: Some(sub.id),
        currency: None,
        tax_code: None,
    };
    let first = billing.create_invoice(new_invoice()).await?;
    billing
        .pay_invoice(first.id, card(), None, &key("1"))
        .await?;
    billing
        .transition_subscription(sub.id, SubscriptionAction::Pause, None)
        .await?;
    billing
        .transition_subscription(sub.id, SubscriptionAction::Activate, None)
        .await?;
    let second = billing.create_invoice(new_invoice()).await?;
    billing
        .transition_invoice(second.id, InvoiceAction::Fail, None)
        .await?;
    // This payment rolls back: its subscription cannot be written.
    let conn = billing.database().connection();
    let postgres = conn.get_database_backend() == DatabaseBackend::Postgres;
    if postgres {
        conn.execute_unprepared(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse BEFORE UPDATE ON subscription FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .await?;
    } else {
        conn.execute_unprepared(
            "CREATE TRIGGER refuse BEFORE UPDATE ON subscription BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        )
        .await?;
    }
    assert!(
        billing
            .pay_invoice(second.id, card(), None, &key("2"))
            .await
            .is_err()
    );
    conn.execute_unprepared(if postgres {
        "DROP TRIGGER refuse ON subscription"
    } else {
        "DROP TRIGGER refuse"
    })
    .await?;
    billing
        .transition_invoice(second.id, InvoiceAction::Cancel, None)
        .await?;
    let third = billing.create_invoice(new_invoice()).await?;
    billing
        .pay_invoice(third.id, card(), None, &key("3"))
        .await?;
    billing
        .transition_subscription(sub.id, SubscriptionAction::Cancel, None)
        .await?;
    billing.delete_user(user, None).await?;
    Ok(second.id)
}

/// Every event arrives signed, in order per resource, although the
/// receiver answers some requests 500 and some too late; the rolled-back
/// payment sends nothing.
async fn events_arrive_signed_and_in_order_through_failures(h: Harness) -> anyhow::Result<()> {
    let script: Script = Arc::new(|n| match n % 5 {
        1 => Answer::Fail,
        3 if n < 20 => Answer::Late(Duration::from_millis(700)),
        _ => Answer::Ok,
    });
    let receiver = Receiver::start(script).await?;
    let endpoint_id = endpoint(&h.billing, &receiver).await?;
    let rolled_back = script_changes(&h.billing).await?;
    let dispatcher = Dispatcher::new(
        h.billing.clone(),
        settings(Duration::from_millis(300), Duration::from_secs(600)),
    )?;
    drain(&dispatcher, &h.billing).await?;

    let events = h
        .billing
        .list_events(EventQuery {
            limit: 100,
            ..EventQuery::default()
        })
        .await?;
    assert_eq!(events.len(), 15, "the scripted changes");
    let received = receiver.received();
    assert!(
        received.iter().all(|r| r.signature_ok),
        "every request is signed"
    );
    assert!(received.iter().any(|r| matches!(r.answer, Answer::Fail)));
    assert!(received.iter().any(|r| matches!(r.answer, Answer::Late(_))));
    // First receipt of each event id, per resource, in order of versions.
    let mut seen = HashSet::new();
    let mut per_resource: HashMap<(String, i64), Vec<i64>> = HashMap::new();
    for r in &received {
        let id = r.body["id"].as_i64().expect("an id");
        if seen.insert(id) {
            let resource = &r.body["resource"];
            per_resource
                .entry((
                    resource["kind"].as_str().unwrap_or_default().to_owned(),
                    resource["id"].as_i64().unwrap_or_default(),
                ))
                .or_default()
                .push(resource["version"].as_i64().unwrap_or_default());
        }
    }
    let expected: HashSet<i64> = events.iter().map(|e| e.id).collect();
    assert_eq!(seen, expected, "every event, none invented");
    for (resource, versions) in &per_resource {
        let in_order: Vec<i64> = (1..=i64::try_from(versions.len())?).collect();
        assert_eq!(versions, &in_order, "{resource:?}");
    }
    // Nothing about the rolled-back payment: invoice `rolled_back` went
    // pending → failed → cancelled, never paid.
    let types: Vec<&str> = received
        .iter()
        .filter(|r| {
            r.body["resource"]["id"] == rolled_back && r.body["resource"]["kind"] == "invoice"
        })
        .filter_map(|r| r.body["type"].as_str())
        .collect();
    assert!(!types.contains(&"invoice.paid"), "{types:?}");
    // The attempts are on record.
    let deliveries = h
        .billing
        .list_webhook_deliveries(
            DeliveryFilter {
                endpoint_id: Some(endpoint_id),
                ..DeliveryFilter::default()
            },
            100,
        )
        .await?;
    assert_eq!(deliveries.len(), 15);
    assert!(
        deliveries
            .iter()
            .all(|d| d.status == DeliveryStatus::Succeeded)
    );
    let retried = deliveries
        .iter()
        .find(|d| d.attempts > 1)
        .expect("a retried delivery");
    let (_, attempts) = h.billing.webhook_delivery(retried.id).await?;
    assert_eq!(attempts.len(), usize::try_from(retried.attempts)?);
    assert!(
        attempts
            .iter()
            .any(|a| a.status_code == Some(500) || a.error.is_some())
    );
    Ok(())
}

/// A receiver that always fails: the delivery is given up after its
/// window and the endpoint marked failing; redelivered and enabled again,
/// it goes through once the receiver recovers.
async fn a_failing_endpoint_is_given_up_then_redelivered(h: Harness) -> anyhow::Result<()> {
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&healthy);
    let script: Script = Arc::new(move |_| {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            Answer::Ok
        } else {
            Answer::Fail
        }
    });
    let receiver = Receiver::start(script).await?;
    let endpoint_id = endpoint(&h.billing, &receiver).await?;
    seed(&h.billing).await?;
    let dispatcher = Dispatcher::new(
        h.billing.clone(),
        settings(Duration::from_millis(300), Duration::from_millis(300)),
    )?;
    drain(&dispatcher, &h.billing).await?;
    let failed = h
        .billing
        .list_webhook_deliveries(
            DeliveryFilter {
                status: Some(DeliveryStatus::Failed),
                ..DeliveryFilter::default()
            },
            100,
        )
        .await?;
    assert_eq!(failed.len(), 1, "the user.created delivery was given up");
    assert!(
        failed[0].attempts >= 2,
        "retried first: {}",
        failed[0].attempts
    );
    let endpoint = h.billing.webhook_endpoint(endpoint_id).await?;
    assert_eq!(endpoint.status, EndpointStatus::Failing);

    // A failing endpoint gets no attempts, even when redelivered.
    h.billing.redeliver_webhook(failed[0].id).await?;
    let before = receiver.received().len();
    dispatcher.run_once().await?;
    assert_eq!(receiver.received().len(), before);
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    h.billing
        .set_webhook_endpoint_status(endpoint_id, EndpointStatus::Enabled)
        .await?;
    drain(&dispatcher, &h.billing).await?;
    let (delivery, attempts) = h.billing.webhook_delivery(failed[0].id).await?;
    assert_eq!(delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(attempts.last().and_then(|a| a.status_code), Some(200));
    Ok(())
}

/// Two instances deliver at once: the lease lets one send at a time, so
/// with a receiver that always answers 200 each event arrives once.
/// Then an instance is killed mid-pass (its task aborted while a request
/// hangs): the other takes over and no event is lost.
async fn instances_share_the_lease_and_survive_a_kill(h: Harness) -> anyhow::Result<()> {
    let slow = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&slow);
    let script: Script = Arc::new(move |_| {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            Answer::Late(Duration::from_millis(200))
        } else {
            Answer::Ok
        }
    });
    let receiver = Receiver::start(script).await?;
    endpoint(&h.billing, &receiver).await?;
    let (user, _) = seed(&h.billing).await?;
    for n in 0..10 {
        h.billing
            .update_user(
                user,
                billing_service::UserChanges {
                    status: None,
                    role: None,
                    email: Some(format!("ada{n}@example.com")),
                },
                None,
            )
            .await?;
    }
    let config = settings(Duration::from_secs(2), Duration::from_secs(600));
    let a = Dispatcher::new(h.billing.clone(), config)?;
    let b = Dispatcher::new(h.billing.clone(), config)?;
    let (ra, rb) = tokio::join!(a.run_once(), b.run_once());
    let (ra, rb) = (ra?, rb?);
    assert!(
        ra.lease_held_elsewhere || rb.lease_held_elsewhere || ra.attempted + rb.attempted == 11
    );
    drain(&a, &h.billing).await?;
    assert_eq!(receiver.received().len(), 11, "each event once");

    // A kill during delivery.
    slow.store(true, std::sync::atomic::Ordering::SeqCst);
    for n in 0..5 {
        h.billing
            .update_user(
                user,
                billing_service::UserChanges {
                    status: None,
                    role: None,
                    email: Some(format!("grace{n}@example.com")),
                },
                None,
            )
            .await?;
    }
    let doomed = Dispatcher::new(h.billing.clone(), config)?;
    let pass = tokio::spawn(async move { doomed.run_once().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    pass.abort();
    let _ = pass.await;
    slow.store(false, std::sync::atomic::Ordering::SeqCst);
    drain(&b, &h.billing).await?;
    let ids: HashSet<i64> = receiver
        .received()
        .iter()
        .filter_map(|r| r.body["id"].as_i64())
        .collect();
    assert_eq!(ids.len(), 16, "no event lost");
    Ok(())
}

webhook_test!(
    events_arrive_signed_and_in_order_through_failures,
    a_failing_endpoint_is_given_up_then_redelivered,
    instances_share_the_lease_and_survive_a_kill,
);
