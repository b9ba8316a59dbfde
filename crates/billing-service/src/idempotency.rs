//! Idempotent execution: a request that carries an idempotency key has its
//! effect committed at most once; its repeats get the recorded outcome back.
//!
//! The protocol, and why each step is there:
//!
//! 1. **Look up** the key's record in the database: a live record means the
//!    effect committed earlier, so the request does not run; its recorded
//!    outcome is returned ([`Idempotent::Replayed`]), or
//!    [`BillingError::IdempotencyKeyReused`] when the record belongs to
//!    another request.
//! 2. **Claim** the key in the coordination backend (a lock named after the
//!    scope and key, held for the in-flight TTL): while one request with the
//!    key runs, the others get [`BillingError::IdempotencyInFlight`] instead
//!    of racing it. The claim is only an optimisation; it is not what makes
//!    the effect happen once (step 3 is).
//! 3. **Run** the use case. The transaction that commits its effect also
//!    inserts the key's record with the outcome
//!    ([`IdempotencyRecords::record`]). The record and the effect commit
//!    together or not at all, so whatever moment a process dies at — after
//!    the claim, after the commit, before the answer is sent — a retry finds
//!    either the record (and replays it) or no effect at all (and runs).
//!    Two runs that both got past steps 1 and 2 (one claimed just after the
//!    other committed and released, or a claim expired under a slow request)
//!    cannot both commit: the record's primary key lets one through, the
//!    other rolls back and replays the winner's outcome; a run refused
//!    because of the winner's effect (e.g. the invoice is paid now) replays
//!    it too.
//! 4. **Release** the claim (also when the request fails, panics or its
//!    future is dropped).
//!
//! Errors are never recorded: a use case that fails has changed nothing, so
//! the same key may be retried, corrected (e.g. with the right `If-Match`).
//!
//! The use case learns that it runs under a key through a task-local value
//! set by [`Billing::idempotently`]; the service's write paths
//! (`recording_transaction`, `update_versioned`) add the record to the
//! transaction that commits the effect.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use billing_concurrency::{CoordinationError, LockGuard};
use billing_domain::entities::{
    currency, idempotency_record, subscription, tarif_plan, tax, user, user_case, user_details,
    user_invoice, webhook_delivery,
};
use billing_repository::{IdempotencyRecords, Transaction};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::invoices::PaymentOutcome;
use crate::rules::{self, IDEMPOTENCY_KEY_MAX_LEN};
use crate::webhooks::CreatedEndpoint;
use crate::{Billing, BillingError, now};

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
    /// characters and the scope at most 255 bytes.
    pub fn for_request(
        scope: &str,
        key: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Self, BillingError> {
        Self::check_key(key)?;
        if scope.len() > IDEMPOTENCY_KEY_MAX_LEN {
            return Err(BillingError::invalid(format!(
                "an idempotency scope must be at most {IDEMPOTENCY_KEY_MAX_LEN} bytes"
            )));
        }
        Ok(Self {
            scope: scope.to_owned(),
            key: key.to_owned(),
            fingerprint: billing_concurrency::fingerprint(scope, method, path, body),
        })
    }

    /// Checks a key as a client sent it: the one rule for keys,
    /// [`rules::is_idempotency_key`] (1 to
    /// [`IDEMPOTENCY_KEY_MAX_LEN`] visible ASCII characters).
    ///
    /// # Errors
    /// [`BillingError::Validation`] otherwise.
    pub fn check_key(key: &str) -> Result<(), BillingError> {
        if !rules::is_idempotency_key(key) {
            return Err(BillingError::invalid(format!(
                "an idempotency key must be 1 to {IDEMPOTENCY_KEY_MAX_LEN} visible ASCII characters"
            )));
        }
        Ok(())
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

    /// The name of the key's claim in the coordination backend.
    fn claim_name(&self) -> String {
        format!("idempotency:{}:{}", self.scope, self.key)
    }
}

/// The result of an idempotent call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Idempotent<T> {
    /// The use case ran now; this is its outcome.
    Fresh(T),
    /// The use case had already committed under this key; this is the
    /// outcome recorded then (as it was then, not as the resource is now).
    Replayed(T),
}

