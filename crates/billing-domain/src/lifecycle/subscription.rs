//! Subscription transitions, validity and remaining days.

use chrono::{DateTime, TimeDelta, Utc};

use super::subscription_transition;
use crate::Resource;
use crate::entities::subscription;
use crate::enums::{BillingPeriod, SubscriptionStatus};
use crate::error::DomainError;

impl subscription::Model {
    /// Adds one paid `period` at `now`: what a **paid invoice** does, and
    /// the only way a subscription gains time.
    ///
    /// - **start** (`pending`): `started_at = now` (only if never set),
    ///   `expires_at = now + period`;
    /// - **renew** (`active`): `expires_at` moves one period on from the
    ///   current `expires_at`, or from `now` if that has already passed; a
    ///   subscription without expiry (lifetime) keeps none;
    /// - **resume and renew** (`paused`): the paused time is given back as
    ///   by [`resume`](Self::resume), then one period is added as for a
    ///   renewal.
    ///
    /// A [`BillingPeriod::Lifetime`] period means no expiry (`expires_at =
    /// None`). `cancelled` and `expired` subscriptions cannot be paid for.
    ///
    /// ```
    /// use billing_domain::enums::{BillingPeriod, SubscriptionStatus};
    /// use chrono::{TimeZone, Utc};
    /// # use billing_domain::entities::subscription;
    /// # let mut sub: subscription::Model = serde_json::from_value(serde_json::json!({
    /// #     "id": 1, "user_id": 1, "tarif_plan_id": 1, "status": "pending",
    /// #     "started_at": null, "expires_at": null, "cancelled_at": null, "paused_at": null,
    /// #     "created_at": "2027-01-01T00:00:00Z", "updated_at": "2027-01-01T00:00:00Z",
    /// #     "version": 1})).unwrap();
    /// let jan31 = Utc.with_ymd_and_hms(2027, 1, 31, 9, 0, 0).unwrap();
    /// sub.pay_period(jan31, BillingPeriod::Monthly).unwrap();
    /// assert_eq!(sub.status, SubscriptionStatus::Active);
    /// assert_eq!(sub.expires_at, Some(Utc.with_ymd_and_hms(2027, 2, 28, 9, 0, 0).unwrap()));
    /// ```
    ///
    /// # Errors
    /// [`DomainError::InvalidTransition`] for a cancelled or expired
    /// subscription; [`DomainError::DateOutOfRange`] when the new expiry is
    /// beyond the calendar. The model is unchanged on error.
    pub fn pay_period(
        &mut self,
        now: DateTime<Utc>,
        period: BillingPeriod,
    ) -> Result<(), DomainError> {
        let from = self.status;
        subscription_transition(from, SubscriptionStatus::Active, "pay for")?;
        let current_end = match from {
            SubscriptionStatus::Pending => Some(now),
            SubscriptionStatus::Active => self.expires_at,
            SubscriptionStatus::Paused => self.resumed_expiry(now)?,
            // Refused above; kept explicit so a new status forces a decision.
            SubscriptionStatus::Cancelled | SubscriptionStatus::Expired => {
                return Err(refused(from, "pay for"));
            }
        };
        // No current end means no expiry (lifetime), which a period keeps.
        let expires_at = match current_end {
            None => None,
            Some(current) => period.end_of_period(current.max(now))?,
        };

        self.status = SubscriptionStatus::Active;
        self.started_at = self.started_at.or(Some(now));
        self.expires_at = expires_at;
        self.paused_at = None;
        Ok(())
    }

