//! The generic repository: insert, find, pages, save, delete; exact money
//! and timestamps that read back equal on both backends.

use billing_domain::{PageRequest, Resource};
use std::collections::BTreeMap;

use billing_domain::PlanPrices;
use billing_domain::enums::{UserRole, UserStatus};
use billing_repository::{Currencies, Page, Plans, RepositoryError, TaxRates, Users};
use billing_test_support::TestDatabase;
use chrono::{Duration, Utc};
use sea_orm::ActiveValue::Set;

use crate::common::{
    basics, dec, insert_currency, insert_tax, insert_user, new_plan, new_tax_rate, setup,
};

async fn insert_find_save_delete(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    let before = billing_repository::now();
    let user = insert_user(&db, "ada@example.com").await?;
    assert!(user.id > 0);
    assert_eq!(user.version, 1);
    assert_eq!(user.created_at, user.updated_at);
    assert!(user.created_at >= before);

    // What insert returned is exactly what a read returns.
    assert_eq!(Users::find_by_id(&db, user.id).await?, Some(user.clone()));
    assert_eq!(Users::get(&db, user.id).await?, user);
    assert!(Users::find_by_id(&db, user.id + 1000).await?.is_none());
    assert!(matches!(
        Users::get(&db, user.id + 1000).await,
        Err(RepositoryError::NotFound {
            entity: Resource::User,
            ..
        })
    ));

    let mut changed = user.clone();
    changed.status = UserStatus::Active;
    changed.role = UserRole::Admin;
    // Fields the caller must not control are not taken from the model.
    changed.version = 99;
    changed.created_at = user.created_at - Duration::days(1);
    let saved = Users::save(&db, &changed, user.version).await?;
    assert_eq!(saved.version, 2);
    assert_eq!(saved.status, UserStatus::Active);
    assert_eq!(saved.role, UserRole::Admin);
    assert_eq!(saved.created_at, user.created_at);
    assert!(saved.updated_at >= user.updated_at);
    assert_eq!(Users::get(&db, user.id).await?, saved);

    // Saving a missing row: NotFound, whatever version is expected.
    let mut ghost = saved.clone();
    ghost.id += 1000;
    assert!(matches!(
        Users::save(&db, &ghost, 1).await,
        Err(RepositoryError::NotFound { entity: Resource::User, id }) if id == ghost.id
    ));

    // Delete needs the current version.
    let err = Users::delete(&db, user.id, 1)
        .await
        .expect_err("stale delete");
    assert!(
        matches!(
            err,
            RepositoryError::ConcurrentModification {
                expected: 1,
                actual: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(Users::find_by_id(&db, user.id).await?.is_some());
    Users::delete(&db, user.id, 2).await?;
    assert!(Users::find_by_id(&db, user.id).await?.is_none());
    assert!(matches!(
        Users::delete(&db, user.id, 2).await,
        Err(RepositoryError::NotFound { .. })
    ));
    Ok(())
}
billing_test_support::test_on_each_backend!(insert_find_save_delete);

async fn exact_money_round_trip(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    basics(&db).await?;
    let mut plan = new_plan("whale", "EUR", 1);
    plan.price = Set(dec("1234567890123.4567"));
    plan.prices = Set(PlanPrices(BTreeMap::from([
        ("USD".to_owned(), dec("1234567890123.4567")),
        ("JPY".to_owned(), dec("0.0001")),
    ])));
    let stored = Plans::insert(&db, plan).await?;
    assert_eq!(stored.price, dec("1234567890123.4567"));
    assert_eq!(stored.price.to_string(), "1234567890123.4567");
    let read = Plans::get(&db, stored.id).await?;
    assert_eq!(read.price.to_string(), "1234567890123.4567");
    assert_eq!(read.prices.0["USD"].to_string(), "1234567890123.4567");
    assert_eq!(read, stored);

    let mut changed = read.clone();
    changed.price = dec("999999999999999.9999");
    let saved = Plans::save(&db, &changed, read.version).await?;
    assert_eq!(saved.price.to_string(), "999999999999999.9999");
    assert_eq!(
        Plans::get(&db, saved.id).await?.price.to_string(),
        "999999999999999.9999"
    );

    let mut currency = Currencies::find_by_code(&db, "eur")
        .await?
        .expect("EUR exists");
    currency.exchange_rate = dec("12345678901.12345678");
    let saved = Currencies::save(&db, &currency, currency.version).await?;
    assert_eq!(saved.exchange_rate.to_string(), "12345678901.12345678");
    assert_eq!(
        Currencies::get(&db, saved.id)
            .await?
            .exchange_rate
            .to_string(),
        "12345678901.12345678"
    );

    let tax = insert_tax(&db, "DE_VAT", "19.0000").await?;
    let rate = TaxRates::insert(
        &db,
        new_tax_rate(tax.id, "7.1234", Utc::now() - Duration::days(1), None),
    )
    .await?;
    assert_eq!(
        TaxRates::get(&db, rate.id).await?.rate.to_string(),
        "7.1234"
    );
    Ok(())
}
billing_test_support::test_on_each_backend!(exact_money_round_trip);

async fn timestamps_read_back_equal(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    let b = basics(&db).await?;
    // Nanoseconds are cut to microseconds on the way in, on both backends.
    let expires = Utc::now() + Duration::nanoseconds(123_456_789);
    let sub = crate::common::insert_subscription(
        &db,
        b.user.id,
        b.plan.id,
        billing_domain::enums::SubscriptionStatus::Active,
        Some(expires),
    )
    .await?;
    let stored = sub.expires_at.expect("set");
    assert_eq!(stored.timestamp_subsec_nanos() % 1_000, 0);
    assert!((expires - stored) < Duration::microseconds(1));
    let read = billing_repository::Subscriptions::get(&db, sub.id).await?;
    assert_eq!(read, sub);

    let mut changed = read.clone();
    changed.started_at = Some(Utc::now() + Duration::nanoseconds(1));
    let saved = billing_repository::Subscriptions::save(&db, &changed, read.version).await?;
    assert_eq!(
        billing_repository::Subscriptions::get(&db, sub.id).await?,
        saved
    );
    Ok(())
}
billing_test_support::test_on_each_backend!(timestamps_read_back_equal);

async fn pages(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    for code in ["AAA", "BBB", "CCC", "DDD", "EEE"] {
        insert_currency(&db, code, false).await?;
    }
    let page = Currencies::find_all(&db, PageRequest::new(2, 2)?).await?;
    assert_eq!((page.page, page.per_page, page.total), (2, 2, 5));
    let codes: Vec<_> = page.items.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(codes, ["CCC", "DDD"]);
    let last = Currencies::find_all(&db, PageRequest::new(3, 2)?).await?;
    assert_eq!(last.items.len(), 1);
    let beyond = Currencies::find_all(&db, PageRequest::new(9, 2)?).await?;
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total, 5);
    let all = Currencies::list(&db, PageRequest::new(1, 100)?).await?;
    assert_eq!(all.items.len(), 5);
    // A page out of bounds cannot even be asked for.
    for (page, per_page) in [(0, 20), (1, 0), (1, 101)] {
        assert!(PageRequest::new(page, per_page).is_err());
    }
    let first = Currencies::find_all(&db, PageRequest::new(1, 1)?)
        .await?
        .map(|c| c.code);
    assert_eq!(
        first,
        Page {
            items: vec!["AAA".to_owned()],
            page: 1,
            per_page: 1,
            total: 5
        }
    );
    Ok(())
}
billing_test_support::test_on_each_backend!(pages);
