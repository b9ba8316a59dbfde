//! What the database itself enforces after `up`: a single default currency,
//! exact decimals, lower-case e-mails and cascading deletes.

use std::str::FromStr;

use billing_domain::entities::{
    currency, subscription, tarif_plan, tax, tax_rate, user, user_details,
};
use billing_domain::enums::{BillingPeriod, SubscriptionStatus, UserRole, UserStatus};
use billing_domain::{Numeric, PasswordHash, PlanPrices};
use billing_migration::up_locked;
use billing_test_support::{TestDatabase, test_on_each_backend};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm_migration::DbErr;
use sea_orm_migration::sea_orm::{
    ActiveModelTrait, DatabaseConnection, EntityTrait, ModelTrait, Set,
};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("now is representable")
}

fn dec(s: &str) -> Numeric {
    Numeric(Decimal::from_str(s).expect("test decimal"))
}

async fn insert_currency(
    db: &DatabaseConnection,
    code: &str,
    rate: &str,
    is_default: bool,
) -> Result<currency::Model, DbErr> {
    currency::ActiveModel {
        code: Set(code.to_owned()),
        name: Set(code.to_owned()),
        symbol: Set(None),
        exchange_rate: Set(dec(rate)),
        decimal_places: Set(2),
        is_default: Set(is_default),
        is_active: Set(true),
        created_at: Set(now()),
        updated_at: Set(now()),
        version: Set(1),
        ..Default::default()
    }
    .insert(db)
    .await
}

async fn insert_user(db: &DatabaseConnection, email: &str) -> Result<user::Model, DbErr> {
    user::ActiveModel {
        email: Set(email.to_owned()),
        password_hash: Set(PasswordHash("$argon2id$test".to_owned())),
        status: Set(UserStatus::Pending),
        role: Set(UserRole::User),
        created_at: Set(now()),
        updated_at: Set(now()),
        version: Set(1),
        ..Default::default()
    }
    .insert(db)
    .await
}

async fn a_second_default_currency_is_refused(db: TestDatabase) -> anyhow::Result<()> {
    let conn = db.connect().await?;
    up_locked(&conn).await?;
    insert_currency(&conn, "EUR", "1", true).await?;
    insert_currency(&conn, "USD", "1.08", false).await?;
    insert_currency(&conn, "GBP", "0.85", false).await?;
    let refused = insert_currency(&conn, "JPY", "160", true).await;
    assert!(refused.is_err(), "a second default currency was stored");
    let defaults = currency::Entity::find()
        .all(&conn)
        .await?
        .into_iter()
        .filter(|c| c.is_default)
        .map(|c| c.code)
        .collect::<Vec<_>>();
    assert_eq!(defaults, ["EUR"]);
    Ok(())
}

async fn decimals_round_trip_exactly(db: TestDatabase) -> anyhow::Result<()> {
    let conn = db.connect().await?;
    up_locked(&conn).await?;
    let eur = insert_currency(&conn, "EUR", "0.12345678", true).await?;
    assert_eq!(eur.exchange_rate, dec("0.12345678"));

    let price = dec("1234567890123.4567");
    let plan = tarif_plan::ActiveModel {
        name: Set("Big".into()),
        slug: Set("big".into()),
        description: Set(None),
        price: Set(price),
        currency: Set("EUR".into()),
        billing_period: Set(BillingPeriod::Monthly),
        features: Set(serde_json::json!({"seats": 5})),
        is_active: Set(true),
        sort_order: Set(1),
        prices: Set(PlanPrices(
            [("USD".to_owned(), dec("999999999999999.9999"))]
                .into_iter()
                .collect(),
        )),
        created_at: Set(now()),
        updated_at: Set(now()),
        version: Set(1),
        ..Default::default()
    }
    .insert(&conn)
    .await?;
    let read = tarif_plan::Entity::find_by_id(plan.id)
        .one(&conn)
        .await?
        .expect("plan stored");
    assert_eq!(read.price.to_string(), "1234567890123.4567");
    assert_eq!(read.prices.0["USD"].to_string(), "999999999999999.9999");
    assert_eq!(
        currency::Entity::find_by_id(eur.id)
            .one(&conn)
            .await?
            .expect("stored")
            .exchange_rate,
        dec("0.12345678")
    );

    let vat = tax::ActiveModel {
        name: Set("VAT".into()),
        code: Set("DE_VAT".into()),
        description: Set(None),
        rate: Set(dec("19.0001")),
        country_code: Set("DE".into()),
        region_code: Set(None),
        is_active: Set(true),
        is_inclusive: Set(false),
        created_at: Set(now()),
        updated_at: Set(now()),
        version: Set(1),
        ..Default::default()
    }
    .insert(&conn)
    .await?;
    assert_eq!(
        tax::Entity::find_by_id(vat.id)
            .one(&conn)
            .await?
            .expect("stored")
            .rate,
        dec("19.0001")
    );
    Ok(())
}

