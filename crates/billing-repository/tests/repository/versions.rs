//! The database raises `version` and moves `updated_at` on every UPDATE,
//! whatever path it takes: `ActiveModel::update`, `update_many`, raw SQL on
//! the exposed connection. `version` never goes down, and `Repository::save`
//! (which raises it itself) still raises it by exactly one.

use std::time::Duration;

use billing_domain::entities::{user, user_case, user_details};
use billing_domain::enums::{CaseStatus, UserRole, UserStatus};
use billing_repository::{
    Currencies, Database, Invoices, Repository, Subscriptions, TaxRates, UserCases,
    UserDetailsRepository, Users,
};
use billing_test_support::{Backend, TestDatabase};
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, IntoActiveModel,
    QueryFilter, Statement,
};

use crate::common::{
    Basics, basics, insert_invoice_numbered, insert_tax, instant, is_sqlite, new_subscription,
    new_tax_rate, setup,
};

/// `version` and `updated_at` of row `id` of `table`, read with raw SQL.
async fn bookkeeping(db: &Database, table: &str, id: i64) -> anyhow::Result<(i32, DateTime<Utc>)> {
    let conn = db.connection();
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            format!(r#"SELECT "version", "updated_at" FROM "{table}" WHERE "id" = {id}"#),
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("{table} {id} is gone"))?;
    Ok((row.try_get("", "version")?, row.try_get("", "updated_at")?))
}

async fn raw(db: &Database, sql: &str) -> anyhow::Result<u64> {
    let conn = db.connection();
    Ok(conn
        .execute_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await?
        .rows_affected())
}

/// Lets the clock move past the millisecond SQLite's clock resolves.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

/// Asserts that the last write raised the version by exactly one and moved
/// `updated_at` forward.
async fn assert_bumped(
    db: &Database,
    table: &str,
    id: i64,
    before: (i32, DateTime<Utc>),
    what: &str,
) -> anyhow::Result<(i32, DateTime<Utc>)> {
    let after = bookkeeping(db, table, id).await?;
    assert_eq!(after.0, before.0 + 1, "{what}: version of {table} {id}");
    assert!(
        after.1 > before.1,
        "{what}: updated_at of {table} {id} did not move: {} -> {}",
        before.1,
        after.1
    );
    Ok(after)
}

