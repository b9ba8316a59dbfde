//! Calendar arithmetic of billing periods.
//!
//! Periods are calendar months, not fixed durations: one month after 15 March
//! is 15 April, and a day that does not exist in the target month is clamped
//! to its last day (31 January + 1 month = 28 February, or 29 in a leap
//! year). The time of day is kept. All instants are UTC.

use chrono::{DateTime, Months, Utc};

use crate::enums::BillingPeriod;
use crate::error::DomainError;

impl BillingPeriod {
    /// The number of calendar months one payment lasts; `None` for
    /// [`BillingPeriod::Lifetime`].
    ///
    /// ```
    /// use billing_domain::enums::BillingPeriod;
    /// assert_eq!(BillingPeriod::Quarterly.months(), Some(3));
    /// assert_eq!(BillingPeriod::Lifetime.months(), None);
    /// ```
    #[must_use]
    pub const fn months(self) -> Option<u32> {
        match self {
            Self::Monthly => Some(1),
            Self::Quarterly => Some(3),
            Self::Yearly => Some(12),
            Self::Lifetime => None,
        }
    }

    /// The end of one period that starts at `start`; `Ok(None)` for a lifetime
    /// period, which never ends.
    ///
    /// ```
    /// use billing_domain::enums::BillingPeriod;
    /// use chrono::{TimeZone, Utc};
    ///
    /// let jan31 = Utc.with_ymd_and_hms(2028, 1, 31, 12, 0, 0).unwrap();
    /// assert_eq!(
    ///     BillingPeriod::Monthly.end_of_period(jan31).unwrap(),
    ///     Some(Utc.with_ymd_and_hms(2028, 2, 29, 12, 0, 0).unwrap())
    /// );
    /// assert_eq!(BillingPeriod::Lifetime.end_of_period(jan31).unwrap(), None);
    /// ```
    pub fn end_of_period(self, start: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, DomainError> {
        match self.months() {
            None => Ok(None),
            Some(months) => start
                .checked_add_months(Months::new(months))
                .map(Some)
                .ok_or(DomainError::DateOutOfRange),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 10, 30, 0).unwrap()
    }

    #[test]
    fn month_ends_are_clamped() {
        let m = BillingPeriod::Monthly;
        assert_eq!(
            m.end_of_period(at(2028, 1, 31)).unwrap(),
            Some(at(2028, 2, 29))
        );
        assert_eq!(
            m.end_of_period(at(2027, 1, 31)).unwrap(),
            Some(at(2027, 2, 28))
        );
        assert_eq!(
            m.end_of_period(at(2026, 3, 31)).unwrap(),
            Some(at(2026, 4, 30))
        );
        assert_eq!(
            m.end_of_period(at(2026, 12, 31)).unwrap(),
            Some(at(2027, 1, 31))
        );
        assert_eq!(
            m.end_of_period(at(2026, 3, 15)).unwrap(),
            Some(at(2026, 4, 15))
        );
    }

    #[test]
    fn quarters_and_years() {
        assert_eq!(
            BillingPeriod::Quarterly
                .end_of_period(at(2026, 11, 30))
                .unwrap(),
            Some(at(2027, 2, 28))
        );
        assert_eq!(
            BillingPeriod::Yearly
                .end_of_period(at(2028, 2, 29))
                .unwrap(),
            Some(at(2029, 2, 28))
        );
        assert_eq!(
            BillingPeriod::Yearly.end_of_period(at(2026, 5, 1)).unwrap(),
            Some(at(2027, 5, 1))
        );
    }

    #[test]
    fn lifetime_never_ends() {
        assert_eq!(
            BillingPeriod::Lifetime
                .end_of_period(at(2026, 1, 1))
                .unwrap(),
            None
        );
    }

    #[test]
    fn out_of_range_is_an_error() {
        assert_eq!(
            BillingPeriod::Yearly.end_of_period(DateTime::<Utc>::MAX_UTC),
            Err(DomainError::DateOutOfRange)
        );
    }
}
