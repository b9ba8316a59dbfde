//! The entity queries, including time windows compared correctly on both
//! backends for whole-second and fractional instants (SQLite stores
//! timestamps as RFC 3339 text).

use billing_domain::PageRequest;
use billing_domain::entities::user_case;
use billing_domain::enums::{CaseStatus, InvoiceStatus, SubscriptionStatus, UserRole, UserStatus};
use billing_repository::{
    Currencies, Invoices, PlanFilter, Plans, Subscriptions, TaxRates, Taxes, UserCases, Users,
};
use billing_test_support::TestDatabase;
use chrono::{DateTime, Duration, Utc};
use sea_orm::ActiveValue::Set;

use crate::common::{
    basics, dec, insert_currency, insert_invoice_numbered, insert_plan, insert_subscription,
    insert_tax, insert_user, instant, new_tax_rate, setup,
};

fn ms(n: i64) -> Duration {
    Duration::milliseconds(n)
}

fn us(n: i64) -> Duration {
    Duration::microseconds(n)
}

async fn users_by_email_status_and_role(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    let ada = insert_user(&db, "ada@example.com").await?;
    let bob = insert_user(&db, "bob@example.com").await?;
    let eve = insert_user(&db, "eve@example.com").await?;
    let mut admin = bob.clone();
    admin.role = UserRole::Admin;
    admin.status = UserStatus::Active;
    let bob = Users::save(&db, &admin, bob.version).await?;
    let mut active = eve.clone();
    active.status = UserStatus::Active;
    let eve = Users::save(&db, &active, eve.version).await?;

    assert_eq!(
        Users::find_by_email(&db, "ADA@Example.Com").await?,
        Some(ada.clone())
    );
    assert_eq!(
        Users::find_by_email(&db, " ada@example.com ").await?,
        Some(ada.clone())
    );
    assert!(
        Users::find_by_email(&db, "nobody@example.com")
            .await?
            .is_none()
    );

    let all = Users::list(&db, None, None, PageRequest::new(1, 20)?).await?;
    assert_eq!(all.total, 3);
    let active = Users::list(
        &db,
        Some(UserStatus::Active),
        None,
        PageRequest::new(1, 20)?,
    )
    .await?;
    assert_eq!(active.items, vec![bob.clone(), eve.clone()]);
    let admins = Users::list(
        &db,
        Some(UserStatus::Active),
        Some(UserRole::Admin),
        PageRequest::new(1, 20)?,
    )
    .await?;
    assert_eq!(admins.items, vec![bob]);
    let pending_users = Users::list(
        &db,
        Some(UserStatus::Pending),
        Some(UserRole::User),
        PageRequest::new(1, 20)?,
    )
    .await?;
    assert_eq!(pending_users.items, vec![ada]);
    Ok(())
}
billing_test_support::test_on_each_backend!(users_by_email_status_and_role);

async fn subscription_queries_and_time_windows(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    let b = basics(&db).await?;
    let other = insert_user(&db, "other@example.com").await?;
    let t: DateTime<Utc> = instant(2030, 1, 1, 0, 0, 0);

    let (u, p) = (b.user.id, b.plan.id);
    let a = insert_subscription(&db, u, p, SubscriptionStatus::Active, Some(t)).await?;
    let half =
        insert_subscription(&db, u, p, SubscriptionStatus::Active, Some(t + ms(500))).await?;
    let one = insert_subscription(
        &db,
        other.id,
        p,
        SubscriptionStatus::Active,
        Some(t + ms(1000)),
    )
    .await?;
    let later =
        insert_subscription(&db, u, p, SubscriptionStatus::Active, Some(t + ms(1250))).await?;
    let tiny = insert_subscription(
        &db,
        other.id,
        p,
        SubscriptionStatus::Active,
        Some(t + us(1)),
    )
    .await?;
    let paused =
        insert_subscription(&db, u, p, SubscriptionStatus::Paused, Some(t + ms(500))).await?;
    let pending = insert_subscription(&db, u, p, SubscriptionStatus::Pending, None).await?;

    let ids = |subs: Vec<billing_domain::entities::subscription::Model>| -> Vec<i64> {
        subs.into_iter().map(|s| s.id).collect()
    };
    // [t + 0.5 s, t + 1 s): only the half-second one.
    assert_eq!(
        ids(Subscriptions::expiring_between(&db, t + ms(500), t + ms(1000)).await?),
        vec![half.id]
    );
    // [t, t + 1.25 s): whole and fractional, soonest first; the end is open.
    assert_eq!(
        ids(Subscriptions::expiring_between(&db, t, t + ms(1250)).await?),
        vec![a.id, tiny.id, half.id, one.id]
    );
    // [t + 1 µs, t + 1 s + 1 µs): `a` (exactly t) is before the window.
    assert_eq!(
        ids(Subscriptions::expiring_between(&db, t + us(1), t + ms(1000) + us(1)).await?),
        vec![tiny.id, half.id, one.id]
    );
    // [t + 1.25 s, ∞)
    assert_eq!(
        ids(Subscriptions::expiring_between(&db, t + ms(1250), t + Duration::days(1)).await?),
        vec![later.id]
    );

    let mine = Subscriptions::by_user(&db, u, PageRequest::new(1, 100)?).await?;
    assert_eq!(mine.total, 5);
    assert_eq!(
        ids(Subscriptions::active_for_user(&db, u).await?),
        vec![a.id, half.id, later.id]
    );
    let paused_page =
        Subscriptions::by_status(&db, SubscriptionStatus::Paused, PageRequest::new(1, 10)?).await?;
    assert_eq!(ids(paused_page.items), vec![paused.id]);
    let pending_page =
        Subscriptions::by_status(&db, SubscriptionStatus::Pending, PageRequest::new(1, 10)?)
            .await?;
    assert_eq!(ids(pending_page.items), vec![pending.id]);
    Ok(())
}
billing_test_support::test_on_each_backend!(subscription_queries_and_time_windows);

