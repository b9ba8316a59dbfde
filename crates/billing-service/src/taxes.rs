//! Taxes and their rate history: a rate change closes the open rate and
//! opens a new one (`billing_domain::rate_history::change_rate`) in the same
//! transaction as the tax's own change.

use billing_domain::entities::{tax, tax_rate};
use billing_domain::rate_history::{RateChange, change_rate};
use billing_domain::values::{CountryCode, RegionCode, TaxCode};
use billing_repository::{Page, TaxRates, Taxes, Transaction};
use rust_decimal::Decimal;

use crate::catalogue::{Catalogue, page_of};
use crate::rules::NAME_MAX_CHARS;
use crate::text::{optional_text, valid_text};
use crate::versioned::{check_expected_version, save_or_conflict};
use crate::{Billing, BillingError, PageRequest, Resource};

/// A tax to create; its rate applies from now on.
#[derive(Clone, Debug)]
pub struct NewTax {
    /// Display name.
    pub name: String,
    /// Stable code (`DE_VAT`): letters, digits, `_` and `-`, unique.
    pub code: String,
    /// Free text.
    pub description: Option<String>,
    /// Rate in percent (`"19.00"`), 0 to 100, at most 4 decimals.
    pub rate: Decimal,
    /// ISO 3166-1 alpha-2 country code.
    pub country_code: String,
    /// Region within the country, if any.
    pub region_code: Option<String>,
    /// Whether prices already contain the tax; `false` when absent.
    pub is_inclusive: Option<bool>,
    /// Whether it may be applied; `true` when absent.
    pub is_active: Option<bool>,
}

/// Changes to a tax; absent fields stay as they are. A new `rate` closes the
/// open historical rate now and opens a new one.
#[derive(Clone, Debug, Default)]
pub struct TaxChanges {
    /// New display name.
    pub name: Option<String>,
    /// New description; an empty string removes it.
    pub description: Option<String>,
    /// New rate in percent, in force from now on.
    pub rate: Option<Decimal>,
    /// New country code.
    pub country_code: Option<String>,
    /// New region code; an empty string removes it.
    pub region_code: Option<String>,
    /// Whether prices contain the tax.
    pub is_inclusive: Option<bool>,
    /// Whether it may be applied.
    pub is_active: Option<bool>,
}

impl Billing {
    /// Creates a tax and its first historical rate, in force from now.
    ///
    /// # Errors
    /// [`BillingError::Validation`] (bad code, rate or country),
    /// [`BillingError::AlreadyExists`] (code taken).
    pub async fn create_tax(&self, new: NewTax) -> Result<tax::Model, BillingError> {
        let outcome = self.create_tax_unannounced(new).await;
        self.announce(Catalogue::Taxes, outcome).await
    }

    /// As the public method, without announcing the change.
    async fn create_tax_unannounced(&self, new: NewTax) -> Result<tax::Model, BillingError> {
        let at = self.now();
        let tax = tax::Model {
            id: 0,
            name: valid_text("name", &new.name, NAME_MAX_CHARS)?,
            code: TaxCode::parse(&new.code)?.into_string(),
            description: optional_text(new.description.as_deref()),
            rate: new.rate.into(),
            country_code: CountryCode::parse(&new.country_code)?.into_string(),
            region_code: optional_region(new.region_code.as_deref())?,
            is_active: new.is_active.unwrap_or(true),
            is_inclusive: new.is_inclusive.unwrap_or(false),
            created_at: at,
            updated_at: at,
            version: 1,
        };
        tax.validate()?;
        self.recording_transaction(move |tx| {
            let tax = tax.clone();
            Box::pin(async move {
                let tax = Taxes::insert(tx, tax).await?;
                write_rate_change(tx, change_rate(tax.id, None, tax.rate.get(), at)?).await?;
                Ok(Some(tax))
            })
        })
        .await
    }

    /// The tax `id`.
    ///
    /// # Errors
    /// [`BillingError::NotFound`].
    pub async fn tax(&self, id: i64) -> Result<tax::Model, BillingError> {
        if let Some(copy) = self
            .catalogue()
            .taxes(self.db(), self.coordination())
            .await?
        {
            return copy
                .taxes
                .iter()
                .find(|t| t.id == id)
                .cloned()
                .ok_or_else(|| BillingError::not_found(Resource::Tax, id));
        }
        Ok(Taxes::get(self.db(), id).await?)
    }

    /// Taxes by id.
    ///
    /// # Errors
    /// [`BillingError::Unavailable`] when the database cannot be read.
    pub async fn list_taxes(&self, page: PageRequest) -> Result<Page<tax::Model>, BillingError> {
        match self
            .catalogue()
            .taxes(self.db(), self.coordination())
            .await?
        {
            Some(copy) => Ok(page_of(copy.taxes.iter(), page)),
            None => Ok(Taxes::list(self.db(), page).await?),
        }
    }

