//! The statements of the initial billing schema, one function per table
//! with its indexes, and the index and foreign-key builders they share.

use sea_orm_migration::prelude::*;

use super::{
    Currency, InvoiceSequence, Subscription, TarifPlan, Tax, TaxRate, User, UserCase, UserDetails,
    UserInvoice,
};
use crate::schema::{
    boolean, decimal, enum_string, id, money, string, string_null, timestamp, timestamp_null,
    with_bookkeeping,
};

/// Creates `user`, unique by email, and its status index.
pub(super) async fn create_user(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            with_bookkeeping(
                Table::create()
                    .table(User::Table)
                    .col(id(User::Id))
                    .col(
                        string(User::Email, 320)
                            .check(Expr::col(User::Email).eq(Func::lower(Expr::col(User::Email)))),
                    )
                    .col(string(User::PasswordHash, 255))
                    .col(enum_string(User::Status))
                    .col(enum_string(User::Role)),
            )
            .take(),
        )
        .await?;
    unique_index(manager, User::Table, "uq_user_email", User::Email).await?;
    plain_index(manager, User::Table, "idx_user_status", User::Status).await
}

/// Creates `user_details`, at most one row per user.
pub(super) async fn create_user_details(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            with_bookkeeping(
                Table::create()
                    .table(UserDetails::Table)
                    .col(id(UserDetails::Id))
                    .col(ColumnDef::new(UserDetails::UserId).big_integer().not_null())
                    .col(string_null(UserDetails::FirstName, 100))
                    .col(string_null(UserDetails::LastName, 100))
                    .col(string_null(UserDetails::Phone, 50))
                    .col(string_null(UserDetails::Company, 200))
                    .col(string_null(UserDetails::TaxId, 50))
                    .col(string_null(UserDetails::AddressLine1, 200))
                    .col(string_null(UserDetails::AddressLine2, 200))
                    .col(string_null(UserDetails::City, 100))
                    .col(string_null(UserDetails::PostalCode, 20))
                    .col(string_null(UserDetails::CountryCode, 2))
                    .foreign_key(&mut cascade_to_user(
                        "fk_user_details_user_id",
                        UserDetails::Table,
                        UserDetails::UserId,
                    )),
            )
            .take(),
        )
        .await?;
    unique_index(
        manager,
        UserDetails::Table,
        "uq_user_details_user_id",
        UserDetails::UserId,
    )
    .await
}

/// Creates `user_case` and its user and status indexes.
pub(super) async fn create_user_case(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            with_bookkeeping(
                Table::create()
                    .table(UserCase::Table)
                    .col(id(UserCase::Id))
                    .col(ColumnDef::new(UserCase::UserId).big_integer().not_null())
                    .col(string(UserCase::Subject, 200))
                    .col(ColumnDef::new(UserCase::Description).text().not_null())
                    .col(enum_string(UserCase::Status))
                    .foreign_key(&mut cascade_to_user(
                        "fk_user_case_user_id",
                        UserCase::Table,
                        UserCase::UserId,
                    )),
            )
            .take(),
        )
        .await?;
    plain_index(
        manager,
        UserCase::Table,
        "idx_user_case_user_id",
        UserCase::UserId,
    )
    .await?;
    plain_index(
        manager,
        UserCase::Table,
        "idx_user_case_status",
        UserCase::Status,
    )
    .await
}

/// Creates `currency`, unique by code, with at most one default.
pub(super) async fn create_currency(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    manager
        .create_table(
            with_bookkeeping(
                Table::create()
                    .table(Currency::Table)
                    .col(id(Currency::Id))
                    .col(string(Currency::Code, 3))
                    .col(string(Currency::Name, 100))
                    .col(string_null(Currency::Symbol, 8))
                    .col(decimal(backend, Currency::ExchangeRate, 19, 8))
                    .col(
                        ColumnDef::new(Currency::DecimalPlaces)
                            .small_integer()
                            .not_null()
                            .default(2),
                    )
                    .col(boolean(Currency::IsDefault, false))
                    .col(boolean(Currency::IsActive, true)),
            )
            .take(),
        )
        .await?;
    unique_index(manager, Currency::Table, "uq_currency_code", Currency::Code).await?;
    // At most one default currency: a unique index over the rows where
    // `is_default` holds (every such row has the same key, `true`).
    manager
        .create_index(
            Index::create()
                .name("uq_currency_single_default")
                .table(Currency::Table)
                .col(Currency::IsDefault)
                .unique()
                .and_where(Expr::col(Currency::IsDefault).eq(true))
                .take(),
        )
        .await
}

