//! Exactly once under an idempotency key, whatever moment a process dies at:
//! faults injected after the claim, after the commit and after the answer,
//! on both deployments.
//!
//! A second instance is a `Billing` over the same database with a
//! coordination backend of its own, so it cannot see the first instance's
//! claim: exactly the state after that instance died (a restarted embedded
//! process forgets its claims; a Redis claim expires at its in-flight TTL).

use billing_service::PageRequest;
use std::future::pending;

use billing_concurrency::Coordination;
use billing_domain::entities::user_invoice;
use billing_repository::{IdempotencyRecords, Invoices, Subscriptions};
use billing_service::{
    Billing, BillingError, BillingSettings, IdempotencyKey, Idempotent, NewCase, NewInvoice,
    NewSubscription, NewUser, Payment,
};
use tokio::sync::oneshot;

use crate::support::{Harness, Seed, seed, service_test};

fn key(name: &str) -> IdempotencyKey {
    IdempotencyKey::for_request("tests", name, "POST", "/invoices", b"{}").expect("valid key")
}

fn new_invoice(s: &Seed) -> NewInvoice {
    NewInvoice {
        user_id: s.user.id,
        plan_id: s.plan.id,
        subscription_id: None,
        currency: None,
        tax_code: None,
    }
}

/// Another instance over the same database, blind to this one's claims.
fn other_instance(h: &Harness) -> Billing {
    Billing::new(
        h.billing.database().clone(),
        Coordination::embedded(),
        BillingSettings::default(),
    )
}

async fn invoices_of(h: &Harness, user_id: i64) -> anyhow::Result<Vec<user_invoice::Model>> {
    Ok(Invoices::by_user(
        h.billing.database(),
        user_id,
        None,
        PageRequest::new(1, 100)?,
    )
    .await?
    .items)
}

/// Dies after claiming the key, before anything commits: the retry runs,
/// once.
async fn a_crash_after_the_claim_runs_the_request_once(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let dying = other_instance(&h);
    let (claimed, on_claim) = oneshot::channel();
    let task = tokio::spawn(async move {
        let work = async move {
            let _ = claimed.send(());
            pending::<Result<user_invoice::Model, BillingError>>().await
        };
        dying.idempotently(&key("k"), work).await
    });
    on_claim.await?;
    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    assert!(invoices_of(&h, s.user.id).await?.is_empty());

    let retry = h
        .billing
        .idempotently(&key("k"), h.billing.create_invoice(new_invoice(&s)))
        .await?;
    let Idempotent::Fresh(invoice) = retry else {
        anyhow::bail!("nothing had committed, yet the retry was replayed: {retry:?}");
    };
    let again = h
        .billing
        .idempotently(&key("k"), h.billing.create_invoice(new_invoice(&s)))
        .await?;
    assert_eq!(again, Idempotent::Replayed(invoice.clone()));
    assert_eq!(invoices_of(&h, s.user.id).await?, vec![invoice]);
    Ok(())
}

/// Dies right after its effect committed, before answering or releasing
/// the claim: the retry, on another instance, replays; nothing runs twice.
async fn a_crash_after_the_commit_never_runs_again(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let dying = other_instance(&h);
    let new = new_invoice(&s);
    let (committed, on_commit) = oneshot::channel();
    let task = tokio::spawn(async move {
        let work = async {
            let invoice = dying.create_invoice(new).await;
            let _ = committed.send(invoice);
            pending::<Result<user_invoice::Model, BillingError>>().await
        };
        dying.idempotently(&key("k"), work).await
    });
    let invoice = on_commit.await??;
    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));

    for _ in 0..3 {
        let retry = h
            .billing
            .idempotently(&key("k"), h.billing.create_invoice(new_invoice(&s)))
            .await?;
        assert_eq!(retry, Idempotent::Replayed(invoice.clone()));
    }
    assert_eq!(invoices_of(&h, s.user.id).await?, vec![invoice]);
    Ok(())
}

