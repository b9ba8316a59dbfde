//! The initial billing schema: the nine tables of the original service, their
//! indexes and foreign keys, and the per-year invoice counter.

use sea_orm_migration::prelude::*;

mod tables;

/// Creates the billing schema; `down` drops it.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One table at a time, in dependency order.
        tables::create_user(manager).await?;
        tables::create_user_details(manager).await?;
        tables::create_user_case(manager).await?;
        tables::create_currency(manager).await?;
        tables::create_tax(manager).await?;
        tables::create_tax_rate(manager).await?;
        tables::create_tarif_plan(manager).await?;
        tables::create_subscription(manager).await?;
        tables::create_user_invoice(manager).await?;
        tables::create_invoice_sequence(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents, so no foreign key is left dangling.
        for table in [
            InvoiceSequence::Table.into_iden(),
            UserInvoice::Table.into_iden(),
            Subscription::Table.into_iden(),
            TarifPlan::Table.into_iden(),
            TaxRate::Table.into_iden(),
            Tax::Table.into_iden(),
            Currency::Table.into_iden(),
            UserCase::Table.into_iden(),
            UserDetails::Table.into_iden(),
            User::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().take())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum User {
    Table,
    Id,
    Email,
    PasswordHash,
    Status,
    Role,
}

#[derive(DeriveIden)]
enum UserDetails {
    Table,
    Id,
    UserId,
    FirstName,
    LastName,
    Phone,
    Company,
    TaxId,
    AddressLine1,
    AddressLine2,
    City,
    PostalCode,
    CountryCode,
}

#[derive(DeriveIden)]
enum UserCase {
    Table,
    Id,
    UserId,
    Subject,
    Description,
    Status,
}

#[derive(DeriveIden)]
enum Currency {
    Table,
    Id,
    Code,
    Name,
    Symbol,
    ExchangeRate,
    DecimalPlaces,
    IsDefault,
    IsActive,
}

#[derive(DeriveIden)]
enum Tax {
    Table,
    Id,
    Name,
    Code,
    Description,
    Rate,
    CountryCode,
    RegionCode,
    IsActive,
    IsInclusive,
}

#[derive(DeriveIden)]
enum TaxRate {
    Table,
    Id,
    TaxId,
    Rate,
    ValidFrom,
    ValidTo,
}

#[derive(DeriveIden)]
enum TarifPlan {
    Table,
    Id,
    Name,
    Slug,
    Description,
    Price,
    Currency,
    BillingPeriod,
    Features,
    IsActive,
    SortOrder,
    Prices,
}

#[derive(DeriveIden)]
enum Subscription {
    Table,
    Id,
    UserId,
    TarifPlanId,
    Status,
    StartedAt,
    ExpiresAt,
    CancelledAt,
    PausedAt,
}

#[derive(DeriveIden)]
enum UserInvoice {
    Table,
    Id,
    UserId,
    TarifPlanId,
    SubscriptionId,
    InvoiceNumber,
    Amount,
    NetAmount,
    TaxAmount,
    Currency,
    Status,
    PaymentMethod,
    PaymentReference,
    InvoicedAt,
    PaidAt,
    ExpiresAt,
    FencingToken,
}

#[derive(DeriveIden)]
enum InvoiceSequence {
    Table,
    Year,
    LastNumber,
    UpdatedAt,
}