    /// Resumes a `paused` subscription at `now`: `expires_at` moves on by
    /// the paused time (`now − paused_at`, never negative) and `paused_at`
    /// is cleared. It gives back the paid time the pause froze and adds none:
    /// only [`pay_period`](Self::pay_period) adds time, so a `pending`
    /// subscription cannot be started nor an `active` one renewed this way.
    ///
    /// # Errors
    /// [`DomainError::InvalidTransition`] unless the subscription is paused;
    /// [`DomainError::DateOutOfRange`]. The model is unchanged on error.
    pub fn resume(&mut self, now: DateTime<Utc>) -> Result<(), DomainError> {
        match self.status {
            SubscriptionStatus::Paused => {}
            status @ (SubscriptionStatus::Pending
            | SubscriptionStatus::Active
            | SubscriptionStatus::Cancelled
            | SubscriptionStatus::Expired) => return Err(refused(status, "resume")),
        }
        let expires_at = self.resumed_expiry(now)?;
        self.status = SubscriptionStatus::Active;
        self.expires_at = expires_at;
        self.paused_at = None;
        Ok(())
    }

    /// `expires_at` moved on by the time paused until `now` (never less
    /// than zero); `None` stays `None` (no expiry).
    fn resumed_expiry(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, DomainError> {
        let paused_for = self
            .paused_at
            .map_or(TimeDelta::zero(), |paused_at| now - paused_at)
            .max(TimeDelta::zero());
        self.expires_at
            .map(|current| {
                current
                    .checked_add_signed(paused_for)
                    .ok_or(DomainError::DateOutOfRange)
            })
            .transpose()
    }

    /// Pauses an `active` subscription: `paused_at = now`. The paid time left
    /// is frozen and given back on resume.
    pub fn pause(&mut self, now: DateTime<Utc>) -> Result<(), DomainError> {
        subscription_transition(self.status, SubscriptionStatus::Paused, "pause")?;
        self.status = SubscriptionStatus::Paused;
        self.paused_at = Some(now);
        Ok(())
    }

    /// Cancels a `pending`, `active` or `paused` subscription:
    /// `cancelled_at = now`. It ends at once (no longer valid); `expires_at`
    /// keeps the end of the paid time for the record.
    pub fn cancel(&mut self, now: DateTime<Utc>) -> Result<(), DomainError> {
        subscription_transition(self.status, SubscriptionStatus::Cancelled, "cancel")?;
        self.status = SubscriptionStatus::Cancelled;
        self.cancelled_at = Some(now);
        Ok(())
    }

    /// Expires an `active` or `paused` subscription. `expires_at` becomes
    /// the instant it actually ended: unchanged when it has already passed,
    /// `now` when the subscription is expired early or had no expiry.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Result<(), DomainError> {
        subscription_transition(self.status, SubscriptionStatus::Expired, "expire")?;
        self.status = SubscriptionStatus::Expired;
        self.expires_at = Some(self.expires_at.map_or(now, |at| at.min(now)));
        Ok(())
    }

    /// Whether the subscriber may use the plan at `now`: `active` and
    /// `now < expires_at` (or no expiry). A paused subscription is not valid.
    #[must_use]
    pub fn is_valid(&self, now: DateTime<Utc>) -> bool {
        match self.status {
            SubscriptionStatus::Active => self.expires_at.is_none_or(|at| now < at),
            SubscriptionStatus::Pending
            | SubscriptionStatus::Paused
            | SubscriptionStatus::Cancelled
            | SubscriptionStatus::Expired => false,
        }
    }

