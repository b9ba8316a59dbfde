//! Currencies: exactly one default, and switching the default as one atomic
//! step that rebases every exchange rate.

use billing_domain::entities::currency;
use billing_domain::exchange::rebase_rates;
use billing_domain::money;
use billing_domain::values::CurrencyCode;
use billing_repository::{Currencies, Executor, Page, Transaction};
use rust_decimal::Decimal;

use crate::catalogue::{Catalogue, page_of};
use crate::versioned::{check_expected_version, save_or_conflict};
use crate::{Billing, BillingError, PageRequest, Resource, now};

/// A currency to create.
#[derive(Clone, Debug)]
pub struct NewCurrency {
    /// ISO 4217 code (`EUR`).
    pub code: String,
    /// Name (`Euro`).
    pub name: String,
    /// Symbol (`€`), if any.
    pub symbol: Option<String>,
    /// Units of this currency per one unit of the default currency.
    pub exchange_rate: Decimal,
    /// Minor units; ISO 4217's when absent (EUR 2, JPY 0, KWD 3).
    pub decimal_places: Option<i16>,
    /// Make it the default currency (rebasing every other rate on it).
    pub is_default: Option<bool>,
    /// Whether plans and invoices may use it; `true` when absent.
    pub is_active: Option<bool>,
}

/// Changes to a currency; absent fields stay as they are.
#[derive(Clone, Debug, Default)]
pub struct CurrencyChanges {
    /// New name.
    pub name: Option<String>,
    /// New symbol; an empty string removes it.
    pub symbol: Option<String>,
    /// New exchange rate against the default currency.
    pub exchange_rate: Option<Decimal>,
    /// Whether plans and invoices may use it (the default must stay active).
    pub is_active: Option<bool>,
    /// `true` makes it the default (every other rate is rebased on it);
    /// `false` is refused on the default: make another currency the default.
    pub is_default: Option<bool>,
}

impl Billing {
    /// Creates a currency. The first currency must be the default (rate 1);
    /// a later one created as default becomes it in the same transaction,
    /// and every rate is rebased on it.
    ///
    /// # Errors
    /// [`BillingError::Validation`] (unknown ISO code, bad rate or minor
    /// units, first currency not default, a rebased rate out of range),
    /// [`BillingError::AlreadyExists`].
    pub async fn create_currency(&self, new: NewCurrency) -> Result<currency::Model, BillingError> {
        let outcome = self.create_currency_unannounced(new).await;
        self.announce(Catalogue::Currencies, outcome).await
    }

    /// As the public method, without announcing the change.
    async fn create_currency_unannounced(
        &self,
        new: NewCurrency,
    ) -> Result<currency::Model, BillingError> {
        let code = CurrencyCode::parse(&new.code)?;
        let decimal_places = match new.decimal_places {
            Some(places) => places,
            None => i16::try_from(code.minor_units()).unwrap_or(2),
        };
        money::validate_decimal_places(decimal_places)?;
        let make_default = new.is_default.unwrap_or(false);
        let candidate = currency::Model {
            id: 0,
            code: code.into_string(),
            name: valid_name(&new.name)?,
            symbol: valid_symbol(new.symbol.as_deref())?,
            exchange_rate: new.exchange_rate.into(),
            decimal_places,
            is_default: false,
            is_active: new.is_active.unwrap_or(true),
            created_at: now(),
            updated_at: now(),
            version: 1,
        };
        candidate.validate()?;
        if make_default && !candidate.is_active {
            return Err(BillingError::invalid_transition(
                "the default currency must be active",
            ));
        }
        self.recording_transaction(move |tx| {
            let candidate = candidate.clone();
            Box::pin(async move {
                let existing_default = Currencies::find_default(tx).await?;
                if existing_default.is_none() && !make_default {
                    return Err(BillingError::invalid_transition(
                        "there is no default currency yet: create the first one with is_default true and rate 1",
                    ));
                }
                let created = Currencies::insert(tx, candidate).await?;
                if make_default {
                    let version = created.version;
                    return rebase_on(tx, created, version, None)
                        .await
                        .map_err(BillingError::against_state);
                }
                Ok(Some(created))
            })
        })
        .await
    }

