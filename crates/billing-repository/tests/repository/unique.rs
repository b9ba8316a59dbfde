//! Constraint violations become typed errors: `AlreadyExists { field }`,
//! `ReferencedRowMissing`, `StillReferenced`, `CheckViolation`.

use billing_domain::{PageRequest, Resource};
use billing_repository::{
    Currencies, Invoices, Plans, RepositoryError, Taxes, UserDetailsRepository, Users,
};
use billing_test_support::TestDatabase;
use sea_orm::ActiveValue::Set;

use billing_domain::entities::user_details;

use crate::common::{
    basics, insert_currency, insert_invoice_numbered, insert_plan, insert_tax, insert_user,
    new_currency, new_plan, new_tax, new_user, setup,
};

fn assert_already_exists<T: std::fmt::Debug>(
    result: Result<T, RepositoryError>,
    entity: &str,
    field: &str,
) {
    match result {
        Err(RepositoryError::AlreadyExists {
            entity: e,
            field: f,
        }) => assert_eq!((e.table(), f.as_str()), (entity, field)),
        other => panic!("expected AlreadyExists {{ {entity}, {field} }}, got {other:?}"),
    }
}

async fn unique_values_give_already_exists(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    let b = basics(&db).await?;

    insert_user(&db, "taken@example.com").await?;
    assert_already_exists(
        Users::insert(&db, new_user("taken@example.com")).await,
        "user",
        "email",
    );
    // The same address in other case is the same address once normalized.
    let normalized = billing_repository::normalize_email("  Taken@Example.COM ");
    assert_already_exists(
        Users::insert(&db, new_user(&normalized)).await,
        "user",
        "email",
    );
    // …and found case-insensitively.
    assert!(
        Users::find_by_email(&db, "TAKEN@example.com")
            .await?
            .is_some()
    );

    // Also on update.
    let other = insert_user(&db, "other@example.com").await?;
    let mut renamed = other.clone();
    renamed.email = "taken@example.com".into();
    assert_already_exists(
        Users::save(&db, &renamed, other.version).await,
        "user",
        "email",
    );
    assert_eq!(Users::get(&db, other.id).await?, other);

    insert_plan(&db, "pro", "EUR", 1).await?;
    assert_already_exists(
        Plans::insert(&db, new_plan("pro", "EUR", 2)).await,
        "tarif_plan",
        "slug",
    );

    assert_already_exists(
        Currencies::insert(&db, new_currency("EUR", false)).await,
        "currency",
        "code",
    );
    // At most one default currency.
    assert_already_exists(
        Currencies::insert(&db, new_currency("USD", true)).await,
        "currency",
        "is_default",
    );

    insert_tax(&db, "DE_VAT", "19.0000").await?;
    assert_already_exists(
        Taxes::insert(&db, new_tax("DE_VAT", "7.0000")).await,
        "tax",
        "code",
    );

    insert_invoice_numbered(&db, b.user.id, b.plan.id, "INV-2030-000001", None).await?;
    let duplicate =
        insert_invoice_numbered(&db, b.user.id, b.plan.id, "INV-2030-000001", None).await;
    match duplicate {
        Err(e) => match e.downcast::<RepositoryError>() {
            Ok(e) => assert_already_exists(Err::<(), _>(e), "user_invoice", "invoice_number"),
            Err(e) => panic!("unexpected {e}"),
        },
        Ok(invoice) => panic!("duplicate number stored: {invoice:?}"),
    }

    let details = user_details::ActiveModel {
        user_id: Set(b.user.id),
        first_name: Set(Some("Ada".into())),
        last_name: Set(None),
        phone: Set(None),
        company: Set(None),
        tax_id: Set(None),
        address_line1: Set(None),
        address_line2: Set(None),
        city: Set(None),
        postal_code: Set(None),
        country_code: Set(None),
        ..Default::default()
    };
    let stored = UserDetailsRepository::insert(&db, details.clone()).await?;
    assert_eq!(
        UserDetailsRepository::find_by_user(&db, b.user.id).await?,
        Some(stored)
    );
    assert_already_exists(
        UserDetailsRepository::insert(&db, details).await,
        "user_details",
        "user_id",
    );
    let _ = Invoices::find_all(&db, PageRequest::new(1, 1)?).await?;
    Ok(())
}
billing_test_support::test_on_each_backend!(unique_values_give_already_exists);

async fn references_and_checks(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    let eur = insert_currency(&db, "EUR", true).await?;

    // A plan in an unknown currency.
    let err = Plans::insert(&db, new_plan("nowhere", "XXX", 1))
        .await
        .expect_err("no XXX");
    assert!(
        matches!(
            err,
            RepositoryError::ReferencedRowMissing {
                entity: Resource::Plan,
                ..
            }
        ),
        "{err:?}"
    );

    // Details of a user that does not exist.
    let details = user_details::ActiveModel {
        user_id: Set(4242),
        first_name: Set(None),
        last_name: Set(None),
        phone: Set(None),
        company: Set(None),
        tax_id: Set(None),
        address_line1: Set(None),
        address_line2: Set(None),
        city: Set(None),
        postal_code: Set(None),
        country_code: Set(None),
        ..Default::default()
    };
    let err = UserDetailsRepository::insert(&db, details)
        .await
        .expect_err("no user 4242");
    assert!(
        matches!(
            err,
            RepositoryError::ReferencedRowMissing {
                entity: Resource::UserDetails,
                ..
            }
        ),
        "{err:?}"
    );

    // A currency still used by a plan cannot go.
    insert_plan(&db, "euro-plan", "EUR", 1).await?;
    let err = Currencies::delete(&db, eur.id, eur.version)
        .await
        .expect_err("in use");
    assert!(
        matches!(
            err,
            RepositoryError::StillReferenced {
                entity: Resource::Currency,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(Currencies::find_by_id(&db, eur.id).await?.is_some());

    // The schema stores e-mail addresses lower-case only.
    let err = Users::insert(&db, new_user("Upper@Example.com"))
        .await
        .expect_err("upper-case");
    assert!(
        matches!(
            err,
            RepositoryError::CheckViolation {
                entity: Resource::User,
                ..
            }
        ),
        "{err:?}"
    );
    Ok(())
}
billing_test_support::test_on_each_backend!(references_and_checks);