/// Answered, but the answer was lost (or the process died right after):
/// the retry replays the same outcome, even after a payment changed the
/// invoice since.
async fn a_lost_answer_replays_the_recorded_outcome(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let first = other_instance(&h);
    let Idempotent::Fresh(invoice) = first
        .idempotently(&key("k"), first.create_invoice(new_invoice(&s)))
        .await?
    else {
        anyhow::bail!("the first request was replayed");
    };
    drop(first);
    let payment = Payment {
        payment_method: "card".into(),
        payment_reference: None,
    };
    let pay_key = IdempotencyKey::for_request("tests", "pay", "POST", "/pay", b"{}")?;
    h.billing
        .pay_invoice(invoice.id, payment, None, &pay_key)
        .await?;

    let retry = h
        .billing
        .idempotently(&key("k"), h.billing.create_invoice(new_invoice(&s)))
        .await?;
    assert_eq!(retry, Idempotent::Replayed(invoice.clone()));
    assert_eq!(invoices_of(&h, s.user.id).await?.len(), 1);
    Ok(())
}

/// Several instances run one key at once with no claim to stop them (say
/// it expired under a slow request): exactly one effect commits, every
/// other run answers with its outcome.
async fn racing_runs_of_one_key_commit_once(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let instances: Vec<Billing> = (0..6).map(|_| other_instance(&h)).collect();
    let race = key("race");
    let runs = futures::future::join_all(
        instances
            .iter()
            .map(|billing| billing.idempotently(&race, billing.create_invoice(new_invoice(&s)))),
    )
    .await;
    let mut fresh = Vec::new();
    let mut replayed = Vec::new();
    for run in runs {
        match run? {
            Idempotent::Fresh(invoice) => fresh.push(invoice),
            Idempotent::Replayed(invoice) => replayed.push(invoice),
        }
    }
    assert_eq!(fresh.len(), 1, "{fresh:?}");
    assert_eq!(replayed.len(), 5);
    assert!(replayed.iter().all(|invoice| *invoice == fresh[0]));
    assert_eq!(invoices_of(&h, s.user.id).await?, fresh);
    Ok(())
}

/// Racing payments of one invoice under one key on instances that cannot
/// see each other's claims or locks: one charge, and every run answers
/// with that payment.
async fn racing_payments_of_one_key_charge_once(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let invoice = h.billing.create_invoice(new_invoice(&s)).await?;
    let pay_key = IdempotencyKey::for_request("tests", "pay-race", "POST", "/pay", b"{}")?;
    let instances: Vec<Billing> = (0..6).map(|_| other_instance(&h)).collect();
    let runs = futures::future::join_all(instances.iter().map(|billing| {
        let payment = Payment {
            payment_method: "card".into(),
            payment_reference: Some("ch_1".into()),
        };
        billing.pay_invoice(invoice.id, payment, None, &pay_key)
    }))
    .await;
    let mut outcomes = Vec::new();
    let mut fresh = 0;
    for run in runs {
        match run {
            Ok(Idempotent::Fresh(outcome)) => {
                fresh += 1;
                outcomes.push(outcome);
            }
            Ok(Idempotent::Replayed(outcome)) => outcomes.push(outcome),
            // A run that met the invoice mid-change before the winner
            // committed gave up without effect.
            Err(BillingError::Locked { .. }) => {}
            Err(other) => anyhow::bail!("unexpected refusal: {other:?}"),
        }
    }
    assert_eq!(fresh, 1);
    let stored = h.billing.invoice(invoice.id).await?;
    assert_eq!(stored.version, 2, "paid exactly once");
    assert!(outcomes.iter().all(|outcome| outcome.invoice == stored));
    Ok(())
}

/// A refusal is not recorded: the same key, corrected, runs.
async fn a_refused_request_can_be_corrected_under_the_same_key(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let invoice = h.billing.create_invoice(new_invoice(&s)).await?;
    let payment = || Payment {
        payment_method: "card".into(),
        payment_reference: None,
    };
    let pay_key = IdempotencyKey::for_request("tests", "pay", "POST", "/pay", b"{}")?;
    let stale = h
        .billing
        .pay_invoice(invoice.id, payment(), Some(7), &pay_key)
        .await;
    assert!(
        matches!(stale, Err(BillingError::VersionMismatch { current: 1, .. })),
        "{stale:?}"
    );
    let corrected = h
        .billing
        .pay_invoice(invoice.id, payment(), Some(1), &pay_key)
        .await?;
    assert!(!corrected.is_replayed());
    assert_eq!(corrected.into_inner().invoice.version, 2);
    Ok(())
}

