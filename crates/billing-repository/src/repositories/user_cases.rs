//! [`UserCases`]: support cases, listed per user.

use billing_domain::PageRequest;
use billing_domain::entities::user_case;
use billing_domain::enums::CaseStatus;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::database::Executor;
use crate::error::RepositoryError;
use crate::repository::{Page, Repository, paginate};

/// The repository of `user_case`.
pub type UserCases = Repository<user_case::Entity>;

impl Repository<user_case::Entity> {
    /// One page of a user's cases, optionally only those with `status`,
    /// oldest first.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or
    /// [`RepositoryError::Database`].
    pub async fn by_user<X: Executor>(
        exec: &X,
        user_id: i64,
        status: Option<CaseStatus>,
        page: PageRequest,
    ) -> Result<Page<user_case::Model>, RepositoryError> {
        let mut select = user_case::Entity::find().filter(user_case::Column::UserId.eq(user_id));
        if let Some(status) = status {
            select = select.filter(user_case::Column::Status.eq(status));
        }
        paginate(exec, select.order_by_asc(user_case::Column::Id), page).await
    }
}
