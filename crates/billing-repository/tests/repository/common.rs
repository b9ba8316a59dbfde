//! Shared fixtures: a migrated database per test and minimal valid rows.

use std::collections::BTreeMap;
use std::time::Duration;

use billing_domain::entities::{
    currency, subscription, tarif_plan, tax, tax_rate, user, user_invoice,
};
use billing_domain::enums::{
    BillingPeriod, InvoiceStatus, SubscriptionStatus, UserRole, UserStatus,
};
use billing_domain::{Numeric, PasswordHash, PlanPrices};
use billing_repository::{
    Backend, Currencies, Database, DatabaseSettings, Invoices, Plans, Subscriptions, Taxes, Users,
    connect,
};
use billing_test_support::TestDatabase;
use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use sea_orm::ActiveValue::Set;

/// Pool settings for tests: no connections kept, a bounded pool, a generous
/// acquire timeout (tests run in parallel on two cores).
pub fn test_settings(db: &TestDatabase, max_connections: u32) -> DatabaseSettings {
    let mut settings = DatabaseSettings::new(db.url());
    settings.min_connections = 0;
    settings.max_connections = max_connections;
    settings.acquire_timeout = Duration::from_secs(20);
    settings
}

/// Connects to `db` and applies the schema.
pub async fn setup(db: &TestDatabase) -> anyhow::Result<Database> {
    setup_with(db, 10).await
}

/// Connects to `db` with at most `max_connections` and applies the schema.
pub async fn setup_with(db: &TestDatabase, max_connections: u32) -> anyhow::Result<Database> {
    let database = connect(&test_settings(db, max_connections)).await?;
    billing_migration::up_locked(database.connection()).await?;
    Ok(database)
}

/// Which backend a database is, as the repository sees it.
pub fn is_sqlite(db: &Database) -> bool {
    db.backend() == Backend::Sqlite
}

/// An instant with whole seconds.
pub fn instant(year: i32, month: u32, day: u32, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, month, day, h, m, s).unwrap()
}

/// A decimal from text, exactly.
pub fn dec(text: &str) -> Numeric {
    Numeric(Decimal::from_str_exact(text).unwrap())
}

pub fn new_user(email: &str) -> user::ActiveModel {
    user::ActiveModel {
        email: Set(email.to_owned()),
        password_hash: Set(PasswordHash(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        )),
        status: Set(UserStatus::Pending),
        role: Set(UserRole::User),
        ..Default::default()
    }
}

pub async fn insert_user(db: &Database, email: &str) -> anyhow::Result<user::Model> {
    Ok(Users::insert(db, new_user(email)).await?)
}

pub fn new_currency(code: &str, is_default: bool) -> currency::ActiveModel {
    currency::ActiveModel {
        code: Set(code.to_owned()),
        name: Set(format!("Currency {code}")),
        symbol: Set(None),
        exchange_rate: Set(dec("1.00000000")),
        decimal_places: Set(2),
        is_default: Set(is_default),
        is_active: Set(true),
        ..Default::default()
    }
}

pub async fn insert_currency(
    db: &Database,
    code: &str,
    is_default: bool,
) -> anyhow::Result<currency::Model> {
    Ok(Currencies::insert(db, new_currency(code, is_default)).await?)
}

pub fn new_plan(slug: &str, currency: &str, sort_order: i32) -> tarif_plan::ActiveModel {
    tarif_plan::ActiveModel {
        name: Set(format!("Plan {slug}")),
        slug: Set(slug.to_owned()),
        description: Set(None),
        price: Set(dec("19.9900")),
        currency: Set(currency.to_owned()),
        billing_period: Set(BillingPeriod::Monthly),
        features: Set(serde_json::json!({"seats": 5})),
        is_active: Set(true),
        sort_order: Set(sort_order),
        prices: Set(PlanPrices(BTreeMap::new())),
        ..Default::default()
    }
}

