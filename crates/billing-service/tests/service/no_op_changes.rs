//! A change whose values equal the stored ones writes nothing: the version
//! and `updated_at` stay, so other clients' `If-Match` stays valid; a stale
//! expected version is still refused.

use billing_domain::entities::{
    currency, tarif_plan, tax, tax_rate, user, user_case, user_details,
};
use billing_domain::enums::{BillingPeriod, CaseStatus, UserRole, UserStatus};
use billing_repository::{Repository, TaxRates};
use billing_service::PageRequest;
use billing_service::{
    BillingError, CaseChanges, CurrencyChanges, NewCase, PlanChanges, TaxChanges, UserChanges,
    UserDetailsInput,
};
use chrono::{DateTime, Utc};

use crate::support::{Harness, dec, seed, service_test};

/// The version and `updated_at` of a stored row.
async fn stamp<E>(
    h: &Harness,
    id: i64,
    of: fn(&E::Model) -> (i32, DateTime<Utc>),
) -> (i32, DateTime<Utc>)
where
    E: billing_repository::Versioned,
{
    of(&Repository::<E>::get(h.billing.database(), id)
        .await
        .expect("the row exists"))
}

fn stale<T: std::fmt::Debug>(what: &str, result: Result<T, BillingError>) {
    assert!(
        matches!(result, Err(BillingError::VersionMismatch { .. })),
        "{what}: {result:?}"
    );
}

