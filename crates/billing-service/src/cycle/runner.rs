//! One pass of the billing cycle: its lease and the order of its steps.

use std::time::{Duration, Instant};

use billing_concurrency::LockGuard;

use super::{CYCLE_LEASE, CycleReport, CycleRunner};
use crate::{BillingError, Contended};

/// The lease of a running pass.
pub(super) struct Lease {
    guard: LockGuard,
    ttl: Duration,
}

impl Lease {
    /// Extends the lease; refuses to go on once it passed to another
    /// instance.
    pub(super) async fn keep(&self) -> Result<(), BillingError> {
        if self.guard.extend(self.ttl).await? {
            Ok(())
        } else {
            Err(BillingError::Locked {
                contended: Contended::CycleLease,
            })
        }
    }
}

impl CycleRunner {
    /// Runs one full pass if no other instance is running one (else
    /// returns at once with [`CycleReport::lease_held_elsewhere`]).
    ///
    /// # Errors
    /// [`BillingError::Unavailable`] (database or coordination down),
    /// [`BillingError::Locked`] (the lease was lost mid-pass); what was done
    /// before the error stays done and the next pass completes the rest.
    pub async fn run_once(&self) -> Result<CycleReport, BillingError> {
        let started = Instant::now();
        let ttl = self.settings.lease_ttl.max(Duration::from_secs(1));
        let guard = match self
            .billing
            .coordination()
            .try_lock(CYCLE_LEASE, ttl, Duration::ZERO)
            .await
        {
            Ok(guard) => guard,
            Err(billing_concurrency::CoordinationError::LockNotAcquired { .. }) => {
                return Ok(CycleReport {
                    lease_held_elsewhere: true,
                    ..CycleReport::default()
                });
            }
            Err(other) => return Err(other.into()),
        };
        let lease = Lease { guard, ttl };
        let mut report = CycleReport {
            fencing_token: lease.guard.fencing_token(),
            ..CycleReport::default()
        };
        let outcome = self.pass(&lease, &mut report).await;
        let name = lease.guard.name().to_owned();
        if let Err(error) = lease.guard.release().await {
            tracing::warn!(
                lock = name,
                error = &error as &dyn std::error::Error,
                "could not release the cycle lease"
            );
        }
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        outcome.map(|()| report)
    }

    async fn pass(&self, lease: &Lease, report: &mut CycleReport) -> Result<(), BillingError> {
        let now = self.billing.now();
        self.renew(lease, now, report).await?;
        self.dun(lease, now, report).await?;
        self.expire(lease, now, report).await?;
        self.close_invoices(lease, now, report).await
    }

    pub(super) fn batch(&self) -> u64 {
        self.settings.batch_size.max(1)
    }
}