impl<T> Idempotent<T> {
    /// The outcome, fresh or replayed.
    pub fn into_inner(self) -> T {
        match self {
            Self::Fresh(outcome) | Self::Replayed(outcome) => outcome,
        }
    }

    /// Whether the outcome was replayed.
    pub fn is_replayed(&self) -> bool {
        match self {
            Self::Fresh(_) => false,
            Self::Replayed(_) => true,
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// The outcome of a use case that can run under an idempotency key: it is
/// recorded as JSON with the key, in the transaction of its effect.
///
/// Implemented by the outcomes of the service's create and transition use
/// cases; sealed.
pub trait Recorded: sealed::Sealed + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stable name of the outcome's kind, stored with the record.
    const KIND: &'static str;

    /// The user whose data the outcome holds, if any: erasing that user
    /// deletes the record.
    fn user_id(&self) -> Option<i64>;
}

macro_rules! recorded {
    ($($outcome:ty => $kind:literal, |$it:ident| $user:expr;)*) => {$(
        impl sealed::Sealed for $outcome {}
        impl Recorded for $outcome {
            const KIND: &'static str = $kind;
            fn user_id(&self) -> Option<i64> {
                let $it = self;
                $user
            }
        }
    )*};
}

recorded! {
    user::Model => "user", |it| Some(it.id);
    user_case::Model => "user_case", |it| Some(it.user_id);
    user_details::Model => "user_details", |it| Some(it.user_id);
    subscription::Model => "subscription", |it| Some(it.user_id);
    user_invoice::Model => "invoice", |it| Some(it.user_id);
    PaymentOutcome => "payment", |it| Some(it.invoice.user_id);
    currency::Model => "currency", |_it| None;
    tarif_plan::Model => "plan", |_it| None;
    tax::Model => "tax", |_it| None;
    CreatedEndpoint => "webhook_endpoint", |_it| None;
    webhook_delivery::Model => "webhook_delivery", |_it| None;
}

/// Whether the running request's record has been written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClaimState {
    /// No effect has committed yet.
    Pending,
    /// The effect and its record committed.
    Recorded,
    /// Another request with the key committed first; this one's effect was
    /// rolled back.
    Raced,
    /// The use case found nothing to change and wrote nothing: there is no
    /// effect to record, and a repeat finds nothing to change either.
    Unchanged,
}

/// The key a request runs under, as its write paths see it.
#[derive(Debug)]
pub(crate) struct Claim {
    scope: String,
    key: String,
    fingerprint: String,
    ttl: TimeDelta,
}

/// The task-local state of [`Billing::idempotently`].
struct ClaimCell {
    claim: Arc<Claim>,
    state: Cell<ClaimState>,
}

tokio::task_local! {
    static CURRENT_CLAIM: ClaimCell;
}

impl Claim {
    /// The key the current task runs under, if any.
    pub(crate) fn current() -> Option<Arc<Self>> {
        CURRENT_CLAIM.try_with(|cell| Arc::clone(&cell.claim)).ok()
    }

    /// Inserts the record of `outcome` in `tx`, the transaction of the
    /// effect.
    ///
    /// # Errors
    /// [`BillingError::IdempotencyInFlight`] when another request with the
    /// key committed first (the caller must roll back); database failures.
    pub(crate) async fn record<T: Recorded>(
        &self,
        tx: &Transaction,
        outcome: &T,
    ) -> Result<(), BillingError> {
        let (record, not_before) = self.record_of(outcome)?;
        if IdempotencyRecords::record(tx, record, not_before).await? {
            Ok(())
        } else {
            Err(Self::raced())
        }
    }

