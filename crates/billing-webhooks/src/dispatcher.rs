//! [`Dispatcher`]: publishes events and sends the due deliveries, under a
//! lease, recording every attempt.

use std::time::{Duration, Instant};

use billing_concurrency::{CoordinationError, LockGuard};
use billing_domain::enums::DeliveryStatus;
use billing_service::{AttemptOutcome, Billing, DueDelivery, EventPayload, RetryPolicy};
use futures::StreamExt;

use crate::{SIGNATURE_HEADER, WebhookError, sign};

/// The name of the delivery lease in the coordination backend.
pub const DELIVERY_LEASE: &str = "webhook-delivery";

/// Tunables of the delivery.
#[derive(Clone, Copy, Debug)]
pub struct DispatchSettings {
    /// How long a request may take, connection included, before the
    /// attempt counts as failed.
    pub request_timeout: Duration,
    /// How many requests are in flight at once.
    pub concurrency: usize,
    /// How many due deliveries are read per batch (at most; a batch is
    /// kept short enough to finish well within the lease).
    pub batch_size: u64,
    /// How long the lease is taken for; it is extended before each batch.
    pub lease_ttl: Duration,
    /// How long [`Dispatcher::run`] sleeps when a pass found nothing to do.
    pub poll_interval: Duration,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(5),
            concurrency: 8,
            batch_size: 64,
            lease_ttl: Duration::from_secs(60),
            poll_interval: Duration::from_millis(500),
            retry: RetryPolicy::default(),
        }
    }
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DispatchReport {
    /// Another instance holds the lease: this one did nothing.
    pub lease_held_elsewhere: bool,
    /// Events published by this pass.
    pub published: usize,
    /// Requests sent.
    pub attempted: usize,
    /// Deliveries acknowledged.
    pub succeeded: usize,
    /// Deliveries to be retried later.
    pub retrying: usize,
    /// Deliveries given up (their endpoints marked failing).
    pub given_up: usize,
}

/// Sends the webhooks of one [`Billing`].
#[derive(Clone, Debug)]
pub struct Dispatcher {
    billing: Billing,
    client: reqwest::Client,
    settings: DispatchSettings,
}