    /// Whole days of paid time left, **rounded up** (one hour left is 1 day;
    /// 0 only when nothing is left), never negative. `None` when the paid
    /// time never ends (lifetime).
    ///
    /// - `active`: days until `expires_at` (0 once it has passed);
    /// - `paused`: the frozen days left when the pause began (`expires_at −
    ///   paused_at`), which a resume gives back;
    /// - `pending`, `cancelled`, `expired`: `Some(0)`.
    ///
    /// For an active subscription `days_remaining(now) > Some(0)` exactly
    /// when [`is_valid(now)`](Self::is_valid).
    ///
    /// ```
    /// use billing_domain::enums::BillingPeriod;
    /// use chrono::{TimeDelta, TimeZone, Utc};
    /// # use billing_domain::entities::subscription;
    /// # let mut sub: subscription::Model = serde_json::from_value(serde_json::json!({
    /// #     "id": 1, "user_id": 1, "tarif_plan_id": 1, "status": "pending",
    /// #     "started_at": null, "expires_at": null, "cancelled_at": null, "paused_at": null,
    /// #     "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    /// #     "version": 1})).unwrap();
    /// let start = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
    /// sub.pay_period(start, BillingPeriod::Monthly).unwrap(); // until 1 May
    /// assert_eq!(sub.days_remaining(start), Some(30));
    /// assert_eq!(sub.days_remaining(start + TimeDelta::hours(1)), Some(30)); // 29 d 23 h
    /// assert_eq!(sub.days_remaining(start + TimeDelta::days(40)), Some(0));
    /// ```
    #[must_use]
    pub fn days_remaining(&self, now: DateTime<Utc>) -> Option<u32> {
        match self.status {
            SubscriptionStatus::Active => self.expires_at.map(|at| days_rounded_up(at - now)),
            SubscriptionStatus::Paused => self
                .expires_at
                .map(|at| days_rounded_up(at - self.paused_at.unwrap_or(now))),
            SubscriptionStatus::Pending
            | SubscriptionStatus::Cancelled
            | SubscriptionStatus::Expired => Some(0),
        }
    }
}

/// The refusal of `action` from status `from`.
fn refused(from: SubscriptionStatus, action: &'static str) -> DomainError {
    DomainError::InvalidTransition {
        entity: Resource::Subscription,
        from: from.as_str(),
        action,
    }
}

