//! Tariff plans with their per-currency prices.

use std::collections::BTreeMap;
use std::str::FromStr;

use billing_domain::entities::{currency, tarif_plan};
use billing_domain::enums::BillingPeriod;
use billing_domain::values::{CurrencyCode, Slug};
use billing_domain::{DomainError, Numeric, PlanPrices, validate_plan_prices};
use billing_repository::{Page, Plans};
use rust_decimal::Decimal;

use crate::catalogue::{Catalogue, page_of};
use crate::currencies::all_currencies;
use crate::rules::NAME_MAX_CHARS;
use crate::text::{optional_text, valid_text};
use crate::{Billing, BillingError, PageRequest, PlanFilter, Resource, now};

/// A plan to create.
#[derive(Clone, Debug)]
pub struct NewPlan {
    /// Display name.
    pub name: String,
    /// URL name: lower-case letters, digits and `-`, not only digits; unique.
    pub slug: String,
    /// Free text.
    pub description: Option<String>,
    /// Price per billing period in `currency`.
    pub price: Decimal,
    /// ISO 4217 code of `price`; an existing, active currency.
    pub currency: String,
    /// How long one payment lasts.
    pub billing_period: BillingPeriod,
    /// Features and limits: a JSON object; `{}` when absent. Every number
    /// in it is kept exactly as sent, or refused: integers from
    /// -9223372036854775808 to 18446744073709551615, other numbers only
    /// when a 64-bit float holds their decimal value exactly (`0.5`,
    /// `19.99`, `1e3`); larger or more precise ones must be sent as strings.
    pub features: Option<serde_json::Value>,
    /// Whether it is offered; `true` when absent.
    pub is_active: Option<bool>,
    /// Position in listings; 0 when absent.
    pub sort_order: Option<i32>,
    /// Fixed prices in other currencies: code → price.
    pub prices: Option<BTreeMap<String, Decimal>>,
}

/// Changes to a plan; absent fields stay as they are.
#[derive(Clone, Debug, Default)]
pub struct PlanChanges {
    /// New name.
    pub name: Option<String>,
    /// New slug.
    pub slug: Option<String>,
    /// New description; an empty string removes it.
    pub description: Option<String>,
    /// New price.
    pub price: Option<Decimal>,
    /// New currency of `price`.
    pub currency: Option<String>,
    /// New billing period (applies to payments from now on).
    pub billing_period: Option<BillingPeriod>,
    /// New features object; its numbers are kept exactly or refused, as on
    /// creation.
    pub features: Option<serde_json::Value>,
    /// Whether it is offered.
    pub is_active: Option<bool>,
    /// New position in listings.
    pub sort_order: Option<i32>,
    /// New fixed prices (replacing all of them).
    pub prices: Option<BTreeMap<String, Decimal>>,
}

/// A plan named by id (`42`) or by slug (`pro`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanRef {
    /// By id.
    Id(i64),
    /// By slug.
    Slug(String),
}

impl FromStr for PlanRef {
    type Err = std::convert::Infallible;

    /// Digits are an id (slugs are never all digits), anything else a slug.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.parse::<i64>() {
            Ok(id) if s.bytes().all(|b| b.is_ascii_digit()) => Self::Id(id),
            Ok(_) | Err(_) => Self::Slug(s.to_owned()),
        })
    }
}

impl Billing {
    /// Creates a plan.
    ///
    /// # Errors
    /// [`BillingError::Validation`] (bad slug, unknown or inactive currency,
    /// negative or over-precise price, bad prices map, features not an
    /// object), [`BillingError::AlreadyExists`] (slug taken).
    pub async fn create_plan(&self, new: NewPlan) -> Result<tarif_plan::Model, BillingError> {
        let currencies = all_currencies(self.db()).await?;
        let mut plan = tarif_plan::Model {
            id: 0,
            name: valid_text("name", &new.name, NAME_MAX_CHARS)?,
            slug: Slug::parse(&new.slug)?.into_string(),
            description: optional_text(new.description.as_deref()),
            price: new.price.into(),
            currency: CurrencyCode::parse(&new.currency)?.into_string(),
            billing_period: new.billing_period,
            features: valid_features(new.features)?,
            is_active: new.is_active.unwrap_or(true),
            sort_order: new.sort_order.unwrap_or(0),
            prices: to_plan_prices(new.prices.unwrap_or_default())?,
            created_at: now(),
            updated_at: now(),
            version: 1,
        };
        normalise_and_validate(&mut plan, &currencies)?;
        let created = self
            .recording_transaction(move |tx| {
                let plan = plan.clone();
                Box::pin(async move { Ok(Some(Plans::insert(tx, plan).await?)) })
            })
            .await;
        self.announce(Catalogue::Plans, created).await
    }

    /// The plan named by id or slug.
    ///
    /// # Errors
    /// [`BillingError::NotFound`].
    pub async fn plan(&self, plan: &PlanRef) -> Result<tarif_plan::Model, BillingError> {
        if let Some(copy) = self
            .catalogue()
            .plans(self.db(), self.coordination())
            .await?
        {
            let found = copy.plans.iter().find(|p| match plan {
                PlanRef::Id(id) => p.id == *id,
                PlanRef::Slug(slug) => p.slug == *slug,
            });
            return match (found, plan) {
                (Some(found), PlanRef::Id(_) | PlanRef::Slug(_)) => Ok(found.clone()),
                (None, PlanRef::Id(id)) => Err(BillingError::not_found(Resource::Plan, id)),
                (None, PlanRef::Slug(slug)) => Err(BillingError::not_found(Resource::Plan, slug)),
            };
        }
        match plan {
            PlanRef::Id(id) => Ok(Plans::get(self.db(), *id).await?),
            PlanRef::Slug(slug) => Plans::find_by_slug(self.db(), slug)
                .await?
                .ok_or_else(|| BillingError::not_found(Resource::Plan, slug)),
        }
    }

