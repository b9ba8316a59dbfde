//! The `idempotency_record` table: the outcome of each request that ran
//! under an idempotency key, written in the transaction of its effect.

use sea_orm_migration::prelude::*;

use crate::schema::{string, timestamp};

/// Creates `idempotency_record`; `down` drops it.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyRecord::Table)
                    .col(string(IdempotencyRecord::Scope, 255))
                    .col(string(IdempotencyRecord::Key, 255))
                    .col(string(IdempotencyRecord::Fingerprint, 64))
                    .col(string(IdempotencyRecord::OutcomeKind, 32))
                    .col(ColumnDef::new(IdempotencyRecord::Outcome).text().not_null())
                    .col(
                        ColumnDef::new(IdempotencyRecord::UserId)
                            .big_integer()
                            .null(),
                    )
                    .col(timestamp(IdempotencyRecord::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyRecord::Scope)
                            .col(IdempotencyRecord::Key),
                    )
                    .take(),
            )
            .await?;
        for (name, column) in [
            ("idx_idempotency_record_user_id", IdempotencyRecord::UserId),
            (
                "idx_idempotency_record_created_at",
                IdempotencyRecord::CreatedAt,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(IdempotencyRecord::Table)
                        .col(column)
                        .take(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(IdempotencyRecord::Table)
                    .if_exists()
                    .take(),
            )
            .await
    }
}

/// The columns of `idempotency_record`.
#[derive(DeriveIden)]
enum IdempotencyRecord {
    Table,
    Scope,
    Key,
    Fingerprint,
    OutcomeKind,
    Outcome,
    UserId,
    CreatedAt,
}