async fn every_write_path_bumps_the_version(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    let conn = db.connection();
    let Basics { user: ann, .. } = basics(&db).await?;
    let mut seen = (ann.version, ann.updated_at);
    assert_eq!(seen.0, 1);

    // sea-orm's ActiveModel::update, which sets only the changed columns.
    tick().await;
    let mut active = ann.clone().into_active_model();
    active.status = Set(UserStatus::Active);
    let returned = active.update(conn).await?;
    seen = assert_bumped(&db, "user", ann.id, seen, "ActiveModel::update").await?;
    if !is_sqlite(&db) {
        // PostgreSQL's BEFORE trigger rewrites the row RETURNING reports.
        // (SQLite's RETURNING shows the row before its AFTER trigger ran.)
        assert_eq!((returned.version, returned.updated_at), seen);
    }

    // update_many, without touching version or updated_at.
    tick().await;
    let updated = user::Entity::update_many()
        .col_expr(user::Column::Role, Expr::value(UserRole::Admin))
        .filter(user::Column::Id.eq(ann.id))
        .exec(conn)
        .await?;
    assert_eq!(updated.rows_affected, 1);
    seen = assert_bumped(&db, "user", ann.id, seen, "update_many").await?;

    // Raw SQL on the exposed connection.
    tick().await;
    let n = raw(
        &db,
        &format!(
            r#"UPDATE "user" SET "status" = 'suspended' WHERE "id" = {}"#,
            ann.id
        ),
    )
    .await?;
    assert_eq!(n, 1);
    seen = assert_bumped(&db, "user", ann.id, seen, "raw UPDATE").await?;

    // A write that sets updated_at itself, to an old instant, but leaves the
    // version: the database takes over both.
    tick().await;
    raw(
        &db,
        &format!(
            r#"UPDATE "user" SET "updated_at" = '2001-01-01T00:00:00+00:00' WHERE "id" = {}"#,
            ann.id
        ),
    )
    .await?;
    seen = assert_bumped(&db, "user", ann.id, seen, "raw UPDATE of updated_at").await?;

    // Lowering the version is not possible: it is raised by one instead.
    tick().await;
    raw(
        &db,
        &format!(r#"UPDATE "user" SET "version" = 1 WHERE "id" = {}"#, ann.id),
    )
    .await?;
    seen = assert_bumped(&db, "user", ann.id, seen, "raw lowering of version").await?;
    assert_eq!(seen.0, 6);

    // A writer that raises the version itself gets exactly its raise.
    tick().await;
    user::Entity::update_many()
        .col_expr(
            user::Column::Version,
            Expr::col(user::Column::Version).add(1),
        )
        .col_expr(user::Column::Status, Expr::value(UserStatus::Active))
        .filter(user::Column::Id.eq(ann.id))
        .exec(conn)
        .await?;
    assert_eq!(bookkeeping(&db, "user", ann.id).await?.0, 7);

    // Repository::save's compare-and-set: + 1, not + 2, and its own
    // updated_at is kept.
    tick().await;
    let current = Users::get(&db, ann.id).await?;
    let mut change = current.clone();
    change.status = UserStatus::Deleted;
    let saved = Users::save(&db, &change, current.version).await?;
    assert_eq!(saved.version, current.version + 1);
    assert!(saved.updated_at > current.updated_at);
    assert_eq!(Users::get(&db, ann.id).await?, saved);
    let err = Users::save(&db, &change, current.version)
        .await
        .expect_err("stale version");
    assert!(err.is_concurrent_modification(), "{err:?}");
    Ok(())
}

/// One row in each of the nine versioned tables: a raw UPDATE that leaves
/// `version` alone bumps each by exactly one.
async fn every_versioned_table_is_covered(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    let Basics { user: ann, plan } = basics(&db).await?;
    let eur = Currencies::find_by_code(&db, "EUR")
        .await?
        .expect("basics add EUR");
    let details = UserDetailsRepository::insert(
        &db,
        user_details::ActiveModel {
            user_id: Set(ann.id),
            city: Set(Some("Berlin".into())),
            ..Default::default()
        },
    )
    .await?;
    let case = UserCases::insert(
        &db,
        user_case::ActiveModel {
            user_id: Set(ann.id),
            subject: Set("Help".into()),
            description: Set("Please".into()),
            status: Set(CaseStatus::Open),
            ..Default::default()
        },
    )
    .await?;
    let vat = insert_tax(&db, "DE_VAT", "19").await?;
    let rate = TaxRates::insert(
        &db,
        new_tax_rate(vat.id, "19", instant(2020, 1, 1, 0, 0, 0), None),
    )
    .await?;
    let subscription = Subscriptions::insert(
        &db,
        new_subscription(
            ann.id,
            plan.id,
            billing_domain::enums::SubscriptionStatus::Pending,
            None,
        ),
    )
    .await?;
    let invoice = insert_invoice_numbered(&db, ann.id, plan.id, "INV-2030-000001", None).await?;

    let rows = [
        ("user", ann.id, "status"),
        ("user_details", details.id, "city"),
        ("user_case", case.id, "subject"),
        ("currency", eur.id, "name"),
        ("tax", vat.id, "name"),
        ("tax_rate", rate.id, "rate"),
        ("tarif_plan", plan.id, "name"),
        ("subscription", subscription.id, "status"),
        ("user_invoice", invoice.id, "payment_method"),
    ];
    tick().await;
    for (table, id, column) in rows {
        let before = bookkeeping(&db, table, id).await?;
        // `SET column = column`: a write that changes nothing still counts.
        let n = raw(
            &db,
            &format!(r#"UPDATE "{table}" SET "{column}" = "{column}" WHERE "id" = {id}"#),
        )
        .await?;
        assert_eq!(n, 1, "{table}");
        assert_bumped(&db, table, id, before, "raw no-op UPDATE").await?;
    }
    // The invoice still reads through the repository (SQLite: the trigger's
    // updated_at text parses like the application's).
    assert_eq!(Invoices::get(&db, invoice.id).await?.version, 2);
    Ok(())
}

/// SQLite: the trigger writes `updated_at` in the application's own text
/// format, and it fires once per UPDATE even with `recursive_triggers` on.
/// (PostgreSQL's BEFORE trigger writes a `timestamptz`: no text, no
/// recursion; this test is SQLite's alone.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_trigger_format_and_recursion() -> anyhow::Result<()> {
    let test_db = TestDatabase::create(Backend::Sqlite)
        .await?
        .expect("SQLite is always available");
    let db = setup(&test_db).await?;
    assert!(is_sqlite(&db));
    let Basics { user: ann, .. } = basics(&db).await?;
    let conn = db.connection();
    let recursive = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "PRAGMA recursive_triggers",
        ))
        .await?
        .expect("a pragma answers")
        .try_get_by_index::<i32>(0)?;
    assert_eq!(
        recursive, 0,
        "the pool's connections have recursive triggers off"
    );

    tick().await;
    raw(
        &db,
        &format!(
            r#"UPDATE "user" SET "status" = 'active' WHERE "id" = {}"#,
            ann.id
        ),
    )
    .await?;
    let text: String = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            format!(
                r#"SELECT "updated_at" AS t FROM "user" WHERE "id" = {}"#,
                ann.id
            ),
        ))
        .await?
        .expect("row")
        .try_get("", "t")?;
    let parsed = DateTime::parse_from_rfc3339(&text)?.with_timezone(&Utc);
    assert_eq!(
        parsed.to_rfc3339_opts(SecondsFormat::AutoSi, false),
        text,
        "the trigger's updated_at is not in the application's format"
    );
    assert!(parsed > ann.updated_at);

    // A connection of its own with recursive triggers on.
    let single = sea_orm::Database::connect(test_db.url()).await?;
    single
        .execute_unprepared("PRAGMA recursive_triggers = ON")
        .await?;
    let before = bookkeeping(&db, "user", ann.id).await?;
    tick().await;
    single
        .execute_unprepared(&format!(
            r#"UPDATE "user" SET "role" = 'vendor' WHERE "id" = {}"#,
            ann.id
        ))
        .await?;
    assert_bumped(&db, "user", ann.id, before, "recursive_triggers = ON").await?;
    single.close().await?;
    Ok(())
}

/// The repository's own read-modify-save loop is not disturbed: many saves in
/// a row end at the expected version.
async fn repository_saves_count_one_each(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    let Basics { user: ann, .. } = basics(&db).await?;
    let mut current = ann;
    for round in 0..5 {
        let mut change = current.clone();
        change.role = if round % 2 == 0 {
            UserRole::Vendor
        } else {
            UserRole::User
        };
        current = Repository::<user::Entity>::save(&db, &change, current.version).await?;
    }
    assert_eq!(current.version, 6);
    assert_eq!(bookkeeping(&db, "user", current.id).await?.0, 6);
    Ok(())
}

billing_test_support::test_on_each_backend!(
    every_write_path_bumps_the_version,
    every_versioned_table_is_covered,
    repository_saves_count_one_each,
);
