//! The outbox and the webhooks: `event` (one row per change of a user, a
//! subscription or an invoice, written in the change's transaction, given a
//! `position` after commit), `webhook_endpoint`, `webhook_delivery` (one
//! event owed to one endpoint) and `webhook_attempt` (one request of a
//! delivery).

use billing_domain::enums::{DeliveryStatus, EndpointStatus};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ActiveEnum;

use crate::schema::{enum_string, id, string, timestamp, timestamp_null};

/// Creates the four tables and their indexes; `down` drops them.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_event(manager).await?;
        create_endpoint(manager).await?;
        create_delivery(manager).await?;
        create_attempt(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebhookAttempt::Table.into_iden(),
            WebhookDelivery::Table.into_iden(),
            WebhookEndpoint::Table.into_iden(),
            Event::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().take())
                .await?;
        }
        Ok(())
    }
}

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    columns: Vec<DynIden>,
    unique: bool,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(column);
    }
    if unique {
        index.unique();
    }
    manager.create_index(index.take()).await
}

async fn create_event(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(Event::Table)
                .col(id(Event::Id))
                .col(ColumnDef::new(Event::Position).big_integer().null())
                .col(string(Event::EventType, 40))
                .col(enum_string(Event::ResourceKind))
                .col(ColumnDef::new(Event::ResourceId).big_integer().not_null())
                .col(ColumnDef::new(Event::ResourceVersion).integer().not_null())
                .col(ColumnDef::new(Event::Data).text().not_null())
                .col(timestamp(Event::OccurredAt))
                .take(),
        )
        .await?;
    // NULL positions (not yet published) are not unique; the sequencer
    // finds them through this index too.
    index(
        manager,
        "uq_event_position",
        Event::Table,
        vec![Event::Position.into_iden()],
        true,
    )
    .await?;
    index(
        manager,
        "idx_event_resource",
        Event::Table,
        vec![
            Event::ResourceKind.into_iden(),
            Event::ResourceId.into_iden(),
            Event::Id.into_iden(),
        ],
        false,
    )
    .await
}

async fn create_endpoint(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let statuses: Vec<String> = EndpointStatus::values();
    manager
        .create_table(
            Table::create()
                .table(WebhookEndpoint::Table)
                .col(id(WebhookEndpoint::Id))
                .col(string(WebhookEndpoint::Url, 2048))
                .col(
                    ColumnDef::new(WebhookEndpoint::EventTypes)
                        .text()
                        .not_null(),
                )
                .col(string(WebhookEndpoint::Secret, 128))
                .col(enum_string(WebhookEndpoint::Status))
                .col(timestamp(WebhookEndpoint::CreatedAt))
                .col(timestamp(WebhookEndpoint::UpdatedAt))
                .check((
                    Alias::new("ck_webhook_endpoint_status"),
                    Expr::col(WebhookEndpoint::Status).is_in(statuses),
                ))
                .take(),
        )
        .await
}

