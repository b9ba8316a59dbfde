//! `BillingError`: what went wrong in a use case, in business terms, with the
//! lower crates' errors kept as sources.

use billing_concurrency::CoordinationError;
use billing_domain::{DomainError, Resource};
use billing_repository::RepositoryError;

use crate::contention::{Contended, LockKey};

/// A boxed error cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The dependency that could not be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dependency {
    /// The database (PostgreSQL or SQLite).
    Database,
    /// The coordination backend (Redis).
    Coordination,
}

impl Dependency {
    /// `database` or `redis`, as named in health reports and errors.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Coordination => "redis",
        }
    }
}

/// The error of every use case.
///
/// The variants are what a caller decides on; the HTTP front end maps each
/// to one status and a stable `code`.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// The resource does not exist.
    #[error("{resource} {key} not found")]
    NotFound {
        /// Which kind of resource (`user`, `invoice` …).
        resource: Resource,
        /// The id, code or slug asked for.
        key: String,
    },

    /// A unique value (e-mail, slug, code) is taken.
    #[error("a {resource} with this {field} already exists")]
    AlreadyExists {
        /// Which kind of resource.
        resource: Resource,
        /// Which field collides.
        field: String,
    },

    /// The state machine forbids the change (or a pending invoice expired).
    #[error("{message}")]
    InvalidTransition {
        /// What was refused and why.
        message: String,
        /// The domain's refusal, when it came from there.
        #[source]
        source: Option<DomainError>,
    },

    /// The caller expected another version than the stored one.
    #[error("{resource} is at version {current}, not the expected one")]
    VersionMismatch {
        /// Which kind of resource.
        resource: Resource,
        /// The version now stored.
        current: i32,
    },

    /// Another request holds the resource (its lock, or it kept changing
    /// under every retry).
    #[error("{contended} is being changed by another request; retry later")]
    Locked {
        /// What was held or kept changing, e.g. the lock of `invoice 42`.
        contended: Contended,
    },

    /// The idempotency key is in use by a request that has not finished.
    #[error("a request with this idempotency key is still running")]
    IdempotencyInFlight,

    /// The idempotency key was used for a different request.
    #[error("this idempotency key was used for a different request")]
    IdempotencyKeyReused,

    /// The input breaks a rule: malformed, out of range, unknown reference.
    #[error("{message}")]
    Validation {
        /// What is wrong, for the caller.
        message: String,
        /// The domain's refusal, when it came from there.
        #[source]
        source: Option<DomainError>,
    },

    /// The resource is still referenced and cannot be removed or changed so.
    #[error("{message}")]
    InUse {
        /// What is in the way.
        message: String,
    },

    /// A dependency (database, Redis) cannot be reached; retry later.
    #[error("the {} is unavailable", dependency.as_str())]
    Unavailable {
        /// Which one.
        dependency: Dependency,
        /// Why.
        #[source]
        source: BoxError,
    },

    /// This instance has more work of this kind queued than it accepts
    /// (the password hashing queue is full); nothing was written. Retry
    /// shortly, or on another instance.
    #[error("{resource} is overloaded; retry shortly")]
    Overloaded {
        /// What is overloaded, e.g. `password hashing`.
        resource: &'static str,
    },

    /// [`BillingSettings`](crate::BillingSettings) that cannot work (from
    /// [`BillingSettings::validate`](crate::BillingSettings::validate)).
    #[error("invalid billing settings: {setting} {reason}")]
    InvalidSettings {
        /// The settings field at fault, for a caller to name the variable
        /// or flag it came from.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// A fault that is not the caller's: a bug or corrupt data. Logged in
    /// full, reported without detail.
    #[error("internal error")]
    Internal {
        /// The cause.
        #[source]
        source: BoxError,
    },
}

