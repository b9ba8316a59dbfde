//! Tariff plans with their per-currency prices.

use std::collections::BTreeMap;
use std::str::FromStr;

use billing_domain::entities::{currency, tarif_plan};
use billing_domain::enums::BillingPeriod;
use billing_domain::{
    DomainError, Numeric, PlanPrices, validate_currency_code, validate_plan_prices,
};
use billing_repository::{Page, Plans};
use rust_decimal::Decimal;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::catalogue::{Catalogue, page_of, page_offset};
use crate::currencies::all_currencies;
use crate::rules::{NAME_MAX_CHARS, SLUG_MAX_CHARS};
use crate::text::{optional_text, valid_text};
use crate::{Billing, BillingError, now};

/// A plan to create.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    /// Display name.
    pub name: String,
    /// URL name: lower-case letters, digits and `-`, not only digits; unique.
    pub slug: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Price per billing period in `currency`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "19.99"))]
    #[serde(deserialize_with = "crate::text::exact::price")]
    pub price: Decimal,
    /// ISO 4217 code of `price`; an existing, active currency.
    pub currency: String,
    /// How long one payment lasts.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::BillingPeriod))]
    pub billing_period: BillingPeriod,
    /// Features and limits: a JSON object; `{}` when absent. Every number
    /// in it is kept exactly as sent, or refused: integers from
    /// -9223372036854775808 to 18446744073709551615, other numbers only
    /// when a 64-bit float holds their decimal value exactly (`0.5`,
    /// `19.99`, `1e3`); larger or more precise ones must be sent as strings.
    #[serde(default, deserialize_with = "exact_features")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub features: Option<serde_json::Value>,
    /// Whether it is offered; `true` when absent.
    #[serde(default)]
    pub is_active: Option<bool>,
    /// Position in listings; 0 when absent.
    #[serde(default, deserialize_with = "crate::text::integer::option_integer")]
    pub sort_order: Option<i32>,
    /// Fixed prices in other currencies: code → price.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, String>>))]
    #[serde(deserialize_with = "crate::text::exact::option_price_map")]
    pub prices: Option<BTreeMap<String, Decimal>>,
}

/// Changes to a plan; absent fields stay as they are.
#[derive(Clone, Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PlanChanges {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New slug.
    #[serde(default)]
    pub slug: Option<String>,
    /// New description; an empty string removes it.
    #[serde(default)]
    pub description: Option<String>,
    /// New price.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "24.99"))]
    #[serde(deserialize_with = "crate::text::exact::option_price")]
    pub price: Option<Decimal>,
    /// New currency of `price`.
    #[serde(default)]
    pub currency: Option<String>,
    /// New billing period (applies to payments from now on).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::openapi::BillingPeriod>))]
    pub billing_period: Option<BillingPeriod>,
    /// New features object; its numbers are kept exactly or refused, as on
    /// creation.
    #[serde(default, deserialize_with = "exact_features")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub features: Option<serde_json::Value>,
    /// Whether it is offered.
    #[serde(default)]
    pub is_active: Option<bool>,
    /// New position in listings.
    #[serde(default, deserialize_with = "crate::text::integer::option_integer")]
    pub sort_order: Option<i32>,
    /// New fixed prices (replacing all of them).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, String>>))]
    #[serde(deserialize_with = "crate::text::exact::option_price_map")]
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
            slug: valid_slug(&new.slug)?,
            description: optional_text(new.description.as_deref()),
            price: new.price.into(),
            currency: validate_currency_code(&new.currency)?,
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
                (None, PlanRef::Id(id)) => Err(BillingError::not_found("tarif_plan", id)),
                (None, PlanRef::Slug(slug)) => Err(BillingError::not_found("tarif_plan", slug)),
            };
        }
        match plan {
            PlanRef::Id(id) => Ok(Plans::get(self.db(), *id).await?),
            PlanRef::Slug(slug) => Plans::find_by_slug(self.db(), slug)
                .await?
                .ok_or_else(|| BillingError::not_found("tarif_plan", slug)),
        }
    }

    /// Plans by `sort_order`: the active ones, or all.
    ///
    /// # Errors
    /// [`BillingError::Validation`] for a page out of range.
    pub async fn list_plans(
        &self,
        include_inactive: bool,
        page: u64,
        per_page: u64,
    ) -> Result<Page<tarif_plan::Model>, BillingError> {
        page_offset(page, per_page)?;
        match self
            .catalogue()
            .plans(self.db(), self.coordination())
            .await?
        {
            Some(copy) => page_of(
                copy.plans
                    .iter()
                    .filter(|p| include_inactive || p.is_active),
                page,
                per_page,
            ),
            None => Ok(Plans::list(self.db(), include_inactive, page, per_page).await?),
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
        let slug = changes.slug.as_deref().map(valid_slug).transpose()?;
        let features = changes
            .features
            .map(|f| valid_features(Some(f)))
            .transpose()?;
        let prices = changes.prices.map(to_plan_prices).transpose()?;
        let currency = changes
            .currency
            .as_deref()
            .map(validate_currency_code)
            .transpose()?;
        let updated = self
            .update_versioned::<tarif_plan::Entity, _>(id, expected_version, |plan| {
                if let Some(name) = &name {
                    plan.name.clone_from(name);
                }
                if let Some(slug) = &slug {
                    plan.slug.clone_from(slug);
                }
                if let Some(description) = &changes.description {
                    plan.description = optional_text(Some(description));
                }
                if let Some(price) = changes.price {
                    plan.price = price.into();
                }
                if let Some(currency) = &currency {
                    plan.currency.clone_from(currency);
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
        .ok_or_else(|| BillingError::not_found("currency", &plan.currency))?;
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
                if validate_currency_code(&code).ok().as_deref() != Some(code.as_str()) {
                    return Err(BillingError::invalid(format!(
                        "prices: {code:?} is not an upper-case ISO 4217 currency code"
                    )));
                }
                Ok((code, Numeric(price)))
            })
            .collect::<Result<_, BillingError>>()?,
    ))
}

