//! Paying and refunding: exactly once under concurrency, idempotent
//! replays, and a failure inside the transaction that leaves nothing.

use billing_domain::enums::{InvoiceStatus, SubscriptionStatus};
use billing_service::{
    BillingError, IdempotencyKey, Idempotent, NewInvoice, NewSubscription, Payment, PaymentOutcome,
};
use chrono::Months;
use sea_orm::{ConnectionTrait, DatabaseBackend};

use crate::support::{Harness, seed, service_test};

fn key(name: &str) -> IdempotencyKey {
    IdempotencyKey::for_request("tests", name, "POST", "/pay", b"{}").expect("valid key")
}

fn card() -> Payment {
    Payment {
        payment_method: "card".into(),
        payment_reference: Some("ch_1".into()),
    }
}

/// A pending subscription and a pending invoice for it.
async fn invoice_for_subscription(h: &Harness) -> anyhow::Result<(i64, i64)> {
    let s = seed(&h.billing).await?;
    let sub = h
        .billing
        .subscribe(NewSubscription {
            user_id: s.user.id,
            plan_id: s.plan.id,
        })
        .await?;
    let inv = h
        .billing
        .create_invoice(NewInvoice {
            user_id: s.user.id,
            plan_id: s.plan.id,
            subscription_id: Some(sub.id),
            currency: None,
            tax_code: Some("DE_VAT".into()),
        })
        .await?;
    Ok((inv.id, sub.id))
}

type PayResult = Result<Idempotent<PaymentOutcome>, BillingError>;

async fn pay(h: &Harness, invoice: i64, key_name: &str) -> PayResult {
    h.billing
        .pay_invoice(invoice, card(), None, &key(key_name))
        .await
}

async fn paying_activates_the_subscription_once(h: Harness) -> anyhow::Result<()> {
    let (invoice, subscription) = invoice_for_subscription(&h).await?;
    let Idempotent::Fresh(outcome) = pay(&h, invoice, "k1").await? else {
        anyhow::bail!("the first payment did not run");
    };
    assert_eq!(outcome.invoice.status, InvoiceStatus::Paid);
    assert_eq!(outcome.invoice.payment_method.as_deref(), Some("card"));
    assert!(
        outcome.invoice.fencing_token.is_some(),
        "the lock's fencing token is stored"
    );
    let sub = outcome
        .subscription
        .clone()
        .expect("the subscription was activated");
    assert_eq!(
        (sub.id, sub.status, sub.version),
        (subscription, SubscriptionStatus::Active, 2)
    );
    assert_eq!(
        sub.expires_at,
        sub.started_at
            .and_then(|s| s.checked_add_months(Months::new(1)))
    );

    // The same key replays the recorded outcome exactly.
    let Idempotent::Replayed(replay) = pay(&h, invoice, "k1").await? else {
        anyhow::bail!("the same key ran twice");
    };
    assert_eq!(replay, outcome);
    // Another key meets an invoice that is already paid.
    let second = pay(&h, invoice, "k2").await;
    assert!(
        matches!(second, Err(BillingError::InvalidTransition { .. })),
        "{second:?}"
    );
    // The same key with another request is refused.
    let reused = h
        .billing
        .pay_invoice(
            invoice,
            card(),
            None,
            &IdempotencyKey::for_request("tests", "k1", "POST", "/pay", b"{\"x\":1}")?,
        )
        .await;
    assert!(
        matches!(reused, Err(BillingError::IdempotencyKeyReused)),
        "{reused:?}"
    );

    let stored = h.billing.subscription(subscription).await?;
    assert_eq!(
        stored.version, 2,
        "the subscription was activated more than once"
    );
    Ok(())
}

