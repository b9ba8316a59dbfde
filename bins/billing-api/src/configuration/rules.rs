//! The billing rules an operator may tune: how long idempotency keys live
//! ([`IdempotencyArgs`]) and how payments, retries, password hashing and
//! the catalogue cache behave ([`BillingRulesArgs`]). Both become
//! `billing_service::BillingSettings`, whose `validate` owns the ranges.

use std::time::Duration;

use billing_service::{BillingError, BillingSettings};
use clap::Args;

use super::values::{parse_date_offset, parse_duration, parse_positive_u32, parse_positive_usize};
use super::{ConfigError, naming_variable};

/// The variables behind the fields of [`BillingSettings`].
const BILLING_VARIABLES: &[(&str, &str)] = &[
    ("payment_lock_ttl", "BILLING_PAYMENT_LOCK_TTL"),
    ("payment_lock_wait", "BILLING_PAYMENT_LOCK_WAIT"),
    ("max_attempts", "BILLING_RETRY_ATTEMPTS"),
    ("invoice_payment_window", "BILLING_PAYMENT_WINDOW"),
    ("idempotency_ttl", "BILLING_IDEMPOTENCY_TTL"),
    (
        "idempotency_in_flight_ttl",
        "BILLING_IDEMPOTENCY_IN_FLIGHT_TTL",
    ),
    ("password_hash_queue", "BILLING_PASSWORD_HASH_QUEUE"),
    ("catalogue_refresh", "BILLING_CATALOGUE_REFRESH"),
];

/// How long idempotency keys live.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct IdempotencyArgs {
    /// How long the outcome of a request run under an idempotency key is
    /// kept (in the database) and replayed.
    #[arg(
        id = "idempotency_ttl",
        long = "idempotency-ttl",
        env = "BILLING_IDEMPOTENCY_TTL",
        value_name = "DURATION",
        default_value = "24h",
        value_parser = parse_duration
    )]
    pub ttl: Duration,

    /// How long an unfinished idempotent request blocks its key if its
    /// instance dies before answering.
    #[arg(
        id = "idempotency_in_flight_ttl",
        long = "idempotency-in-flight-ttl",
        env = "BILLING_IDEMPOTENCY_IN_FLIGHT_TTL",
        value_name = "DURATION",
        default_value = "60s",
        value_parser = parse_duration
    )]
    pub in_flight_ttl: Duration,
}

impl IdempotencyArgs {
    /// The settings for `Coordination::embedded_with`.
    #[must_use]
    pub fn embedded_coordination_settings(&self) -> billing_concurrency::EmbeddedSettings {
        billing_concurrency::EmbeddedSettings {
            idempotency_ttl: self.ttl,
            in_flight_ttl: self.in_flight_ttl,
            ..billing_concurrency::EmbeddedSettings::default()
        }
    }
}

/// How the use cases behave.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct BillingRulesArgs {
    /// How long a new invoice can be paid (its `expires_at` is this after
    /// it was issued).
    #[arg(
        id = "payment_window",
        long = "payment-window",
        env = "BILLING_PAYMENT_WINDOW",
        value_name = "DURATION",
        default_value = "30days",
        value_parser = parse_date_offset
    )]
    pub payment_window: chrono::TimeDelta,

    /// How long a payment or refund may hold its invoice's lock (an
    /// instance that dies holding it blocks the invoice this long).
    #[arg(
        id = "payment_lock_ttl",
        long = "payment-lock-ttl",
        env = "BILLING_PAYMENT_LOCK_TTL",
        value_name = "DURATION",
        default_value = "15s",
        value_parser = parse_duration
    )]
    pub payment_lock_ttl: Duration,

    /// How long a payment waits for its invoice's lock before answering
    /// 409 `locked`.
    #[arg(
        id = "payment_lock_wait",
        long = "payment-lock-wait",
        env = "BILLING_PAYMENT_LOCK_WAIT",
        value_name = "DURATION",
        default_value = "5s",
        value_parser = parse_duration
    )]
    pub payment_lock_wait: Duration,

    /// How many times a change sent without `If-Match` is re-read and
    /// re-applied when another writer got in between.
    #[arg(
        id = "retry_attempts",
        long = "retry-attempts",
        env = "BILLING_RETRY_ATTEMPTS",
        value_name = "N",
        default_value_t = 5,
        value_parser = parse_positive_u32
    )]
    pub retry_attempts: u32,

    /// How many password hashes may wait for the hashing thread; beyond
    /// that a registration answers 503 `overloaded` with `Retry-After`
    /// at once instead of queueing.
    #[arg(
        id = "password_hash_queue",
        long = "password-hash-queue",
        env = "BILLING_PASSWORD_HASH_QUEUE",
        value_name = "N",
        default_value_t = billing_service::DEFAULT_PASSWORD_HASH_QUEUE,
        value_parser = parse_positive_usize
    )]
    pub password_hash_queue: usize,

    /// Serve plans, currencies and taxes from each instance's catalogue
    /// cache (`false`: every read goes to the database).
    #[arg(
        id = "catalogue_cache",
        long = "catalogue-cache",
        env = "BILLING_CATALOGUE_CACHE",
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub catalogue_cache: bool,

    /// Number the invoice creations waiting in this instance together: one
    /// counter update and one multi-row insert per transaction (`false`:
    /// one transaction per creation). Creations under an `Idempotency-Key`
    /// are always written alone.
    #[arg(
        id = "invoice_batching",
        long = "invoice-batching",
        env = "BILLING_INVOICE_BATCHING",
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub invoice_batching: bool,

    /// The staleness bound of the catalogue cache: a read that starts
    /// longer than this after a plan, currency or tax change was
    /// acknowledged by any instance sees it (the instance that made it sees
    /// it at once). Each instance checks a catalogue's generation in Redis
    /// at most once per this interval.
    #[arg(
        id = "catalogue_refresh",
        long = "catalogue-refresh",
        env = "BILLING_CATALOGUE_REFRESH",
        value_name = "DURATION",
        default_value = "20ms",
        value_parser = parse_duration
    )]
    pub catalogue_refresh: Duration,
}

impl BillingRulesArgs {
    /// The settings of the use cases.
    #[must_use]
    pub fn settings(&self, idempotency: &IdempotencyArgs) -> BillingSettings {
        BillingSettings {
            payment_lock_ttl: self.payment_lock_ttl,
            payment_lock_wait: self.payment_lock_wait,
            max_attempts: self.retry_attempts,
            invoice_payment_window: self.payment_window,
            idempotency_ttl: idempotency.ttl,
            idempotency_in_flight_ttl: idempotency.in_flight_ttl,
            password_hash_queue: self.password_hash_queue,
            catalogue_cache: self.catalogue_cache,
            catalogue_refresh: self.catalogue_refresh,
            invoice_batching: self.invoice_batching,
        }
    }

    /// Checks the rules through [`BillingSettings::validate`].
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable to fix.
    pub fn validate(&self, idempotency: &IdempotencyArgs) -> Result<(), ConfigError> {
        self.settings(idempotency).validate().map_err(|error| {
            let BillingError::InvalidSettings { setting, reason } = &error else {
                return ConfigError::new(error.to_string());
            };
            naming_variable(BILLING_VARIABLES, setting, reason)
        })
    }
}
