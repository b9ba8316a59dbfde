//! `user_details`: the personal data of a user, kept apart from `user` so it
//! can be erased on its own while invoices stay.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Personal data of one user (at most one row per user).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "user_details")]
pub struct Model {
    /// Identity.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The user these details belong to (unique).
    #[sea_orm(unique)]
    pub user_id: i64,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Telephone number.
    pub phone: Option<String>,
    /// Company name.
    pub company: Option<String>,
    /// VAT or other tax identification number.
    pub tax_id: Option<String>,
    /// Street address.
    pub address_line1: Option<String>,
    /// Second address line.
    pub address_line2: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country_code: Option<String>,
    /// When the row was created.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
    /// Optimistic-lock version, starts at 1.
    pub version: i32,
}

/// Relations of `user_details`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The owning user.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
