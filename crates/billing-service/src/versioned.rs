//! Read-modify-save with optimistic locking: the expected version a caller
//! passes, or bounded re-reads when it passes none.

use billing_repository::{
    Executor, Repository, RepositoryError, Transaction, TransactionFuture, Versioned,
};

use crate::events::{Evented, append_events, event_of};
use crate::idempotency::{Claim, Recorded};
use crate::{Billing, BillingError, Contended, Resource};

impl Billing {
    /// Loads row `id` of `E`, lets `apply` change it, and saves it with a
    /// version check.
    ///
    /// With `expected_version`, a row at another version is refused with
    /// [`BillingError::VersionMismatch`] and nothing is written. Without one,
    /// a save that loses to a concurrent writer re-reads the row and
    /// re-applies `apply` (which re-validates against the new state), up to
    /// `max_attempts` times, then gives up with [`BillingError::Locked`].
    ///
    /// A change that leaves the row as it was (every value equal to the
    /// stored one) writes nothing: the row is returned at its version, so
    /// other clients' `If-Match` stays valid. The expected version is still
    /// checked first.
    pub(crate) async fn update_versioned<E, F>(
        &self,
        id: i64,
        expected_version: Option<i32>,
        mut apply: F,
    ) -> Result<E::Model, BillingError>
    where
        E: Versioned,
        E::Model: Recorded + PartialEq + Evented,
        F: FnMut(&mut E::Model) -> Result<(), BillingError>,
    {
        let db = self.db();
        let claim = Claim::current();
        for _ in 0..self.settings().max_attempts {
            let mut model = Repository::<E>::get(db, id).await?;
            let read_version = E::version_of(&model);
            check_expected_version(E::RESOURCE, expected_version, read_version)?;
            let stored = model.clone();
            apply(&mut model)?;
            if model == stored {
                // Nothing to write, so nothing to record either.
                Claim::unchanged();
                return Ok(stored);
            }
            let saved = if claim.is_none() && !<E::Model as Evented>::EVENTED {
                // One statement: nothing else to write with the change.
                save_or_conflict::<E, _>(db, &model, read_version, expected_version).await?
            } else {
                // The change's event and the idempotency key's record are
                // written in the change's transaction, after its row.
                let recording = claim.clone();
                let saved = db
                    .transaction(move |tx| {
                        Box::pin(async move {
                            let saved = save_or_conflict::<E, _>(
                                tx,
                                &model,
                                read_version,
                                expected_version,
                            )
                            .await?;
                            if let Some(saved) = &saved {
                                append_events(tx, [event_of(Some(&stored), saved)?]).await?;
                                if let Some(claim) = recording {
                                    claim.record(tx, saved).await?;
                                }
                            }
                            Ok::<_, BillingError>(saved)
                        })
                    })
                    .await?;
                if saved.is_some() && claim.is_some() {
                    Claim::committed();
                }
                saved
            };
            match saved {
                Some(saved) => return Ok(saved),
                None => tracing::debug!(
                    entity = E::RESOURCE.table(),
                    id,
                    "concurrent change; re-reading"
                ),
            }
        }
        Err(BillingError::Locked {
            contended: Contended::Row {
                resource: E::RESOURCE,
                id,
            },
        })
    }
}

impl Billing {
    /// Runs `work` in a transaction. `Ok(None)` means a save inside lost a
    /// race: the transaction is rolled back and `work` runs again in a new
    /// one (up to `max_attempts` times), re-reading and re-applying
    /// everything. `Err` rolls back and ends.
    pub(crate) async fn retrying_transaction<T, F>(&self, mut work: F) -> Result<T, BillingError>
    where
        T: Send + 'static,
        F: for<'t> FnMut(&'t Transaction) -> TransactionFuture<'t, Result<Option<T>, BillingError>>
            + Send,
    {
        for _ in 0..self.settings().max_attempts {
            let work = &mut work;
            let attempt = self
                .db()
                .transaction(move |tx| {
                    let unit = work(tx);
                    Box::pin(async move {
                        match unit.await {
                            Ok(Some(done)) => Ok(done),
                            // An error, so the transaction rolls back what the
                            // losing attempt wrote before it lost.
                            Ok(None) => Err(Attempt::LostRace),
                            Err(error) => Err(Attempt::Failed(error)),
                        }
                    })
                })
                .await;
            match attempt {
                Ok(done) => return Ok(done),
                Err(Attempt::LostRace) => {
                    tracing::debug!("concurrent change inside a transaction; running it again");
                }
                Err(Attempt::Failed(error)) => return Err(error),
            }
        }
        Err(BillingError::Locked {
            contended: Contended::Records,
        })
    }
}

impl Billing {
    /// [`retrying_transaction`](Self::retrying_transaction) for a use case
    /// that may run under an idempotency key: when it does, the key's
    /// record, with the outcome, is written in the transaction that commits
    /// the outcome.
    pub(crate) async fn recording_transaction<T, F>(&self, mut work: F) -> Result<T, BillingError>
    where
        T: Recorded,
        F: for<'t> FnMut(&'t Transaction) -> TransactionFuture<'t, Result<Option<T>, BillingError>>
            + Send,
    {
        let claim = Claim::current();
        let outcome = self
            .retrying_transaction(|tx| {
                let unit = work(tx);
                let claim = claim.clone();
                Box::pin(async move {
                    let Some(done) = unit.await? else {
                        return Ok(None);
                    };
                    if let Some(claim) = claim {
                        claim.record(tx, &done).await?;
                    }
                    Ok(Some(done))
                })
            })
            .await?;
        if claim.is_some() {
            Claim::committed();
        }
        Ok(outcome)
    }
}

/// How one attempt of [`Billing::retrying_transaction`] ended short of done.
enum Attempt {
    LostRace,
    Failed(BillingError),
}

impl From<RepositoryError> for Attempt {
    fn from(error: RepositoryError) -> Self {
        Self::Failed(error.into())
    }
}

/// Refuses a change when the caller expected another version than the one
/// read (nothing is written then).
pub(crate) fn check_expected_version(
    resource: Resource,
    expected_version: Option<i32>,
    current: i32,
) -> Result<(), BillingError> {
    match expected_version {
        Some(expected) if expected != current => {
            Err(BillingError::VersionMismatch { resource, current })
        }
        Some(_) | None => Ok(()),
    }
}

/// Saves `model` expecting `read_version`. A lost race is `Ok(None)` when the
/// caller asked for no particular version (so it may retry), and
/// [`BillingError::VersionMismatch`] when it did.
pub(crate) async fn save_or_conflict<E, X>(
    exec: &X,
    model: &E::Model,
    read_version: i32,
    expected_version: Option<i32>,
) -> Result<Option<E::Model>, BillingError>
where
    E: Versioned,
    X: Executor,
{
    match Repository::<E>::save(exec, model, read_version).await {
        Ok(saved) => Ok(Some(saved)),
        Err(RepositoryError::ConcurrentModification { actual, .. }) => match expected_version {
            Some(_) => Err(BillingError::VersionMismatch {
                resource: E::RESOURCE,
                current: actual,
            }),
            None => Ok(None),
        },
        Err(other) => Err(other.into()),
    }
}
