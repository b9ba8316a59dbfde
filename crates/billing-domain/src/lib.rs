//! Billing domain: the entities of the schema (sea-orm models, no database
//! driver), exact decimal values, and the business rules that act on them.
//!
//! This crate performs no I/O: it knows nothing of tokio, Redis, HTTP or any
//! database driver, so every service that embeds it gets the same answers.
//!
//! # The rounding rule
//!
//! Money is [`rust_decimal::Decimal`], never a float. Every amount shown to or
//! charged from a customer — a price, a converted price, a tax, a net or a
//! gross amount — is rounded **half away from zero to the currency's minor
//! units** (`decimal_places`: EUR 2, JPY 0, KWD 3), by
//! [`money::round_for_customer`] and nothing else. Intermediate results
//! (converted amounts, `net × rate`) keep full precision and are rounded once,
//! at the end. So 0.125 EUR is 0.13, −0.125 EUR is −0.13, 2.5 JPY is 3.
//!
//! Stored amounts fit `NUMERIC(19,4)` (below 10^15, at most 4 decimals);
//! [`money::validate_price`] refuses negative prices, prices with more
//! decimals than their currency allows, and amounts beyond that range.
//!
//! # Modules
//!
//! - [`money`] — rounding, validation, formatting of amounts;
//! - [`exchange`] — currency conversion, formatting and validation on
//!   [`entities::currency::Model`];
//! - [`iso4217`], [`iso3166`] — currency and country codes;
//! - [`taxation`] — tax on net, gross from net, net from gross, historical
//!   rates;
//! - [`period`] — calendar arithmetic of billing periods;
//! - [`lifecycle`] — the subscription and invoice state machines;
//! - [`invoice_number`] — `INV-<year>-<sequence>`;
//! - [`events`] — the event types of the outbox, derived from transitions;
//! - [`pricing`] — a plan's price in a currency and an invoice's amounts;
//! - [`values`] — value types parsed from input text (e-mail address,
//!   currency, country, tax and region codes, plan slug);
//! - [`resource`] — [`Resource`], every kind of thing the API names;
//! - [`page`] — [`PageRequest`], a checked page of a list;
//! - [`error`] — [`DomainError`], the one error type.

pub mod entities;
pub mod enums;
mod numeric;

pub mod error;
pub mod events;
pub mod exchange;
pub mod invoice_number;
pub mod iso3166;
pub mod iso4217;
pub mod lifecycle;
pub mod money;
pub mod page;
pub mod period;
pub mod pricing;
pub mod rate_history;
pub mod resource;
pub mod taxation;
pub mod values;

pub use entities::tarif_plan::PlanPrices;
pub use entities::user::PasswordHash;
pub use numeric::Numeric;

pub use error::DomainError;
pub use invoice_number::InvoiceNumber;
pub use iso3166::validate_country_code;
pub use iso4217::validate_currency_code;
pub use money::{round_for_customer, validate_price};
pub use page::PageRequest;
pub use pricing::{invoice_amounts, plan_invoice_amounts, plan_price_in, validate_plan_prices};
pub use resource::Resource;
pub use taxation::{AppliedTax, TaxBreakdown, rate_in_force, validate_rate_history};
