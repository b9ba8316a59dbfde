//! Webhook delivery throughput and lag, re-runnable:
//!
//! ```sh
//! cargo bench -p billing-webhooks --bench delivery
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p billing-webhooks --bench delivery
//! ```
//!
//! A receiver on loopback answers 200 at once (keep-alive). Three figures,
//! in one run:
//! 1. **ceiling**: signed POSTs of the same bodies straight from a reqwest
//!    client with the dispatcher's concurrency, no database;
//! 2. **backlog**: `BACKLOG` committed events (subscriptions created)
//!    drained by one dispatcher: events per second;
//! 3. **lag**: events committed at `RATE` per second while the dispatcher
//!    runs (`poll_interval` 50 ms): commit → receipt, p50/p99/max.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use billing_concurrency::Coordination;
use billing_domain::enums::BillingPeriod;
use billing_repository::{DatabaseSettings, connect};
use billing_service::{
    Billing, BillingSettings, NewCurrency, NewPlan, NewSubscription, NewUser, NewWebhookEndpoint,
};
use billing_webhooks::{DispatchSettings, Dispatcher, install_crypto_provider, sign};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BACKLOG: usize = 2000;
const RATE: u64 = 200;
const RATE_SECONDS: u64 = 5;

type Receipts = Arc<Mutex<HashMap<i64, Instant>>>;

/// Subscription id (from the body) → first receipt.
async fn receiver() -> anyhow::Result<(String, Receipts)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let receipts: Receipts = Arc::new(Mutex::new(HashMap::new()));
    let kept = Arc::clone(&receipts);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0_u8; 8192];
                loop {
                    let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buffer[..at]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buffer.len() < at + 4 + length {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Vec<u8> = buffer.drain(..at + 4 + length).skip(at + 4).collect();
                    if let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body)
                        && let Some(id) = event["resource"]["id"].as_i64()
                    {
                        kept.lock()
                            .expect("not poisoned")
                            .entry(id)
                            .or_insert_with(Instant::now);
                    }
                    if stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok((url, receipts))
}

async fn billing() -> anyhow::Result<(Billing, i64, i64, Option<tempdir::Dir>)> {
    let (url, dir) = match std::env::var("BENCH_DATABASE_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let dir = tempdir::Dir::new()?;
            (
                format!("sqlite://{}?mode=rwc", dir.0.join("bench.db").display()),
                Some(dir),
            )
        }
    };
    let db = connect(&DatabaseSettings::new(&url)).await?;
    billing_migration::up_locked(db.connection()).await?;
    let billing = Billing::new(db, Coordination::embedded(), BillingSettings::default());
    billing
        .create_currency(NewCurrency {
            code: "EUR".into(),
            name: "Euro".into(),
            symbol: None,
            exchange_rate: rust_decimal::Decimal::ONE,
            decimal_places: None,
            is_default: Some(true),
            is_active: None,
        })
        .await
        .ok();
    let suffix = std::process::id();
    let plan = billing
        .create_plan(NewPlan {
            name: "Bench".into(),
            slug: format!("bench-{suffix}"),
            description: None,
            price: rust_decimal::Decimal::TEN,
            currency: "EUR".into(),
            billing_period: BillingPeriod::Monthly,
            features: None,
            is_active: None,
            sort_order: None,
            prices: None,
        })
        .await?;
    let user = billing
        .register_user(NewUser {
            email: format!("bench-{suffix}@example.com"),
            password: "correct horse battery".into(),
            role: None,
        })
        .await?;
    Ok((billing, user.id, plan.id, dir))
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn new() -> std::io::Result<Self> {
            let path =
                std::env::temp_dir().join(format!("billing-webhook-bench-{}", std::process::id()));
            std::fs::create_dir_all(&path)?;
            Ok(Self(path))
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The `per_mille`‰ value of `sorted` (nearest rank below).
fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() - 1) * per_mille / 1000]
}

