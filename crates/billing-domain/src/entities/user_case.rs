//! `user_case`: a support case opened by or for a user.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::CaseStatus;

/// A support case.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "user_case")]
pub struct Model {
    /// Identity.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The user the case is about.
    #[sea_orm(indexed)]
    pub user_id: i64,
    /// One-line summary.
    pub subject: String,
    /// Full text.
    pub description: String,
    /// Where the case stands.
    #[sea_orm(indexed)]
    pub status: CaseStatus,
    /// When the row was created.
    pub created_at: DateTimeUtc,
    /// When the row last changed.
    pub updated_at: DateTimeUtc,
    /// Optimistic-lock version, starts at 1.
    pub version: i32,
}

/// Relations of `user_case`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The user the case is about.
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
