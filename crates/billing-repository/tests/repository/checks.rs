//! A write the database's checks refuse comes back as
//! `RepositoryError::CheckViolation` naming the check, on PostgreSQL (real
//! CHECK constraints) and SQLite (checks emulated by triggers) alike, and
//! writes nothing.

use billing_domain::enums::UserStatus;
use billing_repository::{Currencies, Database, Invoices, RepositoryError, Taxes, Users};
use billing_test_support::TestDatabase;
use sea_orm::ActiveValue::Set;
use sea_orm::{ActiveEnum, ConnectionTrait, Statement, TransactionTrait};

use crate::common::{
    Basics, basics, dec, instant, is_sqlite, new_currency, new_invoice, new_tax, setup,
};

fn assert_check(err: &RepositoryError, entity: &str, constraint: &str) {
    let RepositoryError::CheckViolation {
        entity: got_entity,
        constraint: got_constraint,
    } = err
    else {
        panic!("expected CheckViolation {constraint}, got {err:?}");
    };
    assert_eq!(
        (got_entity.table(), got_constraint.as_str()),
        (entity, constraint)
    );
}

async fn refused_writes_are_check_violations(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    let Basics { user, plan } = basics(&db).await?;

    let mut currency = new_currency("KWD", false);
    currency.decimal_places = Set(7);
    let err = Currencies::insert(&db, currency)
        .await
        .expect_err("7 minor units");
    assert_check(&err, "currency", "ck_currency_decimal_places_range");
    assert!(Currencies::find_by_code(&db, "KWD").await?.is_none());

    let mut currency = new_currency("USD", false);
    currency.exchange_rate = Set(dec("0"));
    let err = Currencies::insert(&db, currency)
        .await
        .expect_err("zero rate");
    assert_check(&err, "currency", "ck_currency_exchange_rate_positive");

    let err = Taxes::insert(&db, new_tax("XX_VAT", "1900"))
        .await
        .expect_err("1900 %");
    assert_check(&err, "tax", "ck_tax_rate_percent");

    // amount must be net + tax, exactly: one ten-thousandth off is refused,
    // also where a double could not tell the difference.
    let mut invoice = new_invoice(user.id, plan.id, "EUR", instant(2030, 1, 1, 0, 0, 0), None);
    invoice.invoice_number = Set("INV-2030-000001".into());
    invoice.net_amount = Set(dec("1234567890000.0000"));
    invoice.tax_amount = Set(dec("123.4567"));
    invoice.amount = Set(dec("1234567890123.4568"));
    let err = Invoices::insert(&db, invoice.clone())
        .await
        .expect_err("amount is not net + tax");
    assert_check(
        &err,
        "user_invoice",
        "ck_user_invoice_amount_is_net_plus_tax",
    );
    invoice.amount = Set(dec("1234567890123.4567"));
    let stored = Invoices::insert(&db, invoice.clone()).await?;
    assert_eq!(stored.amount, dec("1234567890123.4567"));

    // A carry across the decimal point, and a negative tax.
    let mut carry = invoice.clone();
    carry.invoice_number = Set("INV-2030-000002".into());
    carry.net_amount = Set(dec("0.9999"));
    carry.tax_amount = Set(dec("0.0001"));
    carry.amount = Set(dec("1"));
    Invoices::insert(&db, carry.clone()).await?;
    carry.invoice_number = Set("INV-2030-000003".into());
    carry.net_amount = Set(dec("1.0001"));
    carry.tax_amount = Set(dec("-0.0001"));
    carry.amount = Set(dec("1.0000"));
    let err = Invoices::insert(&db, carry)
        .await
        .expect_err("negative tax");
    assert_check(
        &err,
        "user_invoice",
        "ck_user_invoice_tax_amount_non_negative",
    );

    // An update that breaks a rule changes nothing.
    let mut changed = stored.clone();
    changed.tax_amount = dec("0.0000");
    let err = Invoices::save(&db, &changed, stored.version)
        .await
        .expect_err("net + tax no longer adds up");
    assert_check(
        &err,
        "user_invoice",
        "ck_user_invoice_amount_is_net_plus_tax",
    );
    assert_eq!(Invoices::get(&db, stored.id).await?, stored);
    Ok(())
}

/// The schema's list of a status column and the domain enum drift apart
/// (here: the database is made to forget `deleted`): a save with the value
/// the database does not know is a `CheckViolation`, not an opaque error.
async fn an_enum_value_unknown_to_the_database_is_a_check_violation(
    test_db: TestDatabase,
) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    let Basics { user, .. } = basics(&db).await?;
    forget_user_status(&db, UserStatus::Deleted).await?;

    let mut change = user.clone();
    change.status = UserStatus::Deleted;
    let err = Users::save(&db, &change, user.version)
        .await
        .expect_err("the database no longer knows deleted");
    assert_check(&err, "user", "ck_user_status");
    assert_eq!(Users::get(&db, user.id).await?, user);

    change.status = UserStatus::Active;
    Users::save(&db, &change, user.version).await?;
    Ok(())
}

/// Replaces `ck_user_status` by one that allows every domain value but
/// `forgotten`.
async fn forget_user_status(db: &Database, forgotten: UserStatus) -> anyhow::Result<()> {
    let list = UserStatus::values()
        .into_iter()
        .filter(|v| *v != forgotten.to_value())
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let statements = if is_sqlite(db) {
        vec![
            "DROP TRIGGER ck_user_status_update".to_owned(),
            format!(
                r#"CREATE TRIGGER ck_user_status_update BEFORE UPDATE OF "status" ON "user" FOR EACH ROW WHEN NOT (NEW."status" IN ({list})) BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: ck_user_status'); END"#
            ),
        ]
    } else {
        vec![
            r#"ALTER TABLE "user" DROP CONSTRAINT ck_user_status"#.to_owned(),
            format!(
                r#"ALTER TABLE "user" ADD CONSTRAINT ck_user_status CHECK ("status" IN ({list}))"#
            ),
        ]
    };
    // One transaction: one connection sees its own DROP before the CREATE.
    let tx = db.connection().begin().await?;
    for sql in statements {
        tx.execute_raw(Statement::from_string(tx.get_database_backend(), sql))
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

billing_test_support::test_on_each_backend!(
    refused_writes_are_check_violations,
    an_enum_value_unknown_to_the_database_is_a_check_violation,
);