    /// Plans by `sort_order`: those `filter` keeps.
    ///
    /// # Errors
    /// [`BillingError::Unavailable`] when the database cannot be read.
    pub async fn list_plans(
        &self,
        filter: PlanFilter,
        page: PageRequest,
    ) -> Result<Page<tarif_plan::Model>, BillingError> {
        match self
            .catalogue()
            .plans(self.db(), self.coordination())
            .await?
        {
            Some(copy) => Ok(page_of(
                copy.plans.iter().filter(|p| filter.keeps(p.is_active)),
                page,
            )),
            None => Ok(Plans::list(self.db(), filter, page).await?),
        }
    }

    /// Changes a plan.
    ///
    /// # Errors
    /// As [`create_plan`](Self::create_plan), plus
    /// [`BillingError::NotFound`] and [`BillingError::VersionMismatch`].
    pub async fn update_plan(
        &self,
        id: i64,
        changes: PlanChanges,
        expected_version: Option<i32>,
    ) -> Result<tarif_plan::Model, BillingError> {
        let currencies = all_currencies(self.db()).await?;
        let name = changes
            .name
            .as_deref()
            .map(|n| valid_text("name", n, NAME_MAX_CHARS))
            .transpose()?;
        let slug = changes.slug.as_deref().map(Slug::parse).transpose()?;
        let features = changes
            .features
            .map(|f| valid_features(Some(f)))
            .transpose()?;
        let prices = changes.prices.map(to_plan_prices).transpose()?;
        let currency = changes
            .currency
            .as_deref()
            .map(CurrencyCode::parse)
            .transpose()?;
        let updated = self
            .update_versioned::<tarif_plan::Entity, _>(id, expected_version, |plan| {
                if let Some(name) = &name {
                    plan.name.clone_from(name);
                }
                if let Some(slug) = &slug {
                    plan.slug = slug.to_string();
                }
                if let Some(description) = &changes.description {
                    plan.description = optional_text(Some(description));
                }
                if let Some(price) = changes.price {
                    plan.price = price.into();
                }
                if let Some(currency) = currency {
                    plan.currency = currency.into_string();
                }
                if let Some(period) = changes.billing_period {
                    plan.billing_period = period;
                }
                if let Some(features) = &features {
                    plan.features.clone_from(features);
                }
                if let Some(active) = changes.is_active {
                    plan.is_active = active;
                }
                if let Some(order) = changes.sort_order {
                    plan.sort_order = order;
                }
                if let Some(prices) = &prices {
                    plan.prices.clone_from(prices);
                }
                normalise_and_validate(plan, &currencies)
            })
            .await;
        self.announce(Catalogue::Plans, updated).await
    }
}

/// Validates the plan against the currencies and normalises its prices
/// (padded to each currency's minor units).
fn normalise_and_validate(
    plan: &mut tarif_plan::Model,
    currencies: &[currency::Model],
) -> Result<(), BillingError> {
    let own = currencies
        .iter()
        .find(|c| c.code == plan.currency)
        .ok_or_else(|| BillingError::not_found(Resource::Currency, &plan.currency))?;
    if !own.is_active {
        return Err(BillingError::invalid_transition(format!(
            "currency {} is not active",
            own.code
        )));
    }
    // The shape of every price is checked on input; what is left depends on
    // the stored currencies (known, active, their minor units).
    let against_currencies = |error: DomainError| {
        let stateful = matches!(
            error,
            DomainError::TooManyDecimals { .. }
                | DomainError::UnknownCurrency { .. }
                | DomainError::CurrencyInactive { .. }
                | DomainError::NotDefaultCurrency { .. }
                | DomainError::CurrencyMismatch { .. }
                // `prices` naming the plan's own (stored or new) currency.
                | DomainError::InvalidField { field: "prices", .. }
        );
        let error = BillingError::from(error);
        if stateful {
            error.against_state()
        } else {
            error
        }
    };
    plan.prices = validate_plan_prices(&plan.prices, &plan.currency, currencies)
        .map_err(against_currencies)?;
    plan.price = own
        .validate_price(plan.price.get())
        .map_err(against_currencies)?
        .into();
    plan.validate(currencies).map_err(against_currencies)?;
    Ok(())
}

/// The prices by code; a code that is not an upper-case ISO 4217 code is
/// refused as malformed (`rules::upper_case_currency_code_pattern`), so no
/// currency can be listed twice; whether it is configured depends on the
/// stored currencies.
fn to_plan_prices(prices: BTreeMap<String, Decimal>) -> Result<PlanPrices, BillingError> {
    Ok(PlanPrices(
        prices
            .into_iter()
            .map(|(code, price)| {
                let code = CurrencyCode::parse_upper_case(&code).map_err(|_| {
                    BillingError::invalid(format!(
                        "prices: {code:?} is not an upper-case ISO 4217 currency code"
                    ))
                })?;
                Ok((code.into_string(), Numeric(price)))
            })
            .collect::<Result<_, BillingError>>()?,
    ))
}

fn valid_features(features: Option<serde_json::Value>) -> Result<serde_json::Value, BillingError> {
    match features {
        None => Ok(serde_json::Value::Object(serde_json::Map::new())),
        Some(value @ serde_json::Value::Object(_)) => Ok(value),
        Some(
            serde_json::Value::Null
            | serde_json::Value::Bool(_)
            | serde_json::Value::Number(_)
            | serde_json::Value::String(_)
            | serde_json::Value::Array(_),
        ) => Err(BillingError::invalid("features must be a JSON object")),
    }
}