fn valid_slug(slug: &str) -> Result<String, BillingError> {
    // As sent: `rules::SLUG_PATTERN` and `SLUG_MAX_CHARS`.
    let allowed = slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let only_digits = slug.bytes().all(|b| b.is_ascii_digit());
    if slug.is_empty() || slug.len() > SLUG_MAX_CHARS || !allowed || only_digits {
        return Err(BillingError::invalid(format!(
            "slug must be 1 to {SLUG_MAX_CHARS} lower-case letters, digits or '-', and not only digits"
        )));
    }
    Ok(slug.to_owned())
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

/// `features` as sent, refusing any number that would not be stored and
/// returned with the same value.
///
/// Without serde_json's `arbitrary_precision` (which would change how every
/// crate of the workspace reads numbers, `rust_decimal`'s serde included),
/// a JSON number is held as an `i64`, a `u64` or an `f64`: an integer
/// beyond 64 bits, or a decimal no `f64` holds exactly, would silently
/// become another number (`18446744073709551616` → `1.8446744073709552e19`).
/// The value is therefore read as raw text first, and every number in it is
/// checked by [`exact_number`] before it is parsed.
fn exact_features<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    let Some(raw) = Option::<Box<RawValue>>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let exact = exact_numbers(raw.get()).map_err(D::Error::custom)?;
    serde_json::from_str(&exact)
        .map(Some)
        .map_err(D::Error::custom)
}

/// A step into a JSON value, to name where a number is.
enum Step {
    /// In an object, at the member named so far (none before the first).
    Member(Option<String>),
    /// In an array, at this index.
    Element(usize),
}

/// Checks every number of `json` (valid JSON text) with [`exact_number`],
/// after writing an integral number in integer notation (`2.0` → `2`,
/// `1e3` → `1000`: JSON Schema's integers, which must lie within the
/// integer range); returns the text so rewritten. The error names the
/// number's path (`features.limits.seats`) and why. Iterative, so nesting
/// depth costs no stack.
fn exact_numbers(json: &str) -> Result<String, String> {
    let mut out = String::with_capacity(json.len());
    let mut copied = 0;
    let bytes = json.as_bytes();
    let mut path: Vec<Step> = Vec::new();
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'{' => path.push(Step::Member(None)),
            b'[' => path.push(Step::Element(0)),
            b'}' | b']' => {
                path.pop();
            }
            b',' => {
                if let Some(Step::Element(index)) = path.last_mut() {
                    *index += 1;
                }
            }
            b'"' => {
                let end = string_end(bytes, at);
                let after = bytes[end..]
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .map(|offset| bytes[end + offset]);
                if after == Some(b':')
                    && let Some(Step::Member(name)) = path.last_mut()
                {
                    let text = &json[at..end];
                    *name = Some(serde_json::from_str(text).unwrap_or_else(|_| text.to_owned()));
                }
                at = end;
                continue;
            }
            b'-' | b'0'..=b'9' => {
                let end = bytes[at..]
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .map_or(bytes.len(), |offset| at + offset);
                let number = &json[at..end];
                let integral = integral_text(number);
                if let Some(integer) = &integral {
                    out.push_str(&json[copied..at]);
                    out.push_str(integer);
                    copied = end;
                }
                exact_number(integral.as_deref().unwrap_or(number)).map_err(|reason| {
                    format!("{}: the number {number} {reason}", path_name(&path))
                })?;
                at = end;
                continue;
            }
            _ => {}
        }
        at += 1;
    }
    out.push_str(&json[copied..]);
    Ok(out)
}