/// Whole days in `left`, rounded up; 0 for zero or negative durations;
/// saturates at `u32::MAX`.
fn days_rounded_up(left: TimeDelta) -> u32 {
    if left <= TimeDelta::zero() {
        return 0;
    }
    let whole = left.num_days();
    let days = if TimeDelta::try_days(whole).is_some_and(|d| d < left) {
        whole.saturating_add(1)
    } else {
        whole
    };
    u32::try_from(days).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    fn pending() -> subscription::Model {
        subscription::Model {
            id: 7,
            user_id: 1,
            tarif_plan_id: 2,
            status: SubscriptionStatus::Pending,
            started_at: None,
            expires_at: None,
            cancelled_at: None,
            paused_at: None,
            created_at: at(2026, 1, 1),
            updated_at: at(2026, 1, 1),
            version: 3,
        }
    }

    fn active(start: DateTime<Utc>, period: BillingPeriod) -> subscription::Model {
        let mut sub = pending();
        sub.pay_period(start, period).unwrap();
        sub
    }

    #[test]
    fn activation_sets_start_and_calendar_expiry() {
        let sub = active(at(2028, 1, 31), BillingPeriod::Monthly);
        assert_eq!(sub.status, SubscriptionStatus::Active);
        assert_eq!(sub.started_at, Some(at(2028, 1, 31)));
        assert_eq!(sub.expires_at, Some(at(2028, 2, 29)));

        let sub = active(at(2027, 1, 31), BillingPeriod::Monthly);
        assert_eq!(sub.expires_at, Some(at(2027, 2, 28)));

        let sub = active(at(2026, 11, 30), BillingPeriod::Quarterly);
        assert_eq!(sub.expires_at, Some(at(2027, 2, 28)));

        let sub = active(at(2028, 2, 29), BillingPeriod::Yearly);
        assert_eq!(sub.expires_at, Some(at(2029, 2, 28)));
    }

    #[test]
    fn lifetime_activation_has_no_expiry() {
        let sub = active(at(2026, 5, 1), BillingPeriod::Lifetime);
        assert_eq!(sub.expires_at, None);
        assert!(sub.is_valid(at(2099, 1, 1)));
        assert_eq!(sub.days_remaining(at(2099, 1, 1)), None);
    }

    #[test]
    fn transitions_do_not_touch_version_or_updated_at() {
        let mut sub = pending();
        sub.pay_period(at(2026, 5, 1), BillingPeriod::Monthly)
            .unwrap();
        sub.pause(at(2026, 5, 2)).unwrap();
        sub.resume(at(2026, 5, 3)).unwrap();
        sub.expire(at(2026, 7, 1)).unwrap();
        assert_eq!(sub.version, 3);
        assert_eq!(sub.updated_at, at(2026, 1, 1));
        assert_eq!(sub.created_at, at(2026, 1, 1));
    }

    #[test]
    fn only_a_payment_adds_time() {
        let mut sub = active(at(2026, 1, 10), BillingPeriod::Monthly);
        let before = sub.clone();
        // Resuming a running subscription would renew it for free.
        assert!(sub.resume(at(2026, 1, 20)).is_err());
        assert_eq!(sub, before);
        let mut waiting = pending();
        assert!(waiting.resume(at(2026, 1, 20)).is_err());
        assert_eq!(waiting, pending());
        // A resume right after the pause gives back nothing but the pause.
        sub.pause(at(2026, 1, 20)).unwrap();
        sub.resume(at(2026, 1, 20)).unwrap();
        assert_eq!(sub.expires_at, before.expires_at);
        assert_eq!(sub.status, SubscriptionStatus::Active);
    }

    #[test]
    fn a_payment_of_a_paused_subscription_resumes_and_renews_it() {
        let mut sub = active(at(2026, 3, 1), BillingPeriod::Monthly);
        sub.pause(at(2026, 3, 10)).unwrap();
        sub.pay_period(at(2026, 3, 20), BillingPeriod::Monthly)
            .unwrap();
        // 1 April + 10 paused days = 11 April, plus one month.
        assert_eq!(sub.expires_at, Some(at(2026, 5, 11)));
        assert_eq!(sub.paused_at, None);
        assert_eq!(sub.status, SubscriptionStatus::Active);
    }

    #[test]
    fn renewal_extends_from_the_current_expiry() {
        let mut sub = active(at(2026, 1, 31), BillingPeriod::Monthly);
        assert_eq!(sub.expires_at, Some(at(2026, 2, 28)));
        // Renewed early, on 20 February: the new month starts on 28 February.
        sub.pay_period(at(2026, 2, 20), BillingPeriod::Monthly)
            .unwrap();
        assert_eq!(sub.expires_at, Some(at(2026, 3, 28)));
        assert_eq!(sub.started_at, Some(at(2026, 1, 31)), "set once");
    }

    #[test]
    fn renewal_after_the_expiry_extends_from_now() {
        let mut sub = active(at(2026, 1, 10), BillingPeriod::Monthly);
        sub.pay_period(at(2026, 3, 5), BillingPeriod::Monthly)
            .unwrap();
        assert_eq!(sub.expires_at, Some(at(2026, 4, 5)));
        assert_eq!(sub.started_at, Some(at(2026, 1, 10)));
    }

    #[test]
    fn renewal_to_lifetime_and_of_lifetime() {
        let mut sub = active(at(2026, 1, 10), BillingPeriod::Monthly);
        sub.pay_period(at(2026, 1, 20), BillingPeriod::Lifetime)
            .unwrap();
        assert_eq!(sub.expires_at, None);
        // A lifetime subscription stays without expiry.
        sub.pay_period(at(2026, 2, 20), BillingPeriod::Monthly)
            .unwrap();
        assert_eq!(sub.expires_at, None);
    }

    #[test]
    fn resume_after_ten_days_extends_by_ten_days() {
        let mut sub = active(at(2026, 3, 1), BillingPeriod::Monthly);
        assert_eq!(sub.expires_at, Some(at(2026, 4, 1)));
        sub.pause(at(2026, 3, 10)).unwrap();
        assert_eq!(sub.status, SubscriptionStatus::Paused);
        assert_eq!(sub.paused_at, Some(at(2026, 3, 10)));
        assert!(!sub.is_valid(at(2026, 3, 15)));
        assert_eq!(sub.days_remaining(at(2026, 3, 15)), Some(22), "frozen");

        sub.resume(at(2026, 3, 20)).unwrap();
        assert_eq!(sub.status, SubscriptionStatus::Active);
        assert_eq!(sub.expires_at, Some(at(2026, 4, 11)));
        assert_eq!(sub.paused_at, None);
        assert_eq!(sub.started_at, Some(at(2026, 3, 1)));
        assert_eq!(sub.days_remaining(at(2026, 3, 20)), Some(22));
    }

    #[test]
    fn resume_with_a_clock_behind_the_pause_adds_nothing() {
        let mut sub = active(at(2026, 3, 1), BillingPeriod::Monthly);
        sub.pause(at(2026, 3, 10)).unwrap();
        sub.resume(at(2026, 3, 9)).unwrap();
        assert_eq!(sub.expires_at, Some(at(2026, 4, 1)));
    }

    #[test]
    fn resume_of_a_lifetime_subscription_keeps_no_expiry() {
        let mut sub = active(at(2026, 3, 1), BillingPeriod::Lifetime);
        sub.pause(at(2026, 3, 10)).unwrap();
        assert_eq!(sub.days_remaining(at(2026, 3, 11)), None);
        sub.resume(at(2026, 3, 20)).unwrap();
        assert_eq!(sub.expires_at, None);
    }

    #[test]
    fn cancel_from_each_live_state() {
        for mut sub in [pending(), active(at(2026, 3, 1), BillingPeriod::Monthly), {
            let mut s = active(at(2026, 3, 1), BillingPeriod::Monthly);
            s.pause(at(2026, 3, 2)).unwrap();
            s
        }] {
            let expires_at = sub.expires_at;
            sub.cancel(at(2026, 3, 5)).unwrap();
            assert_eq!(sub.status, SubscriptionStatus::Cancelled);
            assert_eq!(sub.cancelled_at, Some(at(2026, 3, 5)));
            assert_eq!(sub.expires_at, expires_at);
            assert!(!sub.is_valid(at(2026, 3, 5)));
            assert_eq!(sub.days_remaining(at(2026, 3, 5)), Some(0));
        }
    }

    #[test]
    fn expire_records_the_actual_end() {
        let mut sub = active(at(2026, 3, 1), BillingPeriod::Monthly);
        sub.expire(at(2026, 4, 2)).unwrap();
        assert_eq!(sub.status, SubscriptionStatus::Expired);
        assert_eq!(
            sub.expires_at,
            Some(at(2026, 4, 1)),
            "already passed: unchanged"
        );

        let mut early = active(at(2026, 3, 1), BillingPeriod::Monthly);
        early.expire(at(2026, 3, 15)).unwrap();
        assert_eq!(early.expires_at, Some(at(2026, 3, 15)));

        let mut lifetime = active(at(2026, 3, 1), BillingPeriod::Lifetime);
        lifetime.expire(at(2026, 3, 15)).unwrap();
        assert_eq!(lifetime.expires_at, Some(at(2026, 3, 15)));
        assert_eq!(lifetime.days_remaining(at(2026, 3, 15)), Some(0));

        let mut paused = active(at(2026, 3, 1), BillingPeriod::Monthly);
        paused.pause(at(2026, 3, 5)).unwrap();
        paused.expire(at(2026, 3, 6)).unwrap();
        assert_eq!(paused.status, SubscriptionStatus::Expired);
    }

    /// Every action the state machine forbids, from every status.
    #[test]
    fn forbidden_transitions_fail_and_leave_the_model_unchanged() {
        let now = at(2026, 6, 1);
        let mut cancelled = pending();
        cancelled.cancel(now).unwrap();
        let mut expired = active(now, BillingPeriod::Monthly);
        expired.expire(now).unwrap();
        let mut paused = active(now, BillingPeriod::Monthly);
        paused.pause(now).unwrap();

        type Action = fn(&mut subscription::Model, DateTime<Utc>) -> Result<(), DomainError>;
        let pay: Action = |s, t| s.pay_period(t, BillingPeriod::Monthly);
        let resume: Action = |s, t| s.resume(t);
        let pause: Action = |s, t| s.pause(t);
        let cancel: Action = |s, t| s.cancel(t);
        let expire: Action = |s, t| s.expire(t);

        let running = active(now, BillingPeriod::Monthly);
        let cases: [(&subscription::Model, Action, &str, &str); 11] = [
            (&pending(), pause, "pending", "pause"),
            (&pending(), expire, "pending", "expire"),
            (&pending(), resume, "pending", "resume"),
            (&running, resume, "active", "resume"),
            (&paused, pause, "paused", "pause"),
            (&cancelled, pay, "cancelled", "pay for"),
            (&cancelled, resume, "cancelled", "resume"),
            (&cancelled, cancel, "cancelled", "cancel"),
            (&expired, pay, "expired", "pay for"),
            (&expired, resume, "expired", "resume"),
            (&expired, expire, "expired", "expire"),
        ];
        for (model, action, from, name) in cases {
            let mut copy = model.clone();
            let err = action(&mut copy, at(2026, 7, 1)).unwrap_err();
            assert_eq!(
                err,
                DomainError::InvalidTransition {
                    entity: Resource::Subscription,
                    from,
                    action: name
                }
            );
            assert_eq!(&copy, model, "{from} {name} changed the model");
        }
        // The remaining forbidden actions on final states.
        for model in [&cancelled, &expired] {
            for action in [pause, cancel, expire, pay, resume] {
                let mut copy = model.clone();
                assert!(action(&mut copy, now).is_err());
                assert_eq!(&copy, model);
            }
        }
    }

    #[test]
    fn a_failed_date_computation_leaves_the_model_unchanged() {
        let mut sub = pending();
        let before = sub.clone();
        assert_eq!(
            sub.pay_period(DateTime::<Utc>::MAX_UTC, BillingPeriod::Monthly),
            Err(DomainError::DateOutOfRange)
        );
        assert_eq!(sub, before);
    }

    #[test]
    fn validity_and_days_remaining_around_the_expiry() {
        let sub = active(at(2026, 4, 1), BillingPeriod::Monthly);
        let end = at(2026, 5, 1);
        assert!(sub.is_valid(end - TimeDelta::nanoseconds(1)));
        assert!(!sub.is_valid(end));
        assert_eq!(sub.days_remaining(end - TimeDelta::nanoseconds(1)), Some(1));
        assert_eq!(sub.days_remaining(end), Some(0));
        assert_eq!(sub.days_remaining(end + TimeDelta::days(3)), Some(0));
        assert_eq!(sub.days_remaining(end - TimeDelta::days(2)), Some(2));
        assert_eq!(
            sub.days_remaining(end - TimeDelta::days(2) - TimeDelta::seconds(1)),
            Some(3)
        );
        assert!(!pending().is_valid(at(2026, 4, 1)));
        assert_eq!(pending().days_remaining(at(2026, 4, 1)), Some(0));
    }

    #[test]
    fn rounding_up_days() {
        assert_eq!(days_rounded_up(TimeDelta::zero()), 0);
        assert_eq!(days_rounded_up(TimeDelta::seconds(-5)), 0);
        assert_eq!(days_rounded_up(TimeDelta::nanoseconds(1)), 1);
        assert_eq!(days_rounded_up(TimeDelta::days(1)), 1);
        assert_eq!(
            days_rounded_up(TimeDelta::days(1) + TimeDelta::nanoseconds(1)),
            2
        );
        assert_eq!(days_rounded_up(TimeDelta::MAX), u32::MAX);
    }
}
