//! Properties of the tax arithmetic and of rate histories.

use billing_domain::entities::tax_rate;
use billing_domain::money::round_for_customer;
use billing_domain::taxation::{
    TaxBreakdown, calculate_gross, calculate_tax, extract_net, rate_in_force, validate_rate_history,
};
use billing_domain::{DomainError, Numeric};
use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::support::{amount_at, any_amount, decimal_places, epoch, tax_rate};

fn at_precision() -> impl Strategy<Value = (u32, Decimal)> {
    decimal_places().prop_flat_map(|dp| (Just(dp), amount_at(dp)))
}

proptest! {
    #[test]
    fn exclusive_net_plus_tax_is_gross(x in any_amount(), rate in tax_rate(), dp in decimal_places()) {
        let b = TaxBreakdown::exclusive(x, rate, dp).unwrap();
        prop_assert_eq!(b.net + b.tax, b.gross);
        prop_assert_eq!(b.net, round_for_customer(x, dp));
        prop_assert_eq!(b.tax, round_for_customer(b.net * rate / Decimal::ONE_HUNDRED, dp));
        for v in [b.net, b.tax, b.gross] {
            prop_assert!(v.scale() <= dp);
        }
    }

    #[test]
    fn inclusive_net_plus_tax_is_gross(x in any_amount(), rate in tax_rate(), dp in decimal_places()) {
        let b = TaxBreakdown::inclusive(x, rate, dp).unwrap();
        prop_assert_eq!(b.net + b.tax, b.gross);
        prop_assert_eq!(b.gross, round_for_customer(x, dp));
        for v in [b.net, b.tax, b.gross] {
            prop_assert!(v.scale() <= dp);
        }
        // The net is the closest amount whose gross is the price.
        let exact_net = b.gross * Decimal::ONE_HUNDRED / (Decimal::ONE_HUNDRED + rate);
        prop_assert!((b.net - exact_net).abs() <= Decimal::new(5, dp + 1));
    }

    #[test]
    fn free_functions_agree_with_the_breakdown(x in any_amount(), rate in tax_rate(), dp in decimal_places()) {
        let tax = calculate_tax(x, rate, dp).unwrap();
        let gross = calculate_gross(x, rate, dp).unwrap();
        prop_assert_eq!(round_for_customer(x, dp) + tax, gross);
    }

    #[test]
    fn extract_net_inverts_calculate_gross((dp, x) in at_precision(), rate in tax_rate()) {
        prop_assume!(x < Decimal::new(500_000_000_000_000, 0)); // gross must stay storable
        let gross = calculate_gross(x, rate, dp).unwrap();
        prop_assert_eq!(extract_net(gross, rate, dp).unwrap(), x);
        let neg_gross = calculate_gross(-x, rate, dp).unwrap();
        prop_assert_eq!(extract_net(neg_gross, rate, dp).unwrap(), -x);
    }

    #[test]
    fn tax_grows_with_the_net((dp, x) in at_precision(), y in 0i64..1_000_000, rate in tax_rate()) {
        let bigger = x + Decimal::new(y, dp);
        prop_assume!(bigger < Decimal::new(1_000_000_000_000_000, 0));
        prop_assert!(calculate_tax(bigger, rate, dp).unwrap() >= calculate_tax(x, rate, dp).unwrap());
    }

    #[test]
    fn the_rate_in_force_is_the_covering_row(
        lengths in prop::collection::vec(1i64..10_000, 1..8),
        open_end in any::<bool>(),
        probe in -100i64..90_000,
    ) {
        let history = history(&lengths, open_end);
        prop_assert_eq!(validate_rate_history(&history), Ok(()));
        let at = epoch() + TimeDelta::hours(probe);
        let covering: Vec<&tax_rate::Model> = history
            .iter()
            .filter(|r| r.valid_from <= at && r.valid_to.is_none_or(|to| at < to))
            .collect();
        match covering.as_slice() {
            [] => prop_assert_eq!(rate_in_force(&history, at), Err(DomainError::NoRateInForce { at })),
            [only] => prop_assert_eq!(rate_in_force(&history, at), Ok(only.rate.get())),
            _ => prop_assert!(false, "consecutive rows never overlap"),
        }
    }

    #[test]
    fn stretching_a_closed_row_into_the_next_is_an_overlap(
        lengths in prop::collection::vec(1i64..10_000, 2..8),
        which in any::<prop::sample::Index>(),
        by in 1i64..10_000,
    ) {
        let mut history = history(&lengths, true);
        let i = which.index(history.len() - 1);
        let to = history[i].valid_to.unwrap();
        history[i].valid_to = Some(to + TimeDelta::hours(by));
        let err = validate_rate_history(&history).unwrap_err();
        prop_assert_eq!(
            err,
            DomainError::OverlappingTaxRates { first_id: history[i].id, second_id: history[i + 1].id }
        );
        // In the overlap the rate in force is ambiguous: refused, not guessed.
        let ambiguous = matches!(
            rate_in_force(&history, to),
            Err(DomainError::OverlappingTaxRates { .. })
        );
        prop_assert!(ambiguous);
    }
}

/// Consecutive rows of one tax, each `lengths[i]` hours long, starting at the
/// epoch; the last is open when `open_end`.
pub(crate) fn history(lengths: &[i64], open_end: bool) -> Vec<tax_rate::Model> {
    let mut rows = Vec::new();
    let mut from: DateTime<Utc> = epoch();
    for (i, hours) in lengths.iter().enumerate() {
        let to = from + TimeDelta::hours(*hours);
        let last = i + 1 == lengths.len();
        let id = i64::try_from(i).unwrap() + 1;
        rows.push(tax_rate::Model {
            id,
            tax_id: 1,
            rate: Numeric(Decimal::new(id * 100, 2)),
            valid_from: from,
            valid_to: if last && open_end { None } else { Some(to) },
            created_at: from,
            updated_at: from,
            version: 1,
        });
        from = to;
    }
    rows
}