/// A number written with a fraction or an exponent whose value is a
/// non-zero integer (`2.0`, `1e3`, `-9.2e18`), in integer notation; `None`
/// otherwise (and for an absurd exponent).
fn integral_text(text: &str) -> Option<String> {
    if !text.contains(['.', 'e', 'E']) {
        return None;
    }
    let (negative, digits, exponent) = decimal_value(text)?;
    if digits.is_empty() || !(0..=1000).contains(&exponent) {
        return None;
    }
    let zeros = "0".repeat(usize::try_from(exponent).ok()?);
    let sign = if negative { "-" } else { "" };
    Some(format!("{sign}{digits}{zeros}"))
}

/// The index just past the string that starts at `start` (a `"`).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// `features.limits.seats`, `features.tiers[2]`.
fn path_name(path: &[Step]) -> String {
    let mut name = String::from("features");
    for step in path {
        match step {
            Step::Member(Some(member)) => {
                name.push('.');
                name.push_str(member);
            }
            Step::Member(None) => {}
            Step::Element(index) => name.push_str(&format!("[{index}]")),
        }
    }
    name
}

/// Whether the JSON number `text` is stored and returned with its value:
/// the number serde_json holds (`i64`, `u64` or `f64`) must be written back
/// as the same decimal value, and read back as the same number both from
/// that text (SQLite keeps it) and from PostgreSQL's `jsonb` rendering of
/// it (plain decimal notation).
///
/// # Errors
/// Why not, for the caller.
fn exact_number(text: &str) -> Result<(), String> {
    const REFUSED: &str = "cannot be stored exactly: integers must lie within \
        -9223372036854775808..=18446744073709551615 and other numbers must be \
        exact as 64-bit floats; send it as a string";
    let integer = !text.contains(['.', 'e', 'E']);
    if integer && text.parse::<i64>().is_err() && text.parse::<u64>().is_err() {
        return Err(format!("is out of range; {REFUSED}"));
    }
    let held: serde_json::Value =
        serde_json::from_str(text).map_err(|_| format!("is out of range; {REFUSED}"))?;
    let written = held.to_string();
    if decimal_value(text).is_none() || decimal_value(text) != decimal_value(&written) {
        return Err(format!("would become {written}; {REFUSED}"));
    }
    let read_back = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
    let same = |other: Option<serde_json::Value>| match (other, held.as_f64()) {
        (Some(other), _) if other == held => true,
        // A float may come back as an integer (`150.0` as `150`) or as
        // `0.0` for `-0.0`: the same value.
        (Some(other), Some(float)) if held.is_f64() => other.as_f64() == Some(float),
        (Some(_) | None, _) => false,
    };
    if same(read_back(&written)) && same(plain_decimal(&written).as_deref().and_then(read_back)) {
        Ok(())
    } else {
        Err(format!("would not read back as {written}; {REFUSED}"))
    }
}

/// The value of a JSON number as `(negative, significant digits, exponent)`
/// with no leading or trailing zero digit (zero is `(false, "", 0)`);
/// `None` when the exponent does not fit an `i64`.
fn decimal_value(text: &str) -> Option<(bool, String, i64)> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    let trimmed = digits.trim_end_matches('0');
    if trimmed.is_empty() {
        return Some((false, String::new(), 0));
    }
    let fraction_len = i64::try_from(fraction.len()).ok()?;
    let trailing = i64::try_from(digits.len() - trimmed.len()).ok()?;
    let exponent = exponent.checked_sub(fraction_len)?.checked_add(trailing)?;
    Some((negative, trimmed.to_owned(), exponent))
}

