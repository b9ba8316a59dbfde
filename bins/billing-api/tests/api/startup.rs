//! Start-up (migrations, seeding, several instances at once) and graceful
//! shutdown of the in-process application.

use std::time::Duration;

use billing_api::{Application, StartupError};
use billing_domain::PageRequest;
use billing_repository::{Currencies, DatabaseSettings};
use billing_test_support::{Backend, TestDatabase, test_on_each_backend};

use crate::helpers::{TestOptions, spawn_app, test_settings};

async fn start_migrates_and_seeds_one_default_currency(db: TestDatabase) -> anyhow::Result<()> {
    let options = TestOptions::default();
    let first = test_settings(&db, &options)?;
    let second = test_settings(&db, &options)?;
    match db.backend() {
        // Instances starting together on PostgreSQL: the advisory lock
        // serialises the migrations, the unique default index the seed.
        Backend::Postgres => {
            let (a, b) = tokio::join!(Application::build(first), Application::build(second));
            drop((a?, b?));
        }
        // SQLite serves one instance: a restart must not seed twice.
        Backend::Sqlite => {
            drop(Application::build(first).await?);
            drop(Application::build(second).await?);
        }
    }

    let database = billing_repository::connect(&DatabaseSettings::new(db.url())).await?;
    let currencies = Currencies::list(&database, PageRequest::new(1, 100)?).await?;
    assert_eq!(currencies.total, 1, "{currencies:?}");
    let default = Currencies::find_default(&database)
        .await?
        .expect("a default currency");
    assert_eq!(default.code, "EUR");
    assert_eq!(default.decimal_places, 2);
    assert!(default.is_active);
    Ok(())
}

async fn without_migrations_an_empty_database_stops_the_start(
    db: TestDatabase,
) -> anyhow::Result<()> {
    let mut settings = test_settings(&db, &TestOptions::default())?;
    settings.database.migrate_on_start = false;
    let error = Application::build(settings).await.unwrap_err();
    assert!(matches!(error, StartupError::Seed(_)), "{error:?}");
    assert!(error.to_string().contains("migrated"), "{error}");
    Ok(())
}

async fn graceful_shutdown_finishes_requests_in_flight(db: TestDatabase) -> anyhow::Result<()> {
    let mut app = spawn_app(db).await?;
    let slow = {
        let client = app.api_client.clone();
        let url = app.url("/api/v1/test/slow?ms=1500");
        tokio::spawn(async move { client.get(url).send().await })
    };
    // Let the request reach the handler, then stop as SIGTERM would.
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::time::timeout(Duration::from_secs(10), app.stop_gracefully()).await??;

    let response = slow.await??;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().await?["slept_ms"],
        1500
    );
    // The listener is closed: new connections are refused.
    let after = app.client.get(app.url("/health/live")).send().await;
    assert!(after.is_err(), "{after:?}");
    Ok(())
}

test_on_each_backend!(
    start_migrates_and_seeds_one_default_currency,
    without_migrations_an_empty_database_stops_the_start,
    graceful_shutdown_finishes_requests_in_flight
);
