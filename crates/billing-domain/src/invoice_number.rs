//! Invoice numbers: `INV-<year>-<sequence>`, the sequence zero-padded to at
//! least six digits (`INV-2026-000001`), gapless per calendar year (UTC).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Utc};

use crate::entities::invoice_sequence;
use crate::error::DomainError;

/// An invoice number: a four-digit year and a sequence number from 1.
///
/// `Display` and `FromStr` are exact inverses: parsing accepts only the
/// canonical text (upper-case `INV`, four-digit year, at least six sequence
/// digits and no superfluous leading zero beyond six).
///
/// ```
/// use billing_domain::InvoiceNumber;
///
/// let n = InvoiceNumber::new(2026, 1).unwrap();
/// assert_eq!(n.to_string(), "INV-2026-000001");
/// assert_eq!("INV-2026-000001".parse::<InvoiceNumber>().unwrap(), n);
/// assert_eq!(InvoiceNumber::new(2026, 1_234_567).unwrap().to_string(), "INV-2026-1234567");
/// assert!("INV-2026-1".parse::<InvoiceNumber>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InvoiceNumber {
    year: i32,
    sequence: u64,
}

impl InvoiceNumber {
    /// The first year an invoice number may carry.
    pub const MIN_YEAR: i32 = 1000;
    /// The last year an invoice number may carry (four digits).
    pub const MAX_YEAR: i32 = 9999;

    /// An invoice number for `year` (1000..=9999) and `sequence` (from 1).
    pub fn new(year: i32, sequence: u64) -> Result<Self, DomainError> {
        if !(Self::MIN_YEAR..=Self::MAX_YEAR).contains(&year) || sequence == 0 {
            return Err(DomainError::InvalidInvoiceNumber {
                value: format!("INV-{year}-{sequence:06}"),
            });
        }
        Ok(Self { year, sequence })
    }

    /// The number with `sequence` in the UTC calendar year of `at` (the
    /// instant the invoice is issued).
    ///
    /// ```
    /// use billing_domain::InvoiceNumber;
    /// use chrono::{TimeZone, Utc};
    ///
    /// let at = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
    /// assert_eq!(InvoiceNumber::for_instant(at, 42).unwrap().to_string(), "INV-2026-000042");
    /// ```
    pub fn for_instant(at: DateTime<Utc>, sequence: u64) -> Result<Self, DomainError> {
        Self::new(at.year(), sequence)
    }

    /// The calendar year.
    #[must_use]
    pub const fn year(&self) -> i32 {
        self.year
    }

    /// The sequence number within the year, from 1.
    #[must_use]
    pub const fn sequence(&self) -> u64 {
        self.sequence
    }
}

impl fmt::Display for InvoiceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INV-{:04}-{:06}", self.year, self.sequence)
    }
}

impl FromStr for InvoiceNumber {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || DomainError::InvalidInvoiceNumber {
            value: s.to_owned(),
        };
        let rest = s.strip_prefix("INV-").ok_or_else(invalid)?;
        let (year, sequence) = rest.split_once('-').ok_or_else(invalid)?;
        let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if year.len() != 4 || !all_digits(year) || sequence.len() < 6 || !all_digits(sequence) {
            return Err(invalid());
        }
        if sequence.len() > 6 && sequence.starts_with('0') {
            return Err(invalid());
        }
        let year: i32 = year.parse().map_err(|_| invalid())?;
        let sequence: u64 = sequence.parse().map_err(|_| invalid())?;
        Self::new(year, sequence).map_err(|_| invalid())
    }
}

impl invoice_sequence::Model {
    /// The invoice number that follows this counter: `last_number + 1` in
    /// `year`. The repository stores that sequence back as `last_number` in
    /// the same transaction that inserts the invoice.
    ///
    /// ```
    /// use billing_domain::entities::invoice_sequence;
    /// use chrono::Utc;
    ///
    /// let counter = invoice_sequence::Model { year: 2026, last_number: 41, updated_at: Utc::now() };
    /// assert_eq!(counter.next_number().unwrap().to_string(), "INV-2026-000042");
    /// ```
    pub fn next_number(&self) -> Result<InvoiceNumber, DomainError> {
        let next = u64::try_from(self.last_number)
            .ok()
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| DomainError::InvalidInvoiceNumber {
                value: format!("INV-{}-{}+1", self.year, self.last_number),
            })?;
        InvoiceNumber::new(self.year, next)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn displays_zero_padded_to_six_digits() {
        assert_eq!(
            InvoiceNumber::new(2026, 1).unwrap().to_string(),
            "INV-2026-000001"
        );
        assert_eq!(
            InvoiceNumber::new(2026, 999_999).unwrap().to_string(),
            "INV-2026-999999"
        );
        assert_eq!(
            InvoiceNumber::new(2027, 1_000_000).unwrap().to_string(),
            "INV-2027-1000000"
        );
    }

    #[test]
    fn parses_the_canonical_form_only() {
        let n: InvoiceNumber = "INV-2026-000123".parse().unwrap();
        assert_eq!((n.year(), n.sequence()), (2026, 123));
        let n: InvoiceNumber = "INV-2026-1000000".parse().unwrap();
        assert_eq!(n.sequence(), 1_000_000);
        for bad in [
            "",
            "INV-2026-00001",
            "INV-2026-0000001",
            "INV-2026-000000",
            "inv-2026-000001",
            "INV-26-000001",
            "INV-02026-000001",
            "INV-0999-000001",
            "INV-2026-00000a",
            "INV-2026-+00001",
            "INV-2026--00001",
            "INV-2026-000001 ",
            " INV-2026-000001",
            "INV2026-000001",
            "INV-2026_000001",
            "INV-2026-99999999999999999999999",
        ] {
            assert_eq!(
                bad.parse::<InvoiceNumber>(),
                Err(DomainError::InvalidInvoiceNumber {
                    value: bad.to_owned()
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_impossible_parts() {
        assert!(InvoiceNumber::new(2026, 0).is_err());
        assert!(InvoiceNumber::new(999, 1).is_err());
        assert!(InvoiceNumber::new(10_000, 1).is_err());
        assert!(InvoiceNumber::new(-2026, 1).is_err());
    }

    #[test]
    fn year_of_the_instant_in_utc() {
        let at = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(InvoiceNumber::for_instant(at, 1).unwrap().year(), 2027);
    }

    #[test]
    fn orders_by_year_then_sequence() {
        let a = InvoiceNumber::new(2026, 999_999).unwrap();
        let b = InvoiceNumber::new(2027, 1).unwrap();
        let c = InvoiceNumber::new(2027, 2).unwrap();
        assert!(a < b && b < c);
    }

    #[test]
    fn next_number_of_a_counter() {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let fresh = invoice_sequence::Model {
            year: 2026,
            last_number: 0,
            updated_at: at,
        };
        assert_eq!(fresh.next_number().unwrap().to_string(), "INV-2026-000001");
        let broken = invoice_sequence::Model {
            year: 2026,
            last_number: -1,
            updated_at: at,
        };
        assert!(broken.next_number().is_err());
    }
}
