//! Erasing a user: both paths to `deleted` (`delete_user` and a status
//! change to `deleted`) erase the same personal data in one step, and a
//! deleted user is read-only for good.

use billing_domain::entities::{subscription, user, user_case, user_details, user_invoice};
use billing_domain::enums::{CaseStatus, UserStatus};
use billing_repository::{Invoices, Subscriptions, UserCases, UserDetailsRepository, Users};
use billing_service::PageRequest;
use billing_service::{
    BillingError, CaseChanges, NewCase, NewInvoice, NewSubscription, NewUser, UserChanges,
    UserDetailsInput,
};

use crate::support::{Harness, seed, service_test};

/// Personal data of the user under test: none of it may survive erasure.
/// (Text, not bare digits, which a timestamp might contain by chance.)
const SECRETS: [&str; 10] = [
    "grace",
    "hopper",
    "card ending 4242",
    "4111 1111 1111 4242",
    "+1 703 555 0123",
    "navy",
    "de123456789",
    "arlington",
    "sw1a 9zz",
    "wilson blvd",
];

/// Every row that belongs to user `id`, as stored.
#[derive(Debug, PartialEq)]
struct Rows {
    user: user::Model,
    details: Option<user_details::Model>,
    cases: Vec<user_case::Model>,
    subscriptions: Vec<subscription::Model>,
    invoices: Vec<user_invoice::Model>,
}

async fn rows_of(h: &Harness, id: i64) -> anyhow::Result<Rows> {
    let db = h.billing.database();
    Ok(Rows {
        user: Users::get(db, id).await?,
        details: UserDetailsRepository::find_by_user(db, id).await?,
        cases: UserCases::by_user(db, id, None, PageRequest::new(1, 100)?)
            .await?
            .items,
        subscriptions: Subscriptions::by_user(db, id, PageRequest::new(1, 100)?)
            .await?
            .items,
        invoices: Invoices::by_user(db, id, None, PageRequest::new(1, 100)?)
            .await?
            .items,
    })
}

/// A user with an e-mail, a password, details, two cases (one closed) full
/// of personal data, a subscription and an invoice.
async fn user_with_personal_data(h: &Harness, email: &str) -> anyhow::Result<user::Model> {
    let b = &h.billing;
    let s = seed(b).await?;
    let user = b
        .register_user(NewUser {
            email: email.into(),
            password: "correct horse battery".into(),
            role: None,
        })
        .await?;
    b.put_user_details(
        user.id,
        UserDetailsInput {
            first_name: Some("Grace".into()),
            last_name: Some("Hopper".into()),
            phone: Some("+1 703 555 0123".into()),
            company: Some("US Navy".into()),
            tax_id: Some("DE123456789".into()),
            address_line1: Some("1000 Wilson Blvd".into()),
            address_line2: None,
            city: Some("Arlington".into()),
            postal_code: Some("SW1A 9ZZ".into()),
            country_code: Some("US".into()),
        },
        None,
    )
    .await?;
    let open = b
        .open_case(
            user.id,
            NewCase {
                subject: "Card ending 4242 charged twice".into(),
                description: "Grace Hopper here: card 4111 1111 1111 4242, call +1 703 555 0123"
                    .into(),
            },
        )
        .await?;
    let closed = b
        .open_case(
            user.id,
            NewCase {
                subject: "Address change".into(),
                description: "I moved to 1000 Wilson Blvd, Arlington SW1A 9ZZ".into(),
            },
        )
        .await?;
    b.update_case(
        closed.id,
        CaseChanges {
            status: Some(CaseStatus::Closed),
            ..CaseChanges::default()
        },
        None,
    )
    .await?;
    let sub = b
        .subscribe(NewSubscription {
            user_id: user.id,
            plan_id: s.plan.id,
        })
        .await?;
    b.create_invoice(NewInvoice {
        user_id: user.id,
        plan_id: s.plan.id,
        subscription_id: Some(sub.id),
        currency: None,
        tax_code: None,
    })
    .await?;
    let rows = rows_of(h, user.id).await?;
    assert!(rows.details.is_some() && rows.cases.len() == 2);
    assert_eq!(rows.cases[0].id, open.id);
    assert_personal_data_present(&rows)?;
    Ok(user)
}

/// Guards the erasure check against passing vacuously: before erasure the
/// same rows do contain every secret.
fn assert_personal_data_present(rows: &Rows) -> anyhow::Result<()> {
    let text = stored_text(rows)?;
    for secret in SECRETS {
        assert!(text.contains(secret), "{secret} missing before erasure");
    }
    assert!(rows.user.password_hash.0.starts_with("$argon2id$"));
    Ok(())
}

