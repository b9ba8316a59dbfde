//! The wire contract of the request bodies: what a client sends, read with
//! serde (unknown fields refused, money as exact decimal strings, integral
//! floats as integers, plan features kept exactly) and described with
//! utoipa under the schema names of the OpenAPI document; each converts
//! into the plain command of `billing-service` it carries. [`enums`] holds
//! the schemas of the domain enums that bodies and responses use.
//!
//! The rules the values must follow (lengths, patterns, ranges) are
//! `billing_service::rules`'s, checked by the use cases;
//! [`crate::schema_rules`] writes them into the document.

mod currencies;
mod decimal;
pub mod enums;
mod features;
mod integer;
mod invoices;
mod plans;
mod subscriptions;
mod taxes;
mod users;
mod webhooks;

pub use currencies::{CurrencyChanges, NewCurrency};
pub use invoices::{NewInvoice, Payment};
pub use plans::{NewPlan, PlanChanges};
pub use subscriptions::NewSubscription;
pub use taxes::{NewTax, TaxChanges};
pub use users::{CaseChanges, NewCase, NewUser, UserChanges, UserDetailsInput};
pub use webhooks::NewWebhookEndpoint;
