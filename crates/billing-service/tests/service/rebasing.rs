//! Switching the default currency: every rebased rate passes the same
//! validation as a rate a client sends, or the switch is refused and
//! nothing is written.

use billing_domain::entities::currency;
use billing_service::PageRequest;
use billing_service::{BillingError, CurrencyChanges, NewCurrency};
use rust_decimal::Decimal;

use crate::support::{Harness, dec, service_test};

fn new_currency(code: &str, rate: &str, is_default: bool) -> NewCurrency {
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

async fn all(h: &Harness) -> anyhow::Result<Vec<currency::Model>> {
    Ok(h.billing
        .list_currencies(PageRequest::new(1, 100)?)
        .await?
        .items)
}

fn assert_names_jpy(result: &Result<currency::Model, BillingError>) {
    match result {
        Err(BillingError::InvalidTransition { message, .. }) => {
            assert!(message.contains("JPY"), "{message}");
        }
        other => panic!("expected a refusal naming JPY, got {other:?}"),
    }
}

async fn an_out_of_range_rebased_rate_refuses_the_switch(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    b.create_currency(new_currency("EUR", "1", true)).await?;
    b.create_currency(new_currency("BHD", "0.00000001", false))
        .await?;
    b.create_currency(new_currency("JPY", "1000", false))
        .await?;
    b.create_currency(new_currency("USD", "1.08", false))
        .await?;
    let before = all(&h).await?;

    // 1000 / 0.00000001 = 10^11: beyond NUMERIC(19,8).
    let switch = b
        .update_currency(
            "BHD",
            CurrencyChanges {
                is_default: Some(true),
                ..CurrencyChanges::default()
            },
            None,
        )
        .await;
    assert_names_jpy(&switch);
    assert_eq!(all(&h).await?, before, "a refused switch wrote");

    // The same through a new currency created as the default.
    let created = b
        .create_currency(new_currency("GBP", "0.00000001", true))
        .await;
    assert_names_jpy(&created);
    assert_eq!(all(&h).await?, before, "a refused creation wrote");

    // JPY stays usable: a change of it and an in-range switch still work.
    let jpy = b
        .update_currency(
            "JPY",
            CurrencyChanges {
                exchange_rate: Some(dec("160")),
                ..CurrencyChanges::default()
            },
            None,
        )
        .await?;
    assert_eq!(jpy.exchange_rate.get(), dec("160"));
    let usd = b
        .update_currency(
            "USD",
            CurrencyChanges {
                is_default: Some(true),
                ..CurrencyChanges::default()
            },
            None,
        )
        .await?;
    assert!(usd.is_default);
    assert_eq!(usd.exchange_rate.get(), Decimal::ONE);
    let rates: Vec<(String, Decimal, bool)> = all(&h)
        .await?
        .into_iter()
        .map(|c| (c.code, c.exchange_rate.get(), c.is_default))
        .collect();
    assert_eq!(
        rates,
        [
            ("BHD".to_owned(), dec("0.00000001"), false),
            ("EUR".to_owned(), dec("0.92592593"), false),
            ("JPY".to_owned(), dec("148.14814815"), false),
            ("USD".to_owned(), Decimal::ONE, true),
        ]
    );
    Ok(())
}

service_test!(an_out_of_range_rebased_rate_refuses_the_switch);
