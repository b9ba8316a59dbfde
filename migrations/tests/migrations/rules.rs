//! The version triggers and checks of `m20261129_000002`: the enum checks
//! hold exactly the domain enums' values (a new variant or a new enum column
//! cannot be forgotten), every check refuses what it names, a database that
//! already breaks a rule is not migrated, and `down` removes it all.

use std::collections::BTreeSet;

use billing_domain::entities::{
    currency, invoice_sequence, subscription, tarif_plan, tax, tax_rate, user, user_case,
    user_details, user_invoice,
};
use billing_domain::enums::{
    BillingPeriod, CaseStatus, InvoiceStatus, SubscriptionStatus, UserRole, UserStatus,
};
use billing_migration::{Migrator, up_locked};
use billing_test_support::{TestDatabase, test_on_each_backend};
use sea_orm_migration::MigratorTrait;
use sea_orm_migration::prelude::StringLen;
use sea_orm_migration::sea_orm::{
    ActiveEnum, ColumnTrait, ColumnType, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    EntityTrait, IdenStatic, Iterable, Statement,
};

/// The stored values of a domain enum.
fn values<E: ActiveEnum<Value = String>>() -> BTreeSet<String> {
    E::values().into_iter().collect()
}

/// Every enum column and the domain enum it stores.
fn enum_columns() -> Vec<(&'static str, &'static str, BTreeSet<String>)> {
    vec![
        ("user", "status", values::<UserStatus>()),
        ("user", "role", values::<UserRole>()),
        ("user_case", "status", values::<CaseStatus>()),
        ("tarif_plan", "billing_period", values::<BillingPeriod>()),
        ("subscription", "status", values::<SubscriptionStatus>()),
        ("user_invoice", "status", values::<InvoiceStatus>()),
    ]
}

/// The columns of `E` declared with an enum's column type (`DeriveActiveEnum`
/// with `String(StringLen::N(16))`; plain strings have no length).
fn enum_typed_columns<E: EntityTrait>() -> Vec<(String, String)> {
    E::Column::iter()
        .filter(|c| {
            matches!(
                c.def().get_column_type(),
                ColumnType::String(StringLen::N(16))
            )
        })
        .map(|c| (E::default().table_name().to_owned(), c.as_str().to_owned()))
        .collect()
}

/// The check names the migration adds (the specification).
const CHECKS: [&str; 15] = [
    "ck_user_status",
    "ck_user_role",
    "ck_user_case_status",
    "ck_tarif_plan_billing_period",
    "ck_subscription_status",
    "ck_user_invoice_status",
    "ck_tarif_plan_price_non_negative",
    "ck_user_invoice_amount_non_negative",
    "ck_user_invoice_net_amount_non_negative",
    "ck_user_invoice_tax_amount_non_negative",
    "ck_user_invoice_amount_is_net_plus_tax",
    "ck_currency_exchange_rate_positive",
    "ck_currency_decimal_places_range",
    "ck_tax_rate_percent",
    "ck_tax_rate_rate_percent",
];

/// The tables with a `version` column.
const VERSIONED: [&str; 9] = [
    "user",
    "user_details",
    "user_case",
    "currency",
    "tax",
    "tax_rate",
    "tarif_plan",
    "subscription",
    "user_invoice",
];

fn statement(conn: &DatabaseConnection, sql: impl Into<String>) -> Statement {
    Statement::from_string(conn.get_database_backend(), sql.into())
}

async fn exec(conn: &DatabaseConnection, sql: &str) -> Result<u64, sea_orm_migration::DbErr> {
    Ok(conn
        .execute_raw(statement(conn, sql))
        .await?
        .rows_affected())
}

async fn strings(conn: &DatabaseConnection, sql: &str) -> anyhow::Result<Vec<String>> {
    conn.query_all_raw(statement(conn, sql))
        .await?
        .iter()
        .map(|row| Ok(row.try_get_by_index::<String>(0)?))
        .collect()
}

/// What the migration leaves in the database: triggers, `ck_` checks and
/// the trigger function (PostgreSQL); triggers (SQLite).
async fn rule_objects(conn: &DatabaseConnection) -> anyhow::Result<BTreeSet<String>> {
    let sql = if conn.get_database_backend() == DatabaseBackend::Postgres {
        "SELECT tgname::text FROM pg_trigger WHERE NOT tgisinternal \
         UNION ALL SELECT conname::text FROM pg_constraint c \
           JOIN pg_namespace n ON n.oid = c.connamespace \
           WHERE c.contype = 'c' AND n.nspname = current_schema() AND conname LIKE 'ck\\_%' \
         UNION ALL SELECT proname::text FROM pg_proc p \
           JOIN pg_namespace n ON n.oid = p.pronamespace \
           WHERE n.nspname = current_schema() AND proname = 'billing_bump_version'"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
    };
    Ok(strings(conn, sql).await?.into_iter().collect())
}

