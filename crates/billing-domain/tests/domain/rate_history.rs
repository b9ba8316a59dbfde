//! Properties of a rate change: the history stays consistent and the past
//! keeps its rates.

use billing_domain::DomainError;
use billing_domain::entities::tax_rate;
use billing_domain::rate_history::{RateChange, change_rate, rate_in_force, validate_rate_history};
use chrono::TimeDelta;
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::support::{epoch, tax_rate};
use crate::taxation::history;

/// The history once `change` is written: changed rows replaced by id, a new
/// row given the next id.
fn applied(mut rows: Vec<tax_rate::Model>, change: RateChange) -> Vec<tax_rate::Model> {
    let next_id = rows.iter().map(|r| r.id).max().unwrap_or(0) + 1;
    let mut replace = |changed: tax_rate::Model| {
        let slot = rows.iter_mut().find(|r| r.id == changed.id).unwrap();
        *slot = changed;
    };
    let opened = match change {
        RateChange::CloseAndOpen { closed, opened } => {
            replace(closed);
            Some(opened)
        }
        RateChange::Correct(corrected) => {
            replace(corrected);
            None
        }
        RateChange::Open(opened) => Some(opened),
    };
    if let Some(mut opened) = opened {
        opened.id = next_id;
        rows.push(opened);
    }
    rows
}

proptest! {
    #[test]
    fn a_change_keeps_the_history_consistent_and_the_past_unchanged(
        lengths in prop::collection::vec(1i64..10_000, 1..8),
        open_end in any::<bool>(),
        after in 0i64..10_000,
        rate in tax_rate(),
        probes in prop::collection::vec(-100i64..90_000, 16),
    ) {
        let before = history(&lengths, open_end);
        let open = before.iter().find(|r| r.valid_to.is_none()).cloned();
        let last_start = before.last().unwrap().valid_from;
        let last_end = before.last().unwrap().valid_to.unwrap_or(last_start);
        let at = last_end.max(last_start) + TimeDelta::hours(after);
        let change = change_rate(1, open.clone(), rate, at).unwrap();
        match (&change, &open) {
            (RateChange::CloseAndOpen { .. }, Some(open)) => prop_assert!(open.valid_from < at),
            (RateChange::Correct(_), Some(open)) => prop_assert_eq!(open.valid_from, at),
            (RateChange::Open(_), None) => {}
            (other, open) => prop_assert!(false, "{other:?} for open row {open:?}"),
        }
        let after_rows = applied(before.clone(), change);
        prop_assert_eq!(validate_rate_history(&after_rows), Ok(()));
        prop_assert_eq!(after_rows.iter().filter(|r| r.valid_to.is_none()).count(), 1);
        prop_assert_eq!(rate_in_force(&after_rows, at), Ok(rate));
        prop_assert_eq!(rate_in_force(&after_rows, at + TimeDelta::days(3650)), Ok(rate));
        for hours in probes {
            let t = epoch() + TimeDelta::hours(hours);
            if t < at {
                prop_assert_eq!(rate_in_force(&after_rows, t), rate_in_force(&before, t));
            }
        }
    }

    #[test]
    fn an_invalid_rate_changes_nothing(lengths in prop::collection::vec(1i64..10_000, 1..4)) {
        let before = history(&lengths, true);
        let open = before.last().cloned();
        let at = epoch() + TimeDelta::days(1000);
        for rate in [Decimal::new(-1, 0), Decimal::new(10_001, 2), Decimal::new(1, 5)] {
            prop_assert!(change_rate(1, open.clone(), rate, at).is_err());
        }
    }

    #[test]
    fn a_closed_or_foreign_row_is_not_an_open_row(lengths in prop::collection::vec(1i64..10_000, 2..4)) {
        let before = history(&lengths, true);
        let closed = before[0].clone();
        let at = epoch() + TimeDelta::days(1000);
        prop_assert_eq!(
            change_rate(1, Some(closed.clone()), Decimal::ONE, at),
            Err(DomainError::InvalidRateInterval { id: closed.id })
        );
        let open = before.last().cloned().unwrap();
        prop_assert_eq!(
            change_rate(2, Some(open.clone()), Decimal::ONE, at),
            Err(DomainError::InvalidRateInterval { id: open.id })
        );
    }
}
