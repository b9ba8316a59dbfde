//! Currencies, taxes and plans.

use billing_service::{PageRequest, PlanFilter};
use std::collections::BTreeMap;

use billing_domain::enums::BillingPeriod;
use billing_service::{
    BillingError, CurrencyChanges, NewCurrency, PlanChanges, PlanRef, TaxChanges,
};
use rust_decimal::Decimal;

use crate::support::{Harness, dec, plan, seed, service_test};

fn currency(code: &str, rate: &str, is_default: bool) -> NewCurrency {
    NewCurrency {
        code: code.into(),
        name: code.into(),
        symbol: None,
        exchange_rate: dec(rate),
        decimal_places: None,
        is_default: Some(is_default),
        is_active: None,
    }
}

async fn exactly_one_default_currency(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let first = b.create_currency(currency("USD", "1", false)).await;
    assert!(
        matches!(first, Err(BillingError::InvalidTransition { .. })),
        "first currency must be default: {first:?}"
    );
    assert_eq!(
        b.list_currencies(PageRequest::new(1, 20)?).await?.total,
        0,
        "a refused currency was written"
    );

    let s = seed(b).await?;
    assert_eq!(
        b.currency("jpy").await?.decimal_places,
        0,
        "ISO minor units by default"
    );
    let kwd = b.create_currency(currency("KWD", "0.33", false)).await?;
    assert_eq!(kwd.decimal_places, 3);
    for bad in [
        currency("XYZ", "1", false),
        currency("GBP", "-1", false),
        currency("GBP", "0", false),
    ] {
        let refused = b.create_currency(bad).await;
        assert!(
            matches!(refused, Err(BillingError::Validation { .. })),
            "{refused:?}"
        );
    }
    let dup = b.create_currency(currency("EUR", "1", false)).await;
    assert!(
        matches!(dup, Err(BillingError::AlreadyExists { .. })),
        "{dup:?}"
    );

    // Switching the default is one step that rebases every rate on it.
    let usd = b
        .update_currency(
            "USD",
            CurrencyChanges {
                is_default: Some(true),
                ..CurrencyChanges::default()
            },
            Some(s.usd.version),
        )
        .await?;
    assert!(usd.is_default);
    assert_eq!(usd.exchange_rate.get(), Decimal::ONE);
    let eur = b.currency("EUR").await?;
    assert!(!eur.is_default);
    assert_eq!(
        eur.exchange_rate.get(),
        dec("0.92592593"),
        "1 / 1.08 to 8 places"
    );
    assert_eq!(
        b.currency("JPY").await?.exchange_rate.get(),
        dec("148.14814815")
    );
    let defaults = b
        .list_currencies(PageRequest::new(1, 100)?)
        .await?
        .items
        .into_iter()
        .filter(|c| c.is_default)
        .count();
    assert_eq!(defaults, 1);

    for refused in [
        CurrencyChanges {
            is_default: Some(false),
            ..CurrencyChanges::default()
        },
        CurrencyChanges {
            is_active: Some(false),
            ..CurrencyChanges::default()
        },
        CurrencyChanges {
            exchange_rate: Some(dec("2")),
            ..CurrencyChanges::default()
        },
    ] {
        // Refused for the state of the default currency, not as malformed.
        let result = b.update_currency("USD", refused, None).await;
        assert!(
            matches!(result, Err(BillingError::InvalidTransition { .. })),
            "{result:?}"
        );
    }
    let renamed = b
        .update_currency(
            "EUR",
            CurrencyChanges {
                name: Some("Euro".into()),
                ..CurrencyChanges::default()
            },
            None,
        )
        .await?;
    assert_eq!(renamed.name, "Euro");
    Ok(())
}

async fn tax_rate_changes_keep_history(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let s = seed(b).await?;
    let history = b.tax_rates(s.vat.id).await?;
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].rate.get(), history[0].valid_to),
        (dec("19"), None)
    );

    let stale = b
        .update_tax(
            s.vat.id,
            TaxChanges {
                rate: Some(dec("16")),
                ..TaxChanges::default()
            },
            Some(99),
        )
        .await;
    assert!(
        matches!(stale, Err(BillingError::VersionMismatch { .. })),
        "{stale:?}"
    );
    assert_eq!(
        b.tax_rates(s.vat.id).await?.len(),
        1,
        "a refused change wrote a rate"
    );

    let changed = b
        .update_tax(
            s.vat.id,
            TaxChanges {
                rate: Some(dec("16")),
                ..TaxChanges::default()
            },
            Some(1),
        )
        .await?;
    assert_eq!((changed.rate.get(), changed.version), (dec("16"), 2));
    let history = b.tax_rates(s.vat.id).await?;
    assert_eq!(history.len(), 2);
    assert_eq!(
        (history[0].rate.get(), history[0].valid_to),
        (dec("16"), None),
        "newest first, open"
    );
    assert_eq!(
        history[1].valid_to,
        Some(history[0].valid_from),
        "the old rate closes where the new opens"
    );

    let renamed = b
        .update_tax(
            s.vat.id,
            TaxChanges {
                name: Some("VAT".into()),
                ..TaxChanges::default()
            },
            None,
        )
        .await?;
    assert_eq!(renamed.name, "VAT");
    assert_eq!(
        b.tax_rates(s.vat.id).await?.len(),
        2,
        "a change without a new rate opened one"
    );

    for bad in [
        TaxChanges {
            rate: Some(dec("-1")),
            ..TaxChanges::default()
        },
        TaxChanges {
            rate: Some(dec("101")),
            ..TaxChanges::default()
        },
        TaxChanges {
            country_code: Some("ZZ".into()),
            ..TaxChanges::default()
        },
    ] {
        let result = b.update_tax(s.vat.id, bad, None).await;
        assert!(
            matches!(result, Err(BillingError::Validation { .. })),
            "{result:?}"
        );
    }
    assert_eq!(b.tax(s.vat.id).await?.version, 3);
    Ok(())
}

