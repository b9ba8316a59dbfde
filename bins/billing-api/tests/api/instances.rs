//! Several instances at once: three apps on one PostgreSQL database and one
//! Redis (one key prefix, as a deployment shares them), requests spread
//! round-robin over them.
//!
//! - 100 concurrent payments of one invoice with ONE key: exactly one runs
//!   (one 200 that is not a replay); the others replay it or find it in
//!   flight; the invoice is paid once, the subscription activated once.
//! - 100 concurrent payments with 100 keys: exactly one 200, the rest 409
//!   `invalid_transition` (already paid) or `locked`.
//! - 200 invoices created by 8 concurrent clients get the numbers
//!   `INV-<year>-000001` to `000200` without gaps.
//!
//! These run only when `TEST_DATABASE_URL` is set: SQLite with in-process
//! coordination serves one instance by design (its locks and keys live in
//! one process), so there is nothing to share. With `TEST_DATABASE_URL` set
//! they also need `TEST_REDIS_URL`, and they fail, never skip, when either
//! server is down.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context as _;
use billing_test_support::{Backend, TestDatabase};
use futures::future::join_all;
use serde_json::{Value, json};

use crate::fixtures::{billed, card, get_json, json_with};
use crate::helpers::{TestApp, TestOptions, spawn_instances};

const INSTANCES: usize = 3;

/// Three instances over one fresh PostgreSQL database and one Redis, or
/// `None` when `TEST_DATABASE_URL` is not set.
async fn three_instances() -> anyhow::Result<Option<Vec<TestApp>>> {
    let Some(db) = TestDatabase::create(Backend::Postgres).await? else {
        eprintln!(
            "TEST_DATABASE_URL is not set: the multi-instance tests need PostgreSQL and Redis"
        );
        return Ok(None);
    };
    billing_test_support::redis_url().context(
        "TEST_REDIS_URL must be set with TEST_DATABASE_URL: several instances share their locks and keys through Redis",
    )?;
    let options = TestOptions {
        db_max_connections: Some(10),
        ..TestOptions::default()
    };
    let apps = spawn_instances(db, INSTANCES, options).await?;
    assert!(
        apps.iter().all(|app| app.uses_redis),
        "every instance runs on Redis"
    );
    Ok(Some(apps))
}

/// Sends `count` payments of `invoice` at once, round-robin over `apps`,
/// with the key `key(i)`; returns status, problem code and replay flag of
/// each.
pub(crate) async fn pay_concurrently(
    apps: &[TestApp],
    invoice: &Value,
    count: usize,
    key: impl Fn(usize) -> String,
) -> anyhow::Result<Vec<(u16, Option<String>, bool)>> {
    let requests = (0..count).map(|i| {
        let app = &apps[i % apps.len()];
        let request = app
            .api_client
            .post(app.url(&format!("/api/v1/invoices/{invoice}/pay")))
            .header("Idempotency-Key", key(i))
            .json(&card());
        async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let replayed = response
                .headers()
                .get("idempotent-replayed")
                .is_some_and(|v| v == "true");
            let body: Value = response.json().await?;
            let code = body["code"].as_str().map(str::to_owned);
            anyhow::Ok((status, code, replayed))
        }
    });
    join_all(requests).await.into_iter().collect()
}

/// How many outcomes of each kind (for the test's output).
pub(crate) fn tally(
    outcomes: &[(u16, Option<String>, bool)],
) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for (status, code, replayed) in outcomes {
        let kind = match (code, replayed) {
            (Some(code), _) => format!("{status} {code}"),
            (None, true) => format!("{status} replayed"),
            (None, false) => format!("{status}"),
        };
        *counts.entry(kind).or_insert(0) += 1;
    }
    counts
}