async fn create_delivery(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let statuses: Vec<String> = DeliveryStatus::values();
    manager
        .create_table(
            Table::create()
                .table(WebhookDelivery::Table)
                .col(id(WebhookDelivery::Id))
                .col(
                    ColumnDef::new(WebhookDelivery::EndpointId)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(WebhookDelivery::EventId)
                        .big_integer()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(WebhookDelivery::EventPosition)
                        .big_integer()
                        .not_null(),
                )
                .col(string(WebhookDelivery::EventType, 40))
                .col(enum_string(WebhookDelivery::ResourceKind))
                .col(
                    ColumnDef::new(WebhookDelivery::ResourceId)
                        .big_integer()
                        .not_null(),
                )
                .col(enum_string(WebhookDelivery::Status))
                .col(
                    ColumnDef::new(WebhookDelivery::Attempts)
                        .integer()
                        .not_null()
                        .default(0),
                )
                .col(timestamp_null(WebhookDelivery::NextAttemptAt))
                .col(
                    ColumnDef::new(WebhookDelivery::LastStatusCode)
                        .integer()
                        .null(),
                )
                .col(timestamp(WebhookDelivery::CreatedAt))
                .col(timestamp(WebhookDelivery::UpdatedAt))
                .check((
                    Alias::new("ck_webhook_delivery_status"),
                    Expr::col(WebhookDelivery::Status).is_in(statuses),
                ))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_webhook_delivery_endpoint_id")
                        .from(WebhookDelivery::Table, WebhookDelivery::EndpointId)
                        .to(WebhookEndpoint::Table, WebhookEndpoint::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_webhook_delivery_event_id")
                        .from(WebhookDelivery::Table, WebhookDelivery::EventId)
                        .to(Event::Table, Event::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
    create_delivery_indexes(manager).await
}

/// The indexes of `webhook_delivery`: one delivery per endpoint and event,
/// the due ones, and a resource's earlier pending ones.
async fn create_delivery_indexes(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    index(
        manager,
        "uq_webhook_delivery_endpoint_event",
        WebhookDelivery::Table,
        vec![
            WebhookDelivery::EndpointId.into_iden(),
            WebhookDelivery::EventId.into_iden(),
        ],
        true,
    )
    .await?;
    // The due deliveries, and the earlier pending ones of a resource.
    index(
        manager,
        "idx_webhook_delivery_status_next_attempt",
        WebhookDelivery::Table,
        vec![
            WebhookDelivery::Status.into_iden(),
            WebhookDelivery::NextAttemptAt.into_iden(),
        ],
        false,
    )
    .await?;
    index(
        manager,
        "idx_webhook_delivery_resource",
        WebhookDelivery::Table,
        vec![
            WebhookDelivery::EndpointId.into_iden(),
            WebhookDelivery::ResourceKind.into_iden(),
            WebhookDelivery::ResourceId.into_iden(),
            WebhookDelivery::EventPosition.into_iden(),
        ],
        false,
    )
    .await
}

async fn create_attempt(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(WebhookAttempt::Table)
                .col(id(WebhookAttempt::Id))
                .col(
                    ColumnDef::new(WebhookAttempt::DeliveryId)
                        .big_integer()
                        .not_null(),
                )
                .col(timestamp(WebhookAttempt::AttemptedAt))
                .col(ColumnDef::new(WebhookAttempt::StatusCode).integer().null())
                .col(ColumnDef::new(WebhookAttempt::Error).string_len(512).null())
                .col(
                    ColumnDef::new(WebhookAttempt::DurationMs)
                        .big_integer()
                        .not_null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_webhook_attempt_delivery_id")
                        .from(WebhookAttempt::Table, WebhookAttempt::DeliveryId)
                        .to(WebhookDelivery::Table, WebhookDelivery::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
    index(
        manager,
        "idx_webhook_attempt_delivery_id",
        WebhookAttempt::Table,
        vec![WebhookAttempt::DeliveryId.into_iden()],
        false,
    )
    .await
}

/// The columns of `event` (`EventType` is the column `event_type`).
#[derive(DeriveIden)]
#[allow(clippy::enum_variant_names)]
enum Event {
    Table,
    Id,
    Position,
    EventType,
    ResourceKind,
    ResourceId,
    ResourceVersion,
    Data,
    OccurredAt,
}

/// The columns of `webhook_endpoint`.
#[derive(DeriveIden)]
enum WebhookEndpoint {
    Table,
    Id,
    Url,
    EventTypes,
    Secret,
    Status,
    CreatedAt,
    UpdatedAt,
}

/// The columns of `webhook_delivery`.
#[derive(DeriveIden)]
enum WebhookDelivery {
    Table,
    Id,
    EndpointId,
    EventId,
    EventPosition,
    EventType,
    ResourceKind,
    ResourceId,
    Status,
    Attempts,
    NextAttemptAt,
    LastStatusCode,
    CreatedAt,
    UpdatedAt,
}

/// The columns of `webhook_attempt`.
#[derive(DeriveIden)]
enum WebhookAttempt {
    Table,
    Id,
    DeliveryId,
    AttemptedAt,
    StatusCode,
    Error,
    DurationMs,
}
