//! Creating invoices: amounts, currencies, taxes and gapless numbers.

use billing_domain::enums::InvoiceStatus;
use billing_service::PageRequest;
use billing_service::{BillingError, InvoiceAction, NewInvoice, NewSubscription};
use chrono::{Datelike, Utc};

use crate::support::{Harness, dec, seed, service_test};

fn invoice(user_id: i64, plan_id: i64) -> NewInvoice {
    NewInvoice {
        user_id,
        plan_id,
        subscription_id: None,
        currency: None,
        tax_code: None,
    }
}

async fn invoices_are_priced_and_numbered(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let s = seed(b).await?;
    let year = Utc::now().year();

    let plain = b.create_invoice(invoice(s.user.id, s.plan.id)).await?;
    assert_eq!(plain.invoice_number, format!("INV-{year}-000001"));
    assert_eq!(
        (
            plain.net_amount.get(),
            plain.tax_amount.get(),
            plain.amount.get()
        ),
        (dec("10.00"), dec("0.00"), dec("10.00"))
    );
    assert_eq!(
        (plain.status, plain.currency.as_str()),
        (InvoiceStatus::Pending, "EUR")
    );
    assert!(plain.expires_at > Some(plain.invoiced_at));

    let taxed = b
        .create_invoice(NewInvoice {
            tax_code: Some("DE_VAT".into()),
            ..invoice(s.user.id, s.plan.id)
        })
        .await?;
    assert_eq!(taxed.invoice_number, format!("INV-{year}-000002"));
    assert_eq!(
        (
            taxed.net_amount.get(),
            taxed.tax_amount.get(),
            taxed.amount.get()
        ),
        (dec("10.00"), dec("1.90"), dec("11.90"))
    );

    let dollars = b
        .create_invoice(NewInvoice {
            currency: Some("usd".into()),
            tax_code: Some("DE_VAT".into()),
            ..invoice(s.user.id, s.plan.id)
        })
        .await?;
    assert_eq!(dollars.currency, "USD");
    assert_eq!(
        (
            dollars.net_amount.get(),
            dollars.tax_amount.get(),
            dollars.amount.get()
        ),
        (dec("10.80"), dec("2.05"), dec("12.85"))
    );
    let yen = b
        .create_invoice(NewInvoice {
            currency: Some("JPY".into()),
            ..invoice(s.user.id, s.plan.id)
        })
        .await?;
    assert_eq!(yen.amount.get(), dec("1600"));

    let refusals = [
        NewInvoice {
            currency: Some("GBP".into()),
            ..invoice(s.user.id, s.plan.id)
        },
        NewInvoice {
            tax_code: Some("NOPE".into()),
            ..invoice(s.user.id, s.plan.id)
        },
        NewInvoice {
            subscription_id: Some(999_999),
            ..invoice(s.user.id, s.plan.id)
        },
    ];
    for new in refusals {
        // Rows that do not exist: the currency, the tax, the subscription.
        let result = b.create_invoice(new).await;
        assert!(
            matches!(result, Err(BillingError::NotFound { .. })),
            "{result:?}"
        );
    }
    let missing = b.create_invoice(invoice(999_999, s.plan.id)).await;
    assert!(
        matches!(missing, Err(BillingError::NotFound { .. })),
        "{missing:?}"
    );
    let next = b.create_invoice(invoice(s.user.id, s.plan.id)).await?;
    assert_eq!(
        next.invoice_number,
        format!("INV-{year}-000005"),
        "refused invoices used no number"
    );

    let listed = b
        .list_invoices(
            s.user.id,
            Some(InvoiceStatus::Pending),
            PageRequest::new(1, 20)?,
        )
        .await?;
    assert_eq!(listed.total, 5);
    let _ = (s.eur, s.usd, s.vat);
    Ok(())
}

async fn an_invoice_for_a_subscription_must_match_it(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let s = seed(b).await?;
    let other = b
        .register_user(billing_service::NewUser {
            email: "eve@example.com".into(),
            password: "a long password".into(),
            role: None,
        })
        .await?;
    let theirs = b
        .subscribe(NewSubscription {
            user_id: other.id,
            plan_id: s.plan.id,
        })
        .await?;
    let wrong = b
        .create_invoice(NewInvoice {
            subscription_id: Some(theirs.id),
            ..invoice(s.user.id, s.plan.id)
        })
        .await;
    assert!(
        matches!(wrong, Err(BillingError::InvalidTransition { .. })),
        "{wrong:?}"
    );
    Ok(())
}

async fn failing_and_cancelling(h: Harness) -> anyhow::Result<()> {
    let b = &h.billing;
    let s = seed(b).await?;
    let inv = b.create_invoice(invoice(s.user.id, s.plan.id)).await?;
    let failed = b
        .transition_invoice(inv.id, InvoiceAction::Fail, Some(1))
        .await?;
    assert_eq!((failed.status, failed.version), (InvoiceStatus::Failed, 2));
    let cancelled = b
        .transition_invoice(inv.id, InvoiceAction::Cancel, None)
        .await?;
    assert_eq!(cancelled.status, InvoiceStatus::Cancelled);
    let again = b
        .transition_invoice(inv.id, InvoiceAction::Fail, None)
        .await;
    assert!(
        matches!(again, Err(BillingError::InvalidTransition { .. })),
        "{again:?}"
    );
    assert_eq!(b.invoice(inv.id).await?.version, 3);
    Ok(())
}

/// 8 tasks create 25 invoices each at once: 200 numbers, 1..=200, no gaps.
async fn concurrent_invoices_get_gapless_numbers(h: Harness) -> anyhow::Result<()> {
    let s = seed(&h.billing).await?;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let billing = h.billing.clone();
        let (user, plan) = (s.user.id, s.plan.id);
        tasks.push(tokio::spawn(async move {
            let mut numbers = Vec::new();
            for _ in 0..25 {
                numbers.push(
                    billing
                        .create_invoice(invoice(user, plan))
                        .await?
                        .invoice_number,
                );
            }
            anyhow::Ok(numbers)
        }));
    }
    let mut sequences = Vec::new();
    for task in tasks {
        for number in task.await?? {
            sequences.push(
                number
                    .rsplit('-')
                    .next()
                    .expect("sequence")
                    .parse::<u32>()?,
            );
        }
    }
    sequences.sort_unstable();
    assert_eq!(sequences, (1..=200).collect::<Vec<_>>());
    Ok(())
}

service_test!(
    invoices_are_priced_and_numbered,
    an_invoice_for_a_subscription_must_match_it,
    failing_and_cancelling,
    concurrent_invoices_get_gapless_numbers,
);
