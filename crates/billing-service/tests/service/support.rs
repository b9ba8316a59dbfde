//! The test harness of the use cases — a migrated database and a
//! coordination backend per test, the usual seed data — from
//! `billing_test_support::harness`, and `service_test!`, which runs a test
//! body on both deployments.

pub use billing_test_support::harness::{Harness, Seed, dec, plan, seed};

/// Declares `mod name { fn embedded(); fn production(); }` for async test
/// bodies taking a [`Harness`] (a pool of up to 16 connections).
macro_rules! service_test {
    ($($name:ident),+ $(,)?) => {
        billing_test_support::deployment_test!(max_connections = 16; $($name),+);
    };
}
pub(crate) use service_test;
