//! The outbox: every committed change of a user, a subscription or an
//! invoice has exactly one event, written in its transaction; a change
//! that rolls back has none; erasure scrubs the user's events; paging by
//! `after` never skips an event that commits late.

use std::collections::HashMap;

use billing_domain::entities::event;
use billing_domain::events::{EventType, ResourceKind};
use billing_repository::{NewEvent, Outbox};
use billing_service::{
    EventQuery, IdempotencyKey, InvoiceAction, NewInvoice, NewSubscription, Payment,
    SubscriptionAction, UserChanges,
};
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

async fn all_events(h: &Harness) -> anyhow::Result<Vec<event::Model>> {
    let mut events = Vec::new();
    let mut after = None;
    loop {
        let page = h
            .billing
            .list_events(EventQuery {
                after,
                limit: 7,
                ..EventQuery::default()
            })
            .await?;
        let Some(last) = page.last() else {
            return Ok(events);
        };
        after = Some(last.id);
        events.extend(page);
    }
}

fn invoice_for(user: i64, plan: i64, subscription: i64) -> NewInvoice {
    NewInvoice {
        user_id: user,
        plan_id: plan,
        subscription_id: Some(subscription),
        currency: None,
        tax_code: None,
    }
}

/// A scripted sequence through every transition: the events name each
/// change once, in order, with the row's versions 1, 2, 3 … without a gap,
/// and the state after the change.
async fn every_committed_change_has_exactly_one_event(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let b = &h.billing;
    let sub = b
        .subscribe(NewSubscription {
            user_id: s.user.id,
            plan_id: s.plan.id,
        })
        .await?;
    let first = b
        .create_invoice(invoice_for(s.user.id, s.plan.id, sub.id))
        .await?;
    b.pay_invoice(first.id, card(), None, &key("first")).await?;
    b.transition_subscription(sub.id, SubscriptionAction::Pause, None)
        .await?;
    b.transition_subscription(sub.id, SubscriptionAction::Activate, None)
        .await?;
    b.update_user(
        s.user.id,
        UserChanges {
            status: None,
            role: None,
            email: Some("grace@example.com".into()),
        },
        None,
    )
    .await?;
    let second = b
        .create_invoice(invoice_for(s.user.id, s.plan.id, sub.id))
        .await?;
    b.transition_invoice(second.id, InvoiceAction::Fail, None)
        .await?;
    b.transition_invoice(second.id, InvoiceAction::Cancel, None)
        .await?;
    let third = b
        .create_invoice(invoice_for(s.user.id, s.plan.id, sub.id))
        .await?;
    b.pay_invoice(third.id, card(), None, &key("third")).await?;
    b.refund_invoice(third.id, None, &key("refund")).await?;
    // A change that changes nothing makes no event.
    b.transition_invoice(second.id, InvoiceAction::Cancel, None)
        .await
        .ok();
    b.transition_subscription(sub.id, SubscriptionAction::Cancel, None)
        .await?;
    b.delete_user(s.user.id, None).await?;

    let events = all_events(&h).await?;
    let seen: Vec<(EventType, i64)> = events
        .iter()
        .map(|e| (e.event_type, e.resource_id))
        .collect();
    let (u, sb) = (s.user.id, sub.id);
    assert_eq!(
        seen,
        vec![
            (EventType::UserCreated, u),
            (EventType::SubscriptionCreated, sb),
            (EventType::InvoiceCreated, first.id),
            (EventType::InvoicePaid, first.id),
            (EventType::SubscriptionActivated, sb),
            (EventType::SubscriptionPaused, sb),
            (EventType::SubscriptionResumed, sb),
            (EventType::UserUpdated, u),
            (EventType::InvoiceCreated, second.id),
            (EventType::InvoiceFailed, second.id),
            (EventType::InvoiceCancelled, second.id),
            (EventType::InvoiceCreated, third.id),
            (EventType::InvoicePaid, third.id),
            (EventType::SubscriptionRenewed, sb),
            (EventType::InvoiceRefunded, third.id),
            (EventType::SubscriptionCancelled, sb),
            (EventType::UserDeleted, u),
        ]
    );
    // Per resource: versions 1..=n, the last one the row's, each event's
    // state the row at that version.
    let mut versions: HashMap<(ResourceKind, i64), Vec<i32>> = HashMap::new();
    for e in &events {
        assert_eq!(e.resource_kind, e.event_type.resource_kind());
        let data: serde_json::Value = serde_json::from_str(&e.data)?;
        assert_eq!(data["id"], e.resource_id);
        assert_eq!(data["version"], e.resource_version);
        versions
            .entry((e.resource_kind, e.resource_id))
            .or_default()
            .push(e.resource_version);
    }
    let final_versions = [
        ((ResourceKind::User, u), b.user(u).await?.version),
        (
            (ResourceKind::Subscription, sb),
            b.subscription(sb).await?.version,
        ),
        (
            (ResourceKind::Invoice, first.id),
            b.invoice(first.id).await?.version,
        ),
        (
            (ResourceKind::Invoice, second.id),
            b.invoice(second.id).await?.version,
        ),
        (
            (ResourceKind::Invoice, third.id),
            b.invoice(third.id).await?.version,
        ),
    ];
    assert_eq!(versions.len(), final_versions.len());
    for (resource, version) in final_versions {
        let expected: Vec<i32> = (1..=version).collect();
        assert_eq!(versions[&resource], expected, "{resource:?}");
    }
    // Filters: by type, and by resource.
    let paid = b
        .list_events(EventQuery {
            limit: 100,
            types: vec![EventType::InvoicePaid],
            ..EventQuery::default()
        })
        .await?;
    assert_eq!(
        paid.iter().map(|e| e.resource_id).collect::<Vec<_>>(),
        vec![first.id, third.id]
    );
    let of_sub = b
        .list_events(EventQuery {
            limit: 100,
            resource_kind: Some(ResourceKind::Subscription),
            resource_id: Some(sb),
            ..EventQuery::default()
        })
        .await?;
    assert_eq!(of_sub.len(), 6);
    Ok(())
}

