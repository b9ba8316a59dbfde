//! Paid time over HTTP: `activate` never adds a billing period. On a
//! pending or active subscription it is refused (409 `invalid_transition`)
//! and writes nothing; only a paid invoice starts or renews.

use billing_test_support::{TestDatabase, test_on_each_backend};
use serde_json::json;

use crate::fixtures::{billed, create_invoice, etag, get, json_with, pay, post_empty};
use crate::helpers::{assert_problem, spawn_app};

async fn activating_never_adds_a_period(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let set = billed(&app, "gus@example.com", "pro").await?;
    let path = format!("/subscriptions/{}", set.subscription["id"]);

    // Pending: starting without paying is refused.
    assert_problem(
        post_empty(&app, &format!("{path}/activate"), None).await?,
        409,
        "invalid_transition",
    )
    .await?;
    let pending = get(&app, &path).await?;
    assert_eq!(etag(&pending), "\"1\"");
    assert_eq!(json_with(pending, 200).await?["status"], "pending");

    // The payment starts it.
    json_with(pay(&app, &set.invoice["id"], "pay-1").await?, 200).await?;
    let active = json_with(get(&app, &path).await?, 200).await?;
    let days = active["days_remaining"].as_u64().expect("days");
    assert!((28..=31).contains(&days), "{active}");

    // Active: every activate is refused, the days stay, the ETag stays.
    for if_match in [None, Some("\"2\"")] {
        for _ in 0..3 {
            let refused = assert_problem(
                post_empty(&app, &format!("{path}/activate"), if_match).await?,
                409,
                "invalid_transition",
            )
            .await?;
            assert!(
                refused["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("paid invoice")),
                "{refused}"
            );
        }
    }
    let after = get(&app, &path).await?;
    assert_eq!(etag(&after), "\"2\"");
    let after = json_with(after, 200).await?;
    assert_eq!(
        (after["days_remaining"].clone(), after["expires_at"].clone()),
        (json!(days), active["expires_at"].clone()),
        "activate added time"
    );

    // Pause and resume give back the paused time only.
    json_with(post_empty(&app, &format!("{path}/pause"), None).await?, 200).await?;
    let resumed = json_with(
        post_empty(&app, &format!("{path}/activate"), None).await?,
        200,
    )
    .await?;
    assert_eq!(resumed["status"], "active");
    assert_eq!(resumed["days_remaining"], json!(days));

    // A second paid invoice renews it by one period.
    let invoice = create_invoice(&app, &set.user, &set.plan, Some(&set.subscription)).await?;
    json_with(pay(&app, &invoice["id"], "pay-2").await?, 200).await?;
    let renewed = json_with(get(&app, &path).await?, 200).await?;
    let renewed_days = renewed["days_remaining"].as_u64().expect("days");
    assert!(
        (days + 28..=days + 31).contains(&renewed_days),
        "{days} -> {renewed}"
    );
    Ok(())
}

test_on_each_backend!(activating_never_adds_a_period);
