//! [`PageRequest`]: a page of a list, checked once (`page` from 1 to
//! [`MAX_PAGE`], `per_page` from 1 to [`MAX_PER_PAGE`]), with the offset and
//! limit of its rows.

use crate::DomainError;

/// The largest page size a list accepts.
pub const MAX_PER_PAGE: u64 = 100;
/// The largest page number a list accepts.
pub const MAX_PAGE: u64 = 1_000_000_000;

/// A valid page of a list: `page` in `1..=MAX_PAGE`, `per_page` in
/// `1..=MAX_PER_PAGE`. Its row offset always fits a signed 64-bit integer.
///
/// ```
/// use billing_domain::PageRequest;
///
/// let page = PageRequest::new(3, 20)?;
/// assert_eq!((page.offset(), page.limit()), (40, 20));
/// assert!(PageRequest::new(0, 20).is_err());
/// # Ok::<(), billing_domain::DomainError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageRequest {
    page: u64,
    per_page: u64,
}

impl PageRequest {
    /// Page `page` of `per_page` rows.
    ///
    /// # Errors
    /// [`DomainError::PageOutOfRange`] for a page outside `1..=MAX_PAGE`,
    /// then [`DomainError::PageSizeOutOfRange`] for a page size outside
    /// `1..=MAX_PER_PAGE`.
    pub const fn new(page: u64, per_page: u64) -> Result<Self, DomainError> {
        if page < 1 || page > MAX_PAGE {
            return Err(DomainError::PageOutOfRange { page });
        }
        if per_page < 1 || per_page > MAX_PER_PAGE {
            return Err(DomainError::PageSizeOutOfRange { per_page });
        }
        Ok(Self { page, per_page })
    }

    /// The first page of the largest size: every row of a short list.
    #[must_use]
    pub const fn largest_first() -> Self {
        Self {
            page: 1,
            per_page: MAX_PER_PAGE,
        }
    }

    /// The page after this one, of the same size; `None` after
    /// [`MAX_PAGE`].
    #[must_use]
    pub const fn next(self) -> Option<Self> {
        if self.page < MAX_PAGE {
            Some(Self {
                page: self.page + 1,
                per_page: self.per_page,
            })
        } else {
            None
        }
    }

    /// The page number, from 1.
    #[must_use]
    pub const fn page(self) -> u64 {
        self.page
    }

    /// The page size.
    #[must_use]
    pub const fn per_page(self) -> u64 {
        self.per_page
    }

    /// How many rows come before the page: `(page - 1) × per_page`, at most
    /// 99 999 999 900.
    #[must_use]
    pub const fn offset(self) -> u64 {
        (self.page - 1) * self.per_page
    }

    /// How many rows the page holds at most: `per_page`.
    #[must_use]
    pub const fn limit(self) -> u64 {
        self.per_page
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn bounds() {
        let table = [
            (0, 20, Some("page must be between 1 and 1000000000")),
            (1, 20, None),
            (MAX_PAGE, 20, None),
            (
                MAX_PAGE + 1,
                20,
                Some("page must be between 1 and 1000000000"),
            ),
            (u64::MAX, 20, Some("page must be between 1 and 1000000000")),
            (1, 0, Some("per_page must be between 1 and 100")),
            (1, 1, None),
            (1, 100, None),
            (1, 101, Some("per_page must be between 1 and 100")),
            (1, u64::MAX, Some("per_page must be between 1 and 100")),
            // The page is checked first.
            (0, 0, Some("page must be between 1 and 1000000000")),
        ];
        for (page, per_page, refusal) in table {
            let result = PageRequest::new(page, per_page).map_err(|e| e.to_string());
            match refusal {
                None => {
                    let request = result.unwrap();
                    assert_eq!((request.page(), request.per_page()), (page, per_page));
                }
                Some(message) => assert_eq!(result, Err(message.to_owned()), "{page} {per_page}"),
            }
        }
        assert_eq!(
            PageRequest::new(MAX_PAGE, MAX_PER_PAGE).unwrap().offset(),
            99_999_999_900
        );
        assert_eq!(
            PageRequest::largest_first(),
            PageRequest::new(1, MAX_PER_PAGE).unwrap()
        );
        assert_eq!(
            PageRequest::new(1, 7).unwrap().next(),
            Some(PageRequest::new(2, 7).unwrap())
        );
        assert_eq!(PageRequest::new(MAX_PAGE, 7).unwrap().next(), None);
    }

    proptest! {
        #[test]
        fn valid_exactly_within_the_bounds(page in 0..=MAX_PAGE + 2, per_page in 0..=MAX_PER_PAGE + 2) {
            let valid = (1..=MAX_PAGE).contains(&page) && (1..=MAX_PER_PAGE).contains(&per_page);
            prop_assert_eq!(PageRequest::new(page, per_page).is_ok(), valid);
        }

        #[test]
        fn offset_and_limit(page in 1..=MAX_PAGE, per_page in 1..=MAX_PER_PAGE) {
            let request = PageRequest::new(page, per_page).unwrap();
            prop_assert_eq!(request.limit(), per_page);
            prop_assert_eq!(u128::from(request.offset()), u128::from(page - 1) * u128::from(per_page));
            prop_assert!(i64::try_from(request.offset()).is_ok());
        }
    }
}
