//! The clock the use cases read: the system clock in production, a clock a
//! test sets and moves forward to run months of the billing cycle in
//! seconds.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

/// Where the use cases get the current instant from.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant, truncated to microseconds (what both databases
    /// store).
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        billing_repository::now()
    }
}

/// A clock that stands still until it is set or advanced. Clones share the
/// instant.
///
/// ```
/// use billing_service::{Clock, TestClock};
/// use chrono::{TimeDelta, TimeZone, Utc};
///
/// let clock = TestClock::new(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
/// clock.advance(TimeDelta::days(31));
/// assert_eq!(clock.now(), Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap());
/// ```
#[derive(Clone, Debug)]
pub struct TestClock {
    at: Arc<Mutex<DateTime<Utc>>>,
}

impl TestClock {
    /// A clock showing `at` (truncated to microseconds).
    #[must_use]
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            at: Arc::new(Mutex::new(at.trunc_subsecs(6))),
        }
    }

    /// Shows `at` from now on.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.at.lock().unwrap_or_else(PoisonError::into_inner) = at.trunc_subsecs(6);
    }

    /// Moves the clock on by `by`.
    pub fn advance(&self, by: TimeDelta) {
        let mut at = self.at.lock().unwrap_or_else(PoisonError::into_inner);
        *at = (*at + by).trunc_subsecs(6);
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.at.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
