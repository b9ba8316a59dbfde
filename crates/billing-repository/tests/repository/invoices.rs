//! Invoice numbers: unique, sequential and gapless per year under
//! concurrency; a rolled-back invoice gives its number back.

use billing_domain::PageRequest;
use std::collections::BTreeSet;

use billing_domain::InvoiceNumber;
use billing_domain::enums::InvoiceStatus;
use billing_repository::{Invoices, RepositoryError};
use billing_test_support::TestDatabase;
use chrono::Datelike;

use crate::common::{basics, instant, new_invoice, setup_with};

const TASKS: usize = 8;
const PER_TASK: usize = 25;

async fn concurrent_invoices_get_gapless_numbers(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup_with(&test_db, 10).await?;
    let b = basics(&db).await?;
    let invoiced_at = instant(2026, 11, 24, 10, 0, 0);

    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let db = db.clone();
        let (user_id, plan_id) = (b.user.id, b.plan.id);
        tasks.push(tokio::spawn(async move {
            let mut numbers = Vec::new();
            for _ in 0..PER_TASK {
                // What the service does: one transaction per invoice.
                let tx = db.begin().await?;
                let invoice = Invoices::insert_numbered(
                    &tx,
                    new_invoice(user_id, plan_id, "EUR", invoiced_at, None),
                )
                .await?;
                tx.commit().await?;
                numbers.push(invoice.invoice_number);
            }
            Ok::<_, RepositoryError>(numbers)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let total = TASKS * PER_TASK;
    assert_eq!(all.len(), total);
    let unique: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(unique.len(), total, "duplicate numbers");
    let expected: BTreeSet<_> = (1..=u64::try_from(total)?)
        .map(|n| InvoiceNumber::new(2026, n).map(|n| n.to_string()))
        .collect::<Result<_, _>>()?;
    assert_eq!(unique, expected, "numbers are 1..=200 without gaps");
    assert_eq!(
        Invoices::find_all(&db, PageRequest::new(1, 1)?)
            .await?
            .total,
        u64::try_from(total)?
    );
    Ok(())
}
billing_test_support::test_on_each_backend!(concurrent_invoices_get_gapless_numbers);

async fn rollback_returns_the_number(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup_with(&test_db, 4).await?;
    let b = basics(&db).await?;
    let at = instant(2027, 1, 1, 0, 0, 0);

    let tx = db.begin().await?;
    let first =
        Invoices::insert_numbered(&tx, new_invoice(b.user.id, b.plan.id, "EUR", at, None)).await?;
    assert_eq!(first.invoice_number, "INV-2027-000001");
    tx.rollback().await?;

    let tx = db.begin().await?;
    let again =
        Invoices::insert_numbered(&tx, new_invoice(b.user.id, b.plan.id, "EUR", at, None)).await?;
    assert_eq!(again.invoice_number, "INV-2027-000001");
    // A failed insert in the same transaction: the caller rolls back.
    let bad =
        Invoices::insert_numbered(&tx, new_invoice(b.user.id, b.plan.id, "XXX", at, None)).await;
    assert!(
        matches!(bad, Err(RepositoryError::ReferencedRowMissing { .. })),
        "{bad:?}"
    );
    drop(tx);

    let (user_id, plan_id) = (b.user.id, b.plan.id);
    let number = db
        .transaction(move |tx| {
            Box::pin(async move {
                let first =
                    Invoices::insert_numbered(tx, new_invoice(user_id, plan_id, "EUR", at, None))
                        .await?;
                let second =
                    Invoices::insert_numbered(tx, new_invoice(user_id, plan_id, "EUR", at, None))
                        .await?;
                Ok::<_, RepositoryError>((first.invoice_number, second.invoice_number))
            })
        })
        .await?;
    assert_eq!(
        number,
        ("INV-2027-000001".to_owned(), "INV-2027-000002".to_owned())
    );

    // Years count separately; the year is that of `invoiced_at` (UTC).
    let tx = db.begin().await?;
    let next_year = Invoices::insert_numbered(
        &tx,
        new_invoice(
            b.user.id,
            b.plan.id,
            "EUR",
            instant(2028, 12, 31, 23, 59, 59),
            None,
        ),
    )
    .await?;
    tx.commit().await?;
    assert_eq!(next_year.invoice_number, "INV-2028-000001");
    assert_eq!(next_year.invoiced_at.year(), 2028);
    let found = Invoices::find_by_number(&db, "INV-2028-000001")
        .await?
        .expect("stored");
    assert_eq!(found, next_year);
    assert_eq!(found.status, InvoiceStatus::Pending);

    // A year no invoice number can carry is refused before the counter moves.
    let tx = db.begin().await?;
    let err = Invoices::insert_numbered(
        &tx,
        new_invoice(
            b.user.id,
            b.plan.id,
            "EUR",
            instant(10_000, 1, 1, 0, 0, 0),
            None,
        ),
    )
    .await
    .expect_err("five-digit year");
    assert!(
        matches!(err, RepositoryError::InvalidValue { .. }),
        "{err:?}"
    );
    drop(tx);
    Ok(())
}
billing_test_support::test_on_each_backend!(rollback_returns_the_number);