/// A JSON number in plain decimal notation with the digits it was written
/// with, as PostgreSQL renders a `jsonb` number (`1e300` → `1` and 300
/// zeros, `1.5e-7` → `0.00000015`); `None` for an absurd exponent.
fn plain_decimal(text: &str) -> Option<String> {
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        return Some(text.to_owned());
    };
    let exponent: i64 = exponent.parse().ok()?;
    if exponent.unsigned_abs() > 1000 {
        return None;
    }
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    // The position of the decimal point within `digits`.
    let point = i64::try_from(whole.len()).ok()? + exponent;
    let len = i64::try_from(digits.len()).ok()?;
    let plain = if point <= 0 {
        let zeros = usize::try_from(-point).ok()?;
        format!("0.{}{digits}", "0".repeat(zeros))
    } else if point >= len {
        let zeros = usize::try_from(point - len).ok()?;
        format!("{digits}{}", "0".repeat(zeros))
    } else {
        let point = usize::try_from(point).ok()?;
        format!("{}.{}", &digits[..point], &digits[point..])
    };
    Some(format!("{sign}{plain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<NewPlan, serde_json::Error> {
        serde_json::from_str(body)
    }

    fn features(json: &str) -> Result<serde_json::Value, String> {
        let body = format!(
            r#"{{"name":"P","slug":"p","price":"1","currency":"EUR","billing_period":"monthly","features":{json}}}"#
        );
        parse(&body)
            .map(|plan| plan.features.unwrap_or_default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn feature_numbers_are_kept_exactly_or_refused_by_path() {
        for kept in [
            r#"{"seats":10}"#,
            r#"{"seats":18446744073709551615}"#,
            r#"{"floor":-9223372036854775808}"#,
            r#"{"ratio":0.5,"price":19.99,"tiny":1e-7,"third":0.3333333333333333}"#,
            r#"{"nested":{"list":[1,2.5,{"x":-0.0}]},"text":"18446744073709551616"}"#,
        ] {
            let value = features(kept).unwrap_or_else(|e| panic!("{kept}: {e}"));
            // What is kept is written back with the same numbers.
            let sent: serde_json::Value = serde_json::from_str(kept).unwrap();
            assert_eq!(value, sent, "{kept}");
        }
        for (refused, path) in [
            (r#"{"seats":18446744073709551616}"#, "features.seats"),
            (r#"{"floor":-9223372036854775809}"#, "features.floor"),
            (
                r#"{"a":{"b":[1,2,0.1000000000000000000001]}}"#,
                "features.a.b[2]",
            ),
            (r#"{"huge":1e400}"#, "features.huge"),
            (r#"{"big":1e300}"#, "features.big"),
            (r#"{"big":-9.3e18}"#, "features.big"),
            (r#"{"x":123456789012345678901234567890}"#, "features.x"),
        ] {
            let error = features(refused).unwrap_err();
            assert!(error.contains(path), "{refused}: {error}");
            assert!(error.contains("send it as a string"), "{refused}: {error}");
        }
    }

    #[test]
    fn integral_numbers_are_kept_as_integers() {
        for (sent, kept) in [
            (r#"{"n":9007199254740993.0}"#, r#"{"n":9007199254740993}"#),
            (
                r#"{"n":-9.223372036854775e+18}"#,
                r#"{"n":-9223372036854775000}"#,
            ),
            (r#"{"n":[1e3, 2.50e1]}"#, r#"{"n":[1000, 25]}"#),
            // Read exactly (serde_json's `float_roundtrip`), so kept as sent.
            (
                r#"{"n":3.758720996455826e-300}"#,
                r#"{"n":3.758720996455826e-300}"#,
            ),
        ] {
            let kept: serde_json::Value = serde_json::from_str(kept).unwrap();
            assert_eq!(features(sent), Ok(kept), "{sent}");
        }
    }

    #[test]
    fn decimal_values_compare_by_value() {
        assert_eq!(decimal_value("1.50e1"), decimal_value("15"));
        assert_eq!(decimal_value("-0.0"), decimal_value("0"));
        assert_ne!(
            decimal_value("18446744073709551616"),
            decimal_value("1.8446744073709552e19")
        );
        assert_eq!(plain_decimal("1.5e-7").as_deref(), Some("0.00000015"));
        assert_eq!(plain_decimal("1.5e2").as_deref(), Some("150"));
        assert_eq!(plain_decimal("-1.25e1").as_deref(), Some("-12.5"));
        assert_eq!(plain_decimal("1e3").as_deref(), Some("1000"));
    }

    #[test]
    fn money_must_be_an_exact_decimal_string() {
        let ok = r#"{"name":"P","slug":"p","price":"19.99","currency":"EUR","billing_period":"monthly","prices":{"USD":"21.50"}}"#;
        let plan = parse(ok).unwrap();
        assert_eq!(plan.price.to_string(), "19.99");
        assert_eq!(plan.prices.unwrap()["USD"].to_string(), "21.50");
        for bad in [
            r#"{"name":"P","slug":"p","price":19.99,"currency":"EUR","billing_period":"monthly"}"#,
            r#"{"name":"P","slug":"p","price":"1.00000000000000000000000000001","currency":"EUR","billing_period":"monthly"}"#,
            r#"{"name":"P","slug":"p","price":"1e2","currency":"EUR","billing_period":"monthly"}"#,
            r#"{"name":"P","slug":"p","price":"1","currency":"EUR","billing_period":"monthly","prices":{"USD":21.5}}"#,
        ] {
            assert!(parse(bad).is_err(), "accepted {bad}");
        }
    }
}