    /// The currency with ISO code `code` (case-insensitive).
    ///
    /// # Errors
    /// [`BillingError::NotFound`].
    pub async fn currency(&self, code: &str) -> Result<currency::Model, BillingError> {
        let code = code.trim().to_ascii_uppercase();
        if let Some(copy) = self
            .catalogue()
            .currencies(self.db(), self.coordination())
            .await?
        {
            return copy
                .currencies
                .iter()
                .find(|c| c.code == code)
                .cloned()
                .ok_or_else(|| BillingError::not_found(Resource::Currency, &code));
        }
        Currencies::find_by_code(self.db(), &code)
            .await?
            .ok_or_else(|| BillingError::not_found(Resource::Currency, &code))
    }

    /// Currencies by id.
    ///
    /// # Errors
    /// [`BillingError::Unavailable`] when the database cannot be read.
    pub async fn list_currencies(
        &self,
        page: PageRequest,
    ) -> Result<Page<currency::Model>, BillingError> {
        match self
            .catalogue()
            .currencies(self.db(), self.coordination())
            .await?
        {
            Some(copy) => Ok(page_of(copy.currencies.iter(), page)),
            None => Ok(Currencies::list(self.db(), page).await?),
        }
    }

    /// Changes a currency. Making it the default is one transaction that
    /// also rebases every exchange rate on it.
    ///
    /// # Errors
    /// [`BillingError::NotFound`], [`BillingError::VersionMismatch`],
    /// [`BillingError::Validation`] (a bad rate, a rate other than 1 for the
    /// default, deactivating or un-defaulting the default, a switch of the
    /// default that would put another currency's rate out of range — then
    /// nothing is written).
    pub async fn update_currency(
        &self,
        code: &str,
        changes: CurrencyChanges,
        expected_version: Option<i32>,
    ) -> Result<currency::Model, BillingError> {
        let outcome = self
            .update_currency_unannounced(code, changes, expected_version)
            .await;
        self.announce(Catalogue::Currencies, outcome).await
    }
    /// As the public method, without announcing the change.
    async fn update_currency_unannounced(
        &self,
        code: &str,
        changes: CurrencyChanges,
        expected_version: Option<i32>,
    ) -> Result<currency::Model, BillingError> {
        // From the database: a currency just created elsewhere is found.
        let code = code.trim().to_ascii_uppercase();
        let id = Currencies::find_by_code(self.db(), &code)
            .await?
            .ok_or_else(|| BillingError::not_found(Resource::Currency, &code))?
            .id;
        let name = changes.name.as_deref().map(valid_name).transpose()?;
        let symbol = changes
            .symbol
            .as_deref()
            .map(|s| valid_symbol(Some(s)))
            .transpose()?;
        let apply = move |currency: &mut currency::Model| -> Result<(), BillingError> {
            if let Some(name) = &name {
                currency.name.clone_from(name);
            }
            if let Some(symbol) = &symbol {
                currency.symbol.clone_from(symbol);
            }
            if let Some(rate) = changes.exchange_rate {
                currency.exchange_rate = rate.into();
            }
            if let Some(active) = changes.is_active {
                currency.is_active = active;
            }
            if changes.is_default == Some(false) && currency.is_default {
                return Err(BillingError::invalid_transition(
                    "a default currency is required: make another currency the default instead",
                ));
            }
            if currency.is_default && !currency.is_active {
                return Err(BillingError::invalid_transition(
                    "the default currency must stay active",
                ));
            }
            // The rate's shape was checked on input; what is left depends
            // on the stored row (the default's rate is 1).
            currency
                .validate()
                .map_err(|e| BillingError::from(e).against_state())?;
            Ok(())
        };
        if changes.is_default != Some(true) {
            return self
                .update_versioned::<currency::Entity, _>(id, expected_version, apply)
                .await;
        }
        self.make_default(id, expected_version, apply).await
    }

