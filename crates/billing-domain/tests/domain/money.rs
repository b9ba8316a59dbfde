//! Properties of the rounding rule, price validation and formatting.

use billing_domain::DomainError;
use billing_domain::money::{format_amount, minor_unit, round_for_customer, validate_price};
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::support::{amount_at, any_amount, decimal_places};

proptest! {
    #[test]
    fn rounding_is_to_the_nearest_minor_unit(x in any_amount(), dp in decimal_places()) {
        let r = round_for_customer(x, dp);
        prop_assert_eq!(r.scale(), dp);
        let half = minor_unit(dp) / Decimal::TWO;
        prop_assert!((r - x).abs() <= half, "{} → {}", x, r);
        // A midpoint goes away from zero.
        if (r - x).abs() == half {
            prop_assert!(r.abs() > x.abs());
        }
    }

    #[test]
    fn rounding_is_idempotent_and_symmetric(x in any_amount(), dp in decimal_places()) {
        let r = round_for_customer(x, dp);
        prop_assert_eq!(round_for_customer(r, dp), r);
        prop_assert_eq!(round_for_customer(-x, dp), -r);
        prop_assert!(!(r.is_zero() && r.is_sign_negative()));
    }

    #[test]
    fn prices_at_the_currency_precision_are_accepted_unchanged(
        (dp, x) in decimal_places().prop_flat_map(|dp| (Just(dp), amount_at(dp)))
    ) {
        prop_assert_eq!(validate_price(x, dp), Ok(x));
    }

    #[test]
    fn one_more_decimal_is_refused(
        (dp, x) in (0u32..=3).prop_flat_map(|dp| (Just(dp), amount_at(dp))),
        digit in 1i64..=9,
    ) {
        let over = x + Decimal::new(digit, dp + 1);
        prop_assume!(over.abs() < Decimal::new(1_000_000_000_000_000, 0));
        prop_assert_eq!(
            validate_price(over, dp),
            Err(DomainError::TooManyDecimals { allowed: dp, got: dp + 1 })
        );
    }

    #[test]
    fn negative_prices_are_refused(x in any_amount(), dp in decimal_places()) {
        let x = -x.abs();
        let r = round_for_customer(x, dp);
        if !r.is_zero() {
            prop_assert_eq!(validate_price(r, dp), Err(DomainError::NegativeAmount { amount: r }));
        }
    }

    #[test]
    fn formatting_shows_the_rounded_amount(x in any_amount(), dp in decimal_places()) {
        let text = format_amount(x, dp, None, "XTS");
        let number = text.strip_suffix(" XTS").unwrap().replace(',', "");
        let parsed: Decimal = number.parse().unwrap();
        prop_assert_eq!(parsed, round_for_customer(x, dp));
        let fraction = number.split_once('.').map_or(0, |(_, f)| f.len());
        prop_assert_eq!(u32::try_from(fraction).unwrap(), dp);
        let with_symbol = format_amount(x, dp, Some("¤"), "XTS");
        prop_assert_eq!(with_symbol.replacen('¤', "", 1) + " XTS", text);
    }
}
