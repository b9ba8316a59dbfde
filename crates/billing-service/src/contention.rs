//! What a request may find held by another: [`LockKey`], the typed name of
//! a resource's distributed lock, and [`Contended`], what a
//! [`BillingError::Locked`](crate::BillingError::Locked) reports.

use std::fmt;

use billing_domain::Resource;

/// The distributed lock of one resource: named `<resource>:<id>` in the
/// coordination backend (`invoice:42`).
///
/// ```
/// use billing_service::{LockKey, Resource};
///
/// let key = LockKey::of(Resource::Invoice, 42);
/// assert_eq!(key.name(), "invoice:42");
/// assert_eq!(key.to_string(), "invoice 42");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LockKey {
    /// What is locked.
    pub resource: Resource,
    /// Its id.
    pub id: i64,
}

impl LockKey {
    /// The lock of `resource` `id`.
    #[must_use]
    pub const fn of(resource: Resource, id: i64) -> Self {
        Self { resource, id }
    }

    /// The lock's name in the coordination backend: `invoice:42`.
    #[must_use]
    pub fn name(self) -> String {
        format!("{}:{}", self.resource, self.id)
    }
}

impl fmt::Display for LockKey {
    /// As messages name the resource: `invoice 42`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.resource, self.id)
    }
}

/// What another request held, or kept changing, so that a use case gave up
/// ([`BillingError::Locked`](crate::BillingError::Locked)). Its `Display`
/// is the subject of that error's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contended {
    /// The lock of a resource was held elsewhere until the wait ran out:
    /// `invoice 42`.
    Lock(LockKey),
    /// The resource was written under a newer holder of its lock than this
    /// request: `invoice 42 (a newer lock holder wrote it)`.
    NewerLockHolder(LockKey),
    /// This request held the resource's lock for longer than its TTL:
    /// `the invoice (the payment outlived its lock)`.
    LockExpired(Resource),
    /// A row changed under every retry: named by its table and id
    /// (`user_invoice 42`).
    Row {
        /// The row's entity.
        resource: Resource,
        /// The row's id.
        id: i64,
    },
    /// A user's details changed under every retry: `user_details of user 7`.
    DetailsOf {
        /// The user.
        user_id: i64,
    },
    /// A transaction lost its race under every retry: `the records of this
    /// change`.
    Records,
    /// The billing cycle's lease passed to another instance: `the billing
    /// cycle (the lease passed to another instance)`.
    CycleLease,
}

impl fmt::Display for Contended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lock(key) => write!(f, "{key}"),
            Self::NewerLockHolder(key) => write!(f, "{key} (a newer lock holder wrote it)"),
            Self::LockExpired(resource) => {
                write!(f, "the {resource} (the payment outlived its lock)")
            }
            Self::Row { resource, id } => write!(f, "{} {id}", resource.table()),
            Self::DetailsOf { user_id } => {
                write!(f, "{} of user {user_id}", Resource::UserDetails.table())
            }
            Self::Records => f.write_str("the records of this change"),
            Self::CycleLease => {
                f.write_str("the billing cycle (the lease passed to another instance)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_are_those_of_the_backend() {
        assert_eq!(LockKey::of(Resource::Invoice, 42).name(), "invoice:42");
        assert_eq!(LockKey::of(Resource::Invoice, -1).name(), "invoice:-1");
    }

    #[test]
    fn each_contention_names_its_subject() {
        let invoice = LockKey::of(Resource::Invoice, 42);
        let cases = [
            (Contended::Lock(invoice), "invoice 42"),
            (
                Contended::NewerLockHolder(invoice),
                "invoice 42 (a newer lock holder wrote it)",
            ),
            (
                Contended::LockExpired(Resource::Invoice),
                "the invoice (the payment outlived its lock)",
            ),
            (
                Contended::Row {
                    resource: Resource::Plan,
                    id: 3,
                },
                "tarif_plan 3",
            ),
            (
                Contended::DetailsOf { user_id: 7 },
                "user_details of user 7",
            ),
            (Contended::Records, "the records of this change"),
            (
                Contended::CycleLease,
                "the billing cycle (the lease passed to another instance)",
            ),
        ];
        for (contended, text) in cases {
            assert_eq!(contended.to_string(), text);
        }
    }
}