pub async fn insert_plan(
    db: &Database,
    slug: &str,
    currency: &str,
    sort_order: i32,
) -> anyhow::Result<tarif_plan::Model> {
    Ok(Plans::insert(db, new_plan(slug, currency, sort_order)).await?)
}

pub fn new_subscription(
    user_id: i64,
    plan_id: i64,
    status: SubscriptionStatus,
    expires_at: Option<DateTime<Utc>>,
) -> subscription::ActiveModel {
    subscription::ActiveModel {
        user_id: Set(user_id),
        tarif_plan_id: Set(plan_id),
        status: Set(status),
        started_at: Set(None),
        expires_at: Set(expires_at),
        cancelled_at: Set(None),
        paused_at: Set(None),
        ..Default::default()
    }
}

pub async fn insert_subscription(
    db: &Database,
    user_id: i64,
    plan_id: i64,
    status: SubscriptionStatus,
    expires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<subscription::Model> {
    Ok(Subscriptions::insert(db, new_subscription(user_id, plan_id, status, expires_at)).await?)
}

/// An invoice without a number (see `Invoices::insert_numbered`).
pub fn new_invoice(
    user_id: i64,
    plan_id: i64,
    currency: &str,
    invoiced_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
) -> user_invoice::ActiveModel {
    user_invoice::ActiveModel {
        user_id: Set(user_id),
        tarif_plan_id: Set(plan_id),
        subscription_id: Set(None),
        amount: Set(dec("23.7881")),
        net_amount: Set(dec("19.9900")),
        tax_amount: Set(dec("3.7981")),
        currency: Set(currency.to_owned()),
        status: Set(InvoiceStatus::Pending),
        payment_method: Set(None),
        payment_reference: Set(None),
        invoiced_at: Set(invoiced_at),
        paid_at: Set(None),
        expires_at: Set(expires_at),
        ..Default::default()
    }
}

/// An invoice with an explicit number, inserted outside any counter.
pub async fn insert_invoice_numbered(
    db: &Database,
    user_id: i64,
    plan_id: i64,
    number: &str,
    expires_at: Option<DateTime<Utc>>,
) -> anyhow::Result<user_invoice::Model> {
    let mut invoice = new_invoice(
        user_id,
        plan_id,
        "EUR",
        instant(2030, 1, 1, 0, 0, 0),
        expires_at,
    );
    invoice.invoice_number = Set(number.to_owned());
    Ok(Invoices::insert(db, invoice).await?)
}

pub fn new_tax(code: &str, rate: &str) -> tax::ActiveModel {
    tax::ActiveModel {
        name: Set(format!("Tax {code}")),
        code: Set(code.to_owned()),
        description: Set(None),
        rate: Set(dec(rate)),
        country_code: Set("DE".to_owned()),
        region_code: Set(None),
        is_active: Set(true),
        is_inclusive: Set(false),
        ..Default::default()
    }
}

pub async fn insert_tax(db: &Database, code: &str, rate: &str) -> anyhow::Result<tax::Model> {
    Ok(Taxes::insert(db, new_tax(code, rate)).await?)
}

pub fn new_tax_rate(
    tax_id: i64,
    rate: &str,
    valid_from: DateTime<Utc>,
    valid_to: Option<DateTime<Utc>>,
) -> tax_rate::ActiveModel {
    tax_rate::ActiveModel {
        tax_id: Set(tax_id),
        rate: Set(dec(rate)),
        valid_from: Set(valid_from),
        valid_to: Set(valid_to),
        ..Default::default()
    }
}

/// A user, the default currency EUR and one plan: what invoices and
/// subscriptions need.
pub struct Basics {
    pub user: user::Model,
    pub plan: tarif_plan::Model,
}

pub async fn basics(db: &Database) -> anyhow::Result<Basics> {
    insert_currency(db, "EUR", true).await?;
    let user = insert_user(db, "basics@example.com").await?;
    let plan = insert_plan(db, "basic", "EUR", 1).await?;
    Ok(Basics { user, plan })
}