async fn invoice_queries(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    let b = basics(&db).await?;
    let t = instant(2030, 6, 1, 12, 0, 0);
    let (u, p) = (b.user.id, b.plan.id);
    let whole = insert_invoice_numbered(&db, u, p, "INV-2030-000001", Some(t)).await?;
    let half = insert_invoice_numbered(&db, u, p, "INV-2030-000002", Some(t + ms(500))).await?;
    let at_now = insert_invoice_numbered(&db, u, p, "INV-2030-000003", Some(t + ms(1000))).await?;
    let never = insert_invoice_numbered(&db, u, p, "INV-2030-000004", None).await?;
    let mut paid = insert_invoice_numbered(&db, u, p, "INV-2030-000005", Some(t - ms(1))).await?;
    let version = paid.version;
    paid.status = InvoiceStatus::Paid;
    let paid = Invoices::save(&db, &paid, version).await?;

    let past = Invoices::pending_past_expiry(&db, t + ms(1000), 100).await?;
    let ids: Vec<_> = past.iter().map(|i| i.id).collect();
    assert_eq!(
        ids,
        vec![whole.id, half.id],
        "strictly before now, pending only"
    );
    let past = Invoices::pending_past_expiry(&db, t + ms(1000) + us(1), 1).await?;
    assert_eq!(past.len(), 1, "limit");
    let past = Invoices::pending_past_expiry(&db, t + ms(1000) + us(1), 10).await?;
    assert_eq!(past.len(), 3);
    assert!(past.iter().any(|i| i.id == at_now.id));

    assert_eq!(
        Invoices::find_by_number(&db, "INV-2030-000002").await?,
        Some(half)
    );
    assert!(
        Invoices::find_by_number(&db, "INV-2030-999999")
            .await?
            .is_none()
    );
    let pending = Invoices::by_user(
        &db,
        u,
        Some(InvoiceStatus::Pending),
        PageRequest::new(1, 20)?,
    )
    .await?;
    assert_eq!(pending.total, 4);
    assert_eq!(
        pending.items.first().map(|i| i.id),
        Some(never.id),
        "newest first"
    );
    let paid_page =
        Invoices::by_user(&db, u, Some(InvoiceStatus::Paid), PageRequest::new(1, 20)?).await?;
    assert_eq!(paid_page.items, vec![paid]);
    assert_eq!(
        Invoices::by_user(&db, u, None, PageRequest::new(1, 20)?)
            .await?
            .total,
        5
    );
    Ok(())
}
billing_test_support::test_on_each_backend!(invoice_queries);