#[allow(clippy::cast_precision_loss, clippy::float_arithmetic)]
fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    install_crypto_provider();
    let settings = DispatchSettings {
        poll_interval: Duration::from_millis(50),
        ..DispatchSettings::default()
    };
    let (url, receipts) = receiver().await?;

    // 1. Ceiling: the same number of signed POSTs, no database.
    let client = reqwest::Client::new();
    let body = r#"{"id":1,"type":"subscription.created","resource":{"kind":"subscription","id":-1,"version":1},"data":{},"occurred_at":"2026-11-30T00:00:00Z"}"#;
    let started = Instant::now();
    let posts = futures::stream::iter(0..BACKLOG).map(|_| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let signature = sign(
                "whsec_bench",
                chrono::Utc::now().timestamp(),
                body.as_bytes(),
            );
            client
                .post(&url)
                .header("Billing-Signature", signature)
                .body(body)
                .send()
                .await
                .map(drop)
        }
    });
    let results: Vec<_> = posts.buffer_unordered(settings.concurrency).collect().await;
    let ceiling = started.elapsed();
    anyhow::ensure!(
        results.iter().all(Result::is_ok),
        "the ceiling's posts failed"
    );
    receipts.lock().expect("not poisoned").clear();

    let (billing, user, plan, _dir) = billing().await?;
    billing
        .create_webhook_endpoint(NewWebhookEndpoint {
            url: url.clone(),
            event_types: vec!["subscription.created".into()],
        })
        .await?;
    let subscribe = || {
        billing.subscribe(NewSubscription {
            user_id: user,
            plan_id: plan,
        })
    };

    // 2. Backlog.
    for _ in 0..BACKLOG {
        subscribe().await?;
    }
    let dispatcher = Dispatcher::new(billing.clone(), settings)?;
    let started = Instant::now();
    loop {
        let report = dispatcher.run_once().await?;
        if report.attempted == 0 && report.published == 0 {
            break;
        }
    }
    let drained = started.elapsed();
    let delivered = receipts.lock().expect("not poisoned").len();
    anyhow::ensure!(delivered == BACKLOG, "{delivered} of {BACKLOG} delivered");

    // 3. Lag at a steady rate.
    let running =
        tokio::spawn(Dispatcher::new(billing.clone(), settings)?.run(std::future::pending()));
    let mut committed: HashMap<i64, Instant> = HashMap::new();
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let started = Instant::now();
    for _ in 0..RATE * RATE_SECONDS {
        ticks.tick().await;
        let subscription = subscribe().await?;
        committed.insert(subscription.id, Instant::now());
    }
    let offered = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed
        .keys()
        .any(|id| !receipts.lock().expect("not poisoned").contains_key(id))
    {
        anyhow::ensure!(Instant::now() < deadline, "events not delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.abort();
    let receipts = receipts.lock().expect("not poisoned").clone();
    let mut lags: Vec<Duration> = committed
        .iter()
        .map(|(id, at)| receipts[id].saturating_duration_since(*at))
        .collect();
    lags.sort();

    let backend = if std::env::var("BENCH_DATABASE_URL").is_ok() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!("| figure ({backend}) | value |");
    println!("|---|---|");
    println!(
        "| ceiling: {BACKLOG} signed POSTs, concurrency {}, no database | {:.0} requests/s |",
        settings.concurrency,
        per_second(BACKLOG, ceiling)
    );
    println!(
        "| backlog: {BACKLOG} events drained by one dispatcher | {:.0} events/s |",
        per_second(BACKLOG, drained)
    );
    println!(
        "| lag at {:.0} events/s offered, commit → receipt | p50 {} ms, p99 {} ms, max {} ms |",
        per_second(lags.len(), offered),
        percentile(&lags, 500).as_millis(),
        percentile(&lags, 990).as_millis(),
        lags.last().copied().unwrap_or_default().as_millis()
    );
    Ok(())
}
