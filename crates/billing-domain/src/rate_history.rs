//! A tax's rate history: which rate is in force when, whether a history is
//! consistent, and what a rate change does to it.
//!
//! Each `tax_rate` row is in force on `[valid_from, valid_to)`; the open row
//! (`valid_to` empty) is the current rate. A change of the tax's rate at an
//! instant closes the open row there and opens a new one, so the history
//! stays contiguous, never overlaps and every past instant keeps the rate it
//! had ([`change_rate`]).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::entities::tax_rate;
use crate::error::DomainError;
use crate::taxation::validate_tax_rate;

/// What a change of a tax's rate does to its history: the rows to write.
/// Each row keeps the `version` it was read with, for a versioned save.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RateChange {
    /// The open row ends at the change (`closed`) and `opened` starts there.
    CloseAndOpen {
        /// The formerly open row, now ending at the change.
        closed: tax_rate::Model,
        /// The new open row (id 0: not stored yet).
        opened: tax_rate::Model,
    },
    /// The open row starts at (or after) the change itself: it never was in
    /// force before, so its rate is corrected in place.
    Correct(tax_rate::Model),
    /// The tax has no open row: `opened` starts at the change.
    Open(tax_rate::Model),
}

/// What changing the rate of tax `tax_id` to `rate` at `at` does to its
/// history, given its open row (`open`, if any).
///
/// ```
/// use billing_domain::rate_history::{RateChange, change_rate};
/// use chrono::{TimeZone, Utc};
/// use rust_decimal::Decimal;
///
/// let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
/// let RateChange::Open(first) = change_rate(7, None, Decimal::new(19, 0), at).unwrap() else {
///     panic!("a tax without history gets its first row");
/// };
/// let later = Utc.with_ymd_and_hms(2026, 7, 1, 0, 0, 0).unwrap();
/// let RateChange::CloseAndOpen { closed, opened } =
///     change_rate(7, Some(first), Decimal::new(16, 0), later).unwrap()
/// else {
///     panic!("a rate in force is closed, not rewritten");
/// };
/// assert_eq!((closed.valid_to, opened.valid_from), (Some(later), later));
/// assert_eq!(opened.rate.get(), Decimal::new(16, 0));
/// ```
///
/// # Errors
/// [`DomainError`] when `rate` is not a valid tax rate (0 to 100, at most
/// four decimals), or when `open` is not an open row of tax `tax_id`
/// ([`DomainError::InvalidRateInterval`]).
pub fn change_rate(
    tax_id: i64,
    open: Option<tax_rate::Model>,
    rate: Decimal,
    at: DateTime<Utc>,
) -> Result<RateChange, DomainError> {
    let rate = validate_tax_rate(rate)?;
    let Some(mut open) = open else {
        return Ok(RateChange::Open(opened_row(tax_id, rate, at)));
    };
    if open.tax_id != tax_id || open.valid_to.is_some() {
        return Err(DomainError::InvalidRateInterval { id: open.id });
    }
    if open.valid_from < at {
        open.valid_to = Some(at);
        open.updated_at = at;
        return Ok(RateChange::CloseAndOpen {
            closed: open,
            opened: opened_row(tax_id, rate, at),
        });
    }
    open.rate = rate.into();
    open.updated_at = at;
    Ok(RateChange::Correct(open))
}

fn opened_row(tax_id: i64, rate: Decimal, from: DateTime<Utc>) -> tax_rate::Model {
    tax_rate::Model {
        id: 0,
        tax_id,
        rate: rate.into(),
        valid_from: from,
        valid_to: None,
        created_at: from,
        updated_at: from,
        version: 1,
    }
}

/// Whether a historical rate covers `at`: `valid_from <= at < valid_to`.
fn covers(rate: &tax_rate::Model, at: DateTime<Utc>) -> bool {
    rate.valid_from <= at && rate.valid_to.is_none_or(|to| at < to)
}

