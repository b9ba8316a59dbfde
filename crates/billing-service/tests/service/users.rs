//! Users, details and support cases.

use billing_domain::enums::{CaseStatus, UserRole, UserStatus};
use billing_service::{BillingError, CaseChanges, NewCase, NewUser, UserChanges, UserDetailsInput};
use billing_service::{PageRequest, Resource};

use crate::support::{Harness, service_test};

fn new_user(email: &str, password: &str) -> NewUser {
    NewUser {
        email: email.into(),
        password: password.into(),
        role: None,
    }
}

async fn registration_normalises_and_hides_the_hash(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let user = b
        .register_user(new_user("Grace@Example.COM", "a long password"))
        .await?;
    assert_eq!(user.email, "grace@example.com");
    assert_eq!(user.status, UserStatus::Pending);
    assert_eq!(user.role, UserRole::User);
    assert_eq!(user.version, 1);
    assert!(
        user.password_hash.0.starts_with("$argon2id$"),
        "argon2id hash"
    );
    let json = serde_json::to_string(&user)?;
    assert!(
        !json.contains("argon2") && !json.contains("password"),
        "hash serialised: {json}"
    );
    assert!(
        !format!("{user:?}").contains("argon2"),
        "hash in Debug output"
    );

    let taken = b
        .register_user(new_user("GRACE@example.com", "another password"))
        .await;
    assert!(
        matches!(taken, Err(BillingError::AlreadyExists { ref field, .. }) if field == "email"),
        "{taken:?}"
    );
    for (email, password) in [
        ("not-an-email", "long enough"),
        ("a@b.c", "short"),
        ("two@@x.io", "long enough"),
    ] {
        let refused = b.register_user(new_user(email, password)).await;
        assert!(
            matches!(refused, Err(BillingError::Validation { .. })),
            "{email}: {refused:?}"
        );
    }
    assert_eq!(
        b.list_users(None, None, PageRequest::new(1, 20)?)
            .await?
            .total,
        1,
        "refused users were written"
    );
    Ok(())
}

async fn user_changes_respect_versions(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let user = b
        .register_user(new_user("ann@example.com", "a long password"))
        .await?;
    let activate = UserChanges {
        status: Some(UserStatus::Active),
        role: Some(UserRole::Admin),
        ..UserChanges::default()
    };
    let changed = b.update_user(user.id, activate.clone(), Some(1)).await?;
    assert_eq!(
        (changed.status, changed.role, changed.version),
        (UserStatus::Active, UserRole::Admin, 2)
    );

    let stale = b
        .update_user(
            user.id,
            UserChanges {
                email: Some("x@example.com".into()),
                ..UserChanges::default()
            },
            Some(1),
        )
        .await;
    assert!(
        matches!(stale, Err(BillingError::VersionMismatch { current: 2, .. })),
        "{stale:?}"
    );
    assert_eq!(
        b.user(user.id).await?.email,
        "ann@example.com",
        "a stale change was written"
    );

    let listed = b
        .list_users(
            Some(UserStatus::Active),
            Some(UserRole::Admin),
            PageRequest::new(1, 20)?,
        )
        .await?;
    assert_eq!(
        listed.items.iter().map(|u| u.id).collect::<Vec<_>>(),
        [user.id]
    );

    b.put_user_details(
        user.id,
        UserDetailsInput {
            last_name: Some("Lovelace".into()),
            ..UserDetailsInput::default()
        },
        None,
    )
    .await?;
    let stale_delete = b.delete_user(user.id, Some(1)).await;
    assert!(
        matches!(stale_delete, Err(BillingError::VersionMismatch { .. })),
        "{stale_delete:?}"
    );
    b.delete_user(user.id, Some(2)).await?;
    assert!(
        matches!(
            b.user_details(user.id).await,
            Err(BillingError::NotFound { .. })
        ),
        "deleting a user erases their details"
    );
    let deleted = b.user(user.id).await?;
    assert_eq!(deleted.status, UserStatus::Deleted);
    assert!(
        !deleted.email.contains("ann"),
        "the e-mail was kept: {}",
        deleted.email
    );
    let revive = b
        .update_user(
            user.id,
            UserChanges {
                status: Some(UserStatus::Active),
                ..UserChanges::default()
            },
            None,
        )
        .await;
    assert!(
        matches!(revive, Err(BillingError::InvalidTransition { .. })),
        "{revive:?}"
    );
    // The address is free again.
    b.register_user(new_user("ann@example.com", "a long password"))
        .await?;
    Ok(())
}