/// All stored text of the rows (the password hash apart), lower-case.
fn stored_text(rows: &Rows) -> anyhow::Result<String> {
    Ok(serde_json::to_string(&(
        &rows.user,
        &rows.details,
        &rows.cases,
        &rows.subscriptions,
        &rows.invoices,
    ))?
    .to_lowercase())
}

fn assert_erased(rows: &Rows) -> anyhow::Result<()> {
    assert_eq!(rows.user.status, UserStatus::Deleted);
    assert_eq!(rows.details, None, "the details survived");
    let text = stored_text(rows)?;
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret} survived: {text}");
    }
    assert!(rows.user.email.ends_with(".invalid"), "{}", rows.user.email);
    assert!(
        !rows.user.password_hash.0.starts_with('$'),
        "the password hash survived"
    );
    assert_eq!(rows.cases.len(), 2, "the cases are kept, erased");
    for case in &rows.cases {
        assert_eq!(case.status, CaseStatus::Closed, "{case:?}");
    }
    Ok(())
}

/// Every change of a deleted user is refused with `InvalidTransition`, and
/// none writes anything.
async fn assert_read_only(h: &Harness, id: i64) -> anyhow::Result<()> {
    let b = &h.billing;
    let before = rows_of(h, id).await?;
    let refused = |what: &str, result: Result<(), BillingError>| {
        assert!(
            matches!(result, Err(BillingError::InvalidTransition { .. })),
            "{what}: {result:?}"
        );
    };
    for changes in [
        UserChanges {
            email: Some("grace@example.com".into()),
            ..UserChanges::default()
        },
        UserChanges {
            status: Some(UserStatus::Active),
            ..UserChanges::default()
        },
        UserChanges {
            status: Some(UserStatus::Deleted),
            ..UserChanges::default()
        },
        UserChanges::default(),
    ] {
        let what = format!("{changes:?}");
        refused(&what, b.update_user(id, changes, None).await.map(drop));
    }
    refused(
        "details",
        b.put_user_details(
            id,
            UserDetailsInput {
                first_name: Some("Grace".into()),
                ..UserDetailsInput::default()
            },
            None,
        )
        .await
        .map(drop),
    );
    refused(
        "new case",
        b.open_case(
            id,
            NewCase {
                subject: "Card 4242".into(),
                description: "call me".into(),
            },
        )
        .await
        .map(drop),
    );
    for case in &before.cases {
        refused(
            "case change",
            b.update_case(
                case.id,
                CaseChanges {
                    description: Some("card 4242".into()),
                    ..CaseChanges::default()
                },
                None,
            )
            .await
            .map(drop),
        );
    }
    let plan = before.subscriptions[0].tarif_plan_id;
    refused(
        "new subscription",
        b.subscribe(NewSubscription {
            user_id: id,
            plan_id: plan,
        })
        .await
        .map(drop),
    );
    refused(
        "new invoice",
        b.create_invoice(NewInvoice {
            user_id: id,
            plan_id: plan,
            subscription_id: None,
            currency: None,
            tax_code: None,
        })
        .await
        .map(drop),
    );
    // Deleting again and erasing the (absent) details succeed, writing nothing.
    b.delete_user(id, None).await?;
    b.erase_user_details(id, None).await?;
    assert_eq!(rows_of(h, id).await?, before, "a deleted user was changed");
    Ok(())
}

async fn deleting_a_user_erases_everything_personal(h: Harness) -> anyhow::Result<()> {
    let user = user_with_personal_data(&h, "Grace.Hopper@navy.example").await?;
    h.billing.delete_user(user.id, None).await?;
    assert_erased(&rows_of(&h, user.id).await?)?;
    assert_read_only(&h, user.id).await
}

async fn the_deleted_status_erases_the_same(h: Harness) -> anyhow::Result<()> {
    let user = user_with_personal_data(&h, "grace@navy.example").await?;
    let stale = h
        .billing
        .update_user(
            user.id,
            UserChanges {
                status: Some(UserStatus::Deleted),
                ..UserChanges::default()
            },
            Some(user.version + 1),
        )
        .await;
    assert!(
        matches!(stale, Err(BillingError::VersionMismatch { .. })),
        "{stale:?}"
    );
    assert_personal_data_present(&rows_of(&h, user.id).await?)?;

    let deleted = h
        .billing
        .update_user(
            user.id,
            UserChanges {
                status: Some(UserStatus::Deleted),
                ..UserChanges::default()
            },
            Some(user.version),
        )
        .await?;
    assert_eq!(deleted.status, UserStatus::Deleted);
    let rows = rows_of(&h, user.id).await?;
    assert_eq!(rows.user, deleted);
    assert_erased(&rows)?;
    assert_read_only(&h, user.id).await
}

service_test!(
    deleting_a_user_erases_everything_personal,
    the_deleted_status_erases_the_same,
);