async fn refunds_need_a_paid_invoice(h: Harness) -> anyhow::Result<()> {
    let (invoice, _) = invoice_for_subscription(&h).await?;
    let refund = async |name: &str| h.billing.refund_invoice(invoice, None, &key(name)).await;
    let unpaid = refund("r1").await;
    assert!(
        matches!(unpaid, Err(BillingError::InvalidTransition { .. })),
        "{unpaid:?}"
    );
    assert_eq!(
        h.billing.invoice(invoice).await?.status,
        InvoiceStatus::Pending
    );

    pay(&h, invoice, "p1").await?;
    let Idempotent::Fresh(refunded) = refund("r2").await? else {
        anyhow::bail!("the refund did not run");
    };
    assert_eq!(refunded.invoice.status, InvoiceStatus::Refunded);
    assert!(matches!(refund("r2").await?, Idempotent::Replayed(_)));
    let twice = refund("r3").await;
    assert!(
        matches!(twice, Err(BillingError::InvalidTransition { .. })),
        "{twice:?}"
    );
    Ok(())
}

/// 50 concurrent payments of one invoice with ONE key: one runs, the others
/// see it in flight or replay it; one activation.
async fn fifty_payments_with_one_key(h: Harness) -> anyhow::Result<()> {
    let (invoice, subscription) = invoice_for_subscription(&h).await?;
    let attempts = futures::future::join_all((0..50).map(|_| pay(&h, invoice, "same"))).await;
    let mut fresh = 0;
    for attempt in attempts {
        match attempt {
            Ok(Idempotent::Fresh(_)) => fresh += 1,
            Ok(Idempotent::Replayed(_)) | Err(BillingError::IdempotencyInFlight) => {}
            other => anyhow::bail!("unexpected outcome: {other:?}"),
        }
    }
    assert_eq!(fresh, 1);
    let paid = h.billing.invoice(invoice).await?;
    let replays = futures::future::join_all((0..5).map(|_| pay(&h, invoice, "same"))).await;
    for replay in replays {
        let Ok(Idempotent::Replayed(stored)) = replay else {
            anyhow::bail!("not a replay: {replay:?}");
        };
        assert_eq!(stored.invoice, paid, "replays are identical");
    }
    assert_eq!((paid.status, paid.version), (InvoiceStatus::Paid, 2));
    assert_eq!(
        h.billing.subscription(subscription).await?.version,
        2,
        "one activation"
    );
    Ok(())
}

/// 50 concurrent payments of one invoice with 50 keys: exactly one charge.
async fn fifty_payments_with_fifty_keys(h: Harness) -> anyhow::Result<()> {
    let (invoice, subscription) = invoice_for_subscription(&h).await?;
    let names: Vec<String> = (0..50).map(|i| format!("key-{i}")).collect();
    let attempts = futures::future::join_all(names.iter().map(|name| pay(&h, invoice, name))).await;
    let mut paid = 0;
    for attempt in attempts {
        match attempt {
            Ok(Idempotent::Fresh(_)) => paid += 1,
            Err(BillingError::InvalidTransition { .. } | BillingError::Locked { .. }) => {}
            other @ (Ok(Idempotent::Replayed(_)) | Err(_)) => {
                anyhow::bail!("unexpected outcome: {other:?}")
            }
        }
    }
    assert_eq!(paid, 1, "exactly one payment");
    let stored = h.billing.invoice(invoice).await?;
    assert_eq!((stored.status, stored.version), (InvoiceStatus::Paid, 2));
    let sub = h.billing.subscription(subscription).await?;
    assert_eq!(
        (sub.status, sub.version),
        (SubscriptionStatus::Active, 2),
        "one activation"
    );
    Ok(())
}