/// The same key with another request, or for another kind of outcome, is
/// refused, not replayed.
async fn a_key_serves_one_request_only(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    h.billing
        .idempotently(&key("k"), h.billing.create_invoice(new_invoice(&s)))
        .await?;
    let other_body = IdempotencyKey::for_request("tests", "k", "POST", "/invoices", b"{ }")?;
    let reused = h
        .billing
        .idempotently(&other_body, h.billing.create_invoice(new_invoice(&s)))
        .await;
    assert!(
        matches!(reused, Err(BillingError::IdempotencyKeyReused)),
        "{reused:?}"
    );
    let other_kind = h
        .billing
        .idempotently(
            &key("k"),
            h.billing.subscribe(NewSubscription {
                user_id: s.user.id,
                plan_id: s.plan.id,
            }),
        )
        .await;
    assert!(
        matches!(other_kind, Err(BillingError::IdempotencyKeyReused)),
        "{other_kind:?}"
    );
    let subscriptions =
        Subscriptions::by_user(h.billing.database(), s.user.id, PageRequest::new(1, 100)?).await?;
    assert_eq!(subscriptions.total, 0, "the refused request ran");
    assert_eq!(invoices_of(&h, s.user.id).await?.len(), 1);
    Ok(())
}

/// A record is honoured for the idempotency TTL only; expired ones are
/// purged.
async fn an_expired_key_runs_again_and_is_purged(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let short = Billing::new(
        h.billing.database().clone(),
        h.billing.coordination().clone(),
        BillingSettings {
            idempotency_ttl: std::time::Duration::from_millis(50),
            ..BillingSettings::default()
        },
    );
    let first = short
        .idempotently(&key("k"), short.create_invoice(new_invoice(&s)))
        .await?;
    assert!(!first.is_replayed());
    assert!(
        short
            .idempotently(&key("k"), short.create_invoice(new_invoice(&s)))
            .await?
            .is_replayed()
    );
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    let after_ttl = short
        .idempotently(&key("k"), short.create_invoice(new_invoice(&s)))
        .await?;
    assert!(!after_ttl.is_replayed(), "an expired key was replayed");
    assert_eq!(invoices_of(&h, s.user.id).await?.len(), 2);
    // The default TTL keeps the record just written; the short one purges it.
    assert_eq!(h.billing.purge_expired_idempotency_records().await?, 0);
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    assert_eq!(short.purge_expired_idempotency_records().await?, 1);
    assert_eq!(short.purge_expired_idempotency_records().await?, 0);
    Ok(())
}

/// The recorded outcomes of a user's requests hold their personal data
/// (e-mail, case text): erasing the user erases them too.
async fn erasing_a_user_erases_their_recorded_outcomes(h: Harness) -> anyhow::Result<()> {
    let register = || NewUser {
        email: "erase-me@example.com".into(),
        password: "correct horse battery".into(),
        role: None,
    };
    let user_key = IdempotencyKey::for_request("tests", "register", "POST", "/users", b"{}")?;
    let user = h
        .billing
        .idempotently(&user_key, h.billing.register_user(register()))
        .await?
        .into_inner();
    let case_key = IdempotencyKey::for_request("tests", "case", "POST", "/cases", b"{}")?;
    let case = NewCase {
        subject: "card 4242".into(),
        description: "call me on +49 30 1234567".into(),
    };
    h.billing
        .idempotently(&case_key, h.billing.open_case(user.id, case))
        .await?;
    let live = async |key: &IdempotencyKey| {
        IdempotencyRecords::find_live(
            h.billing.database(),
            key.scope(),
            key.key(),
            chrono::DateTime::UNIX_EPOCH,
        )
        .await
    };
    let recorded = live(&user_key)
        .await?
        .expect("the registration is recorded");
    assert!(recorded.outcome.contains("erase-me@example.com"));
    assert!(
        live(&case_key)
            .await?
            .is_some_and(|r| r.outcome.contains("4242"))
    );

    h.billing.delete_user(user.id, None).await?;
    assert_eq!(live(&user_key).await?, None);
    assert_eq!(live(&case_key).await?, None);
    Ok(())
}

service_test!(
    erasing_a_user_erases_their_recorded_outcomes,
    an_expired_key_runs_again_and_is_purged,
    a_crash_after_the_claim_runs_the_request_once,
    a_crash_after_the_commit_never_runs_again,
    a_lost_answer_replays_the_recorded_outcome,
    racing_runs_of_one_key_commit_once,
    racing_payments_of_one_key_charge_once,
    a_refused_request_can_be_corrected_under_the_same_key,
    a_key_serves_one_request_only,
);