    /// The record of `outcome`, and the oldest creation instant of a live
    /// record (an older record of the key is replaced), for a write that
    /// inserts it itself.
    ///
    /// # Errors
    /// [`BillingError::Internal`] if the outcome cannot be serialised.
    pub(crate) fn record_of<T: Recorded>(
        &self,
        outcome: &T,
    ) -> Result<(idempotency_record::Model, DateTime<Utc>), BillingError> {
        let at = now();
        let record = idempotency_record::Model {
            scope: self.scope.clone(),
            key: self.key.clone(),
            fingerprint: self.fingerprint.clone(),
            outcome_kind: T::KIND.to_owned(),
            outcome: serde_json::to_string(outcome).map_err(BillingError::internal)?,
            user_id: outcome.user_id(),
            created_at: at,
        };
        Ok((record, not_before(at, self.ttl)))
    }

    /// Notes that another request with the key committed first, and returns
    /// the error that rolls this one's transaction back.
    pub(crate) fn raced() -> BillingError {
        set_state(ClaimState::Raced);
        BillingError::IdempotencyInFlight
    }

    /// Notes that the transaction holding the record committed.
    pub(crate) fn committed() {
        set_state(ClaimState::Recorded);
    }

    /// Notes that the use case wrote nothing, as the values asked for were
    /// already stored.
    pub(crate) fn unchanged() {
        set_state(ClaimState::Unchanged);
    }
}

fn set_state(state: ClaimState) {
    // Outside `idempotently` there is no claim and nothing to note.
    let _ = CURRENT_CLAIM.try_with(|cell| cell.state.set(state));
}

/// The oldest creation instant of a live record; no earlier than 1970 (no
/// record is older, and PostgreSQL cannot compare with `DateTime::MIN_UTC`).
fn not_before(at: DateTime<Utc>, ttl: TimeDelta) -> DateTime<Utc> {
    at.checked_sub_signed(ttl)
        .map_or(DateTime::UNIX_EPOCH, |t| t.max(DateTime::UNIX_EPOCH))
}

impl Billing {
    /// Runs the use case `work` under `key`: its effect commits at most
    /// once per key (see the module documentation for the protocol).
    ///
    /// `work` must be one of the service's create or transition use cases
    /// (whose outcomes are [`Recorded`]): they record the key in the
    /// transaction of their effect.
    ///
    /// # Errors
    /// [`BillingError::IdempotencyInFlight`] while another request with the
    /// key runs; [`BillingError::IdempotencyKeyReused`] when the key was
    /// recorded for a different request or kind of outcome;
    /// [`BillingError::Unavailable`] when the coordination backend or the
    /// database is down (nothing ran); the use case's own errors (nothing
    /// was recorded, the key may be retried).
    pub async fn idempotently<T, Fut>(
        &self,
        key: &IdempotencyKey,
        work: Fut,
    ) -> Result<Idempotent<T>, BillingError>
    where
        T: Recorded,
        Fut: Future<Output = Result<T, BillingError>>,
    {
        if let Some(outcome) = self.recorded_outcome::<T>(key).await? {
            return Ok(Idempotent::Replayed(outcome));
        }
        let claim_lock = self.claim_key(key).await?;
        let settings = self.settings();
        let cell = ClaimCell {
            claim: Arc::new(Claim {
                scope: key.scope.clone(),
                key: key.key.clone(),
                fingerprint: key.fingerprint.clone(),
                ttl: idempotency_ttl(settings.idempotency_ttl),
            }),
            state: Cell::new(ClaimState::Pending),
        };
        let (result, state) = CURRENT_CLAIM
            .scope(cell, async {
                let result = work.await;
                (result, CURRENT_CLAIM.with(|cell| cell.state.get()))
            })
            .await;
        // The record (if any) has committed: the claim can go. (Were this
        // future dropped instead, the guard would release it on its own.)
        release_claim(claim_lock).await;
        match (result, state) {
            (Ok(outcome), ClaimState::Recorded | ClaimState::Unchanged) => {
                Ok(Idempotent::Fresh(outcome))
            }
            (Ok(outcome), ClaimState::Pending | ClaimState::Raced) => {
                // A use case that committed without recording: a bug of the
                // service, caught by its tests; the outcome still stands.
                tracing::error!(
                    key = key.key(),
                    kind = T::KIND,
                    "an idempotent use case committed without recording its key"
                );
                debug_assert!(false, "{} committed without recording its key", T::KIND);
                Ok(Idempotent::Fresh(outcome))
            }
            (Err(error), ClaimState::Pending | ClaimState::Raced) => {
                // Another run of the key may have committed meanwhile (its
                // record made ours roll back, or its effect made ours
                // invalid, e.g. the invoice was paid): answer with its
                // outcome.
                match self.recorded_outcome::<T>(key).await? {
                    Some(outcome) => {
                        tracing::debug!(
                            key = key.key(),
                            error = &error as &dyn std::error::Error,
                            "another run of this key committed first; replaying its outcome"
                        );
                        Ok(Idempotent::Replayed(outcome))
                    }
                    None if state == ClaimState::Raced => Err(BillingError::IdempotencyInFlight),
                    None => Err(error),
                }
            }
            (Err(error), ClaimState::Recorded | ClaimState::Unchanged) => Err(error),
        }
    }

