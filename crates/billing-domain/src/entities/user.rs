//! `user`: an account that subscribes to plans and receives invoices.

use std::fmt;

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{UserRole, UserStatus};

/// A PHC-format password hash (argon2id).
///
/// It has no `Serialize` implementation and its `Debug` output is redacted, so
/// the hash cannot leave the process through a response body or a log line.
#[derive(Clone, PartialEq, Eq, DeriveValueType)]
pub struct PasswordHash(pub String);

impl PasswordHash {
    /// A value that no password matches (not a PHC string): what a user
    /// decoded from a serialised copy carries, since the hash is never
    /// serialised.
    #[must_use]
    pub fn unusable() -> Self {
        Self(String::from("!"))
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// A user account. `email` is unique and stored lower-case.
///
/// Serialised without its password hash; decoded, it carries
/// [`PasswordHash::unusable`].
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "user")]
pub struct Model {
    /// Identity.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Login and contact address, lower-case, unique.
    #[sea_orm(unique, indexed)]
    pub email: String,
    /// The password hash; never serialised.
    #[serde(skip, default = "PasswordHash::unusable")]
    pub password_hash: PasswordHash,
    /// Where the account stands.
    #[sea_orm(indexed)]
    pub status: UserStatus,
    /// What the account may do.
    pub role: UserRole,
    /// When the row was created.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
    /// Optimistic-lock version, starts at 1.
    pub version: i32,
}

/// Relations of `user`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The personal details (at most one row).
    #[sea_orm(has_one = "super::user_details::Entity")]
    UserDetails,
    /// Support cases.
    #[sea_orm(has_many = "super::user_case::Entity")]
    UserCase,
    /// Subscriptions.
    #[sea_orm(has_many = "super::subscription::Entity")]
    Subscription,
    /// Invoices.
    #[sea_orm(has_many = "super::user_invoice::Entity")]
    UserInvoice,
}

impl Related<super::user_details::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserDetails.def()
    }
}

impl Related<super::user_case::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserCase.def()
    }
}

impl Related<super::subscription::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Subscription.def()
    }
}

impl Related<super::user_invoice::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserInvoice.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
