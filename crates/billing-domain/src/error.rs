//! `DomainError`: the one error type of the business rules.
//!
//! Every variant is named by what went wrong, and its message is written for
//! the people who call the API: it is meant to be shown as the `detail` of a
//! problem response. The enum is deliberately *not* `#[non_exhaustive]`: a new
//! variant must make every exhaustive `match` that maps errors to HTTP answers
//! fail to compile until someone decides how to answer it.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::Resource;

/// Why a business rule refused an operation.
///
/// ```
/// use billing_domain::{DomainError, Resource};
///
/// let err = DomainError::InvalidTransition {
///     entity: Resource::Subscription,
///     from: "cancelled",
///     action: "pause",
/// };
/// assert_eq!(err.to_string(), "cannot pause the subscription: it is cancelled");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The state machine of the entity does not allow `action` from status
    /// `from`. Nothing was changed. (HTTP: 409 `invalid_transition`.)
    #[error("cannot {action} the {entity}: it is {from}")]
    InvalidTransition {
        /// [`Resource::Subscription`], [`Resource::Invoice`] or
        /// [`Resource::User`].
        entity: Resource,
        /// The current status, as stored (`"cancelled"`).
        from: &'static str,
        /// The refused action (`"pause"`, `"pay"` …).
        action: &'static str,
    },

    /// An unpaid invoice was to be paid at or after its `expires_at`.
    #[error("the invoice expired at {expires_at} and can no longer be paid")]
    InvoiceExpired {
        /// When the invoice stopped being payable.
        expires_at: DateTime<Utc>,
    },

    /// A price or amount that must be zero or more is negative.
    #[error("amount {amount} is negative; it must be zero or more")]
    NegativeAmount {
        /// The refused amount.
        amount: Decimal,
    },

    /// An amount has more decimal places than its currency allows.
    #[error("amount has {got} decimal places; at most {allowed} are allowed here")]
    TooManyDecimals {
        /// The most decimal places allowed (the currency's minor units).
        allowed: u32,
        /// The decimal places of the amount, trailing zeros ignored.
        got: u32,
    },

    /// An amount does not fit the storage type `NUMERIC(19,4)`: its absolute
    /// value must stay below 10^15.
    #[error("amount {amount} is out of range: its absolute value must be below 1000000000000000")]
    AmountOutOfRange {
        /// The refused amount.
        amount: Decimal,
    },

    /// A currency's minor units are outside `0..=4` (amounts are stored with
    /// four decimal places).
    #[error("decimal places must be between 0 and 4, got {got}")]
    InvalidDecimalPlaces {
        /// The refused value.
        got: i64,
    },

    /// Not an active ISO 4217 currency code.
    #[error("`{code}` is not an active ISO 4217 currency code")]
    InvalidCurrencyCode {
        /// The refused code, as given.
        code: String,
    },

    /// Not an assigned ISO 3166-1 alpha-2 country code.
    #[error("`{code}` is not an ISO 3166-1 alpha-2 country code")]
    InvalidCountryCode {
        /// The refused code, as given.
        code: String,
    },

    /// Not an e-mail address as [`EmailAddress`](crate::values::EmailAddress)
    /// accepts one. The address is not kept: it is personal data, and the
    /// error may be logged.
    #[error("email is not a valid e-mail address")]
    InvalidEmail,

    /// Not a plan slug (see [`Slug`](crate::values::Slug)).
    #[error(
        "slug must be 1 to {max} lower-case letters, digits or '-', and not only digits",
        max = crate::values::Slug::MAX_CHARS
    )]
    InvalidSlug,

    /// Not a tax code (see [`TaxCode`](crate::values::TaxCode)).
    #[error(
        "code must be 1 to {max} letters, digits, '_' or '-'",
        max = crate::values::TaxCode::MAX_CHARS
    )]
    InvalidTaxCode,

    /// A region code longer than
    /// [`RegionCode::MAX_CHARS`](crate::values::RegionCode::MAX_CHARS).
    #[error(
        "region_code must be at most {max} characters",
        max = crate::values::RegionCode::MAX_CHARS
    )]
    RegionCodeTooLong,

    /// An exchange rate is zero, negative, does not fit `NUMERIC(19,8)`, or is
    /// not 1 for the default currency.
    #[error("exchange rate {rate} is invalid: {reason}")]
    InvalidExchangeRate {
        /// The refused rate.
        rate: Decimal,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Making `new_default` the default currency would give currency `code`
    /// a rate that is not valid (see `InvalidExchangeRate`); nothing is
    /// changed.
    #[error(
        "{new_default} cannot become the default currency: the exchange rate of {code} would become {rate}, and {reason}"
    )]
    RebasedRateOutOfRange {
        /// The currency that was to become the default.
        new_default: String,
        /// The currency whose rebased rate is invalid.
        code: String,
        /// The rebased rate, rounded to 8 places.
        rate: Decimal,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A tax rate (in percent) is outside `0..=100` or has more than four
    /// decimal places.
    #[error(
        "tax rate {rate} is invalid: it must be a percentage between 0 and 100 with at most 4 decimal places"
    )]
    InvalidTaxRate {
        /// The refused rate.
        rate: Decimal,
    },

    /// No historical rate of the tax covers the instant.
    #[error("no tax rate is in force at {at}")]
    NoRateInForce {
        /// The instant asked about.
        at: DateTime<Utc>,
    },

    /// Two historical rates of the same tax overlap, so the rate in force is
    /// ambiguous.
    #[error("tax rates {first_id} and {second_id} overlap")]
    OverlappingTaxRates {
        /// Id of the earlier rate row.
        first_id: i64,
        /// Id of the later rate row.
        second_id: i64,
    },

    /// A historical rate ends before or when it begins.
    #[error("tax rate {id} ends before it begins")]
    InvalidRateInterval {
        /// Id of the rate row.
        id: i64,
    },

    /// Two currency codes that must agree do not.
    #[error("currency mismatch: expected {expected}, got {found}")]
    CurrencyMismatch {
        /// The code that was required.
        expected: String,
        /// The code that was given.
        found: String,
    },

    /// A currency passed as the default currency is not the default.
    #[error("{code} is not the default currency")]
    NotDefaultCurrency {
        /// Code of the currency passed.
        code: String,
    },

    /// A valid currency code that is not among the configured currencies.
    #[error("currency {code} is not configured")]
    UnknownCurrency {
        /// The code, upper-case.
        code: String,
    },

    /// The currency may not be used for new plans and invoices.
    #[error("currency {code} is not active")]
    CurrencyInactive {
        /// Code of the inactive currency.
        code: String,
    },

    /// The tax may not be applied to new invoices.
    #[error("tax {code} is not active")]
    TaxInactive {
        /// Code of the inactive tax.
        code: String,
    },

    /// Not an invoice number of the form `INV-<year>-<6-digit sequence>`, or
    /// a year or sequence that cannot form one.
    #[error(
        "`{value}` is not a valid invoice number (expected INV-<year>-<sequence of at least 6 digits>)"
    )]
    InvalidInvoiceNumber {
        /// The refused text or the parts that were given.
        value: String,
    },

    /// A free-text field is blank or too long.
    #[error("{field} {reason}")]
    InvalidField {
        /// The field name as in the API (`payment_method`).
        field: &'static str,
        /// What is wrong (`must not be blank`).
        reason: &'static str,
    },

    /// An intermediate result exceeded the range of `Decimal`; only reachable
    /// with amounts far beyond anything storable.
    #[error("the calculation overflowed")]
    ArithmeticOverflow,

    /// A page number outside `1..=MAX_PAGE`
    /// ([`PageRequest`](crate::PageRequest)).
    #[error("page must be between 1 and {}", crate::page::MAX_PAGE)]
    PageOutOfRange {
        /// The refused page number.
        page: u64,
    },

    /// A page size outside `1..=MAX_PER_PAGE`
    /// ([`PageRequest`](crate::PageRequest)).
    #[error("per_page must be between 1 and {}", crate::page::MAX_PER_PAGE)]
    PageSizeOutOfRange {
        /// The refused page size.
        per_page: u64,
    },

    /// A computed date falls outside the supported calendar range.
    #[error("the computed date is out of range")]
    DateOutOfRange,
}