impl BillingError {
    /// A validation error with a message of ours.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Validation {
            message: message.into(),
            source: None,
        }
    }

    /// A failure that is a bug (e.g. a value that cannot be encoded).
    pub(crate) fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal {
            source: Box::new(error),
        }
    }

    /// A refused state change decided by a rule of this crate.
    pub(crate) fn invalid_transition(message: impl Into<String>) -> Self {
        Self::InvalidTransition {
            message: message.into(),
            source: None,
        }
    }

    /// The refusal of a value that is valid in itself but not with the
    /// stored rows it refers to (a currency that is inactive, or has fewer
    /// minor units than a price has decimals; a suspended user): the state
    /// does not allow it, as for a refused transition (409, not 400, so
    /// that a request that follows the schema is never told it is
    /// malformed).
    pub(crate) fn against_state(self) -> Self {
        match self {
            Self::Validation { message, source } => Self::InvalidTransition { message, source },
            other @ (Self::NotFound { .. }
            | Self::AlreadyExists { .. }
            | Self::InvalidTransition { .. }
            | Self::VersionMismatch { .. }
            | Self::Locked { .. }
            | Self::IdempotencyInFlight
            | Self::IdempotencyKeyReused
            | Self::InUse { .. }
            | Self::Unavailable { .. }
            | Self::Overloaded { .. }
            | Self::InvalidSettings { .. }
            | Self::Internal { .. }) => other,
        }
    }

    /// A `NotFound` for `resource` with `key`.
    pub(crate) fn not_found(resource: Resource, key: impl ToString) -> Self {
        Self::NotFound {
            resource,
            key: key.to_string(),
        }
    }

    /// The failure to take the lock `key`: [`BillingError::Locked`] when
    /// another request holds it, else as any coordination error.
    pub(crate) fn taking_lock(error: CoordinationError, key: LockKey) -> Self {
        match error {
            CoordinationError::LockNotAcquired { .. } => Self::Locked {
                contended: Contended::Lock(key),
            },
            other @ (CoordinationError::Unavailable { .. }
            | CoordinationError::Rejected { .. }
            | CoordinationError::InvalidSettings { .. }
            | CoordinationError::InvalidArgument { .. }
            | CoordinationError::CorruptRecord { .. }) => other.into(),
        }
    }

    /// Whether the same request may succeed if simply retried later: the
    /// infrastructure failed, or another request held the resource. An
    /// idempotency key must not keep such an outcome (respond with `None`),
    /// or every retry would replay the failure.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable { .. }
            | Self::Internal { .. }
            | Self::Overloaded { .. }
            | Self::Locked { .. }
            | Self::IdempotencyInFlight => true,
            Self::NotFound { .. }
            | Self::AlreadyExists { .. }
            | Self::InvalidTransition { .. }
            | Self::VersionMismatch { .. }
            | Self::IdempotencyKeyReused
            | Self::Validation { .. }
            | Self::InvalidSettings { .. }
            | Self::InUse { .. } => false,
        }
    }

    /// Whether the failure lies with the infrastructure, not the request: the
    /// request may succeed if retried, and an idempotency key must not keep
    /// its outcome.
    #[must_use]
    pub fn is_server_fault(&self) -> bool {
        match self {
            Self::Unavailable { .. }
            | Self::Internal { .. }
            | Self::Overloaded { .. }
            | Self::InvalidSettings { .. } => true,
            Self::NotFound { .. }
            | Self::AlreadyExists { .. }
            | Self::InvalidTransition { .. }
            | Self::VersionMismatch { .. }
            | Self::Locked { .. }
            | Self::IdempotencyInFlight
            | Self::IdempotencyKeyReused
            | Self::Validation { .. }
            | Self::InUse { .. } => false,
        }
    }

    /// Whether the failure is an outage of what every request needs, not
    /// about this one: a dependency is down, or a resource is held by
    /// another holder. Such errors are transient ([`Self::is_transient`]);
    /// a batch (the billing cycle) stops on them, since every later item
    /// would meet them too, instead of skipping the one item.
    #[must_use]
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Unavailable { .. } | Self::Locked { .. } => true,
            Self::Internal { .. }
            | Self::Overloaded { .. }
            | Self::IdempotencyInFlight
            | Self::NotFound { .. }
            | Self::AlreadyExists { .. }
            | Self::InvalidTransition { .. }
            | Self::VersionMismatch { .. }
            | Self::IdempotencyKeyReused
            | Self::Validation { .. }
            | Self::InvalidSettings { .. }
            | Self::InUse { .. } => false,
        }
    }
}

