//! The repositories of the entities, with the queries the service and the
//! API need beyond the generic ones of [`crate::Repository`].

pub mod currencies;
pub mod cycle;
pub mod events;
pub mod idempotency_records;
pub mod invoices;
pub mod joined;
pub mod payments;
pub mod plans;
pub mod subscriptions;
pub mod taxes;
pub mod user_cases;
pub mod user_details;
pub mod users;
pub mod webhooks;