    /// The rate history of tax `id`, newest first.
    ///
    /// # Errors
    /// [`BillingError::NotFound`].
    pub async fn tax_rates(&self, id: i64) -> Result<Vec<tax_rate::Model>, BillingError> {
        if let Some(copy) = self
            .catalogue()
            .taxes(self.db(), self.coordination())
            .await?
        {
            if !copy.taxes.iter().any(|t| t.id == id) {
                return Err(BillingError::not_found(Resource::Tax, id));
            }
            return Ok(copy.rates.get(&id).cloned().unwrap_or_default());
        }
        Taxes::get(self.db(), id).await?;
        Ok(TaxRates::history(self.db(), id).await?)
    }

    /// Changes a tax. A new rate closes the open historical rate now and
    /// opens a new one, in the same transaction as the tax's own change.
    ///
    /// # Errors
    /// [`BillingError::NotFound`], [`BillingError::VersionMismatch`],
    /// [`BillingError::Validation`].
    pub async fn update_tax(
        &self,
        id: i64,
        changes: TaxChanges,
        expected_version: Option<i32>,
    ) -> Result<tax::Model, BillingError> {
        let outcome = self
            .update_tax_unannounced(id, changes, expected_version)
            .await;
        self.announce(Catalogue::Taxes, outcome).await
    }
    /// As the public method, without announcing the change.
    async fn update_tax_unannounced(
        &self,
        id: i64,
        changes: TaxChanges,
        expected_version: Option<i32>,
    ) -> Result<tax::Model, BillingError> {
        let name = changes
            .name
            .as_deref()
            .map(|n| valid_text("name", n, NAME_MAX_CHARS))
            .transpose()?;
        let country = changes
            .country_code
            .as_deref()
            .map(CountryCode::parse)
            .transpose()?;
        let region = changes
            .region_code
            .as_deref()
            .map(|r| optional_region(Some(r)))
            .transpose()?;
        let at = self.now();
        let apply = move |tax: &mut tax::Model| -> Result<(), BillingError> {
            if let Some(name) = &name {
                tax.name.clone_from(name);
            }
            if let Some(description) = &changes.description {
                tax.description = optional_text(Some(description));
            }
            if let Some(rate) = changes.rate {
                tax.rate = rate.into();
            }
            if let Some(country) = country {
                tax.country_code = country.into_string();
            }
            if let Some(region) = &region {
                tax.region_code.clone_from(region);
            }
            if let Some(inclusive) = changes.is_inclusive {
                tax.is_inclusive = inclusive;
            }
            if let Some(active) = changes.is_active {
                tax.is_active = active;
            }
            tax.validate()?;
            Ok(())
        };
        self.retrying_transaction(move |tx| {
            let apply = apply.clone();
            Box::pin(async move {
                let mut tax = Taxes::get(tx, id).await?;
                let read_version = tax.version;
                check_expected_version(Resource::Tax, expected_version, read_version)?;
                let old_rate = tax.rate;
                let stored = tax.clone();
                apply(&mut tax)?;
                if tax == stored {
                    // Nothing changes: nothing is written.
                    return Ok(Some(stored));
                }
                let Some(saved) =
                    save_or_conflict::<tax::Entity, _>(tx, &tax, read_version, expected_version)
                        .await?
                else {
                    return Ok(None);
                };
                if saved.rate != old_rate {
                    // The tax row's version check above serialises rate
                    // changes: only the winner gets here for this version.
                    let open = TaxRates::open_rate(tx, id).await?;
                    if !write_rate_change(tx, change_rate(id, open, saved.rate.get(), at)?).await? {
                        return Ok(None);
                    }
                }
                Ok(Some(saved))
            })
        })
        .await
    }
}

/// Writes what a rate change does to the history; `false` when a row changed
/// under us (the transaction is retried).
async fn write_rate_change(tx: &Transaction, change: RateChange) -> Result<bool, BillingError> {
    let (changed, opened) = match change {
        RateChange::CloseAndOpen { closed, opened } => (Some(closed), Some(opened)),
        RateChange::Correct(corrected) => (Some(corrected), None),
        RateChange::Open(opened) => (None, Some(opened)),
    };
    if let Some(row) = changed {
        let read_version = row.version;
        let saved = save_or_conflict::<tax_rate::Entity, _>(tx, &row, read_version, None).await?;
        if saved.is_none() {
            return Ok(false);
        }
    }
    if let Some(row) = opened {
        TaxRates::insert(tx, row).await?;
    }
    Ok(true)
}

/// The region sent, as stored: none when absent or blank.
fn optional_region(region: Option<&str>) -> Result<Option<String>, BillingError> {
    Ok(region
        .map(RegionCode::parse_optional)
        .transpose()?
        .flatten()
        .map(RegionCode::into_string))
}