async fn details_are_kept_apart_and_erasable(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let user = b
        .register_user(new_user("bob@example.com", "a long password"))
        .await?;
    assert!(matches!(
        b.user_details(user.id).await,
        Err(BillingError::NotFound { .. })
    ));
    let input = UserDetailsInput {
        first_name: Some("Bob".into()),
        city: Some(" Berlin ".into()),
        country_code: Some("de".into()),
        ..UserDetailsInput::default()
    };
    let details = b.put_user_details(user.id, input.clone(), None).await?;
    assert_eq!(
        (details.city.as_deref(), details.country_code.as_deref()),
        (Some("Berlin"), Some("DE"))
    );
    let replaced = b
        .put_user_details(
            user.id,
            UserDetailsInput {
                first_name: Some("Robert".into()),
                ..UserDetailsInput::default()
            },
            Some(1),
        )
        .await?;
    assert_eq!(
        (
            replaced.first_name.as_deref(),
            replaced.city.as_deref(),
            replaced.version
        ),
        (Some("Robert"), None, 2)
    );

    let bad = b
        .put_user_details(
            user.id,
            UserDetailsInput {
                country_code: Some("XX".into()),
                ..input
            },
            None,
        )
        .await;
    assert!(
        matches!(bad, Err(BillingError::Validation { .. })),
        "{bad:?}"
    );
    assert!(matches!(
        b.put_user_details(999_999, UserDetailsInput::default(), None)
            .await,
        Err(BillingError::NotFound { .. })
    ));

    // Each field is bounded by its column; nothing is written when one is
    // too long.
    for too_long in [
        UserDetailsInput {
            first_name: Some("x".repeat(101)),
            ..UserDetailsInput::default()
        },
        UserDetailsInput {
            phone: Some("1".repeat(51)),
            ..UserDetailsInput::default()
        },
        UserDetailsInput {
            postal_code: Some("1".repeat(21)),
            ..UserDetailsInput::default()
        },
    ] {
        let refused = b.put_user_details(user.id, too_long, None).await;
        assert!(
            matches!(refused, Err(BillingError::Validation { .. })),
            "{refused:?}"
        );
    }
    let longest = b
        .put_user_details(
            user.id,
            UserDetailsInput {
                first_name: Some("é".repeat(100)),
                postal_code: Some("1".repeat(20)),
                ..UserDetailsInput::default()
            },
            Some(2),
        )
        .await?;
    assert_eq!(longest.version, 3);

    let stale = b.erase_user_details(user.id, Some(2)).await;
    assert!(
        matches!(
            stale,
            Err(BillingError::VersionMismatch {
                resource: Resource::UserDetails,
                current: 3
            })
        ),
        "{stale:?}"
    );
    assert_eq!(b.user_details(user.id).await?.version, 3, "erased anyway");
    b.erase_user_details(user.id, Some(3)).await?;
    assert!(matches!(
        b.user_details(user.id).await,
        Err(BillingError::NotFound { .. })
    ));
    b.erase_user_details(user.id, None).await?;
    Ok(())
}

async fn support_cases_follow_their_rules(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let user = b
        .register_user(new_user("cy@example.com", "a long password"))
        .await?;
    let case = b
        .open_case(
            user.id,
            NewCase {
                subject: "Invoice wrong".into(),
                description: "The VAT is missing".into(),
            },
        )
        .await?;
    assert_eq!(case.status, CaseStatus::Open);
    let empty = b
        .open_case(
            user.id,
            NewCase {
                subject: " ".into(),
                description: "x".into(),
            },
        )
        .await;
    assert!(
        matches!(empty, Err(BillingError::Validation { .. })),
        "{empty:?}"
    );

    let progressing = b
        .update_case(
            case.id,
            CaseChanges {
                status: Some(CaseStatus::InProgress),
                ..CaseChanges::default()
            },
            Some(1),
        )
        .await?;
    assert_eq!(progressing.status, CaseStatus::InProgress);
    b.update_case(
        case.id,
        CaseChanges {
            status: Some(CaseStatus::Closed),
            ..CaseChanges::default()
        },
        None,
    )
    .await?;
    let reopen = b
        .update_case(
            case.id,
            CaseChanges {
                status: Some(CaseStatus::Open),
                ..CaseChanges::default()
            },
            None,
        )
        .await;
    assert!(
        matches!(reopen, Err(BillingError::InvalidTransition { .. })),
        "{reopen:?}"
    );

    let listed = b
        .list_cases(user.id, None, PageRequest::new(1, 20)?)
        .await?;
    assert_eq!(
        (listed.total, listed.items[0].status),
        (1, CaseStatus::Closed)
    );
    assert_eq!(
        b.list_cases(user.id, Some(CaseStatus::Open), PageRequest::new(1, 20)?)
            .await?
            .total,
        0
    );
    Ok(())
}

service_test!(
    registration_normalises_and_hides_the_hash,
    user_changes_respect_versions,
    details_are_kept_apart_and_erasable,
    support_cases_follow_their_rules,
);