/// The invoice is paid once and its subscription activated once.
pub(crate) async fn paid_once(
    app: &TestApp,
    invoice: &Value,
    subscription: &Value,
) -> anyhow::Result<()> {
    let invoice = get_json(app, &format!("/invoices/{invoice}")).await?;
    assert_eq!(
        (invoice["status"].clone(), invoice["version"].clone()),
        (json!("paid"), json!(2)),
        "{invoice}"
    );
    let subscription = get_json(app, &format!("/subscriptions/{subscription}")).await?;
    assert_eq!(
        (
            subscription["status"].clone(),
            subscription["version"].clone()
        ),
        (json!("active"), json!(2)),
        "one activation: {subscription}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_pays_once_across_instances() -> anyhow::Result<()> {
    let Some(apps) = three_instances().await? else {
        return Ok(());
    };
    let set = billed(&apps[0], "one-key@example.com", "pro").await?;
    let outcomes =
        pay_concurrently(&apps, &set.invoice["id"], 100, |_| "the-one-key".to_owned()).await?;
    eprintln!("one key: {:?}", tally(&outcomes));
    let fresh = outcomes
        .iter()
        .filter(|(status, _, replayed)| *status == 200 && !replayed)
        .count();
    assert_eq!(fresh, 1, "exactly one payment ran: {outcomes:?}");
    for outcome in &outcomes {
        match outcome {
            (200, None, _) => {}
            (409, Some(code), false) if code == "idempotency_in_flight" => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    // Once it has finished, every instance replays it.
    for app in &apps {
        let again = pay_concurrently(std::slice::from_ref(app), &set.invoice["id"], 1, |_| {
            "the-one-key".to_owned()
        })
        .await?;
        assert_eq!(again, [(200, None, true)]);
    }
    paid_once(&apps[1], &set.invoice["id"], &set.subscription["id"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_keys_pay_once_across_instances() -> anyhow::Result<()> {
    let Some(apps) = three_instances().await? else {
        return Ok(());
    };
    let set = billed(&apps[0], "many-keys@example.com", "pro").await?;
    let outcomes = pay_concurrently(&apps, &set.invoice["id"], 100, |i| format!("key-{i}")).await?;
    eprintln!("many keys: {:?}", tally(&outcomes));
    let paid = outcomes
        .iter()
        .filter(|(status, _, _)| *status == 200)
        .count();
    assert_eq!(paid, 1, "exactly one payment: {outcomes:?}");
    for outcome in &outcomes {
        match outcome {
            (200, None, false) => {}
            (409, Some(code), false) if code == "invalid_transition" || code == "locked" => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    paid_once(&apps[2], &set.invoice["id"], &set.subscription["id"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invoice_numbers_have_no_gaps_across_instances() -> anyhow::Result<()> {
    const INVOICES: usize = 200;
    const CLIENTS: usize = 8;
    let Some(apps) = three_instances().await? else {
        return Ok(());
    };
    let set = billed(&apps[0], "numbers@example.com", "pro").await?;
    let first_number = set.invoice["invoice_number"].as_str().unwrap().to_owned();
    let year = &set.invoice["invoiced_at"].as_str().unwrap()[..4];
    assert_eq!(first_number, format!("INV-{year}-000001"));

    let body = json!({"user_id": set.user["id"], "plan_id": set.plan["id"]});
    let next = Arc::new(AtomicUsize::new(0));
    let clients = (0..CLIENTS).map(|_| {
        let (apps, body, next) = (&apps, &body, Arc::clone(&next));
        async move {
            let mut numbers = Vec::new();
            // The invoice of `set` is number 1: create the other 199.
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= INVOICES - 1 {
                    return anyhow::Ok(numbers);
                }
                let app = &apps[i % apps.len()];
                let response = app
                    .api_client
                    .post(app.url("/api/v1/invoices"))
                    .json(body)
                    .send()
                    .await?;
                let invoice = json_with(response, 201).await?;
                numbers.push(
                    invoice["invoice_number"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
    });
    let mut numbers: Vec<String> = vec![first_number];
    for client in join_all(clients).await {
        numbers.extend(client?);
    }
    let unique: BTreeSet<&String> = numbers.iter().collect();
    assert_eq!(unique.len(), INVOICES, "numbers are unique");
    let expected: BTreeSet<String> = (1..=INVOICES)
        .map(|n| format!("INV-{year}-{n:06}"))
        .collect();
    assert_eq!(
        unique,
        expected.iter().collect(),
        "1 to {INVOICES} without gaps"
    );
    Ok(())
}