fn expected_rule_objects(backend: DatabaseBackend) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = VERSIONED
        .iter()
        .map(|t| format!("trg_{t}_bump_version"))
        .collect();
    if backend == DatabaseBackend::Postgres {
        names.extend(CHECKS.iter().map(|c| (*c).to_owned()));
        names.insert("billing_bump_version".to_owned());
        // The billing cycle's tables are created with their checks
        // (SQLite keeps those in the table, not as separate objects).
        names.extend(
            [
                "ck_dunning_attempt_outcome",
                "ck_dunning_attempt_attempt_positive",
                "ck_webhook_endpoint_status",
                "ck_webhook_delivery_status",
            ]
            .map(String::from),
        );
    } else {
        for check in CHECKS {
            names.insert(format!("{check}_insert"));
            names.insert(format!("{check}_update"));
        }
    }
    names
}

/// The quoted values the database's definition of an enum check allows.
async fn allowed_values(
    conn: &DatabaseConnection,
    table: &str,
    column: &str,
) -> anyhow::Result<Vec<BTreeSet<String>>> {
    let name = format!("ck_{table}_{column}");
    let definitions = if conn.get_database_backend() == DatabaseBackend::Postgres {
        strings(
            conn,
            &format!(
                "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c \
                 JOIN pg_class t ON t.oid = c.conrelid \
                 WHERE c.contype = 'c' AND c.conname = '{name}' AND t.relname = '{table}'"
            ),
        )
        .await?
    } else {
        // Only the IN list: the trigger's RAISE message is quoted too.
        strings(
            conn,
            &format!(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = '{table}' \
                 AND name IN ('{name}_insert', '{name}_update')"
            ),
        )
        .await?
        .into_iter()
        .map(|sql| {
            let list = sql.split_once(" IN (").map_or("", |(_, rest)| rest);
            list.split_once(')').map_or(list, |(l, _)| l).to_owned()
        })
        .collect()
    };
    Ok(definitions
        .iter()
        .map(|definition| {
            definition
                .split('\'')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        })
        .collect())
}

/// One row in each table with an enum column: the ids of user, user_case,
/// tarif_plan, subscription and user_invoice are all 1.
async fn one_row_each(conn: &DatabaseConnection) -> anyhow::Result<()> {
    let now = "'2026-01-01T00:00:00+00:00'";
    for sql in [
        format!(
            "INSERT INTO currency (code, name, exchange_rate, decimal_places, is_default, is_active, created_at, updated_at) \
             VALUES ('EUR', 'Euro', '1', 2, true, true, {now}, {now})"
        ),
        format!(
            r#"INSERT INTO "user" (email, password_hash, status, role, created_at, updated_at) VALUES ('ann@example.com', 'h', 'pending', 'user', {now}, {now})"#
        ),
        format!(
            "INSERT INTO user_case (user_id, subject, description, status, created_at, updated_at) VALUES (1, 's', 'd', 'open', {now}, {now})"
        ),
        format!(
            "INSERT INTO tarif_plan (name, slug, price, currency, billing_period, features, is_active, sort_order, prices, created_at, updated_at) \
             VALUES ('Pro', 'pro', '9.99', 'EUR', 'monthly', '{{}}', true, 0, '{{}}', {now}, {now})"
        ),
        format!(
            "INSERT INTO subscription (user_id, tarif_plan_id, status, created_at, updated_at) VALUES (1, 1, 'pending', {now}, {now})"
        ),
        format!(
            "INSERT INTO user_invoice (user_id, tarif_plan_id, invoice_number, amount, net_amount, tax_amount, currency, status, invoiced_at, created_at, updated_at) \
             VALUES (1, 1, 'INV-2026-000001', '11.90', '10.00', '1.90', 'EUR', 'pending', {now}, {now}, {now})"
        ),
        format!(
            "INSERT INTO tax (name, code, rate, country_code, is_active, is_inclusive, created_at, updated_at) VALUES ('VAT', 'DE_VAT', '19', 'DE', true, false, {now}, {now})"
        ),
        format!(
            "INSERT INTO tax_rate (tax_id, rate, valid_from, created_at, updated_at) VALUES (1, '19', {now}, {now}, {now})"
        ),
    ] {
        exec(conn, &sql).await?;
    }
    Ok(())
}

