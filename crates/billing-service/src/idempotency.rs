//! Idempotent execution: a request that carries an idempotency key runs at
//! most once; its repeats get the stored response back.

use std::future::Future;

use billing_concurrency::{Coordination, IdempotencyOutcome, IdempotencyTicket, StoredResponse};

use crate::{Billing, BillingError};

/// The longest idempotency key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// An idempotency key with its scope (whose keys these are, e.g. a hash of
/// the caller's token) and the fingerprint of the request it came with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    scope: String,
    key: String,
    fingerprint: String,
}

impl IdempotencyKey {
    /// A key for a request: the fingerprint hashes scope, method, path and
    /// body, so the same key with another request is recognised as reuse.
    ///
    /// ```
    /// use billing_service::IdempotencyKey;
    ///
    /// let key = IdempotencyKey::for_request("caller", "pay-42-1", "POST", "/invoices/42/pay", b"{}").unwrap();
    /// assert_eq!(key.key(), "pay-42-1");
    /// assert!(IdempotencyKey::for_request("caller", "has space", "POST", "/", b"").is_err());
    /// ```
    ///
    /// # Errors
    /// [`BillingError::Validation`] unless the key is 1 to 255 visible ASCII
    /// characters.
    pub fn for_request(
        scope: &str,
        key: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Self, BillingError> {
        validate_key(key)?;
        Ok(Self {
            scope: scope.to_owned(),
            key: key.to_owned(),
            fingerprint: billing_concurrency::fingerprint(scope, method, path, body),
        })
    }

    /// The key as the client sent it.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whose key it is.
    #[must_use]
    pub fn scope(&self) -> &str {
        &self.scope
    }
}

fn validate_key(key: &str) -> Result<(), BillingError> {
    let visible_ascii = key.bytes().all(|b| b.is_ascii_graphic());
    if key.is_empty() || key.len() > MAX_KEY_LEN || !visible_ascii {
        return Err(BillingError::invalid(format!(
            "an idempotency key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(())
}

/// The result of an idempotent call.
#[derive(Debug)]
pub enum Idempotent<R> {
    /// The work ran now; this is its response.
    Fresh(R),
    /// The work had already run for this key; this is what it stored.
    Replayed(StoredResponse),
}

impl Billing {
    /// Runs `work` at most once per key.
    ///
    /// `work` returns its response and what to store for replays: `Some`
    /// keeps it for the idempotency TTL, `None` (a failure that had no
    /// effect, e.g. a dependency was down) frees the key so the request can
    /// be retried. The key is freed as well when `work` panics or its future
    /// is dropped.
    ///
    /// # Errors
    /// [`BillingError::IdempotencyInFlight`] while another request with the
    /// key runs; [`BillingError::IdempotencyKeyReused`] when the key came
    /// with a different request; [`BillingError::Unavailable`] when the
    /// coordination backend is down (nothing ran).
    pub async fn idempotently<R, Fut>(
        &self,
        key: &IdempotencyKey,
        work: Fut,
    ) -> Result<Idempotent<R>, BillingError>
    where
        Fut: Future<Output = (R, Option<StoredResponse>)>,
    {
        let idempotency = self.coordination().idempotency();
        let ticket = match idempotency
            .begin(&key.scope, &key.key, &key.fingerprint)
            .await?
        {
            IdempotencyOutcome::Started(ticket) => ticket,
            IdempotencyOutcome::Replay(stored) => return Ok(Idempotent::Replayed(stored)),
            IdempotencyOutcome::InFlight => return Err(BillingError::IdempotencyInFlight),
            IdempotencyOutcome::Mismatch => return Err(BillingError::IdempotencyKeyReused),
        };
        let mut guard = AbandonOnDrop {
            coordination: self.coordination().clone(),
            ticket: Some(ticket),
        };
        let (response, stored) = work.await;
        let Some(ticket) = guard.ticket.take() else {
            unreachable!("the ticket is taken only here")
        };
        match stored {
            Some(stored) => {
                if let Err(error) = idempotency.complete(&ticket, &stored).await {
                    // The work has happened; its key stays in flight until the
                    // in-flight TTL, after which a repeat runs again and meets
                    // the state the work left (e.g. an already paid invoice).
                    tracing::warn!(
                        key = key.key(),
                        error = &error as &dyn std::error::Error,
                        "could not store the response of an idempotent request"
                    );
                }
            }
            None => abandon(&self.inner.coordination, &ticket).await,
        }
        Ok(Idempotent::Fresh(response))
    }
}

async fn abandon(coordination: &Coordination, ticket: &IdempotencyTicket) {
    if let Err(error) = coordination.idempotency().abandon(ticket).await {
        tracing::warn!(
            key = ticket.key(),
            error = &error as &dyn std::error::Error,
            "could not free an idempotency key; it frees itself at its in-flight TTL"
        );
    }
}

/// Frees the key if the work never finished (panic, cancellation).
struct AbandonOnDrop {
    coordination: Coordination,
    ticket: Option<IdempotencyTicket>,
}

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let coordination = self.coordination.clone();
                runtime.spawn(async move { abandon(&coordination, &ticket).await });
            }
            Err(_) => tracing::warn!(
                key = ticket.key(),
                "idempotent work was dropped outside a runtime; its key frees itself at its in-flight TTL"
            ),
        }
    }
}