async fn emails_are_stored_lower_case(db: TestDatabase) -> anyhow::Result<()> {
    let conn = db.connect().await?;
    up_locked(&conn).await?;
    insert_user(&conn, "ann@example.com").await?;
    assert!(
        insert_user(&conn, "Bob@Example.com").await.is_err(),
        "mixed-case e-mail stored"
    );
    assert!(
        insert_user(&conn, "ann@example.com").await.is_err(),
        "duplicate e-mail stored"
    );
    Ok(())
}

async fn deleting_a_user_or_tax_cascades(db: TestDatabase) -> anyhow::Result<()> {
    let conn = db.connect().await?;
    up_locked(&conn).await?;
    insert_currency(&conn, "EUR", "1", true).await?;
    let ann = insert_user(&conn, "ann@example.com").await?;
    user_details::ActiveModel {
        user_id: Set(ann.id),
        city: Set(Some("Berlin".into())),
        created_at: Set(now()),
        updated_at: Set(now()),
        version: Set(1),
        ..Default::default()
    }
    .insert(&conn)
    .await?;
    let plan = tarif_plan::ActiveModel {
        name: Set("Pro".into()),
        slug: Set("pro".into()),
        description: Set(None),
        price: Set(dec("9.99")),
        currency: Set("EUR".into()),
        billing_period: Set(BillingPeriod::Monthly),
        features: Set(serde_json::json!({})),
        is_active: Set(true),
        sort_order: Set(0),
        prices: Set(PlanPrices::default()),
        created_at: Set(now()),
        updated_at: Set(now()),
        version: Set(1),
        ..Default::default()
    }
    .insert(&conn)
    .await?;
    subscription::ActiveModel {
        user_id: Set(ann.id),
        tarif_plan_id: Set(plan.id),
        status: Set(SubscriptionStatus::Pending),
        started_at: Set(None),
        expires_at: Set(None),
        cancelled_at: Set(None),
        paused_at: Set(None),
        created_at: Set(now()),
        updated_at: Set(now()),
        version: Set(1),
        ..Default::default()
    }
    .insert(&conn)
    .await?;

    // The plan is still referenced: RESTRICT refuses its deletion.
    assert!(
        plan.clone().delete(&conn).await.is_err(),
        "a referenced plan was deleted"
    );

    ann.delete(&conn).await?;
    assert!(user_details::Entity::find().all(&conn).await?.is_empty());
    assert!(subscription::Entity::find().all(&conn).await?.is_empty());

    let vat = tax::ActiveModel {
        name: Set("VAT".into()),
        code: Set("DE_VAT".into()),
        description: Set(None),
        rate: Set(dec("19")),
        country_code: Set("DE".into()),
        region_code: Set(None),
        is_active: Set(true),
        is_inclusive: Set(false),
        created_at: Set(now()),
        updated_at: Set(now()),
        version: Set(1),
        ..Default::default()
    }
    .insert(&conn)
    .await?;
    tax_rate::ActiveModel {
        tax_id: Set(vat.id),
        rate: Set(dec("19")),
        valid_from: Set(now()),
        valid_to: Set(None),
        created_at: Set(now()),
        updated_at: Set(now()),
        version: Set(1),
        ..Default::default()
    }
    .insert(&conn)
    .await?;
    vat.delete(&conn).await?;
    assert!(tax_rate::Entity::find().all(&conn).await?.is_empty());
    Ok(())
}

test_on_each_backend!(
    a_second_default_currency_is_refused,
    decimals_round_trip_exactly,
    emails_are_stored_lower_case,
    deleting_a_user_or_tax_cascades,
);
