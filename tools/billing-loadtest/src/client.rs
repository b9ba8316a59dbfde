//! Preparing data through the HTTP API (plans, users, subscriptions,
//! invoices), unmeasured, before a load runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// A client of one API instance with its bearer token.
#[derive(Clone, Debug)]
pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client of `base` (`http://127.0.0.1:<port>`) using `token`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(base: &str, token: &str) -> Result<Self> {
        Ok(Self {
            base: base.to_owned(),
            token: token.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    /// The base URL.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `POST /api/v1/<path>` with `body`; the JSON answer when the status
    /// is `expected`.
    ///
    /// # Errors
    /// On a transport error or another status (with the body).
    pub async fn post(&self, path: &str, body: &Value, expected: u16) -> Result<Value> {
        let response = self
            .http
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        Self::expect(response, expected, "POST", path).await
    }

    /// `GET /api/v1/<path>`; the JSON answer when the status is 200.
    ///
    /// # Errors
    /// On a transport error or another status (with the body).
    pub async fn get(&self, path: &str) -> Result<Value> {
        let response = self
            .http
            .get(format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        Self::expect(response, 200, "GET", path).await
    }

    /// `PATCH /api/v1/<path>` with `body`; the JSON answer when the status
    /// is 200.
    ///
    /// # Errors
    /// On a transport error or another status (with the body).
    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value> {
        let response = self
            .http
            .patch(format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("PATCH {path}"))?;
        Self::expect(response, 200, "PATCH", path).await
    }

    /// The text of `GET /metrics`.
    ///
    /// # Errors
    /// On a transport error.
    pub async fn metrics(&self) -> Result<String> {
        Ok(self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .context("GET /metrics")?
            .text()
            .await?)
    }

    async fn expect(
        response: reqwest::Response,
        expected: u16,
        method: &str,
        path: &str,
    ) -> Result<Value> {
        let status = response.status().as_u16();
        let text = response.text().await?;
        if status != expected {
            bail!("{method} {path} answered {status} (expected {expected}): {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: not JSON: {text}"))
    }

    /// Creates a monthly plan priced 19.99 EUR; returns its id.
    ///
    /// # Errors
    /// When the API refuses.
    pub async fn create_plan(&self, slug: &str, sort_order: i32) -> Result<i64> {
        let body = json!({
            "name": format!("Load test {slug}"),
            "slug": slug,
            "description": "created by billing-load",
            "price": "19.99",
            "currency": "EUR",
            "billing_period": "monthly",
            "features": {"seats": 5, "api_calls": 100_000},
            "sort_order": sort_order,
        });
        id_of(&self.post("/plans", &body, 201).await?)
    }

    /// Creates a user; returns its id.
    ///
    /// # Errors
    /// When the API refuses.
    pub async fn create_user(&self, email: &str) -> Result<i64> {
        let body = json!({"email": email, "password": "load-test-password-1"});
        id_of(&self.post("/users", &body, 201).await?)
    }

    /// Creates a pending subscription; returns its id.
    ///
    /// # Errors
    /// When the API refuses.
    pub async fn create_subscription(&self, user_id: i64, plan_id: i64) -> Result<i64> {
        let body = json!({"user_id": user_id, "plan_id": plan_id});
        id_of(&self.post("/subscriptions", &body, 201).await?)
    }

    /// Creates a pending invoice (linked to `subscription_id` when given);
    /// returns its id.
    ///
    /// # Errors
    /// When the API refuses.
    pub async fn create_invoice(
        &self,
        user_id: i64,
        plan_id: i64,
        subscription_id: Option<i64>,
    ) -> Result<i64> {
        let mut body = json!({"user_id": user_id, "plan_id": plan_id});
        if let Some(subscription_id) = subscription_id {
            body["subscription_id"] = json!(subscription_id);
        }
        id_of(&self.post("/invoices", &body, 201).await?)
    }
}

/// The `id` member of a created resource.
///
/// # Errors
/// When it has none.
pub fn id_of(value: &Value) -> Result<i64> {
    value
        .get("id")
        .and_then(Value::as_i64)
        .with_context(|| format!("no id in {value}"))
}

/// Creates `count` (subscription, pending invoice linked to it) pairs with
/// `concurrency` parallel requests, users taken round-robin from `users`;
/// returns the invoice ids in creation order.
///
/// # Errors
/// The first refusal.
pub async fn create_payable_invoices(
    client: &ApiClient,
    users: &[i64],
    plan_id: i64,
    count: usize,
    concurrency: usize,
) -> Result<Vec<i64>> {
    let mut made = create_invoices(client, users, plan_id, count, concurrency, true).await?;
    made.sort_unstable();
    Ok(made.into_iter().map(|(_, id)| id).collect())
}

/// Creates `count` unlinked pending invoices (for reads) with
/// `concurrency` parallel requests; returns their ids in ascending order.
///
/// # Errors
/// The first refusal.
pub async fn create_plain_invoices(
    client: &ApiClient,
    users: &[i64],
    plan_id: i64,
    count: usize,
    concurrency: usize,
) -> Result<Vec<i64>> {
    let made = create_invoices(client, users, plan_id, count, concurrency, false).await?;
    let mut ids: Vec<i64> = made.into_iter().map(|(_, id)| id).collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Creates `count` pending invoices with `concurrency` parallel requests,
/// users taken round-robin from `users`, each with a subscription of its
/// own when `linked`; returns (creation index, invoice id) pairs, unordered.
async fn create_invoices(
    client: &ApiClient,
    users: &[i64],
    plan_id: i64,
    count: usize,
    concurrency: usize,
    linked: bool,
) -> Result<Vec<(usize, i64)>> {
    if users.is_empty() {
        bail!("no users to invoice");
    }
    let next = Arc::new(AtomicUsize::new(0));
    let users = Arc::new(users.to_vec());
    let mut tasks = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let client = client.clone();
        let next = Arc::clone(&next);
        let users = Arc::clone(&users);
        tasks.spawn(async move {
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(made);
                }
                let user = users[i % users.len()];
                let subscription = if linked {
                    Some(client.create_subscription(user, plan_id).await?)
                } else {
                    None
                };
                made.push((i, client.create_invoice(user, plan_id, subscription).await?));
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined??);
    }
    Ok(all)
}
