//! Transactions: several repository calls commit or roll back as a whole.

use billing_domain::Resource;
use billing_domain::enums::{InvoiceStatus, SubscriptionStatus};
use billing_repository::{Invoices, Plans, RepositoryError, Subscriptions, Users};
use billing_test_support::TestDatabase;
use chrono::{Duration, Utc};

use crate::common::{basics, insert_subscription, new_invoice, new_plan, new_user, setup};

async fn failing_transaction_leaves_nothing(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    basics(&db).await?;

    // Fails half-way: the user and the first plan were written, the second
    // plan refers to an unknown currency.
    let result = db
        .transaction(|tx| {
            Box::pin(async move {
                Users::insert(tx, new_user("half@example.com")).await?;
                Plans::insert(tx, new_plan("half-1", "EUR", 1)).await?;
                Plans::insert(tx, new_plan("half-2", "XXX", 2)).await?;
                Ok::<_, RepositoryError>(())
            })
        })
        .await;
    assert!(
        matches!(
            result,
            Err(RepositoryError::ReferencedRowMissing {
                entity: Resource::Plan,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(
        Users::find_by_email(&db, "half@example.com")
            .await?
            .is_none()
    );
    assert!(Plans::find_by_slug(&db, "half-1").await?.is_none());

    // The closure's own error also rolls back.
    #[derive(Debug)]
    enum AppError {
        Rejected,
        Repo(RepositoryError),
    }
    impl From<RepositoryError> for AppError {
        fn from(e: RepositoryError) -> Self {
            Self::Repo(e)
        }
    }
    let result: Result<(), AppError> = db
        .transaction(|tx| {
            Box::pin(async move {
                Users::insert(tx, new_user("rejected@example.com")).await?;
                Err(AppError::Rejected)
            })
        })
        .await;
    assert!(matches!(result, Err(AppError::Rejected)));
    assert!(
        Users::find_by_email(&db, "rejected@example.com")
            .await?
            .is_none()
    );
    if let Err(AppError::Repo(e)) = result {
        panic!("unexpected {e}");
    }

    // A panic rolls back as well.
    let db2 = db.clone();
    let panicked = tokio::spawn(async move {
        db2.transaction(|tx| {
            Box::pin(async move {
                Users::insert(tx, new_user("panic@example.com")).await?;
                panic!("half-way");
                #[allow(unreachable_code)]
                Ok::<_, RepositoryError>(())
            })
        })
        .await
    })
    .await;
    assert!(panicked.is_err());
    assert!(
        Users::find_by_email(&db, "panic@example.com")
            .await?
            .is_none()
    );

    // A dropped transaction rolls back.
    let tx = db.begin().await?;
    Users::insert(&tx, new_user("dropped@example.com")).await?;
    drop(tx);
    assert!(
        Users::find_by_email(&db, "dropped@example.com")
            .await?
            .is_none()
    );

    // And a committed one keeps everything.
    let tx = db.begin().await?;
    let user = Users::insert(&tx, new_user("kept@example.com")).await?;
    Plans::insert(&tx, new_plan("kept", "EUR", 3)).await?;
    tx.commit().await?;
    assert_eq!(
        Users::find_by_email(&db, "kept@example.com").await?,
        Some(user)
    );
    assert!(Plans::find_by_slug(&db, "kept").await?.is_some());
    Ok(())
}
billing_test_support::test_on_each_backend!(failing_transaction_leaves_nothing);

/// Paying an invoice and activating its subscription happen together: a
/// stale subscription makes the payment roll back too.
async fn pay_and_activate_together(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    let b = basics(&db).await?;
    let sub =
        insert_subscription(&db, b.user.id, b.plan.id, SubscriptionStatus::Pending, None).await?;
    let tx = db.begin().await?;
    let mut invoice = new_invoice(b.user.id, b.plan.id, "EUR", Utc::now(), None);
    invoice.subscription_id = sea_orm::ActiveValue::Set(Some(sub.id));
    let invoice = Invoices::insert_numbered(&tx, invoice).await?;
    tx.commit().await?;

    // Someone changes the subscription after we read it.
    let read_sub = sub.clone();
    let mut meanwhile = sub.clone();
    meanwhile.status = SubscriptionStatus::Cancelled;
    Subscriptions::save(&db, &meanwhile, sub.version).await?;

    let pay = |sub_version_source: billing_domain::entities::subscription::Model| {
        let invoice = invoice.clone();
        let db = db.clone();
        async move {
            db.transaction(move |tx| {
                Box::pin(async move {
                    let now = billing_repository::now();
                    let mut paid = invoice.clone();
                    paid.status = InvoiceStatus::Paid;
                    paid.paid_at = Some(now);
                    paid.payment_method = Some("card".into());
                    let paid = Invoices::save(tx, &paid, invoice.version).await?;
                    let mut active = sub_version_source.clone();
                    active.status = SubscriptionStatus::Active;
                    active.started_at = Some(now);
                    active.expires_at = Some(now + Duration::days(30));
                    let active =
                        Subscriptions::save(tx, &active, sub_version_source.version).await?;
                    Ok::<_, RepositoryError>((paid, active))
                })
            })
            .await
        }
    };

    let err = pay(read_sub).await.expect_err("the subscription changed");
    assert!(err.is_concurrent_modification(), "{err:?}");
    let unpaid = Invoices::get(&db, invoice.id).await?;
    assert_eq!(
        unpaid, invoice,
        "the payment was rolled back with the activation"
    );

    let current = Subscriptions::get(&db, sub.id).await?;
    let (paid, active) = pay(current.clone()).await?;
    assert_eq!(paid.status, InvoiceStatus::Paid);
    assert_eq!(active.status, SubscriptionStatus::Active);
    assert_eq!(Invoices::get(&db, invoice.id).await?, paid);
    assert_eq!(Subscriptions::get(&db, sub.id).await?, active);
    Ok(())
}
billing_test_support::test_on_each_backend!(pay_and_activate_together);
