//! Properties of currency conversion.

use billing_domain::money::{minor_unit, round_for_customer};
use proptest::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::support::{currency, decimal_places};

/// An exchange rate between 0.0001 and 100000 with up to 8 decimals.
fn rate() -> impl Strategy<Value = Decimal> {
    (1i64..=1_000_000_000, 4u32..=8)
        .prop_map(|(m, scale)| Decimal::new(m, scale))
        .prop_filter("at least 0.0001", |r| *r >= Decimal::new(1, 4))
}

proptest! {
    /// Without intermediate rounding a round trip returns the amount.
    #[test]
    fn full_precision_round_trip_is_exact(
        dp in decimal_places(),
        units in 0i64..1_000_000_000_000,
        scale in 0u32..=4,
        r in rate(),
    ) {
        // Below 10^12 with up to 4 decimals.
        let x = Decimal::new(units, scale);
        let other = currency("USD", r, 2, false);
        let there = other.convert_from_default(x).unwrap();
        let back = other.convert_to_default(there).unwrap();
        prop_assert_eq!(round_for_customer(back, dp), round_for_customer(x, dp));
    }

    /// A → B rounded to B's minor units → A rounded to A's minor units lands
    /// within one minor unit of A, whenever one minor unit of B is worth at
    /// most two of A (B is not much coarser than A). Conversions go through
    /// the default currency at full precision, as `plan_price_in` does.
    #[test]
    fn rounded_round_trip_is_within_one_minor_unit(
        dp_a in decimal_places(),
        dp_b in decimal_places(),
        rate_a in rate(),
        factor in (1_000i64..=1_000_000).prop_map(|m| Decimal::new(m, 3)),
        units in 0i64..1_000_000_000_000,
    ) {
        let ulp_a = minor_unit(dp_a);
        let ulp_b = minor_unit(dp_b);
        // rate_b / rate_a = factor × ulp_b / (2 × ulp_a) with factor ≥ 1, so
        // ulp_b / rate_b ≤ 2 ulp_a / rate_a. Rounding rate_b up to the 8
        // decimals a rate may have keeps that true.
        let rate_b = (rate_a * factor * ulp_b / (Decimal::TWO * ulp_a))
            .round_dp_with_strategy(8, RoundingStrategy::AwayFromZero);
        prop_assume!(rate_b < Decimal::new(100_000_000_000, 0));
        let a = currency("AAA", rate_a, dp_a, false);
        let b = currency("BBB", rate_b, dp_b, false);
        let x = Decimal::new(units, dp_a);

        let in_b = round_for_customer(b.convert_from_default(a.convert_to_default(x).unwrap()).unwrap(), dp_b);
        let back = round_for_customer(a.convert_from_default(b.convert_to_default(in_b).unwrap()).unwrap(), dp_a);
        prop_assert!((back - x).abs() <= ulp_a, "{} → {} → {}", x, in_b, back);
    }

    /// Default → JPY → default at realistic rates stays within one cent.
    #[test]
    fn eur_jpy_eur_within_one_cent(
        cents in 0i64..100_000_000_000,
        yen_per_euro in (50_000i64..=500_000).prop_map(|m| Decimal::new(m, 3)),
    ) {
        let jpy = currency("JPY", yen_per_euro, 0, false);
        let x = Decimal::new(cents, 2);
        let yen = round_for_customer(jpy.convert_from_default(x).unwrap(), 0);
        let back = round_for_customer(jpy.convert_to_default(yen).unwrap(), 2);
        prop_assert!((back - x).abs() <= Decimal::new(1, 2), "{} → {} → {}", x, yen, back);
    }
}
