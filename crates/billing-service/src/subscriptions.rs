//! Subscriptions: subscribe, the lifecycle transitions, and expiring the
//! overdue ones in bulk.

use billing_domain::DomainError;
use billing_domain::entities::{subscription, user};
use billing_domain::enums::{SubscriptionStatus, UserStatus};
use billing_repository::{Page, Plans, Subscriptions, Users};
use chrono::{DateTime, Utc};

use crate::events::{append_events, event_of};
use crate::{Billing, BillingError, PageRequest, now};

/// A subscription to create (status `pending` until its first payment).
#[derive(Clone, Debug)]
pub struct NewSubscription {
    /// The subscriber.
    pub user_id: i64,
    /// The plan; it must be active.
    pub plan_id: i64,
}

/// A lifecycle transition of a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionAction {
    /// Resume a paused subscription (the paused time is given back). It
    /// neither starts a pending subscription nor renews an active one: only
    /// a paid invoice adds a period.
    Activate,
    /// Stop for a while; the paused time is added back on resume.
    Pause,
    /// End for good.
    Cancel,
    /// Mark as ran out.
    Expire,
}

impl SubscriptionAction {
    /// The action named in a URL (`activate`, `pause`, `cancel`, `expire`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "activate" => Some(Self::Activate),
            "pause" => Some(Self::Pause),
            "cancel" => Some(Self::Cancel),
            "expire" => Some(Self::Expire),
            _ => None,
        }
    }
}

impl Billing {
    /// Creates a pending subscription of user `user_id` to an active plan.
    ///
    /// # Errors
    /// [`BillingError::NotFound`] for an unknown user or plan;
    /// [`BillingError::Validation`] for an inactive plan or a user who is
    /// suspended or deleted.
    pub async fn subscribe(
        &self,
        new: NewSubscription,
    ) -> Result<subscription::Model, BillingError> {
        let user = Users::get(self.db(), new.user_id).await?;
        ensure_can_buy(&user)?;
        let plan = Plans::get(self.db(), new.plan_id).await?;
        if !plan.is_active {
            return Err(BillingError::invalid_transition(format!(
                "plan {} is not offered any more",
                plan.slug
            )));
        }
        let subscription = subscription::Model {
            id: 0,
            user_id: user.id,
            tarif_plan_id: plan.id,
            status: SubscriptionStatus::Pending,
            started_at: None,
            expires_at: None,
            cancelled_at: None,
            paused_at: None,
            created_at: now(),
            updated_at: now(),
            version: 1,
        };
        self.recording_transaction(move |tx| {
            let subscription = subscription.clone();
            Box::pin(async move {
                let subscription = Subscriptions::insert(tx, subscription).await?;
                append_events(tx, [event_of(None, &subscription)?]).await?;
                Ok(Some(subscription))
            })
        })
        .await
    }

    /// The subscription `id`.
    ///
    /// # Errors
    /// [`BillingError::NotFound`].
    pub async fn subscription(&self, id: i64) -> Result<subscription::Model, BillingError> {
        Ok(Subscriptions::get(self.db(), id).await?)
    }

    /// The subscriptions of user `user_id`, by id.
    ///
    /// # Errors
    /// [`BillingError::NotFound`] for an unknown user.
    pub async fn list_subscriptions(
        &self,
        user_id: i64,
        page: PageRequest,
    ) -> Result<Page<subscription::Model>, BillingError> {
        Users::get(self.db(), user_id).await?;
        Ok(Subscriptions::by_user(self.db(), user_id, page).await?)
    }

    /// Applies a lifecycle transition. None adds paid time: `Activate`
    /// only resumes a paused subscription.
    ///
    /// # Errors
    /// [`BillingError::NotFound`], [`BillingError::VersionMismatch`],
    /// [`BillingError::InvalidTransition`] (nothing is written).
    pub async fn transition_subscription(
        &self,
        id: i64,
        action: SubscriptionAction,
        expected_version: Option<i32>,
    ) -> Result<subscription::Model, BillingError> {
        let at = self.now();
        self.update_versioned::<subscription::Entity, _>(id, expected_version, |subscription| {
            match action {
                SubscriptionAction::Activate => {
                    subscription.resume(at).map_err(only_payment_adds_time)
                }
                SubscriptionAction::Pause => subscription.pause(at).map_err(BillingError::from),
                SubscriptionAction::Cancel => subscription.cancel(at).map_err(BillingError::from),
                SubscriptionAction::Expire => subscription.expire(at).map_err(BillingError::from),
            }
        })
        .await
    }

    /// Expires every active subscription whose `expires_at` is before `at`,
    /// one versioned save each (a subscription renewed meanwhile is left
    /// alone). Returns how many were expired.
    ///
    /// # Errors
    /// [`BillingError::Unavailable`] and other database failures; the
    /// subscriptions expired before the failure stay expired.
    pub async fn expire_overdue_subscriptions(
        &self,
        at: DateTime<Utc>,
    ) -> Result<u64, BillingError> {
        let overdue = Subscriptions::expiring_between(self.db(), DateTime::UNIX_EPOCH, at).await?;
        let mut expired = 0;
        for candidate in overdue {
            let result = self
                .update_versioned::<subscription::Entity, _>(candidate.id, None, |subscription| {
                    // Re-checked on every re-read: a renewal may have moved it.
                    let still_overdue = subscription.status == SubscriptionStatus::Active
                        && subscription.expires_at.is_some_and(|expires| expires < at);
                    if !still_overdue {
                        return Err(BillingError::invalid_transition("no longer overdue"));
                    }
                    subscription.expire(at).map_err(BillingError::from)
                })
                .await;
            match result {
                Ok(_) => expired += 1,
                Err(BillingError::InvalidTransition { .. } | BillingError::NotFound { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(expired)
    }
}

/// Suspended and deleted users can neither subscribe nor be invoiced: both
/// are refused as a state that does not allow it (`InvalidTransition`).
pub(crate) fn ensure_can_buy(user: &user::Model) -> Result<(), BillingError> {
    match user.status {
        UserStatus::Pending | UserStatus::Active => Ok(()),
        UserStatus::Suspended => Err(BillingError::invalid_transition(format!(
            "user {} is suspended and cannot buy",
            user.id
        ))),
        UserStatus::Deleted => Ok(user.ensure_changeable("bill")?),
    }
}

/// The refusal of a manual `activate`, which only resumes a paused
/// subscription, with what to do instead.
fn only_payment_adds_time(error: DomainError) -> BillingError {
    let refused = matches!(error, DomainError::InvalidTransition { .. });
    let mut error = BillingError::from(error);
    if let (true, BillingError::InvalidTransition { message, .. }) = (refused, &mut error) {
        message.push_str(
            ": only a paid invoice starts or renews a subscription; activate resumes a paused one",
        );
    }
    error
}
