//! The lifecycle load of `kill-during-delivery`: chains of user →
//! subscription → invoice → payment through the API, so that resources
//! have several events each (their order is checked at the receiver).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::task::JoinHandle;

use crate::client::ApiClient;
use crate::load::{self, Outcome, Sample};

/// Creates user → subscription → invoice → payment chains until `stop`,
/// moving to the next instance on any failure; the payments' answers
/// (for the invariant check).
#[must_use]
pub fn lifecycle(
    bases: Vec<String>,
    token: String,
    plan_id: i64,
    stop: Arc<AtomicBool>,
    origin: Instant,
) -> JoinHandle<Vec<Sample>> {
    tokio::spawn(async move {
        let run = format!("{:08x}", rand::random::<u32>());
        let mut payments = Vec::new();
        let mut target = 0;
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let index = target % bases.len();
            let tag = format!("{run}-{n}");
            match chain(&bases[index], &token, plan_id, &tag, origin).await {
                Ok(mut sample) => {
                    sample.target = index;
                    let paid = sample.outcome.is(200);
                    payments.push(sample);
                    if !paid {
                        target += 1;
                    }
                }
                Err(_) => {
                    target += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        payments
    })
}

/// One chain; the payment's answer once the invoice exists.
async fn chain(
    base: &str,
    token: &str,
    plan_id: i64,
    tag: &str,
    origin: Instant,
) -> Result<Sample> {
    let client = ApiClient::new(base, token)?;
    let user = client
        .create_user(&format!("delivery-{tag}@example.com"))
        .await?;
    let subscription = client.create_subscription(user, plan_id).await?;
    let invoice = client
        .create_invoice(user, plan_id, Some(subscription))
        .await?;
    let start = origin.elapsed();
    let sent = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/invoices/{invoice}/pay"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header(
            "idempotency-key",
            load::pay_key(&format!("chain-{tag}"), invoice),
        )
        .body(load::pay_body(invoice))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    let (outcome, replayed, code) = match response {
        Ok(response) => {
            let status = response.status().as_u16();
            let replayed = response
                .headers()
                .get("idempotent-replayed")
                .is_some_and(|v| v.as_bytes() == b"true");
            let body = response.bytes().await.unwrap_or_default();
            (Outcome::Status(status), replayed, load::problem_code(&body))
        }
        Err(_) => (Outcome::Transport, false, None),
    };
    Ok(Sample {
        start,
        latency: sent.elapsed(),
        outcome,
        target: 0,
        invoice: Some(invoice),
        replayed,
        code,
    })
}
