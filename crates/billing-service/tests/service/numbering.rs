//! Invoice numbers under load: several instances creating at once, a batch
//! with a request that fails, and how many statements a creation and a
//! payment send.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use billing_domain::entities::user_invoice;
use billing_repository::{Backend, Database, DatabaseSettings, Invoices, Subscriptions, connect};
use billing_service::{
    Billing, BillingSettings, IdempotencyKey, NewInvoice, NewSubscription, NewUser, Payment,
};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder, Statement};

use crate::support::{Harness, seed, service_test};

fn invoice(user_id: i64, plan_id: i64) -> NewInvoice {
    NewInvoice {
        user_id,
        plan_id,
        subscription_id: None,
        currency: None,
        tax_code: None,
    }
}

/// Another instance on the harness's database: its own pool, its own
/// batcher, the same coordination backend.
async fn instance(h: &Harness, batching: bool) -> anyhow::Result<Billing> {
    Ok(Billing::new(
        pool(h).await?,
        h.billing.coordination().clone(),
        BillingSettings {
            invoice_batching: batching,
            ..BillingSettings::default()
        },
    ))
}

async fn pool(h: &Harness) -> anyhow::Result<Database> {
    let mut settings = DatabaseSettings::new(h._db.url());
    settings.max_connections = 8;
    settings.min_connections = 0;
    Ok(connect(&settings).await?)
}

/// The sequences of every invoice number, in id order.
async fn sequences(b: &Billing) -> anyhow::Result<Vec<u64>> {
    let invoices = user_invoice::Entity::find()
        .order_by_asc(user_invoice::Column::Id)
        .all(b.database().connection())
        .await?;
    invoices
        .iter()
        .map(|i| Ok(i.invoice_number.rsplit('-').next().unwrap_or("").parse()?))
        .collect()
}

/// Three instances (two batching, one not), 6 tasks each, 15 creations per
/// task: 270 invoices numbered 1..=270, each answer holding its own.
async fn instances_number_gaplessly_together(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let instances = [
        instance(&h, true).await?,
        instance(&h, true).await?,
        instance(&h, false).await?,
    ];
    let mut tasks = Vec::new();
    for billing in &instances {
        for _ in 0..6 {
            let billing = billing.clone();
            let (user, plan) = (s.user.id, s.plan.id);
            tasks.push(tokio::spawn(async move {
                let mut answered = Vec::new();
                for _ in 0..15 {
                    answered.push(billing.create_invoice(invoice(user, plan)).await?);
                }
                anyhow::Ok(answered)
            }));
        }
    }
    let mut answered = Vec::new();
    for task in tasks {
        answered.extend(task.await??);
    }
    let mut numbers: Vec<u64> = answered
        .iter()
        .map(|i| i.invoice_number.rsplit('-').next().unwrap_or("").parse())
        .collect::<Result<_, _>>()?;
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=270).collect::<Vec<_>>());
    // Each answer is the stored row.
    for answer in &answered {
        assert_eq!(
            &Invoices::get(h.billing.database(), answer.id).await?,
            answer
        );
    }
    let mut stored = sequences(&h.billing).await?;
    stored.sort_unstable();
    assert_eq!(stored, (1..=270).collect::<Vec<_>>());
    Ok(())
}

