//! User status, erasure and the read-only rule of deleted users, and the
//! erasure of a support case.

use crate::Resource;
use crate::entities::user::PasswordHash;
use crate::entities::{user, user_case};
use crate::enums::{CaseStatus, UserStatus};
use crate::error::DomainError;

/// What an erased e-mail address, password hash and case text become.
pub const ERASED_TEXT: &str = "[erased]";

/// The password hash of an erased user: not a PHC string, so no password
/// verifies against it.
pub const ERASED_PASSWORD_HASH: &str = "!deleted";

impl UserStatus {
    /// The stored string (`"deleted"`).
    ///
    /// ```
    /// use billing_domain::enums::UserStatus;
    /// assert_eq!(UserStatus::Suspended.as_str(), "suspended");
    /// ```
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }

    /// Whether no transition leaves this status (`deleted`).
    #[must_use]
    pub const fn is_final(self) -> bool {
        match self {
            Self::Pending | Self::Active | Self::Suspended => false,
            Self::Deleted => true,
        }
    }

    /// The transition table: a live status may change to any status
    /// (`deleted` by erasure, see [`user::Model::erase`]); nothing leaves
    /// `deleted`, not even `deleted` itself.
    ///
    /// ```
    /// use billing_domain::enums::UserStatus::*;
    /// assert!(Pending.can_transition_to(Active));
    /// assert!(Suspended.can_transition_to(Deleted));
    /// assert!(!Deleted.can_transition_to(Active));
    /// assert!(!Deleted.can_transition_to(Deleted));
    /// ```
    #[must_use]
    pub const fn can_transition_to(self, next: Self) -> bool {
        match self {
            Self::Pending | Self::Active | Self::Suspended => match next {
                Self::Pending | Self::Active | Self::Suspended | Self::Deleted => true,
            },
            Self::Deleted => false,
        }
    }
}

impl user::Model {
    /// Refuses `action` (`"change"`, `"subscribe"` …) on a deleted user: a
    /// deleted user is read-only for good.
    ///
    /// # Errors
    /// [`DomainError::InvalidTransition`] when the user is deleted.
    pub fn ensure_changeable(&self, action: &'static str) -> Result<(), DomainError> {
        match self.status {
            UserStatus::Pending | UserStatus::Active | UserStatus::Suspended => Ok(()),
            UserStatus::Deleted => Err(DomainError::InvalidTransition {
                entity: Resource::User,
                from: self.status.as_str(),
                action,
            }),
        }
    }

    /// Changes the status. A change to `deleted` erases the row's personal
    /// data ([`erase`](Self::erase)); the caller must erase the user's
    /// other rows with it.
    ///
    /// # Errors
    /// [`DomainError::InvalidTransition`] from `deleted` (the model is
    /// unchanged).
    pub fn change_status(&mut self, to: UserStatus) -> Result<(), DomainError> {
        if !self.status.can_transition_to(to) {
            return Err(DomainError::InvalidTransition {
                entity: Resource::User,
                from: self.status.as_str(),
                action: "change the status of",
            });
        }
        match to {
            UserStatus::Deleted => self.erase(),
            UserStatus::Pending | UserStatus::Active | UserStatus::Suspended => self.status = to,
        }
        Ok(())
    }

    /// Erases the personal data of the row: status `deleted`, the e-mail
    /// replaced by a unique placeholder (`deleted-user-<id>@deleted.invalid`,
    /// which frees the address), the password hash by one no password
    /// matches. Idempotent: erasing an erased user changes nothing.
    pub fn erase(&mut self) {
        self.status = UserStatus::Deleted;
        self.email = format!("deleted-user-{}@deleted.invalid", self.id);
        self.password_hash = PasswordHash(ERASED_PASSWORD_HASH.to_owned());
    }
}

impl user_case::Model {
    /// Erases the free text of the case (subject and description, where
    /// customers write card numbers, phone numbers, addresses) and closes
    /// it: the case of an erased user stays for the record, unreadable and
    /// unchangeable. Idempotent.
    pub fn erase(&mut self) {
        ERASED_TEXT.clone_into(&mut self.subject);
        ERASED_TEXT.clone_into(&mut self.description);
        self.status = CaseStatus::Closed;
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use sea_orm::{ActiveEnum, Iterable};

    use super::*;

    fn user(status: UserStatus) -> user::Model {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        user::Model {
            id: 7,
            email: "grace@example.com".into(),
            password_hash: PasswordHash("$argon2id$v=19$…".into()),
            status,
            role: crate::enums::UserRole::User,
            created_at: at,
            updated_at: at,
            version: 3,
        }
    }

    #[test]
    fn as_str_matches_the_stored_strings() {
        for status in UserStatus::iter() {
            assert_eq!(status.as_str(), status.to_value());
        }
    }

    #[test]
    fn nothing_leaves_deleted() {
        for from in UserStatus::iter() {
            for to in UserStatus::iter() {
                assert_eq!(
                    from.can_transition_to(to),
                    from != UserStatus::Deleted,
                    "{from:?} -> {to:?}"
                );
            }
            let has_exit = UserStatus::iter().any(|to| from.can_transition_to(to));
            assert_eq!(from.is_final(), !has_exit);
        }
    }

    #[test]
    fn every_way_to_deleted_erases() {
        for from in [
            UserStatus::Pending,
            UserStatus::Active,
            UserStatus::Suspended,
        ] {
            let mut by_status = user(from);
            by_status.change_status(UserStatus::Deleted).unwrap();
            let mut erased = user(from);
            erased.erase();
            assert_eq!(by_status, erased);
            assert_eq!(erased.status, UserStatus::Deleted);
            assert_eq!(erased.email, "deleted-user-7@deleted.invalid");
            assert_eq!(erased.password_hash.0, ERASED_PASSWORD_HASH);
            assert_eq!(erased.version, 3, "the repository owns the version");
            let again = erased.clone();
            erased.erase();
            assert_eq!(erased, again, "erasure is idempotent");
        }
    }

    #[test]
    fn a_deleted_user_is_read_only() {
        let mut deleted = user(UserStatus::Active);
        deleted.erase();
        let before = deleted.clone();
        for to in UserStatus::iter() {
            assert_eq!(
                deleted.change_status(to),
                Err(DomainError::InvalidTransition {
                    entity: Resource::User,
                    from: "deleted",
                    action: "change the status of"
                })
            );
            assert_eq!(deleted, before);
        }
        assert!(deleted.ensure_changeable("change").is_err());
        assert!(
            user(UserStatus::Suspended)
                .ensure_changeable("change")
                .is_ok()
        );
    }
}
