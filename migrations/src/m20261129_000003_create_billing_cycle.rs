//! The records of the billing cycle: `subscription_renewal` (at most one
//! renewal invoice per subscription and period, enforced by a unique index)
//! and `dunning_attempt` (at most one row per invoice and attempt number),
//! and the index the cycle's due-subscription query walks.

use billing_domain::enums::DunningOutcome;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ActiveEnum;

use crate::schema::{id, string_null, timestamp};

/// Creates the two cycle tables and the `(status, expires_at)` index of
/// `subscription`; `down` drops them.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_subscription_renewal(manager).await?;
        create_dunning_attempt(manager).await?;
        create_due_subscription_index(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_subscription_status_expires_at")
                    .table(Subscription::Table)
                    .to_owned(),
            )
            .await?;
        for table in [
            DunningAttempt::Table.into_iden(),
            SubscriptionRenewal::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().take())
                .await?;
        }
        Ok(())
    }
}

/// Creates `subscription_renewal`: one renewal invoice per subscription and
/// period, one renewal per invoice.
async fn create_subscription_renewal(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(SubscriptionRenewal::Table)
                .col(id(SubscriptionRenewal::Id))
                .col(
                    ColumnDef::new(SubscriptionRenewal::SubscriptionId)
                        .big_integer()
                        .not_null(),
                )
                .col(timestamp(SubscriptionRenewal::PeriodStart))
                .col(
                    ColumnDef::new(SubscriptionRenewal::InvoiceId)
                        .big_integer()
                        .not_null(),
                )
                .col(timestamp(SubscriptionRenewal::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_subscription_renewal_subscription_id")
                        .from(
                            SubscriptionRenewal::Table,
                            SubscriptionRenewal::SubscriptionId,
                        )
                        .to(Subscription::Table, Subscription::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_subscription_renewal_invoice_id")
                        .from(SubscriptionRenewal::Table, SubscriptionRenewal::InvoiceId)
                        .to(UserInvoice::Table, UserInvoice::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("uq_subscription_renewal_period")
                .table(SubscriptionRenewal::Table)
                .col(SubscriptionRenewal::SubscriptionId)
                .col(SubscriptionRenewal::PeriodStart)
                .unique()
                .take(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("uq_subscription_renewal_invoice_id")
                .table(SubscriptionRenewal::Table)
                .col(SubscriptionRenewal::InvoiceId)
                .unique()
                .take(),
        )
        .await
}

/// Creates `dunning_attempt`: one row per invoice and attempt number.
async fn create_dunning_attempt(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let outcomes: Vec<String> = DunningOutcome::values();
    manager
        .create_table(
            Table::create()
                .table(DunningAttempt::Table)
                .col(id(DunningAttempt::Id))
                .col(
                    ColumnDef::new(DunningAttempt::InvoiceId)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(DunningAttempt::Attempt).integer().not_null())
                .col(
                    ColumnDef::new(DunningAttempt::Outcome)
                        .string_len(16)
                        .not_null(),
                )
                .col(string_null(DunningAttempt::Detail, 255))
                .col(timestamp(DunningAttempt::AttemptedAt))
                .check((
                    Alias::new("ck_dunning_attempt_outcome"),
                    Expr::col(DunningAttempt::Outcome).is_in(outcomes),
                ))
                .check((
                    Alias::new("ck_dunning_attempt_attempt_positive"),
                    Expr::col(DunningAttempt::Attempt).gte(1),
                ))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_dunning_attempt_invoice_id")
                        .from(DunningAttempt::Table, DunningAttempt::InvoiceId)
                        .to(UserInvoice::Table, UserInvoice::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
    manager
        .create_index(
            Index::create()
                .name("uq_dunning_attempt_invoice_attempt")
                .table(DunningAttempt::Table)
                .col(DunningAttempt::InvoiceId)
                .col(DunningAttempt::Attempt)
                .unique()
                .take(),
        )
        .await
}

/// The `(status, expires_at, id)` index of `subscription` the cycle's
/// due-subscription query walks.
async fn create_due_subscription_index(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_index(
            Index::create()
                .name("idx_subscription_status_expires_at")
                .table(Subscription::Table)
                .col(Subscription::Status)
                .col(Subscription::ExpiresAt)
                .col(Subscription::Id)
                .take(),
        )
        .await
}

/// The columns of `subscription_renewal`.
#[derive(DeriveIden)]
enum SubscriptionRenewal {
    Table,
    Id,
    SubscriptionId,
    PeriodStart,
    InvoiceId,
    CreatedAt,
}

/// The columns of `dunning_attempt`.
#[derive(DeriveIden)]
enum DunningAttempt {
    Table,
    Id,
    InvoiceId,
    Attempt,
    Outcome,
    Detail,
    AttemptedAt,
}

/// The columns of `subscription` this migration names.
#[derive(DeriveIden)]
enum Subscription {
    Table,
    Id,
    Status,
    ExpiresAt,
}

/// The columns of `user_invoice` this migration names.
#[derive(DeriveIden)]
enum UserInvoice {
    Table,
    Id,
}
