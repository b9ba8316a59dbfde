//! [`UserDetailsRepository`]: the personal data of a user (at most one row
//! per user).

use billing_domain::entities::user_details;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::database::Executor;
use crate::error::RepositoryError;
use crate::repository::{Repository, fetch_one};

/// The repository of `user_details`.
pub type UserDetailsRepository = Repository<user_details::Entity>;

impl Repository<user_details::Entity> {
    /// The details of a user, if recorded.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn find_by_user<X: Executor>(
        exec: &X,
        user_id: i64,
    ) -> Result<Option<user_details::Model>, RepositoryError> {
        fetch_one(
            exec,
            user_details::Entity::find().filter(user_details::Column::UserId.eq(user_id)),
        )
        .await
    }
}
