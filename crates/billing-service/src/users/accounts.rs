//! User accounts: registration, reads, changes and deletion.

use billing_domain::entities::user;
use billing_domain::enums::{UserRole, UserStatus};
use billing_domain::values::EmailAddress;
use billing_repository::{Page, Users};

use super::password::hash_password;
use crate::events::{append_events, event_of};
use crate::{Billing, BillingError, PageRequest, now};

/// A user to register.
#[derive(Clone)]
pub struct NewUser {
    /// E-mail address; stored lower-case, unique.
    pub email: String,
    /// Password, 8 to 1024 characters; only its argon2id hash is kept.
    pub password: String,
    /// Role; `user` when absent.
    pub role: Option<UserRole>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .field("role", &self.role)
            .finish()
    }
}

/// Changes to a user; absent fields stay as they are.
#[derive(Clone, Debug, Default)]
pub struct UserChanges {
    /// New status (`deleted` is final).
    pub status: Option<UserStatus>,
    /// New role.
    pub role: Option<UserRole>,
    /// New e-mail address.
    pub email: Option<String>,
}

impl Billing {
    /// Registers a user (status `pending`) with an argon2id password hash.
    ///
    /// # Errors
    /// [`BillingError::Validation`] for a malformed e-mail or a password of
    /// the wrong length; [`BillingError::AlreadyExists`] when the e-mail is
    /// taken (case-insensitively).
    pub async fn register_user(&self, new: NewUser) -> Result<user::Model, BillingError> {
        let email = EmailAddress::parse(&new.email)?;
        let password_hash = hash_password(self.hasher(), new.password).await?;
        let user = user::Model {
            id: 0,
            email: email.into_string(),
            password_hash,
            status: UserStatus::Pending,
            role: new.role.unwrap_or(UserRole::User),
            created_at: now(),
            updated_at: now(),
            version: 1,
        };
        self.recording_transaction(move |tx| {
            let user = user.clone();
            Box::pin(async move {
                let user = Users::insert(tx, user).await?;
                append_events(tx, [event_of(None, &user)?]).await?;
                Ok(Some(user))
            })
        })
        .await
    }

    /// The user `id`.
    ///
    /// # Errors
    /// [`BillingError::NotFound`].
    pub async fn user(&self, id: i64) -> Result<user::Model, BillingError> {
        Ok(Users::get(self.db(), id).await?)
    }

    /// Users, optionally filtered by status and role, by id.
    ///
    /// # Errors
    /// [`BillingError::Unavailable`] when the database cannot be read.
    pub async fn list_users(
        &self,
        status: Option<UserStatus>,
        role: Option<UserRole>,
        page: PageRequest,
    ) -> Result<Page<user::Model>, BillingError> {
        Ok(Users::list(self.db(), status, role, page).await?)
    }

    /// Changes a user's status, role or e-mail. A change to `deleted`
    /// erases the user as [`delete_user`](Self::delete_user) does, in one
    /// transaction. A deleted user cannot be changed.
    ///
    /// # Errors
    /// [`BillingError::NotFound`], [`BillingError::VersionMismatch`],
    /// [`BillingError::Validation`] (malformed e-mail),
    /// [`BillingError::InvalidTransition`] (the user is deleted),
    /// [`BillingError::AlreadyExists`] (e-mail taken).
    pub async fn update_user(
        &self,
        id: i64,
        changes: UserChanges,
        expected_version: Option<i32>,
    ) -> Result<user::Model, BillingError> {
        let email = changes
            .email
            .as_deref()
            .map(EmailAddress::parse)
            .transpose()?;
        let apply = move |user: &mut user::Model| -> Result<(), BillingError> {
            user.ensure_changeable("change")?;
            if let Some(role) = changes.role {
                user.role = role;
            }
            if let Some(email) = &email {
                user.email = email.to_string();
            }
            if let Some(status) = changes.status {
                // Last: a change to `deleted` erases the e-mail just set.
                user.change_status(status)?;
            }
            Ok(())
        };
        if changes.status == Some(UserStatus::Deleted) {
            return self.erase_user(id, expected_version, apply).await;
        }
        self.update_versioned::<user::Entity, _>(id, expected_version, apply)
            .await
    }

    /// Deletes a user: status `deleted`, e-mail and password replaced by
    /// placeholders, personal details erased, and the subject and text of
    /// the user's support cases erased (the cases closed), in one
    /// transaction. The row stays, so the user's invoices keep their
    /// customer. Deleting a deleted user writes nothing.
    ///
    /// # Errors
    /// [`BillingError::NotFound`], [`BillingError::VersionMismatch`].
    pub async fn delete_user(
        &self,
        id: i64,
        expected_version: Option<i32>,
    ) -> Result<(), BillingError> {
        self.erase_user(id, expected_version, |user: &mut user::Model| {
            user.erase();
            Ok(())
        })
        .await
        .map(drop)
    }
}