async fn unchanged_values_write_nothing(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let s = seed(b).await?;
    // Give every row a version above 1, so a stale version can be named.
    let user = b
        .update_user(
            s.user.id,
            UserChanges {
                status: Some(UserStatus::Active),
                ..UserChanges::default()
            },
            None,
        )
        .await?;
    let user_stamp = |u: &user::Model| (u.version, u.updated_at);
    let before = stamp::<user::Entity>(&h, user.id, user_stamp).await;
    for changes in [
        UserChanges::default(),
        UserChanges {
            status: Some(UserStatus::Active),
            role: Some(UserRole::User),
            email: Some("ADA@example.com".into()),
        },
    ] {
        let same = b.update_user(user.id, changes.clone(), Some(2)).await?;
        assert_eq!(same, user, "{changes:?}");
        assert_eq!(stamp::<user::Entity>(&h, user.id, user_stamp).await, before);
        stale("user", b.update_user(user.id, changes, Some(1)).await);
    }

    let input = UserDetailsInput {
        first_name: Some("Ada".into()),
        city: Some("London".into()),
        country_code: Some("gb".into()),
        ..UserDetailsInput::default()
    };
    b.put_user_details(user.id, input.clone(), None).await?;
    let details = b
        .put_user_details(user.id, UserDetailsInput::default(), None)
        .await?;
    let details = b
        .put_user_details(user.id, input.clone(), Some(details.version))
        .await?;
    let details_stamp = |d: &user_details::Model| (d.version, d.updated_at);
    let before = stamp::<user_details::Entity>(&h, details.id, details_stamp).await;
    let same = b.put_user_details(user.id, input.clone(), Some(3)).await?;
    assert_eq!(same, details);
    assert_eq!(
        stamp::<user_details::Entity>(&h, details.id, details_stamp).await,
        before
    );
    stale("details", b.put_user_details(user.id, input, Some(2)).await);

    let case = b
        .open_case(
            user.id,
            NewCase {
                subject: "Invoice".into(),
                description: "VAT missing".into(),
            },
        )
        .await?;
    let case = b
        .update_case(
            case.id,
            CaseChanges {
                status: Some(CaseStatus::InProgress),
                ..CaseChanges::default()
            },
            None,
        )
        .await?;
    let case_stamp = |c: &user_case::Model| (c.version, c.updated_at);
    let before = stamp::<user_case::Entity>(&h, case.id, case_stamp).await;
    let same_case = CaseChanges {
        status: Some(CaseStatus::InProgress),
        subject: Some(" Invoice ".into()),
        description: Some("VAT missing".into()),
    };
    assert_eq!(
        b.update_case(case.id, same_case.clone(), Some(2)).await?,
        case
    );
    assert_eq!(
        b.update_case(case.id, CaseChanges::default(), None).await?,
        case
    );
    assert_eq!(
        stamp::<user_case::Entity>(&h, case.id, case_stamp).await,
        before
    );
    stale("case", b.update_case(case.id, same_case, Some(1)).await);

    let plan = b
        .update_plan(
            s.plan.id,
            PlanChanges {
                sort_order: Some(3),
                ..PlanChanges::default()
            },
            None,
        )
        .await?;
    let plan_stamp = |p: &tarif_plan::Model| (p.version, p.updated_at);
    let before = stamp::<tarif_plan::Entity>(&h, plan.id, plan_stamp).await;
    let same_plan = PlanChanges {
        name: Some("PRO".into()),
        slug: Some("pro".into()),
        price: Some(dec("10")),
        currency: Some("eur".into()),
        billing_period: Some(BillingPeriod::Monthly),
        is_active: Some(true),
        sort_order: Some(3),
        ..PlanChanges::default()
    };
    assert_eq!(
        b.update_plan(plan.id, same_plan.clone(), Some(2)).await?,
        plan
    );
    assert_eq!(
        stamp::<tarif_plan::Entity>(&h, plan.id, plan_stamp).await,
        before
    );
    stale("plan", b.update_plan(plan.id, same_plan, Some(1)).await);

    let usd = b
        .update_currency(
            "USD",
            CurrencyChanges {
                exchange_rate: Some(dec("1.09")),
                ..CurrencyChanges::default()
            },
            None,
        )
        .await?;
    let currency_stamp = |c: &currency::Model| (c.version, c.updated_at);
    let before = stamp::<currency::Entity>(&h, usd.id, currency_stamp).await;
    let same_usd = CurrencyChanges {
        name: Some("US Dollar".into()),
        symbol: Some("$".into()),
        exchange_rate: Some(dec("1.090")),
        is_active: Some(true),
        is_default: None,
    };
    assert_eq!(
        b.update_currency("usd", same_usd.clone(), Some(2)).await?,
        usd
    );
    assert_eq!(
        stamp::<currency::Entity>(&h, usd.id, currency_stamp).await,
        before
    );
    stale(
        "currency",
        b.update_currency("USD", same_usd, Some(1)).await,
    );
    // Making the default currency the default again rebases nothing.
    let all_before = b.list_currencies(PageRequest::new(1, 100)?).await?.items;
    let eur = b
        .update_currency(
            "EUR",
            CurrencyChanges {
                is_default: Some(true),
                exchange_rate: Some(dec("1")),
                ..CurrencyChanges::default()
            },
            Some(s.eur.version),
        )
        .await?;
    assert_eq!(eur, s.eur);
    assert_eq!(
        b.list_currencies(PageRequest::new(1, 100)?).await?.items,
        all_before
    );

    let vat = b
        .update_tax(
            s.vat.id,
            TaxChanges {
                description: Some("Umsatzsteuer".into()),
                ..TaxChanges::default()
            },
            None,
        )
        .await?;
    let tax_stamp = |t: &tax::Model| (t.version, t.updated_at);
    let before = stamp::<tax::Entity>(&h, vat.id, tax_stamp).await;
    let rates_before: Vec<tax_rate::Model> = TaxRates::history(b.database(), vat.id).await?;
    let same_tax = TaxChanges {
        name: Some("German VAT".into()),
        description: Some("Umsatzsteuer".into()),
        rate: Some(dec("19")),
        country_code: Some("de".into()),
        region_code: None,
        is_inclusive: Some(vat.is_inclusive),
        is_active: Some(true),
    };
    assert_eq!(b.update_tax(vat.id, same_tax.clone(), Some(2)).await?, vat);
    assert_eq!(stamp::<tax::Entity>(&h, vat.id, tax_stamp).await, before);
    assert_eq!(TaxRates::history(b.database(), vat.id).await?, rates_before);
    stale("tax", b.update_tax(vat.id, same_tax, Some(1)).await);

    // A real change still writes, once.
    let changed = b
        .update_user(
            user.id,
            UserChanges {
                role: Some(UserRole::Admin),
                ..UserChanges::default()
            },
            Some(2),
        )
        .await?;
    assert_eq!(changed.version, 3);
    Ok(())
}

service_test!(unchanged_values_write_nothing);
