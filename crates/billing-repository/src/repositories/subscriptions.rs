//! [`Subscriptions`]: subscriptions by user, by status, and those expiring
//! in a time window.

use billing_domain::PageRequest;
use billing_domain::entities::subscription;
use billing_domain::enums::SubscriptionStatus;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::database::Executor;
use crate::error::RepositoryError;
use crate::repository::{Page, Repository, fetch_all, paginate};

/// The repository of `subscription`.
pub type Subscriptions = Repository<subscription::Entity>;

impl Repository<subscription::Entity> {
    /// One page of a user's subscriptions, oldest first.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or
    /// [`RepositoryError::Database`].
    pub async fn by_user<X: Executor>(
        exec: &X,
        user_id: i64,
        page: PageRequest,
    ) -> Result<Page<subscription::Model>, RepositoryError> {
        paginate(
            exec,
            subscription::Entity::find()
                .filter(subscription::Column::UserId.eq(user_id))
                .order_by_asc(subscription::Column::Id),
            page,
        )
        .await
    }

    /// The user's subscriptions with status `active`, oldest first.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn active_for_user<X: Executor>(
        exec: &X,
        user_id: i64,
    ) -> Result<Vec<subscription::Model>, RepositoryError> {
        fetch_all(
            exec,
            subscription::Entity::find()
                .filter(subscription::Column::UserId.eq(user_id))
                .filter(subscription::Column::Status.eq(SubscriptionStatus::Active))
                .order_by_asc(subscription::Column::Id),
        )
        .await
    }

    /// Active subscriptions whose `expires_at` lies in `[from, to)`, soonest
    /// first (for expiry jobs and reminders).
    ///
    /// # Errors
    /// As [`Self::active_for_user`].
    pub async fn expiring_between<X: Executor>(
        exec: &X,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<subscription::Model>, RepositoryError> {
        fetch_all(
            exec,
            subscription::Entity::find()
                .filter(subscription::Column::Status.eq(SubscriptionStatus::Active))
                .filter(subscription::Column::ExpiresAt.gte(from))
                .filter(subscription::Column::ExpiresAt.lt(to))
                .order_by_asc(subscription::Column::ExpiresAt)
                .order_by_asc(subscription::Column::Id),
        )
        .await
    }

    /// One page of subscriptions with `status`, oldest first.
    ///
    /// # Errors
    /// As [`Self::by_user`].
    pub async fn by_status<X: Executor>(
        exec: &X,
        status: SubscriptionStatus,
        page: PageRequest,
    ) -> Result<Page<subscription::Model>, RepositoryError> {
        paginate(
            exec,
            subscription::Entity::find()
                .filter(subscription::Column::Status.eq(status))
                .order_by_asc(subscription::Column::Id),
            page,
        )
        .await
    }
}
