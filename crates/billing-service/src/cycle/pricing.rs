//! What one batch of renewals reads once for all of them.

use std::collections::HashMap;
use std::sync::Mutex;

use billing_domain::entities::{currency, tarif_plan, tax, tax_rate};
use billing_repository::{Currencies, Plans, TaxRates, Taxes};

use crate::{Billing, BillingError};

/// A tax and its rate history, newest first.
type TaxWithHistory = (tax::Model, Vec<tax_rate::Model>);

/// What one batch of renewals reads once for all of them: plans,
/// currencies, the default currency and the country taxes with their rate
/// history.
#[derive(Debug, Default)]
pub(super) struct PricingCache {
    plans: Mutex<HashMap<i64, tarif_plan::Model>>,
    currencies: Mutex<HashMap<String, currency::Model>>,
    default: Mutex<Option<currency::Model>>,
    taxes: Mutex<HashMap<String, Option<TaxWithHistory>>>,
}

fn cached<K: std::hash::Hash + Eq, V: Clone>(map: &Mutex<HashMap<K, V>>, key: &K) -> Option<V> {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(key)
        .cloned()
}

fn remember<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, V>>, key: K, value: V) {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key, value);
}

impl PricingCache {
    pub(super) async fn plan(
        &self,
        billing: &Billing,
        id: i64,
    ) -> Result<tarif_plan::Model, BillingError> {
        if let Some(plan) = cached(&self.plans, &id) {
            return Ok(plan);
        }
        let plan = Plans::get(billing.db(), id).await?;
        remember(&self.plans, id, plan.clone());
        Ok(plan)
    }

    pub(super) async fn currency(
        &self,
        billing: &Billing,
        code: &str,
    ) -> Result<currency::Model, BillingError> {
        let key = code.to_owned();
        if let Some(currency) = cached(&self.currencies, &key) {
            return Ok(currency);
        }
        let currency = billing.existing_currency(code).await?;
        remember(&self.currencies, key, currency.clone());
        Ok(currency)
    }

    pub(super) async fn default_currency(
        &self,
        billing: &Billing,
    ) -> Result<currency::Model, BillingError> {
        let known = self
            .default
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(default) = known {
            return Ok(default);
        }
        let default = Currencies::find_default(billing.db())
            .await?
            .ok_or_else(|| BillingError::invalid("no default currency is configured"))?;
        *self
            .default
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(default.clone());
        Ok(default)
    }

    pub(super) async fn tax(
        &self,
        billing: &Billing,
        country: &str,
    ) -> Result<Option<TaxWithHistory>, BillingError> {
        let key = country.to_owned();
        if let Some(tax) = cached(&self.taxes, &key) {
            return Ok(tax);
        }
        let tax = match Taxes::active_for_country(billing.db(), country).await? {
            Some(tax) => {
                let history = TaxRates::history(billing.db(), tax.id).await?;
                Some((tax, history))
            }
            None => None,
        };
        remember(&self.taxes, key, tax.clone());
        Ok(tax)
    }
}