    /// Applies `apply` to currency `id` and, unless it already is the
    /// default, makes it the default, in one transaction that rebases every
    /// exchange rate on it.
    async fn make_default<F>(
        &self,
        id: i64,
        expected_version: Option<i32>,
        apply: F,
    ) -> Result<currency::Model, BillingError>
    where
        F: Fn(&mut currency::Model) -> Result<(), BillingError> + Clone + Send + Sync + 'static,
    {
        self.retrying_transaction(move |tx| {
            let apply = apply.clone();
            Box::pin(async move {
                let mut currency = Currencies::get(tx, id).await?;
                let read_version = currency.version;
                check_expected_version(Resource::Currency, expected_version, read_version)?;
                let stored = currency.clone();
                apply(&mut currency)?;
                if currency.is_default {
                    if currency == stored {
                        // Already the default, nothing else changes.
                        return Ok(Some(stored));
                    }
                    return save_or_conflict::<currency::Entity, _>(
                        tx,
                        &currency,
                        read_version,
                        expected_version,
                    )
                    .await;
                }
                if !currency.is_active {
                    return Err(BillingError::invalid_transition(
                        "the default currency must be active",
                    ));
                }
                rebase_on(tx, currency, read_version, expected_version)
                    .await
                    .map_err(BillingError::against_state)
            })
        })
        .await
    }
}

/// Every currency (there are at most a few hundred), through `exec`.
pub(crate) async fn all_currencies<X: Executor>(
    exec: &X,
) -> Result<Vec<currency::Model>, BillingError> {
    let mut all = Vec::new();
    let mut page = PageRequest::largest_first();
    loop {
        let batch = Currencies::list(exec, page).await?;
        let done = batch.items.len() < usize::try_from(batch.per_page).unwrap_or(usize::MAX);
        all.extend(batch.items);
        match page.next() {
            Some(next) if !done => page = next,
            Some(_) | None => return Ok(all),
        }
    }
}

/// Makes `new_default` (as the caller changed it, read at `read_version`)
/// the default currency inside `tx`, with the domain's rebasing
/// ([`rebase_rates`]): every rebased rate is validated before anything is
/// written, so an out-of-range rate refuses the switch. The old default is
/// saved first (the unique index allows one default). `Ok(None)` when
/// another writer changed a currency meanwhile.
async fn rebase_on(
    tx: &Transaction,
    new_default: currency::Model,
    read_version: i32,
    expected_version: Option<i32>,
) -> Result<Option<currency::Model>, BillingError> {
    let mut stored = all_currencies(tx).await?;
    // The old default first: until it drops the flag, no other row may take it.
    stored.sort_by_key(|c| (!c.is_default, c.id));
    let changed: Vec<currency::Model> = stored
        .iter()
        .map(|c| {
            if c.id == new_default.id {
                new_default.clone()
            } else {
                c.clone()
            }
        })
        .collect();
    let rebased = rebase_rates(&changed, &new_default.code)?;
    let mut result = None;
    for (currency, before) in rebased.into_iter().zip(&stored) {
        let is_new_default = currency.id == new_default.id;
        if !is_new_default && currency == *before {
            continue;
        }
        let (version, expected) = if is_new_default {
            (read_version, expected_version)
        } else {
            (before.version, None)
        };
        let Some(saved) =
            save_or_conflict::<currency::Entity, _>(tx, &currency, version, expected).await?
        else {
            return Ok(None);
        };
        if is_new_default {
            result = Some(saved);
        }
    }
    Ok(result)
}

fn valid_name(name: &str) -> Result<String, BillingError> {
    crate::text::valid_text("name", name, crate::rules::NAME_MAX_CHARS)
}

fn valid_symbol(symbol: Option<&str>) -> Result<Option<String>, BillingError> {
    crate::text::optional_bounded_text("symbol", symbol, crate::rules::SYMBOL_MAX_CHARS)
}
