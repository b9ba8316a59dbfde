//! Billing domain: the entities of the schema (sea-orm models, no database
//! driver), exact decimal values, and the business rules that act on them.
//!
//! This crate performs no I/O: it knows nothing of tokio, Redis, HTTP or any
//! database driver, so every service that embeds it gets the same answers.

pub mod entities;
pub mod enums;
mod numeric;

pub use entities::tarif_plan::PlanPrices;
pub use entities::user::PasswordHash;
pub use numeric::Numeric;