/// Creates `tax`, unique by code, and its country index.
pub(super) async fn create_tax(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    manager
        .create_table(
            with_bookkeeping(
                Table::create()
                    .table(Tax::Table)
                    .col(id(Tax::Id))
                    .col(string(Tax::Name, 100))
                    .col(string(Tax::Code, 50))
                    .col(ColumnDef::new(Tax::Description).text().null())
                    .col(decimal(backend, Tax::Rate, 9, 4))
                    .col(string(Tax::CountryCode, 2))
                    .col(string_null(Tax::RegionCode, 10))
                    .col(boolean(Tax::IsActive, true))
                    .col(boolean(Tax::IsInclusive, false)),
            )
            .take(),
        )
        .await?;
    unique_index(manager, Tax::Table, "uq_tax_code", Tax::Code).await?;
    plain_index(
        manager,
        Tax::Table,
        "idx_tax_country_code",
        Tax::CountryCode,
    )
    .await
}

/// Creates `tax_rate`, with at most one open rate per tax.
pub(super) async fn create_tax_rate(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    manager
        .create_table(
            with_bookkeeping(
                Table::create()
                    .table(TaxRate::Table)
                    .col(id(TaxRate::Id))
                    .col(ColumnDef::new(TaxRate::TaxId).big_integer().not_null())
                    .col(decimal(backend, TaxRate::Rate, 9, 4))
                    .col(timestamp(TaxRate::ValidFrom))
                    .col(timestamp_null(TaxRate::ValidTo))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tax_rate_tax_id")
                            .from(TaxRate::Table, TaxRate::TaxId)
                            .to(Tax::Table, Tax::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    ),
            )
            .take(),
        )
        .await?;
    plain_index(
        manager,
        TaxRate::Table,
        "idx_tax_rate_tax_id",
        TaxRate::TaxId,
    )
    .await?;
    // At most one open (current) rate per tax.
    manager
        .create_index(
            Index::create()
                .name("uq_tax_rate_single_open")
                .table(TaxRate::Table)
                .col(TaxRate::TaxId)
                .unique()
                .and_where(Expr::col(TaxRate::ValidTo).is_null())
                .take(),
        )
        .await
}

/// Creates `tarif_plan`, unique by slug, and its active index.
pub(super) async fn create_tarif_plan(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    manager
        .create_table(
            with_bookkeeping(
                Table::create()
                    .table(TarifPlan::Table)
                    .col(id(TarifPlan::Id))
                    .col(string(TarifPlan::Name, 100))
                    .col(string(TarifPlan::Slug, 100))
                    .col(ColumnDef::new(TarifPlan::Description).text().null())
                    .col(money(backend, TarifPlan::Price))
                    .col(string(TarifPlan::Currency, 3))
                    .col(enum_string(TarifPlan::BillingPeriod))
                    .col(ColumnDef::new(TarifPlan::Features).json_binary().not_null())
                    .col(boolean(TarifPlan::IsActive, true))
                    .col(
                        ColumnDef::new(TarifPlan::SortOrder)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(TarifPlan::Prices).json_binary().not_null())
                    .foreign_key(&mut restrict_to_currency(
                        "fk_tarif_plan_currency",
                        TarifPlan::Table,
                        TarifPlan::Currency,
                    )),
            )
            .take(),
        )
        .await?;
    unique_index(
        manager,
        TarifPlan::Table,
        "uq_tarif_plan_slug",
        TarifPlan::Slug,
    )
    .await?;
    plain_index(
        manager,
        TarifPlan::Table,
        "idx_tarif_plan_is_active",
        TarifPlan::IsActive,
    )
    .await
}