async fn plans_currencies_taxes_cases(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    assert!(Currencies::find_default(&db).await?.is_none());
    let eur = insert_currency(&db, "EUR", true).await?;
    insert_currency(&db, "USD", false).await?;
    assert_eq!(Currencies::find_default(&db).await?, Some(eur.clone()));
    assert_eq!(Currencies::find_by_code(&db, "eur").await?, Some(eur));
    assert!(Currencies::find_by_code(&db, "GBP").await?.is_none());

    let third = insert_plan(&db, "c-third", "EUR", 30).await?;
    let first = insert_plan(&db, "a-first", "USD", 10).await?;
    let second = insert_plan(&db, "b-second", "EUR", 20).await?;
    let mut hidden = insert_plan(&db, "hidden", "EUR", 0).await?;
    let version = hidden.version;
    hidden.is_active = false;
    let hidden = Plans::save(&db, &hidden, version).await?;
    let active: Vec<_> = Plans::active_by_sort_order(&db)
        .await?
        .into_iter()
        .map(|p| p.slug)
        .collect();
    assert_eq!(active, ["a-first", "b-second", "c-third"]);
    let all = Plans::list(&db, PlanFilter::All, PageRequest::new(1, 20)?).await?;
    assert_eq!(all.items.first(), Some(&hidden));
    assert_eq!(
        Plans::list(&db, PlanFilter::ActiveOnly, PageRequest::new(1, 20)?)
            .await?
            .items,
        vec![first, second, third.clone()]
    );
    assert_eq!(Plans::find_by_slug(&db, "c-third").await?, Some(third));

    // Rates on [valid_from, valid_to), with fractional boundaries.
    let t = instant(2030, 1, 1, 0, 0, 0);
    let tax = insert_tax(&db, "DE_VAT", "19.0000").await?;
    let r0 = TaxRates::insert(
        &db,
        new_tax_rate(
            tax.id,
            "16.0000",
            t - Duration::days(365),
            Some(t + ms(500)),
        ),
    )
    .await?;
    let r1 = TaxRates::insert(
        &db,
        new_tax_rate(tax.id, "17.5000", t + ms(500), Some(t + ms(1000))),
    )
    .await?;
    let r2 = TaxRates::insert(&db, new_tax_rate(tax.id, "19.0000", t + ms(1000), None)).await?;
    let rate_at = |at| {
        let db = db.clone();
        async move {
            TaxRates::in_force_at(&db, tax.id, at)
                .await
                .map(|r| r.map(|r| r.id))
        }
    };
    assert_eq!(rate_at(t - Duration::days(366)).await?, None);
    assert_eq!(rate_at(t).await?, Some(r0.id));
    assert_eq!(rate_at(t + ms(500) - us(1)).await?, Some(r0.id));
    assert_eq!(rate_at(t + ms(500)).await?, Some(r1.id));
    assert_eq!(rate_at(t + ms(1000) - us(1)).await?, Some(r1.id));
    assert_eq!(rate_at(t + ms(1000)).await?, Some(r2.id));
    assert_eq!(rate_at(t + Duration::days(3650)).await?, Some(r2.id));
    let with_rate = Taxes::find_by_code_with_rate_at(&db, "DE_VAT", t + ms(750))
        .await?
        .expect("tax");
    assert_eq!(with_rate.tax, tax);
    assert_eq!(with_rate.rate.as_ref().map(|r| r.rate), Some(dec("17.5")));
    assert!(
        Taxes::find_by_code_with_rate_at(&db, "FR_VAT", t)
            .await?
            .is_none()
    );
    assert_eq!(TaxRates::open_rate(&db, tax.id).await?, Some(r2.clone()));
    let history: Vec<_> = TaxRates::history(&db, tax.id)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(history, vec![r2.id, r1.id, r0.id]);
    // At most one open rate per tax.
    let err = TaxRates::insert(&db, new_tax_rate(tax.id, "20.0000", t + ms(2000), None))
        .await
        .expect_err("two open rates");
    assert!(
        matches!(err, billing_repository::RepositoryError::AlreadyExists { ref field, .. } if field == "tax_id"),
        "{err:?}"
    );
    assert_eq!(Taxes::list(&db, PageRequest::new(1, 10)?).await?.total, 1);

    let user = insert_user(&db, "case@example.com").await?;
    let mut ids = Vec::new();
    for (subject, status) in [
        ("one", CaseStatus::Open),
        ("two", CaseStatus::Resolved),
        ("three", CaseStatus::Open),
    ] {
        let case = UserCases::insert(
            &db,
            user_case::ActiveModel {
                user_id: Set(user.id),
                subject: Set(subject.into()),
                description: Set(format!("about {subject}")),
                status: Set(status),
                ..Default::default()
            },
        )
        .await?;
        ids.push(case.id);
    }
    let cases = UserCases::by_user(&db, user.id, None, PageRequest::new(1, 2)?).await?;
    assert_eq!((cases.total, cases.items.len()), (3, 2));
    let open: Vec<_> = UserCases::by_user(
        &db,
        user.id,
        Some(CaseStatus::Open),
        PageRequest::new(1, 20)?,
    )
    .await?
    .items
    .into_iter()
    .map(|c| c.id)
    .collect();
    assert_eq!(open, vec![ids[0], ids[2]]);
    Ok(())
}
billing_test_support::test_on_each_backend!(plans_currencies_taxes_cases);
