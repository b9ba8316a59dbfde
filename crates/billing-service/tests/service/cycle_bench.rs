//! The billing cycle at scale (ignored by default; PostgreSQL only): one
//! pass over 1,000,000 active subscriptions of which 1 % are due, with the
//! statements it runs, and the latency of concurrent payments during the
//! pass against the same payments without it. Run:
//!
//! ```text
//! TEST_DATABASE_URL=postgres://… TEST_REDIS_URL=redis://… \
//!   cargo test -p billing-service --test service cycle_bench -- --ignored --nocapture
//! ```
//!
//! `CYCLE_BENCH_SUBSCRIPTIONS` changes the size (default 1,000,000).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use billing_concurrency::{Coordination, RedisSettings};
use billing_repository::{DatabaseSettings, connect};
use billing_service::{
    Billing, BillingSettings, CycleRunner, CycleSettings, IdempotencyKey, Payment,
};
use billing_test_support::{Backend, TestDatabase, redis_url, unique_suffix};
use sea_orm::{ConnectionTrait, Statement};

use crate::support::seed;

async fn exec(b: &Billing, sql: &str) -> anyhow::Result<u64> {
    let conn = b.database().connection();
    Ok(conn
        .execute_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await?
        .rows_affected())
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// Pays invoices `next..` (ids from `ids`) with `workers` tasks until
/// `stop` says so or they run out; returns the latencies.
async fn pay_load(
    b: &Billing,
    ids: Arc<Vec<i64>>,
    next: Arc<AtomicUsize>,
    workers: usize,
    until: impl Fn() -> bool + Send + Sync + Clone + 'static,
) -> anyhow::Result<Vec<Duration>> {
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let b = b.clone();
            let ids = Arc::clone(&ids);
            let next = Arc::clone(&next);
            let until = until.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !until() {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(id) = ids.get(i) else { break };
                    let key = IdempotencyKey::for_request(
                        "bench",
                        &format!("pay-{id}"),
                        "POST",
                        "/pay",
                        b"{}",
                    )?;
                    let payment = Payment {
                        payment_method: "card".into(),
                        payment_reference: None,
                    };
                    let started = Instant::now();
                    b.pay_invoice(*id, payment, None, &key).await?;
                    latencies.push(started.elapsed());
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort();
    Ok(all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: minutes and a million rows on PostgreSQL"]
async fn cycle_bench() -> anyhow::Result<()> {
    let Some(db) = TestDatabase::create(Backend::Postgres).await? else {
        anyhow::bail!("TEST_DATABASE_URL is not set");
    };
    let size: u64 = std::env::var("CYCLE_BENCH_SUBSCRIPTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let statements = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&statements);
    let mut settings = DatabaseSettings::new(db.url());
    settings.max_connections = 16;
    settings.min_connections = 0;
    let database = connect(&settings).await?.with_statement_observer(move |_| {
        counted.fetch_add(1, Ordering::Relaxed);
    });
    billing_migration::up_locked(database.connection()).await?;
    let coordination = match redis_url() {
        Some(url) => {
            Coordination::redis(
                RedisSettings::new(url)
                    .with_key_prefix(format!("billing-bench-{}", unique_suffix())),
            )
            .await?
        }
        None => Coordination::embedded(),
    };
    let b = Billing::new(database, coordination, BillingSettings::default());
    let s = seed(&b).await?;

    let started = Instant::now();
    // 1 % end tomorrow, another 1 % in 2.5 days, the rest in 20 to 21 days:
    // a first pass with a 36-hour lead finds the first 1 % due, a second
    // with the default 3 days the second 1 %.
    let inserted = exec(
        &b,
        &format!(
            "INSERT INTO subscription (user_id, tarif_plan_id, status, started_at, expires_at, \
               created_at, updated_at, version) \
             SELECT {user}, {plan}, 'active', now() - interval '10 days', \
               CASE WHEN g % 100 = 0 THEN now() + interval '1 day' + g * interval '1 millisecond' \
                    WHEN g % 100 = 50 THEN now() + interval '60 hours' + g * interval '1 millisecond' \
                    ELSE now() + interval '20 days' + (g % 1440) * interval '1 minute' END, \
               now(), now(), 1 \
             FROM generate_series(1, {size}) AS g",
            user = s.user.id,
            plan = s.plan.id
        ),
    )
    .await?;
    // Pending invoices for the payment load (no subscription).
    exec(
        &b,
        &format!(
            "INSERT INTO user_invoice (user_id, tarif_plan_id, subscription_id, invoice_number, \
               amount, net_amount, tax_amount, currency, status, invoiced_at, expires_at, \
               created_at, updated_at, version) \
             SELECT {user}, {plan}, NULL, 'BENCH-' || g, 10, 10, 0, 'EUR', 'pending', now(), \
               now() + interval '30 days', now(), now(), 1 \
             FROM generate_series(1, 20000) AS g",
            user = s.user.id,
            plan = s.plan.id
        ),
    )
    .await?;
    exec(&b, "ANALYZE").await?;
    println!(
        "generated {inserted} subscriptions in {:?}",
        started.elapsed()
    );

    let conn = b.database().connection();
    let ids: Vec<i64> = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT id FROM user_invoice WHERE invoice_number LIKE 'BENCH-%' ORDER BY id",
        ))
        .await?
        .iter()
        .map(|row| row.try_get::<i64>("", "id"))
        .collect::<Result<_, _>>()?;
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));

    // A pass alone, with nothing else running.
    let before = statements.load(Ordering::Relaxed);
    let lead_36h = CycleSettings {
        renewal_lead: chrono::TimeDelta::hours(36),
        ..CycleSettings::default()
    };
    let alone = CycleRunner::new(b.clone(), lead_36h).run_once().await?;
    let alone_statements = statements.load(Ordering::Relaxed) - before;
    println!(
        "pass alone: {} renewals in {} ms, {alone_statements} statements ({:.1} per renewal), {} batches",
        alone.renewals_issued,
        alone.duration_ms,
        alone_statements as f64 / alone.renewals_issued.max(1) as f64,
        alone.batches
    );
    assert_eq!(alone.renewals_issued, size / 100);

    // The payment load alone, for 10 s.
    let calm_until = Instant::now() + Duration::from_secs(10);
    let calm = pay_load(&b, Arc::clone(&ids), Arc::clone(&next), 4, move || {
        Instant::now() >= calm_until
    })
    .await?;

    // The same load during one pass.
    let runner = CycleRunner::new(b.clone(), CycleSettings::default());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let before = statements.load(Ordering::Relaxed);
    let pass = tokio::spawn(async move {
        let report = runner.run_once().await;
        flag.store(true, Ordering::SeqCst);
        report
    });
    let flag = Arc::clone(&done);
    let busy = pay_load(&b, Arc::clone(&ids), Arc::clone(&next), 4, move || {
        flag.load(Ordering::SeqCst)
    })
    .await?;
    let report = pass.await??;
    let all_statements = statements.load(Ordering::Relaxed) - before;
    // The payments' own statements, measured alone: per payment.
    let calm_statements = {
        let probe_before = statements.load(Ordering::Relaxed);
        let probe = pay_load(&b, Arc::clone(&ids), Arc::clone(&next), 1, {
            let end = Instant::now() + Duration::from_secs(2);
            move || Instant::now() >= end
        })
        .await?;
        (statements.load(Ordering::Relaxed) - probe_before) as f64 / probe.len().max(1) as f64
    };
    let pass_statements = all_statements as f64 - calm_statements * busy.len() as f64;

    let renewals = exec(&b, "SELECT 1 FROM subscription_renewal").await? - alone.renewals_issued;
    println!("pass: {report:?}");
    println!(
        "under load: subscriptions {size}, due {}, renewals stored {renewals}, pass {} ms, \
         statements of the pass ≈ {pass_statements:.0} ({:.1} per renewal)",
        size / 100,
        report.duration_ms,
        pass_statements / report.renewals_issued.max(1) as f64
    );
    println!(
        "pay alone: n={} p50={:?} p99={:?}; during the pass: n={} p50={:?} p99={:?}",
        calm.len(),
        percentile(&calm, 50),
        percentile(&calm, 99),
        busy.len(),
        percentile(&busy, 50),
        percentile(&busy, 99)
    );
    assert_eq!(report.renewals_issued, size / 100);
    assert_eq!(renewals, size / 100);
    // A second pass finds nothing due: the index walk alone.
    let second = CycleRunner::new(b.clone(), CycleSettings::default())
        .run_once()
        .await?;
    println!(
        "second pass: {} ms, {} batches",
        second.duration_ms, second.batches
    );
    assert_eq!(second.renewals_issued, 0);
    Ok(())
}
