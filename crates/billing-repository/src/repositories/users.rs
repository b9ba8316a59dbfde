//! [`Users`]: accounts, found by e-mail (case-insensitive) and listed by
//! status and role.

use billing_domain::PageRequest;
use billing_domain::entities::user;
use billing_domain::enums::{UserRole, UserStatus};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::database::Executor;
use crate::error::RepositoryError;
use crate::repository::{Page, Repository, fetch_one, paginate};

/// The repository of `user`.
pub type Users = Repository<user::Entity>;

/// The stored form of an e-mail address: trimmed and lower-case (the schema
/// refuses upper-case addresses).
#[must_use]
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl Repository<user::Entity> {
    /// The user with this e-mail address, compared case-insensitively (the
    /// address is normalized with [`normalize_email`], as stored).
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] or [`RepositoryError::Database`].
    pub async fn find_by_email<X: Executor>(
        exec: &X,
        email: &str,
    ) -> Result<Option<user::Model>, RepositoryError> {
        fetch_one(
            exec,
            user::Entity::find().filter(user::Column::Email.eq(normalize_email(email))),
        )
        .await
    }

    /// One page of users, optionally only those with `status` and/or
    /// `role`, ordered by id.
    ///
    /// # Errors
    /// As [`Self::find_by_email`].
    pub async fn list<X: Executor>(
        exec: &X,
        status: Option<UserStatus>,
        role: Option<UserRole>,
        page: PageRequest,
    ) -> Result<Page<user::Model>, RepositoryError> {
        let mut select = user::Entity::find();
        if let Some(status) = status {
            select = select.filter(user::Column::Status.eq(status));
        }
        if let Some(role) = role {
            select = select.filter(user::Column::Role.eq(role));
        }
        paginate(exec, select.order_by_asc(user::Column::Id), page).await
    }
}