    /// Takes the claim of `key` for the in-flight TTL, so concurrent repeats
    /// of the key wait for this run.
    ///
    /// # Errors
    /// [`BillingError::IdempotencyInFlight`] while another request with the
    /// key holds it; [`BillingError::Unavailable`] when the coordination
    /// backend is down.
    async fn claim_key(&self, key: &IdempotencyKey) -> Result<LockGuard, BillingError> {
        self.coordination()
            .try_lock(
                &key.claim_name(),
                self.settings().idempotency_in_flight_ttl,
                Duration::ZERO,
            )
            .await
            .map_err(|error| match error {
                CoordinationError::LockNotAcquired { .. } => BillingError::IdempotencyInFlight,
                other @ (CoordinationError::Unavailable { .. }
                | CoordinationError::Rejected { .. }
                | CoordinationError::InvalidSettings { .. }
                | CoordinationError::InvalidArgument { .. }
                | CoordinationError::CorruptRecord { .. }) => BillingError::from(other),
            })
    }

    /// The outcome recorded for `key`, if its effect committed within the
    /// idempotency TTL.
    async fn recorded_outcome<T: Recorded>(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<T>, BillingError> {
        let not_before = not_before(now(), idempotency_ttl(self.settings().idempotency_ttl));
        let Some(record) =
            IdempotencyRecords::find_live(self.db(), &key.scope, &key.key, not_before).await?
        else {
            return Ok(None);
        };
        if record.fingerprint != key.fingerprint || record.outcome_kind != T::KIND {
            return Err(BillingError::IdempotencyKeyReused);
        }
        serde_json::from_str(&record.outcome)
            .map(Some)
            .map_err(BillingError::internal)
    }

    /// Deletes the idempotency records older than the idempotency TTL;
    /// returns how many. Expired records are ignored anyway; this only
    /// reclaims their space (run it now and then, e.g. hourly).
    ///
    /// # Errors
    /// [`BillingError::Unavailable`] and other database failures.
    pub async fn purge_expired_idempotency_records(&self) -> Result<u64, BillingError> {
        let not_before = not_before(now(), idempotency_ttl(self.settings().idempotency_ttl));
        Ok(IdempotencyRecords::purge_expired(self.db(), not_before).await?)
    }
}

/// Releases a key's claim, and waits for it, so that the next request with
/// the key is not told it is in flight. A failure only delays that request
/// until the claim's TTL: it is logged.
async fn release_claim(claim: LockGuard) {
    if let Err(error) = claim.release().await {
        tracing::warn!(
            error = &error as &dyn std::error::Error,
            "could not release an idempotency key's claim; it frees itself at its in-flight TTL"
        );
    }
}

/// The idempotency TTL as a `TimeDelta` (saturating: a TTL beyond its range
/// keeps records for its maximum).
fn idempotency_ttl(ttl: Duration) -> TimeDelta {
    TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_never_looked_up_before_1970() {
        let at = now();
        assert_eq!(
            not_before(at, TimeDelta::hours(24)),
            at - TimeDelta::hours(24)
        );
        for ttl in [TimeDelta::MAX, idempotency_ttl(Duration::MAX)] {
            assert_eq!(not_before(at, ttl), DateTime::UNIX_EPOCH);
        }
    }
}