/// A batch in which one request's user was deleted after it was priced:
/// the batch fails, the others are written without it and keep gapless
/// numbers, the faulty one gets an error.
async fn a_faulty_request_costs_its_batch_nothing(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let b = instance(&h, true).await?;
    let doomed = b
        .register_user(NewUser {
            email: "doomed@example.com".into(),
            password: "correct horse battery".into(),
            role: None,
        })
        .await?;
    let first = b.create_invoice(invoice(s.user.id, s.plan.id)).await?;
    // Hold the year's counter (and, on SQLite, the write lock) so that the
    // next creations queue up in one batch.
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let holder = {
        let db = h.billing.database().clone();
        let held = first.clone();
        let doomed = doomed.id;
        tokio::spawn(async move {
            db.transaction(move |tx| {
                Box::pin(async move {
                    Invoices::insert_numbered(tx, held).await?;
                    let _ = released.await;
                    let sql = match tx.backend() {
                        Backend::Postgres => "DELETE FROM \"user\" WHERE id = $1",
                        Backend::Sqlite => "DELETE FROM \"user\" WHERE id = ?",
                    };
                    tx.connection()
                        .execute_raw(Statement::from_sql_and_values(
                            tx.connection().get_database_backend(),
                            sql,
                            [doomed.into()],
                        ))
                        .await?;
                    anyhow::Ok(())
                })
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let create = |user: i64| {
        let b = b.clone();
        let plan = s.plan.id;
        tokio::spawn(async move { b.create_invoice(invoice(user, plan)).await })
    };
    // The first one is written alone (and waits for the counter); the
    // others wait for it and go together.
    let lead = create(s.user.id);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let queued = [create(s.user.id), create(doomed.id), create(s.user.id)];
    tokio::time::sleep(Duration::from_millis(300)).await;
    release.send(()).ok();
    holder.await??;
    assert!(lead.await?.is_ok());
    let [before, faulty, after] = queued;
    let (before, faulty, after) = (before.await?, faulty.await?, after.await?);
    assert!(before.is_ok() && after.is_ok(), "{before:?} {after:?}");
    let error = faulty.expect_err("the deleted user's invoice must fail");
    eprintln!("the faulty request answered: {error}");
    let mut stored = sequences(&h.billing).await?;
    stored.sort_unstable();
    assert_eq!(stored, (1..=5).collect::<Vec<_>>());
    Ok(())
}

/// Statements a creation and a payment send (`BEGIN`/`COMMIT` aside, which
/// the observer does not see): on PostgreSQL, a creation reads in one,
/// numbers and inserts in one and appends its event in one; a payment looks
/// its key up, reads in one and writes in one, its events included (5 with
/// `BEGIN` and `COMMIT`).
async fn creation_and_payment_statements_are_counted(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    let db = pool(&h).await?.with_statement_observer(move |_| {
        counted.fetch_add(1, Ordering::Relaxed);
    });
    let postgres = db.backend() == Backend::Postgres;
    let b = Billing::new(
        db,
        h.billing.coordination().clone(),
        BillingSettings::default(),
    );
    let subscription = b
        .subscribe(NewSubscription {
            user_id: s.user.id,
            plan_id: s.plan.id,
        })
        .await?;
    let mut new = invoice(s.user.id, s.plan.id);
    new.subscription_id = Some(subscription.id);
    new.tax_code = Some("DE_VAT".into());
    count.store(0, Ordering::Relaxed);
    let created = b.create_invoice(new).await?;
    // Read + numbered insert + event (SQLite: the counter, then the insert).
    assert_eq!(
        count.swap(0, Ordering::Relaxed),
        if postgres { 3 } else { 4 }
    );
    let key = IdempotencyKey::for_request("caller", "pay-1", "POST", "/pay", b"{}")?;
    let payment = Payment {
        payment_method: "card".into(),
        payment_reference: Some("ch_1".into()),
    };
    let paid = b
        .pay_invoice(created.id, payment.clone(), None, &key)
        .await?;
    assert!(!paid.is_replayed());
    // Key lookup + read + one write (SQLite: invoice, subscription, record,
    // events).
    assert_eq!(
        count.swap(0, Ordering::Relaxed),
        if postgres { 3 } else { 6 }
    );
    let events = b
        .list_events(billing_service::EventQuery {
            resource_kind: Some(billing_domain::events::ResourceKind::Invoice),
            resource_id: Some(created.id),
            limit: 100,
            ..billing_service::EventQuery::default()
        })
        .await?;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["invoice.created", "invoice.paid"], "{events:?}");
    let outcome = paid.into_inner();
    assert_eq!(
        outcome.invoice,
        Invoices::get(b.database(), created.id).await?,
        "the answer is the stored invoice"
    );
    assert_eq!(
        outcome.subscription,
        Some(Subscriptions::get(b.database(), subscription.id).await?),
        "the answer is the stored subscription"
    );
    count.store(0, Ordering::Relaxed);
    let replay = b.pay_invoice(created.id, payment, None, &key).await?;
    assert!(replay.is_replayed());
    assert_eq!(replay.into_inner(), outcome);
    assert_eq!(
        count.swap(0, Ordering::Relaxed),
        1,
        "a replay is one lookup"
    );
    Ok(())
}

service_test!(
    instances_number_gaplessly_together,
    a_faulty_request_costs_its_batch_nothing,
    creation_and_payment_statements_are_counted,
);