/// The rate in force at `at` among the historical rates of one tax, each in
/// force on `[valid_from, valid_to)`. No row covering `at` is
/// [`DomainError::NoRateInForce`]; two rows covering it (overlapping history)
/// is [`DomainError::OverlappingTaxRates`] rather than a guess.
///
/// ```
/// use billing_domain::rate_history::rate_in_force;
/// use chrono::{TimeZone, Utc};
/// # use billing_domain::entities::tax_rate;
/// # fn row(id: i64, rate: &str, from: &str, to: Option<&str>) -> tax_rate::Model {
/// #     serde_json::from_value(serde_json::json!({"id": id, "tax_id": 1, "rate": rate,
/// #         "valid_from": from, "valid_to": to, "created_at": from, "updated_at": from,
/// #         "version": 1})).unwrap()
/// # }
/// let history = [
///     row(1, "19", "2007-01-01T00:00:00Z", Some("2020-07-01T00:00:00Z")),
///     row(2, "16", "2020-07-01T00:00:00Z", Some("2021-01-01T00:00:00Z")),
///     row(3, "19", "2021-01-01T00:00:00Z", None),
/// ];
/// let at = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap();
/// assert_eq!(rate_in_force(&history, at(2020, 6, 30)).unwrap().to_string(), "19");
/// assert_eq!(rate_in_force(&history, at(2020, 7, 1)).unwrap().to_string(), "16");
/// assert_eq!(rate_in_force(&history, at(2021, 1, 1)).unwrap().to_string(), "19");
/// assert!(rate_in_force(&history, at(2000, 1, 1)).is_err());
/// ```
pub fn rate_in_force(rates: &[tax_rate::Model], at: DateTime<Utc>) -> Result<Decimal, DomainError> {
    let mut matching = rates.iter().filter(|r| covers(r, at));
    match (matching.next(), matching.next()) {
        (None, _) => Err(DomainError::NoRateInForce { at }),
        (Some(only), None) => Ok(only.rate.get()),
        (Some(a), Some(b)) => {
            let (first, second) = if (a.valid_from, a.id) <= (b.valid_from, b.id) {
                (a, b)
            } else {
                (b, a)
            };
            Err(DomainError::OverlappingTaxRates {
                first_id: first.id,
                second_id: second.id,
            })
        }
    }
}

/// Checks a rate history (rows of one or several taxes): every rate valid,
/// every interval non-empty (`valid_from < valid_to`), and no two intervals
/// of the same tax overlapping (so at most one open row per tax). Gaps are
/// allowed: no tax is due then.
///
/// ```
/// use billing_domain::DomainError;
/// use billing_domain::rate_history::validate_rate_history;
/// # use billing_domain::entities::tax_rate;
/// # fn row(id: i64, rate: &str, from: &str, to: Option<&str>) -> tax_rate::Model {
/// #     serde_json::from_value(serde_json::json!({"id": id, "tax_id": 1, "rate": rate,
/// #         "valid_from": from, "valid_to": to, "created_at": from, "updated_at": from,
/// #         "version": 1})).unwrap()
/// # }
/// let open_twice = [
///     row(1, "19", "2007-01-01T00:00:00Z", None),
///     row(2, "16", "2020-07-01T00:00:00Z", None),
/// ];
/// assert_eq!(
///     validate_rate_history(&open_twice),
///     Err(DomainError::OverlappingTaxRates { first_id: 1, second_id: 2 })
/// );
/// ```
pub fn validate_rate_history(rates: &[tax_rate::Model]) -> Result<(), DomainError> {
    for rate in rates {
        validate_tax_rate(rate.rate.get())?;
        if rate.valid_to.is_some_and(|to| to <= rate.valid_from) {
            return Err(DomainError::InvalidRateInterval { id: rate.id });
        }
    }
    let mut sorted: Vec<&tax_rate::Model> = rates.iter().collect();
    sorted.sort_by_key(|r| (r.tax_id, r.valid_from, r.id));
    for pair in sorted.windows(2) {
        if let [earlier, later] = pair
            && earlier.tax_id == later.tax_id
            && earlier.valid_to.is_none_or(|to| to > later.valid_from)
        {
            return Err(DomainError::OverlappingTaxRates {
                first_id: earlier.id,
                second_id: later.id,
            });
        }
    }
    Ok(())
}
