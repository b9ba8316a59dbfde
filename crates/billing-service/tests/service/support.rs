//! The test harness: a migrated database and a coordination backend per
//! test, seed data, and the `service_test!` macro that runs a test body on
//! both deployments.

use std::str::FromStr;

use billing_concurrency::{Coordination, RedisSettings};
use billing_domain::entities::{currency, tarif_plan, tax, user};
use billing_domain::enums::BillingPeriod;
use billing_repository::{DatabaseSettings, connect};
use billing_service::{Billing, BillingSettings, NewCurrency, NewPlan, NewTax, NewUser};
use billing_test_support::{Backend, TestDatabase, redis_url, unique_suffix};
use rust_decimal::Decimal;

/// One deployment under test.
pub struct Harness {
    pub billing: Billing,
    /// Kept alive for the test; dropped (and the database with it) after.
    pub _db: TestDatabase,
}

impl Harness {
    /// SQLite file + in-process coordination.
    pub async fn embedded() -> anyhow::Result<Self> {
        let db = TestDatabase::create(Backend::Sqlite)
            .await?
            .expect("SQLite is always there");
        Self::on(db, Coordination::embedded()).await
    }

    /// PostgreSQL + Redis (Redis only when `TEST_REDIS_URL` is set, else in
    /// process); `None` when `TEST_DATABASE_URL` is unset.
    pub async fn production() -> anyhow::Result<Option<Self>> {
        let Some(db) = TestDatabase::create(Backend::Postgres).await? else {
            return Ok(None);
        };
        let coordination = match redis_url() {
            Some(url) => {
                let settings = RedisSettings::new(url)
                    .with_key_prefix(format!("billing-test-{}", unique_suffix()));
                let coordination = Coordination::redis(settings).await?;
                coordination.ping().await?;
                coordination
            }
            None => Coordination::embedded(),
        };
        Ok(Some(Self::on(db, coordination).await?))
    }

    async fn on(db: TestDatabase, coordination: Coordination) -> anyhow::Result<Self> {
        let mut settings = DatabaseSettings::new(db.url());
        settings.max_connections = 16;
        settings.min_connections = 0;
        let database = connect(&settings).await?;
        billing_migration::up_locked(database.connection()).await?;
        let billing = Billing::new(database, coordination, BillingSettings::default());
        Ok(Self { billing, _db: db })
    }
}

/// Declares `mod name { fn embedded(); fn production(); }` for async test
/// bodies taking a [`Harness`].
macro_rules! service_test {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn embedded() -> anyhow::Result<()> {
                super::$name(crate::support::Harness::embedded().await?).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn production() -> anyhow::Result<()> {
                match crate::support::Harness::production().await? {
                    Some(harness) => super::$name(harness).await,
                    None => {
                        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL variant not run");
                        Ok(())
                    }
                }
            }
        }
    )+};
}
pub(crate) use service_test;

pub fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("test decimal")
}

/// The usual catalogue: EUR (default), USD at 1.08, JPY at 160, a 19 % VAT
/// and a monthly plan `pro` at 10.00 EUR.
pub struct Seed {
    pub eur: currency::Model,
    pub usd: currency::Model,
    pub vat: tax::Model,
    pub plan: tarif_plan::Model,
    pub user: user::Model,
}

pub async fn seed(billing: &Billing) -> anyhow::Result<Seed> {
    let eur = billing
        .create_currency(NewCurrency {
            code: "EUR".into(),
            name: "Euro".into(),
            symbol: Some("€".into()),
            exchange_rate: Decimal::ONE,
            decimal_places: None,
            is_default: Some(true),
            is_active: None,
        })
        .await?;
    let usd = billing
        .create_currency(NewCurrency {
            code: "usd".into(),
            name: "US Dollar".into(),
            symbol: Some("$".into()),
            exchange_rate: dec("1.08"),
            decimal_places: None,
            is_default: None,
            is_active: None,
        })
        .await?;
    billing
        .create_currency(NewCurrency {
            code: "JPY".into(),
            name: "Yen".into(),
            symbol: Some("¥".into()),
            exchange_rate: dec("160"),
            decimal_places: None,
            is_default: None,
            is_active: None,
        })
        .await?;
    let vat = billing
        .create_tax(NewTax {
            name: "German VAT".into(),
            code: "DE_VAT".into(),
            description: None,
            rate: dec("19.00"),
            country_code: "de".into(),
            region_code: None,
            is_inclusive: None,
            is_active: None,
        })
        .await?;
    let plan = billing
        .create_plan(plan("pro", "10.00", BillingPeriod::Monthly))
        .await?;
    let user = billing
        .register_user(NewUser {
            email: "Ada@Example.com".into(),
            password: "correct horse battery".into(),
            role: None,
        })
        .await?;
    Ok(Seed {
        eur,
        usd,
        vat,
        plan,
        user,
    })
}

pub fn plan(slug: &str, price: &str, period: BillingPeriod) -> NewPlan {
    NewPlan {
        name: slug.to_uppercase(),
        slug: slug.into(),
        description: None,
        price: dec(price),
        currency: "EUR".into(),
        billing_period: period,
        features: None,
        is_active: None,
        sort_order: None,
        prices: None,
    }
}