impl From<DomainError> for BillingError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::InvalidTransition { .. } | DomainError::InvoiceExpired { .. } => {
                Self::InvalidTransition {
                    message: error.to_string(),
                    source: Some(error),
                }
            }
            DomainError::NegativeAmount { .. }
            | DomainError::TooManyDecimals { .. }
            | DomainError::AmountOutOfRange { .. }
            | DomainError::InvalidDecimalPlaces { .. }
            | DomainError::InvalidCurrencyCode { .. }
            | DomainError::InvalidCountryCode { .. }
            | DomainError::InvalidEmail
            | DomainError::InvalidSlug
            | DomainError::InvalidTaxCode
            | DomainError::RegionCodeTooLong
            | DomainError::UnknownCurrency { .. }
            | DomainError::InvalidExchangeRate { .. }
            | DomainError::RebasedRateOutOfRange { .. }
            | DomainError::CurrencyMismatch { .. }
            | DomainError::NotDefaultCurrency { .. }
            | DomainError::CurrencyInactive { .. }
            | DomainError::InvalidTaxRate { .. }
            | DomainError::NoRateInForce { .. }
            | DomainError::OverlappingTaxRates { .. }
            | DomainError::InvalidRateInterval { .. }
            | DomainError::TaxInactive { .. }
            | DomainError::InvalidInvoiceNumber { .. }
            | DomainError::InvalidField { .. }
            | DomainError::ArithmeticOverflow
            | DomainError::DateOutOfRange
            | DomainError::PageOutOfRange { .. }
            | DomainError::PageSizeOutOfRange { .. } => Self::Validation {
                message: error.to_string(),
                source: Some(error),
            },
        }
    }
}

impl From<RepositoryError> for BillingError {
    fn from(error: RepositoryError) -> Self {
        match error {
            RepositoryError::NotFound { entity, id } => Self::not_found(entity, id),
            RepositoryError::ConcurrentModification { entity, actual, .. } => {
                Self::VersionMismatch {
                    resource: entity,
                    current: actual,
                }
            }
            RepositoryError::AlreadyExists { entity, field } => Self::AlreadyExists {
                resource: entity,
                field,
            },
            // These messages name the table, as they always have.
            RepositoryError::ReferencedRowMissing { entity, .. } => Self::invalid(format!(
                "the {} refers to something that does not exist",
                entity.table()
            )),
            RepositoryError::StillReferenced { entity, .. } => Self::InUse {
                message: format!(
                    "the {} is still referenced by other records",
                    entity.table()
                ),
            },
            RepositoryError::CheckViolation { entity, .. } => Self::invalid(format!(
                "the {} breaks a rule of the schema",
                entity.table()
            )),
            RepositoryError::InvalidValue { entity, reason } => {
                Self::invalid(format!("invalid {}: {reason}", entity.table()))
            }
            error @ (RepositoryError::TransactionConflict { .. }
            | RepositoryError::Unavailable { .. }
            | RepositoryError::ConnectionLimitReached { .. }) => Self::Unavailable {
                dependency: Dependency::Database,
                source: Box::new(error),
            },
            error
            @ (RepositoryError::InvalidSettings { .. } | RepositoryError::Database { .. }) => {
                Self::Internal {
                    source: Box::new(error),
                }
            }
        }
    }
}

impl From<CoordinationError> for BillingError {
    fn from(error: CoordinationError) -> Self {
        match error {
            error @ CoordinationError::Unavailable { .. } => Self::Unavailable {
                dependency: Dependency::Coordination,
                source: Box::new(error),
            },
            // Whoever takes a lock names what it locks, and answers a busy
            // one with a typed `Locked` (see `BillingError::taking_lock`); a busy
            // lock that reaches this point is a lock nobody named.
            error @ (CoordinationError::LockNotAcquired { .. }
            | CoordinationError::Rejected { .. }
            | CoordinationError::InvalidSettings { .. }
            | CoordinationError::InvalidArgument { .. }
            | CoordinationError::CorruptRecord { .. }) => Self::Internal {
                source: Box::new(error),
            },
        }
    }
}