/// Erasing a user scrubs its e-mail from its events in the erasure's
/// transaction; no event ever holds a password hash.
async fn erasure_scrubs_the_users_events(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    h.billing
        .update_user(
            s.user.id,
            UserChanges {
                status: None,
                role: None,
                email: Some("grace@example.com".into()),
            },
            None,
        )
        .await?;
    let before = all_events(&h).await?;
    let text: String = before.iter().map(|e| e.data.clone()).collect();
    assert!(text.contains("ada@example.com") && text.contains("grace@example.com"));
    assert!(
        !text.contains("password") && !text.contains("argon2"),
        "{text}"
    );

    h.billing.delete_user(s.user.id, None).await?;
    let after = all_events(&h).await?;
    assert_eq!(after.len(), before.len() + 1);
    let erased = format!("deleted-user-{}@deleted.invalid", s.user.id);
    for e in &after {
        assert!(!e.data.contains("example.com"), "{}", e.data);
        let data: serde_json::Value = serde_json::from_str(&e.data)?;
        assert_eq!(data["email"], erased.as_str());
    }
    // The event rows themselves, published or not, hold nothing more.
    let conn = h.billing.database().connection();
    let rows = conn
        .query_all_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT data FROM event",
        ))
        .await?;
    for row in rows {
        let data: String = row.try_get("", "data")?;
        assert!(!data.contains("example.com"), "{data}");
    }
    Ok(())
}