/// A database failure between the invoice's and the subscription's writes
/// rolls both back and frees the key; the retry with the same key pays.
async fn a_failure_inside_the_transaction_leaves_nothing(h: Harness) -> anyhow::Result<()> {
    let (invoice, subscription) = invoice_for_subscription(&h).await?;
    let conn = h.billing.database().connection();
    let backend = conn.get_database_backend();
    if backend == DatabaseBackend::Postgres {
        conn.execute_unprepared(
            "CREATE FUNCTION refuse_update() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_update BEFORE UPDATE ON subscription FOR EACH ROW EXECUTE FUNCTION refuse_update();",
        )
        .await?;
    } else {
        conn.execute_unprepared(
            "CREATE TRIGGER refuse_update BEFORE UPDATE ON subscription BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .await?;
    }
    let failed = pay(&h, invoice, "k").await;
    assert!(
        matches!(failed, Err(ref e) if e.is_transient()),
        "{failed:?}"
    );
    let untouched = h.billing.invoice(invoice).await?;
    assert_eq!(
        (untouched.status, untouched.version, untouched.paid_at),
        (InvoiceStatus::Pending, 1, None)
    );
    let sub = h.billing.subscription(subscription).await?;
    assert_eq!((sub.status, sub.version), (SubscriptionStatus::Pending, 1));

    if backend == DatabaseBackend::Postgres {
        conn.execute_unprepared("DROP TRIGGER refuse_update ON subscription")
            .await?;
    } else {
        conn.execute_unprepared("DROP TRIGGER refuse_update")
            .await?;
    }
    let Idempotent::Fresh(outcome) = pay(&h, invoice, "k").await? else {
        anyhow::bail!("the key was not freed");
    };
    assert_eq!(outcome.invoice.status, InvoiceStatus::Paid);
    Ok(())
}

/// A payment method longer than its column is refused before anything is
/// written (and the key stays free for a corrected request).
async fn an_overlong_payment_method_is_refused(h: Harness) -> anyhow::Result<()> {
    let (invoice, subscription) = invoice_for_subscription(&h).await?;
    let long = Payment {
        payment_method: "m".repeat(51),
        payment_reference: None,
    };
    let refused = h
        .billing
        .pay_invoice(invoice, long, None, &key("long"))
        .await;
    assert!(
        matches!(refused, Err(BillingError::Validation { ref message, .. }) if message.contains("50")),
        "{refused:?}"
    );
    let untouched = h.billing.invoice(invoice).await?;
    assert_eq!(
        (untouched.status, untouched.version),
        (InvoiceStatus::Pending, 1)
    );
    assert_eq!(h.billing.subscription(subscription).await?.version, 1);

    let longest = Payment {
        payment_method: "m".repeat(50),
        payment_reference: Some("r".repeat(255)),
    };
    let Idempotent::Fresh(paid) = h
        .billing
        .pay_invoice(invoice, longest, None, &key("longest"))
        .await?
    else {
        anyhow::bail!("the longest method was refused");
    };
    assert_eq!(paid.invoice.payment_method.map(|m| m.len()), Some(50));
    Ok(())
}

/// A row written under a newer lock than the one a payment holds means
/// the payment outlived its lock: it must not write.
async fn a_newer_fencing_token_on_the_row_stops_the_payment(h: Harness) -> anyhow::Result<()> {
    let (invoice, subscription) = invoice_for_subscription(&h).await?;
    let mut row = h.billing.invoice(invoice).await?;
    row.fencing_token = Some(i64::MAX);
    let row = billing_repository::Invoices::save(h.billing.database(), &row, row.version).await?;
    let refused = pay(&h, invoice, "fenced").await;
    assert!(
        matches!(refused, Err(BillingError::Locked { .. })),
        "{refused:?}"
    );
    assert_eq!(
        h.billing.invoice(invoice).await?,
        row,
        "the stale holder wrote"
    );
    assert_eq!(h.billing.subscription(subscription).await?.version, 1);
    Ok(())
}

service_test!(
    a_newer_fencing_token_on_the_row_stops_the_payment,
    an_overlong_payment_method_is_refused,
    paying_activates_the_subscription_once,
    refunds_need_a_paid_invoice,
    fifty_payments_with_one_key,
    fifty_payments_with_fifty_keys,
    a_failure_inside_the_transaction_leaves_nothing,
);
