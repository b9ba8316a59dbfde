//! The catalogue cache over two instances (two `Billing`s on one database
//! and one coordination backend): a write is read at once on the instance
//! that made it and, on the other, by any read that starts more than
//! `catalogue_refresh` later; an unreachable coordination backend sends
//! every read to the database; invoices are priced from the rows of their
//! own transaction, never from a cached copy.

use billing_service::{PageRequest, PlanFilter};
use std::time::Duration;

use billing_concurrency::{Coordination, RedisSettings};
use billing_domain::enums::BillingPeriod;
use billing_service::{
    Billing, BillingSettings, CurrencyChanges, NewInvoice, PlanChanges, PlanRef, TaxChanges,
};

use crate::support::{Harness, dec, plan, seed, service_test};

/// The bound the instances of these tests run with.
const REFRESH: Duration = Duration::from_millis(50);

/// Past the bound: a read that starts this long after a write must see it.
const PAST_REFRESH: Duration = Duration::from_millis(60);

/// Another instance over the harness's database and coordination backend.
fn instance(h: &Harness, coordination: Coordination, refresh: Duration) -> Billing {
    Billing::new(
        h.billing.database().clone(),
        coordination,
        BillingSettings {
            catalogue_refresh: refresh,
            ..BillingSettings::default()
        },
    )
}

fn shared(h: &Harness, refresh: Duration) -> Billing {
    instance(h, h.billing.coordination().clone(), refresh)
}

async fn writes_reach_every_instance_within_the_bound(h: Harness) -> anyhow::Result<()> {
    let a = shared(&h, REFRESH);
    let b = shared(&h, REFRESH);
    let s = seed(&a).await?;
    let pro = PlanRef::Id(s.plan.id);

    // b serves the plans from memory once loaded.
    assert_eq!(b.plan(&pro).await?.price.get(), dec("10.00"));
    assert_eq!(
        b.list_plans(PlanFilter::ActiveOnly, PageRequest::new(1, 20)?)
            .await?
            .total,
        1
    );
    let cached = b.catalogue_stats();
    assert!(cached.loads >= 1 && cached.hits >= 1, "{cached:?}");

    // A price change on a: a reads it at once, b once the bound has passed.
    a.update_plan(
        s.plan.id,
        PlanChanges {
            price: Some(dec("12.50")),
            ..PlanChanges::default()
        },
        None,
    )
    .await?;
    assert_eq!(a.plan(&pro).await?.price.get(), dec("12.50"));
    tokio::time::sleep(PAST_REFRESH).await;
    assert_eq!(b.plan(&pro).await?.price.get(), dec("12.50"));
    assert_eq!(
        b.list_plans(PlanFilter::ActiveOnly, PageRequest::new(1, 20)?)
            .await?
            .items[0]
            .price
            .get(),
        dec("12.50")
    );
    let learnt = b.catalogue_stats();
    assert!(
        learnt.invalidations > cached.invalidations,
        "b did not learn of the change through the generation: {learnt:?}"
    );

    // A new plan: found by slug and counted, without a COUNT.
    a.create_plan(plan("max", "30.00", BillingPeriod::Yearly))
        .await?;
    tokio::time::sleep(PAST_REFRESH).await;
    let page = b
        .list_plans(PlanFilter::ActiveOnly, PageRequest::new(1, 1)?)
        .await?;
    assert_eq!((page.total, page.items.len()), (2, 1));
    assert_eq!(
        b.plan(&PlanRef::Slug("max".into())).await?.price.get(),
        dec("30.00")
    );

    // Currencies.
    assert_eq!(b.currency("usd").await?.exchange_rate.get(), dec("1.08"));
    a.update_currency(
        "USD",
        CurrencyChanges {
            exchange_rate: Some(dec("1.10")),
            ..CurrencyChanges::default()
        },
        None,
    )
    .await?;
    assert_eq!(a.currency("USD").await?.exchange_rate.get(), dec("1.10"));
    tokio::time::sleep(PAST_REFRESH).await;
    assert_eq!(b.currency("USD").await?.exchange_rate.get(), dec("1.10"));
    assert_eq!(b.list_currencies(PageRequest::new(1, 20)?).await?.total, 3);

    // Taxes and their rate history.
    assert_eq!(b.tax_rates(s.vat.id).await?.len(), 1);
    a.update_tax(
        s.vat.id,
        TaxChanges {
            rate: Some(dec("7.00")),
            ..TaxChanges::default()
        },
        None,
    )
    .await?;
    assert_eq!(a.tax_rates(s.vat.id).await?.len(), 2);
    tokio::time::sleep(PAST_REFRESH).await;
    let history = b.tax_rates(s.vat.id).await?;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].rate.get(), dec("7.00"));
    assert_eq!(b.tax(s.vat.id).await?.rate.get(), dec("7.00"));
    assert_eq!(b.list_taxes(PageRequest::new(1, 20)?).await?.total, 1);

    // Unknown ids answer as the database would; a bad page cannot be
    // asked for, and its refusal is a validation error.
    assert!(matches!(
        b.plan(&PlanRef::Id(999_999)).await,
        Err(billing_service::BillingError::NotFound { .. })
    ));
    let bad_page = PageRequest::new(0, 20).expect_err("page 0");
    assert!(matches!(
        billing_service::BillingError::from(bad_page),
        billing_service::BillingError::Validation { .. }
    ));
    Ok(())
}

