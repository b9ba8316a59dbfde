//! Properties of invoice numbers.

use billing_domain::InvoiceNumber;
use proptest::prelude::*;

proptest! {
    #[test]
    fn display_and_parse_are_inverse(year in 1000i32..=9999, sequence in 1u64..) {
        let n = InvoiceNumber::new(year, sequence).unwrap();
        let text = n.to_string();
        let prefix = format!("INV-{year}-");
        prop_assert!(text.starts_with(&prefix));
        prop_assert!(text.len() >= "INV-2026-000001".len());
        prop_assert_eq!(text.parse::<InvoiceNumber>(), Ok(n));
    }

    #[test]
    fn only_canonical_text_parses(text in "(INV|inv)?-?[0-9]{0,5}-?[0-9+ ]{0,9}") {
        if let Ok(n) = text.parse::<InvoiceNumber>() {
            prop_assert_eq!(n.to_string(), text);
        }
    }

    #[test]
    fn sequences_order_like_their_numbers(year in 1000i32..=9999, a in 1u64..10_000_000, b in 1u64..10_000_000) {
        let (na, nb) = (InvoiceNumber::new(year, a).unwrap(), InvoiceNumber::new(year, b).unwrap());
        prop_assert_eq!(na.cmp(&nb), a.cmp(&b));
    }
}
