//! Start-up seeding: [`ensure_default_currency`] gives a fresh database a
//! default currency (EUR), so plans and invoices can be created at once.
//!
//! It goes straight to `billing-repository`: `billing-service` creates
//! currencies but has no "make sure a default exists" operation, and this
//! one must tolerate several instances seeding at once (see below).

use billing_domain::Numeric;
use billing_domain::entities::currency;
use billing_repository::{Currencies, Database, RepositoryError, now};
use rust_decimal::Decimal;

/// The currency seeded when the database has no default one.
pub const SEED_CURRENCY_CODE: &str = "EUR";

/// What [`ensure_default_currency`] found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedOutcome {
    /// A default currency existed already; nothing was written.
    AlreadyPresent,
    /// EUR was inserted as the default currency.
    Created,
    /// No currency is the default, but EUR exists (not as default): nothing
    /// was changed; choosing the default is left to an operator.
    CodeTakenWithoutDefault,
}

/// Inserts EUR (`Euro`, `€`, 2 decimals, rate 1, active) as the default
/// currency unless some currency is the default already.
///
/// Safe when several instances start at once: the schema allows one
/// default currency (a partial unique index) and one row per code, so a
/// concurrent insert fails with [`RepositoryError::AlreadyExists`], which
/// counts as success once the winner's default is visible.
///
/// # Errors
/// [`RepositoryError::Unavailable`] when the database cannot be reached;
/// any other repository error of the read or the insert (e.g. a missing
/// table when migrations have not run).
pub async fn ensure_default_currency(database: &Database) -> Result<SeedOutcome, RepositoryError> {
    if Currencies::find_default(database).await?.is_some() {
        return Ok(SeedOutcome::AlreadyPresent);
    }
    let created_at = now();
    let euro = currency::Model {
        id: 0,
        code: SEED_CURRENCY_CODE.to_owned(),
        name: "Euro".to_owned(),
        symbol: Some("€".to_owned()),
        exchange_rate: Numeric(Decimal::ONE),
        decimal_places: 2,
        is_default: true,
        is_active: true,
        created_at,
        updated_at: created_at,
        version: 1,
    };
    match Currencies::insert(database, euro).await {
        Ok(_) => Ok(SeedOutcome::Created),
        Err(RepositoryError::AlreadyExists { .. }) => {
            if Currencies::find_default(database).await?.is_some() {
                Ok(SeedOutcome::AlreadyPresent)
            } else {
                Ok(SeedOutcome::CodeTakenWithoutDefault)
            }
        }
        Err(other) => Err(other),
    }
}
