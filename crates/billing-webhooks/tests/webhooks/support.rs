//! The harness — a migrated database and a coordination backend per test —
//! from `billing_test_support::harness`, the part of its seed data the
//! webhook tests use, and `webhook_test!`, which runs a body on both
//! deployments.

use billing_service::Billing;
pub use billing_test_support::harness::Harness;

/// Declares `mod name { fn embedded(); fn production(); }` for async test
/// bodies taking a [`Harness`] (a pool of up to 12 connections).
macro_rules! webhook_test {
    ($($name:ident),+ $(,)?) => {
        billing_test_support::deployment_test!(max_connections = 12; $($name),+);
    };
}
pub(crate) use webhook_test;

/// The usual catalogue (EUR, a monthly plan at 10 EUR …) and a user;
/// returns (user id, plan id).
pub async fn seed(billing: &Billing) -> anyhow::Result<(i64, i64)> {
    let seed = billing_test_support::harness::seed(billing).await?;
    Ok((seed.user.id, seed.plan.id))
}