impl Dispatcher {
    /// A dispatcher for `billing`'s events.
    ///
    /// # Errors
    /// [`WebhookError::Client`] when the HTTP client cannot be built (no
    /// usable TLS configuration).
    pub fn new(billing: Billing, settings: DispatchSettings) -> Result<Self, WebhookError> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout)
            // Only the registered URL is ever requested.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("billing-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(WebhookError::Client)?;
        Ok(Self {
            billing,
            client,
            settings,
        })
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> &DispatchSettings {
        &self.settings
    }

    /// One pass: publishes the committed events (queueing their
    /// deliveries) and sends every delivery due, batch by batch, if no
    /// other instance holds the lease (else returns at once with
    /// [`DispatchReport::lease_held_elsewhere`]).
    ///
    /// # Errors
    /// [`WebhookError::Billing`] (database down), [`WebhookError::Coordination`],
    /// [`WebhookError::LeaseLost`]. What was sent before stays recorded.
    pub async fn run_once(&self) -> Result<DispatchReport, WebhookError> {
        let ttl = self.settings.lease_ttl.max(Duration::from_secs(1));
        let guard = match self
            .billing
            .coordination()
            .try_lock(DELIVERY_LEASE, ttl, Duration::ZERO)
            .await
        {
            Ok(guard) => guard,
            Err(CoordinationError::LockNotAcquired { .. }) => {
                return Ok(DispatchReport {
                    lease_held_elsewhere: true,
                    ..DispatchReport::default()
                });
            }
            Err(other) => return Err(other.into()),
        };
        let mut report = DispatchReport::default();
        let outcome = self.pass(&guard, ttl, &mut report).await;
        if let Err(error) = guard.release().await {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "could not release the delivery lease"
            );
        }
        outcome.map(|()| report)
    }

    /// Runs passes until `shutdown` resolves: again at once after a pass
    /// that sent something, after [`DispatchSettings::poll_interval`]
    /// otherwise. Errors are logged and the next pass tries again.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let idle = match self.run_once().await {
                Ok(report) => report.attempted == 0 && report.published == 0,
                Err(error) => {
                    tracing::warn!(
                        error = &error as &dyn std::error::Error,
                        "webhook delivery pass failed"
                    );
                    true
                }
            };
            let pause = if idle {
                self.settings.poll_interval
            } else {
                Duration::ZERO
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// The batch size that finishes well within the lease even if every
    /// request times out.
    fn batch_size(&self, ttl: Duration) -> u64 {
        let concurrency = self.settings.concurrency.max(1);
        let rounds = (ttl.as_millis() / 2)
            .checked_div(self.settings.request_timeout.as_millis().max(1))
            .unwrap_or(1)
            .max(1);
        let fits = u64::try_from(rounds.saturating_mul(concurrency as u128)).unwrap_or(u64::MAX);
        self.settings.batch_size.clamp(1, fits.max(1))
    }

    async fn pass(
        &self,
        guard: &LockGuard,
        ttl: Duration,
        report: &mut DispatchReport,
    ) -> Result<(), WebhookError> {
        report.published = self.billing.publish_events().await?;
        let batch = self.batch_size(ttl);
        loop {
            if !guard.extend(ttl).await? {
                return Err(WebhookError::LeaseLost);
            }
            let due = self.billing.due_webhook_deliveries(batch).await?;
            if due.is_empty() {
                return Ok(());
            }
            let statuses: Vec<Result<DeliveryStatus, WebhookError>> = futures::stream::iter(
                due.into_iter()
                    .map(|due| async move { self.deliver(&due).await }),
            )
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
            for status in statuses {
                report.attempted += 1;
                match status? {
                    DeliveryStatus::Succeeded => report.succeeded += 1,
                    DeliveryStatus::Pending => report.retrying += 1,
                    DeliveryStatus::Failed => report.given_up += 1,
                }
            }
        }
    }

    /// Sends one delivery and records the attempt.
    async fn deliver(&self, due: &DueDelivery) -> Result<DeliveryStatus, WebhookError> {
        let body = EventPayload::of(&due.event)?.to_json()?;
        let attempted_at = billing_repository_now();
        let signature = sign(
            &due.endpoint.secret.0,
            attempted_at.timestamp(),
            body.as_bytes(),
        );
        let started = Instant::now();
        let sent = self
            .client
            .post(&due.endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header("Billing-Event-Id", due.event.id.to_string())
            .header("Billing-Event-Type", due.event.event_type.as_str())
            .header("Billing-Delivery-Id", due.delivery.id.to_string())
            .body(body)
            .send()
            .await;
        let (status_code, error) = match sent {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(error) => (None, Some(describe(&error))),
        };
        let outcome = AttemptOutcome {
            attempted_at,
            status_code,
            error,
            duration: started.elapsed(),
        };
        let status = self
            .billing
            .record_webhook_attempt(due, outcome, &self.settings.retry)
            .await?;
        tracing::debug!(
            delivery = due.delivery.id,
            event = due.event.id,
            endpoint = due.endpoint.id,
            ?status_code,
            ?status,
            "webhook attempt"
        );
        Ok(status)
    }
}

/// Makes ring the process's default rustls crypto provider, unless one is
/// installed already (an embedder's stays). The workspace builds reqwest
/// with `rustls-no-provider` (no aws-lc-rs next to ring), so every
/// `reqwest::Client` of the process, not only the dispatcher's, needs a
/// default provider before it is built: call this first.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Fails only when another thread installed one meanwhile: fine.
        let _raced = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Now, truncated to microseconds as stored.
fn billing_repository_now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}

/// Why a request got no answer, in a few words (never the body).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else if error.is_request() {
        "request failed".to_owned()
    } else {
        "no valid answer".to_owned()
    }
}