/// Creates `subscription` and its four lookup indexes.
pub(super) async fn create_subscription(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            with_bookkeeping(
                Table::create()
                    .table(Subscription::Table)
                    .col(id(Subscription::Id))
                    .col(
                        ColumnDef::new(Subscription::UserId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Subscription::TarifPlanId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(enum_string(Subscription::Status))
                    .col(timestamp_null(Subscription::StartedAt))
                    .col(timestamp_null(Subscription::ExpiresAt))
                    .col(timestamp_null(Subscription::CancelledAt))
                    .col(timestamp_null(Subscription::PausedAt))
                    .foreign_key(&mut cascade_to_user(
                        "fk_subscription_user_id",
                        Subscription::Table,
                        Subscription::UserId,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_subscription_tarif_plan_id")
                            .from(Subscription::Table, Subscription::TarifPlanId)
                            .to(TarifPlan::Table, TarifPlan::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    ),
            )
            .take(),
        )
        .await?;
    plain_index(
        manager,
        Subscription::Table,
        "idx_subscription_user_id",
        Subscription::UserId,
    )
    .await?;
    plain_index(
        manager,
        Subscription::Table,
        "idx_subscription_status",
        Subscription::Status,
    )
    .await?;
    plain_index(
        manager,
        Subscription::Table,
        "idx_subscription_expires_at",
        Subscription::ExpiresAt,
    )
    .await?;
    plain_index(
        manager,
        Subscription::Table,
        "idx_subscription_tarif_plan_id",
        Subscription::TarifPlanId,
    )
    .await
}

/// Creates `user_invoice`, unique by number, and its four lookup indexes.
pub(super) async fn create_user_invoice(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let backend = manager.get_database_backend();
    manager
        .create_table(
            with_bookkeeping(
                Table::create()
                    .table(UserInvoice::Table)
                    .col(id(UserInvoice::Id))
                    .col(ColumnDef::new(UserInvoice::UserId).big_integer().not_null())
                    .col(
                        ColumnDef::new(UserInvoice::TarifPlanId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(UserInvoice::SubscriptionId)
                            .big_integer()
                            .null(),
                    )
                    .col(string(UserInvoice::InvoiceNumber, 32))
                    .col(money(backend, UserInvoice::Amount))
                    .col(money(backend, UserInvoice::NetAmount))
                    .col(money(backend, UserInvoice::TaxAmount))
                    .col(string(UserInvoice::Currency, 3))
                    .col(enum_string(UserInvoice::Status))
                    .col(string_null(UserInvoice::PaymentMethod, 50))
                    .col(string_null(UserInvoice::PaymentReference, 255))
                    .col(timestamp(UserInvoice::InvoicedAt))
                    .col(timestamp_null(UserInvoice::PaidAt))
                    .col(timestamp_null(UserInvoice::ExpiresAt))
                    .col(
                        ColumnDef::new(UserInvoice::FencingToken)
                            .big_integer()
                            .null(),
                    )
                    .foreign_key(&mut cascade_to_user(
                        "fk_user_invoice_user_id",
                        UserInvoice::Table,
                        UserInvoice::UserId,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_invoice_tarif_plan_id")
                            .from(UserInvoice::Table, UserInvoice::TarifPlanId)
                            .to(TarifPlan::Table, TarifPlan::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_invoice_subscription_id")
                            .from(UserInvoice::Table, UserInvoice::SubscriptionId)
                            .to(Subscription::Table, Subscription::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(&mut restrict_to_currency(
                        "fk_user_invoice_currency",
                        UserInvoice::Table,
                        UserInvoice::Currency,
                    )),
            )
            .take(),
        )
        .await?;
    create_user_invoice_indexes(manager).await
}

/// The indexes of `user_invoice`: unique by number, and by user, status,
/// subscription and plan.
async fn create_user_invoice_indexes(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    unique_index(
        manager,
        UserInvoice::Table,
        "uq_user_invoice_invoice_number",
        UserInvoice::InvoiceNumber,
    )
    .await?;
    plain_index(
        manager,
        UserInvoice::Table,
        "idx_user_invoice_user_id",
        UserInvoice::UserId,
    )
    .await?;
    plain_index(
        manager,
        UserInvoice::Table,
        "idx_user_invoice_status",
        UserInvoice::Status,
    )
    .await?;
    plain_index(
        manager,
        UserInvoice::Table,
        "idx_user_invoice_subscription_id",
        UserInvoice::SubscriptionId,
    )
    .await?;
    plain_index(
        manager,
        UserInvoice::Table,
        "idx_user_invoice_tarif_plan_id",
        UserInvoice::TarifPlanId,
    )
    .await
}

/// Creates `invoice_sequence`, the per-year invoice counter.
pub(super) async fn create_invoice_sequence(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(InvoiceSequence::Table)
                .col(
                    ColumnDef::new(InvoiceSequence::Year)
                        .integer()
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(InvoiceSequence::LastNumber)
                        .big_integer()
                        .not_null()
                        .default(0)
                        .check(Expr::col(InvoiceSequence::LastNumber).gte(0)),
                )
                .col(timestamp(InvoiceSequence::UpdatedAt))
                .take(),
        )
        .await
}

async fn unique_index<T, C>(
    manager: &SchemaManager<'_>,
    table: T,
    name: &str,
    column: C,
) -> Result<(), DbErr>
where
    T: IntoIden,
    C: IntoIden,
{
    manager
        .create_index(
            Index::create()
                .name(name)
                .table(table)
                .col(column)
                .unique()
                .take(),
        )
        .await
}

async fn plain_index<T, C>(
    manager: &SchemaManager<'_>,
    table: T,
    name: &str,
    column: C,
) -> Result<(), DbErr>
where
    T: IntoIden,
    C: IntoIden,
{
    manager
        .create_index(Index::create().name(name).table(table).col(column).take())
        .await
}

fn cascade_to_user<T, C>(name: &str, table: T, column: C) -> ForeignKeyCreateStatement
where
    T: IntoIden,
    C: IntoIden,
{
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(User::Table, User::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .take()
}

fn restrict_to_currency<T, C>(name: &str, table: T, column: C) -> ForeignKeyCreateStatement
where
    T: IntoIden,
    C: IntoIden,
{
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(Currency::Table, Currency::Code)
        .on_delete(ForeignKeyAction::Restrict)
        .take()
}
