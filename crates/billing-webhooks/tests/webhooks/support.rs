//! The harness: a migrated database and a coordination backend per test,
//! a small catalogue, and `webhook_test!`, which runs a body on both
//! deployments.

use std::str::FromStr;

use billing_concurrency::{Coordination, RedisSettings};
use billing_domain::enums::BillingPeriod;
use billing_repository::{DatabaseSettings, connect};
use billing_service::{Billing, BillingSettings, NewCurrency, NewPlan, NewUser};
use billing_test_support::{Backend, TestDatabase, redis_url, unique_suffix};
use rust_decimal::Decimal;

/// One deployment under test.
pub struct Harness {
    pub billing: Billing,
    pub _db: TestDatabase,
}

impl Harness {
    pub async fn embedded() -> anyhow::Result<Self> {
        let db = TestDatabase::create(Backend::Sqlite)
            .await?
            .expect("SQLite is always there");
        Self::on(db, Coordination::embedded()).await
    }

    pub async fn production() -> anyhow::Result<Option<Self>> {
        let Some(db) = TestDatabase::create(Backend::Postgres).await? else {
            return Ok(None);
        };
        let coordination = match redis_url() {
            Some(url) => {
                let settings = RedisSettings::new(url)
                    .with_key_prefix(format!("billing-test-{}", unique_suffix()));
                Coordination::redis(settings).await?
            }
            None => Coordination::embedded(),
        };
        Ok(Some(Self::on(db, coordination).await?))
    }

    async fn on(db: TestDatabase, coordination: Coordination) -> anyhow::Result<Self> {
        let mut settings = DatabaseSettings::new(db.url());
        settings.max_connections = 12;
        settings.min_connections = 0;
        let database = connect(&settings).await?;
        billing_migration::up_locked(database.connection()).await?;
        let billing = Billing::new(database, coordination, BillingSettings::default());
        Ok(Self { billing, _db: db })
    }
}

macro_rules! webhook_test {
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
pub(crate) use webhook_test;

/// EUR, a monthly plan at 10 EUR and a user; returns (user id, plan id).
pub async fn seed(billing: &Billing) -> anyhow::Result<(i64, i64)> {
    billing
        .create_currency(NewCurrency {
            code: "EUR".into(),
            name: "Euro".into(),
            symbol: None,
            exchange_rate: Decimal::ONE,
            decimal_places: None,
            is_default: Some(true),
            is_active: None,
        })
        .await?;
    let plan = billing
        .create_plan(NewPlan {
            name: "Pro".into(),
            slug: "pro".into(),
            description: None,
            price: Decimal::from_str("10.00")?,
            currency: "EUR".into(),
            billing_period: BillingPeriod::Monthly,
            features: None,
            is_active: None,
            sort_order: None,
            prices: None,
        })
        .await?;
    let user = billing
        .register_user(NewUser {
            email: "ada@example.com".into(),
            password: "correct horse battery".into(),
            role: None,
        })
        .await?;
    Ok((user.id, plan.id))
}
