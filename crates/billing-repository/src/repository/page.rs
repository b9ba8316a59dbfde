//! [`Page`]: one page of a list, with where it is and the total.

use billing_domain::PageRequest;

/// One page of a list: its rows, where it is, and how many rows all pages
/// hold together. How a front end writes it is the front end's concern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// The page number, from 1.
    pub page: u64,
    /// The page size asked for.
    pub per_page: u64,
    /// How many rows all pages hold together.
    pub total: u64,
}

impl<T> Page<T> {
    /// The rows `items` of page `page` of a list of `total` rows.
    #[must_use]
    pub fn of(items: Vec<T>, page: PageRequest, total: u64) -> Self {
        Self {
            items,
            page: page.page(),
            per_page: page.per_page(),
            total,
        }
    }

    /// The same page with every item mapped.
    #[must_use]
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            page: self.page,
            per_page: self.per_page,
            total: self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page bounds themselves are tested with `PageRequest`.
    #[test]
    fn pages_carry_their_request() {
        let request = PageRequest::new(3, 100).unwrap();
        let page = Page::of(vec![1, 2], request, 202);
        assert_eq!((page.page, page.per_page, page.total), (3, 100, 202));
        assert_eq!(request.offset(), 200);
    }
}