/// A change whose transaction fails leaves no event, and an event that
/// cannot be written takes its change down with it.
async fn a_rolled_back_change_writes_no_event(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let sub = h
        .billing
        .subscribe(NewSubscription {
            user_id: s.user.id,
            plan_id: s.plan.id,
        })
        .await?;
    let invoice = h
        .billing
        .create_invoice(invoice_for(s.user.id, s.plan.id, sub.id))
        .await?;
    let count = all_events(&h).await?.len();
    assert_eq!(count, 3);

    let conn = h.billing.database().connection();
    let postgres = conn.get_database_backend() == DatabaseBackend::Postgres;
    // 1. The subscription's update fails after the invoice's was written.
    if postgres {
        conn.execute_unprepared(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse BEFORE UPDATE ON subscription FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .await?;
    } else {
        conn.execute_unprepared(
            "CREATE TRIGGER refuse BEFORE UPDATE ON subscription BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .await?;
    }
    assert!(
        h.billing
            .pay_invoice(invoice.id, card(), None, &key("a"))
            .await
            .is_err()
    );
    assert_eq!(all_events(&h).await?.len(), count);
    let drop_trigger = if postgres {
        "DROP TRIGGER refuse ON subscription"
    } else {
        "DROP TRIGGER refuse"
    };
    conn.execute_unprepared(drop_trigger).await?;

    // 2. The event itself cannot be written: the payment rolls back.
    if postgres {
        conn.execute_unprepared(
            "CREATE TRIGGER refuse_event BEFORE INSERT ON event FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .await?;
    } else {
        conn.execute_unprepared(
            "CREATE TRIGGER refuse_event BEFORE INSERT ON event BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .await?;
    }
    assert!(
        h.billing
            .pay_invoice(invoice.id, card(), None, &key("b"))
            .await
            .is_err()
    );
    assert!(
        h.billing
            .transition_subscription(sub.id, SubscriptionAction::Cancel, None)
            .await
            .is_err()
    );
    let untouched = h.billing.invoice(invoice.id).await?;
    assert_eq!(untouched.version, 1);
    assert_eq!(h.billing.subscription(sub.id).await?.version, 1);
    let drop_trigger = if postgres {
        "DROP TRIGGER refuse_event ON event"
    } else {
        "DROP TRIGGER refuse_event"
    };
    conn.execute_unprepared(drop_trigger).await?;
    assert_eq!(all_events(&h).await?.len(), count);

    // Once the fault is gone, the payment and its two events commit.
    h.billing
        .pay_invoice(invoice.id, card(), None, &key("c"))
        .await?;
    let events = all_events(&h).await?;
    assert_eq!(events.len(), count + 2);
    Ok(())
}

fn synthetic(resource_id: i64) -> NewEvent {
    NewEvent {
        event_type: EventType::UserUpdated,
        resource_id,
        resource_version: 1,
        data: "{}".into(),
        occurred_at: billing_repository::now(),
    }
}

/// The cursor trap: on PostgreSQL a transaction that drew the lower id
/// commits after one that drew a higher id. A reader that listed the
/// higher one and asks for what follows it still gets the lower one.
async fn paging_never_skips_an_event_committed_late(h: Harness) -> anyhow::Result<()> {
    let db = h.billing.database();
    let postgres = db.connection().get_database_backend() == DatabaseBackend::Postgres;
    let read = |after| {
        h.billing.list_events(EventQuery {
            after,
            limit: 100,
            ..EventQuery::default()
        })
    };
    let late = db.begin().await?;
    Outbox::append(&late, vec![synthetic(1)]).await?;
    let early_id;
    if postgres {
        // Interleaved: `late` drew its id first and is still open.
        let early = db.begin().await?;
        Outbox::append(&early, vec![synthetic(2)]).await?;
        early.commit().await?;
        let seen = read(None).await?;
        assert_eq!(seen.len(), 1, "only the committed event is listed");
        assert_eq!(seen[0].resource_id, 2);
        early_id = seen[0].id;
        late.commit().await?;
    } else {
        // SQLite runs one writer at a time: the ids follow commit order.
        late.commit().await?;
        let early = db.begin().await?;
        Outbox::append(&early, vec![synthetic(2)]).await?;
        early.commit().await?;
        early_id = read(None).await?.last().map(|e| e.id).unwrap_or_default();
    }
    let next = read(Some(early_id)).await?;
    let all = read(None).await?;
    assert_eq!(all.len(), 2);
    if postgres {
        assert_eq!(next.len(), 1, "the late commit follows the cursor");
        assert_eq!(next[0].resource_id, 1);
        assert!(next[0].id < early_id, "it drew the lower id");
    } else {
        assert!(next.is_empty());
    }
    // Unknown cursors are refused, not read as "from the start".
    assert!(read(Some(i64::MAX)).await.is_err());
    Ok(())
}

service_test!(
    every_committed_change_has_exactly_one_event,
    erasure_scrubs_the_users_events,
    a_rolled_back_change_writes_no_event,
    paging_never_skips_an_event_committed_late,
);