/// A raw write must be refused by the check `name`, named in the error.
fn assert_refused_by(result: Result<u64, sea_orm_migration::DbErr>, name: &str, what: &str) {
    match result {
        Ok(_) => panic!("{what}: stored, {name} should have refused it"),
        Err(e) => assert!(e.to_string().contains(name), "{what}: {e}"),
    }
}

async fn enum_checks_hold_exactly_the_domain_values(db: TestDatabase) -> anyhow::Result<()> {
    let conn = db.connect().await?;
    up_locked(&conn).await?;

    // Every column typed as an enum in the entities has its check here.
    let mut typed = Vec::new();
    typed.extend(enum_typed_columns::<user::Entity>());
    typed.extend(enum_typed_columns::<user_details::Entity>());
    typed.extend(enum_typed_columns::<user_case::Entity>());
    typed.extend(enum_typed_columns::<currency::Entity>());
    typed.extend(enum_typed_columns::<tax::Entity>());
    typed.extend(enum_typed_columns::<tax_rate::Entity>());
    typed.extend(enum_typed_columns::<tarif_plan::Entity>());
    typed.extend(enum_typed_columns::<subscription::Entity>());
    typed.extend(enum_typed_columns::<user_invoice::Entity>());
    typed.extend(enum_typed_columns::<invoice_sequence::Entity>());
    let typed: BTreeSet<(String, String)> = typed.into_iter().collect();
    let covered: BTreeSet<(String, String)> = enum_columns()
        .iter()
        .map(|(t, c, _)| ((*t).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(typed, covered, "enum columns without a check (or gone)");

    one_row_each(&conn).await?;
    for (table, column, domain) in enum_columns() {
        let name = format!("ck_{table}_{column}");
        let in_database = allowed_values(&conn, table, column).await?;
        let expected = if db.backend() == billing_test_support::Backend::Postgres {
            1
        } else {
            2
        };
        assert_eq!(in_database.len(), expected, "definitions of {name}");
        for allowed in in_database {
            assert_eq!(allowed, domain, "{name} and the domain enum differ");
        }
        for value in &domain {
            let n = exec(
                &conn,
                &format!(r#"UPDATE "{table}" SET "{column}" = '{value}' WHERE id = 1"#),
            )
            .await?;
            assert_eq!(n, 1, "{table}.{column} = {value}");
        }
        assert_refused_by(
            exec(
                &conn,
                &format!(r#"UPDATE "{table}" SET "{column}" = 'no_such_value' WHERE id = 1"#),
            )
            .await,
            &name,
            "unknown enum value",
        );
        let stored = strings(
            &conn,
            &format!(r#"SELECT "{column}" FROM "{table}" WHERE id = 1"#),
        )
        .await?;
        assert!(domain.contains(&stored[0]), "{table}.{column} = {stored:?}");
    }
    Ok(())
}

async fn every_check_refuses_what_it_names(db: TestDatabase) -> anyhow::Result<()> {
    let conn = db.connect().await?;
    up_locked(&conn).await?;
    one_row_each(&conn).await?;
    let mut cases = vec![
        (
            "tarif_plan",
            "price = '-0.01'",
            "ck_tarif_plan_price_non_negative",
        ),
        (
            "user_invoice",
            "amount = '-11.90', net_amount = '-10.00', tax_amount = '-1.90'",
            "_non_negative",
        ),
        (
            "user_invoice",
            "tax_amount = '1.91'",
            "ck_user_invoice_amount_is_net_plus_tax",
        ),
        (
            "user_invoice",
            "amount = '11.9001'",
            "ck_user_invoice_amount_is_net_plus_tax",
        ),
        (
            "currency",
            "exchange_rate = '0'",
            "ck_currency_exchange_rate_positive",
        ),
        (
            "currency",
            "decimal_places = 5",
            "ck_currency_decimal_places_range",
        ),
        (
            "currency",
            "decimal_places = -1",
            "ck_currency_decimal_places_range",
        ),
        ("tax", "rate = '100.0001'", "ck_tax_rate_percent"),
        ("tax", "rate = '-1'", "ck_tax_rate_percent"),
        ("tax_rate", "rate = '1900'", "ck_tax_rate_rate_percent"),
    ];
    if db.backend() == billing_test_support::Backend::Sqlite {
        // PostgreSQL rounds to NUMERIC(19,4) before checking; SQLite keeps
        // the text, and a fifth decimal must not slip past the sum.
        cases.push((
            "user_invoice",
            "amount = '11.900001', net_amount = '10.000001'",
            "ck_user_invoice_amount_is_net_plus_tax",
        ));
    }
    for (table, set, name) in cases {
        assert_refused_by(
            exec(
                &conn,
                &format!(r#"UPDATE "{table}" SET {set} WHERE id = 1"#),
            )
            .await,
            name,
            set,
        );
    }
    // What the rules allow is stored.
    for (table, set) in [
        ("tarif_plan", "price = '0'"),
        (
            "user_invoice",
            "amount = '1000.0000', net_amount = '999.9999', tax_amount = '0.0001'",
        ),
        (
            "user_invoice",
            "amount = '999999999999999.9999', net_amount = '999999999999999.9998', tax_amount = '0.0001'",
        ),
        (
            "currency",
            "exchange_rate = '0.00000001', decimal_places = 4",
        ),
        ("currency", "decimal_places = 0"),
        ("tax", "rate = '100'"),
        ("tax_rate", "rate = '0'"),
    ] {
        let n = exec(
            &conn,
            &format!(r#"UPDATE "{table}" SET {set} WHERE id = 1"#),
        )
        .await?;
        assert_eq!(n, 1, "{set}");
    }
    // Inserts are checked too, not only updates.
    assert_refused_by(
        exec(
            &conn,
            "INSERT INTO tax (name, code, rate, country_code, is_active, is_inclusive, created_at, updated_at) \
             VALUES ('X', 'X', '101', 'DE', true, false, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')",
        )
        .await,
        "ck_tax_rate_percent",
        "insert of a 101 % tax",
    );
    Ok(())
}

/// How many migrations come before the one that adds the rules.
fn rules_position() -> usize {
    Migrator::migrations()
        .iter()
        .position(|m| m.name() == "m20261129_000002_enforce_versions_and_checks")
        .expect("the rules migration is listed")
}

async fn a_database_breaking_a_rule_is_not_migrated(db: TestDatabase) -> anyhow::Result<()> {
    let conn = db.connect().await?;
    // Every migration before the one that adds the rules.
    let before_rules = rules_position();
    Migrator::up(&conn, Some(u32::try_from(before_rules)?)).await?;
    one_row_each(&conn).await?;
    exec(&conn, "UPDATE currency SET decimal_places = 7 WHERE id = 1").await?;

    let err = up_locked(&conn).await.expect_err("a row breaks a rule");
    assert!(
        err.to_string().contains("ck_currency_decimal_places_range"),
        "{err}"
    );
    assert_eq!(
        Migrator::get_pending_migrations(&conn).await?.len(),
        Migrator::migrations().len() - before_rules
    );
    assert!(
        rule_objects(&conn).await?.is_empty(),
        "a refused migration left {:?}",
        rule_objects(&conn).await?
    );

    exec(&conn, "UPDATE currency SET decimal_places = 2 WHERE id = 1").await?;
    up_locked(&conn).await?;
    assert!(Migrator::get_pending_migrations(&conn).await?.is_empty());
    Ok(())
}

async fn down_removes_the_triggers_and_checks(db: TestDatabase) -> anyhow::Result<()> {
    let conn = db.connect().await?;
    let backend = conn.get_database_backend();
    up_locked(&conn).await?;
    assert_eq!(rule_objects(&conn).await?, expected_rule_objects(backend));
    one_row_each(&conn).await?;

    // Down to the rules migration, itself included.
    let from_rules = Migrator::migrations().len() - rules_position();
    Migrator::down(&conn, Some(u32::try_from(from_rules)?)).await?;
    assert!(
        rule_objects(&conn).await?.is_empty(),
        "left behind: {:?}",
        rule_objects(&conn).await?
    );
    // Back to the first migration's behaviour: no bump, no enum check.
    exec(&conn, r#"UPDATE "user" SET status = 'bogus' WHERE id = 1"#).await?;
    assert_eq!(
        strings(
            &conn,
            r#"SELECT CAST(version AS TEXT) FROM "user" WHERE id = 1"#
        )
        .await?,
        ["1"]
    );
    exec(&conn, r#"UPDATE "user" SET status = 'active' WHERE id = 1"#).await?;

    up_locked(&conn).await?;
    assert_eq!(rule_objects(&conn).await?, expected_rule_objects(backend));
    exec(
        &conn,
        r#"UPDATE "user" SET status = 'pending' WHERE id = 1"#,
    )
    .await?;
    assert_eq!(
        strings(
            &conn,
            r#"SELECT CAST(version AS TEXT) FROM "user" WHERE id = 1"#
        )
        .await?,
        ["2"]
    );
    Ok(())
}

test_on_each_backend!(
    enum_checks_hold_exactly_the_domain_values,
    every_check_refuses_what_it_names,
    a_database_breaking_a_rule_is_not_migrated,
    down_removes_the_triggers_and_checks,
);