async fn plans_validate_money(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let s = seed(b).await?;
    let mut with_prices = plan("team", "49.90", BillingPeriod::Yearly);
    with_prices.prices = Some(BTreeMap::from([
        ("USD".to_owned(), dec("54")),
        ("JPY".to_owned(), dec("8000")),
    ]));
    with_prices.sort_order = Some(-1);
    let team = b.create_plan(with_prices).await?;
    assert_eq!(
        team.prices.0["USD"].to_string(),
        "54.00",
        "padded to USD's minor units"
    );
    assert_eq!(b.plan(&"team".parse::<PlanRef>()?).await?.id, team.id);
    assert_eq!(
        b.plan(&team.id.to_string().parse::<PlanRef>()?).await?.slug,
        "team"
    );

    let refusals = [
        ("negative", {
            let mut p = plan("neg", "-1.00", BillingPeriod::Monthly);
            p.currency = "EUR".into();
            p
        }),
        (
            "over-precise",
            plan("precise", "1.001", BillingPeriod::Monthly),
        ),
        ("unknown currency", {
            let mut p = plan("gbp", "1.00", BillingPeriod::Monthly);
            p.currency = "GBP".into();
            p
        }),
        ("yen cents", {
            let mut p = plan("yen", "1.5", BillingPeriod::Monthly);
            p.currency = "JPY".into();
            p
        }),
        ("numeric slug", plan("123", "1.00", BillingPeriod::Monthly)),
        ("bad price map", {
            let mut p = plan("map", "1.00", BillingPeriod::Monthly);
            p.prices = Some(BTreeMap::from([("JPY".to_owned(), dec("1.5"))]));
            p
        }),
        ("features", {
            let mut p = plan("feat", "1.00", BillingPeriod::Monthly);
            p.features = Some(serde_json::json!([1]));
            p
        }),
    ];
    for (what, new) in refusals {
        let result = b.create_plan(new).await;
        // Malformed values are `Validation`; values that do not fit the
        // stored currencies (their minor units, whether they exist) are
        // refused for that state.
        let against_currencies = matches!(
            what,
            "over-precise" | "unknown currency" | "yen cents" | "bad price map"
        );
        match result {
            Err(BillingError::InvalidTransition { .. } | BillingError::NotFound { .. })
                if against_currencies => {}
            Err(BillingError::Validation { .. }) if !against_currencies => {}
            other => panic!("{what}: {other:?}"),
        }
    }
    let dup = b
        .create_plan(plan("pro", "1.00", BillingPeriod::Monthly))
        .await;
    assert!(
        matches!(dup, Err(BillingError::AlreadyExists { ref field, .. }) if field == "slug"),
        "{dup:?}"
    );
    assert_eq!(
        b.list_plans(PlanFilter::All, PageRequest::new(1, 20)?)
            .await?
            .total,
        2,
        "refused plans were written"
    );

    let listed = b
        .list_plans(PlanFilter::ActiveOnly, PageRequest::new(1, 20)?)
        .await?;
    assert_eq!(
        listed
            .items
            .iter()
            .map(|p| p.slug.as_str())
            .collect::<Vec<_>>(),
        ["team", "pro"],
        "by sort_order"
    );
    b.update_plan(
        s.plan.id,
        PlanChanges {
            is_active: Some(false),
            price: Some(dec("12.50")),
            ..PlanChanges::default()
        },
        Some(1),
    )
    .await?;
    assert_eq!(
        b.list_plans(PlanFilter::ActiveOnly, PageRequest::new(1, 20)?)
            .await?
            .total,
        1
    );
    assert_eq!(
        b.list_plans(PlanFilter::All, PageRequest::new(1, 20)?)
            .await?
            .total,
        2
    );
    let stale = b
        .update_plan(
            s.plan.id,
            PlanChanges {
                name: Some("x".into()),
                ..PlanChanges::default()
            },
            Some(1),
        )
        .await;
    assert!(
        matches!(stale, Err(BillingError::VersionMismatch { current: 2, .. })),
        "{stale:?}"
    );
    let _ = s.eur;
    Ok(())
}

service_test!(
    exactly_one_default_currency,
    tax_rate_changes_keep_history,
    plans_validate_money
);