async fn invoices_charge_the_committed_price_not_a_cached_one(h: Harness) -> anyhow::Result<()> {
    let a = shared(&h, REFRESH);
    // b trusts its copy for an hour: whatever it charges comes from
    // elsewhere.
    let b = shared(&h, Duration::from_secs(3600));
    let s = seed(&a).await?;
    let pro = PlanRef::Id(s.plan.id);
    assert_eq!(b.plan(&pro).await?.price.get(), dec("10.00"));
    assert_eq!(b.currency("USD").await?.exchange_rate.get(), dec("1.08"));
    assert_eq!(b.tax(s.vat.id).await?.rate.get(), dec("19.00"));

    a.update_plan(
        s.plan.id,
        PlanChanges {
            price: Some(dec("20.00")),
            ..PlanChanges::default()
        },
        None,
    )
    .await?;
    a.update_currency(
        "USD",
        CurrencyChanges {
            exchange_rate: Some(dec("2")),
            ..CurrencyChanges::default()
        },
        None,
    )
    .await?;
    a.update_tax(
        s.vat.id,
        TaxChanges {
            rate: Some(dec("10.00")),
            ..TaxChanges::default()
        },
        None,
    )
    .await?;
    // b's copy is stale (its bound is an hour) ...
    assert_eq!(b.plan(&pro).await?.price.get(), dec("10.00"));
    // ... but what it charges is read from the database.
    let invoice = b
        .create_invoice(NewInvoice {
            user_id: s.user.id,
            plan_id: s.plan.id,
            subscription_id: None,
            currency: Some("USD".into()),
            tax_code: Some("DE_VAT".into()),
        })
        .await?;
    assert_eq!(
        (
            invoice.net_amount.get(),
            invoice.tax_amount.get(),
            invoice.amount.get()
        ),
        (dec("40.00"), dec("4.00"), dec("44.00"))
    );
    Ok(())
}

async fn an_unreachable_channel_sends_reads_to_the_database(h: Harness) -> anyhow::Result<()> {
    let a = shared(&h, REFRESH);
    // Nothing listens on port 1: every read of the generation fails.
    let down = Coordination::redis(RedisSettings {
        connect_timeout: Duration::from_millis(100),
        command_timeout: Duration::from_millis(100),
        ..RedisSettings::new("redis://127.0.0.1:1")
    })
    .await?;
    let b = instance(&h, down, REFRESH);
    let s = seed(&a).await?;
    let pro = PlanRef::Id(s.plan.id);
    assert_eq!(b.plan(&pro).await?.price.get(), dec("10.00"));
    a.update_plan(
        s.plan.id,
        PlanChanges {
            price: Some(dec("11.00")),
            ..PlanChanges::default()
        },
        None,
    )
    .await?;
    // No wait: b has nothing it could serve stale.
    assert_eq!(b.plan(&pro).await?.price.get(), dec("11.00"));
    assert_eq!(
        b.list_plans(PlanFilter::ActiveOnly, PageRequest::new(1, 20)?)
            .await?
            .total,
        1
    );
    let stats = b.catalogue_stats();
    assert_eq!((stats.hits, stats.loads), (0, 0), "{stats:?}");
    assert!(
        stats.bypasses >= 3 && stats.channel_failures >= 1,
        "{stats:?}"
    );
    Ok(())
}

async fn a_disabled_cache_reads_the_database(h: Harness) -> anyhow::Result<()> {
    let off = Billing::new(
        h.billing.database().clone(),
        h.billing.coordination().clone(),
        BillingSettings {
            catalogue_cache: false,
            ..BillingSettings::default()
        },
    );
    let s = seed(&h.billing).await?;
    assert_eq!(
        off.list_plans(PlanFilter::ActiveOnly, PageRequest::new(1, 20)?)
            .await?
            .total,
        1
    );
    assert_eq!(off.plan(&PlanRef::Id(s.plan.id)).await?.id, s.plan.id);
    let stats = off.catalogue_stats();
    assert_eq!((stats.hits, stats.loads, stats.bypasses), (0, 0, 2));
    Ok(())
}

async fn concurrent_reads_wait_for_one_check(h: Harness) -> anyhow::Result<()> {
    // A bound long enough for a check on a busy machine.
    let refresh = Duration::from_millis(300);
    let b = shared(&h, refresh);
    seed(&b).await?;
    b.list_plans(PlanFilter::ActiveOnly, PageRequest::new(1, 20)?)
        .await?;
    tokio::time::sleep(refresh + Duration::from_millis(50)).await;
    // The copy needs checking: one read checks, the others wait for it
    // instead of all reading the database.
    let before = b.catalogue_stats();
    let reads = (0..32).map(|_| {
        let b = b.clone();
        tokio::spawn(async move {
            b.list_plans(PlanFilter::ActiveOnly, PageRequest::new(1, 20)?)
                .await
        })
    });
    for read in futures::future::join_all(reads).await {
        assert_eq!(read??.total, 1);
    }
    let after = b.catalogue_stats();
    assert_eq!(after.bypasses, before.bypasses, "{after:?}");
    assert_eq!(after.hits - before.hits, 32, "{after:?}");
    Ok(())
}

service_test!(
    concurrent_reads_wait_for_one_check,
    writes_reach_every_instance_within_the_bound,
    invoices_charge_the_committed_price_not_a_cached_one,
    an_unreachable_channel_sends_reads_to_the_database,
    a_disabled_cache_reads_the_database,
);
