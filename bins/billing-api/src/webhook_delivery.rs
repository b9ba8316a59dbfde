//! Webhook delivery in `billing-api`: its settings (`BILLING_WEBHOOK_*`)
//! and the background task every instance runs unless
//! `BILLING_WEBHOOK_ENABLED` is off. Passes run under the lease
//! `webhook-delivery`, so one instance sends at a time and the others
//! take over when it dies (after `BILLING_WEBHOOK_LEASE_TTL`).

use std::time::Duration;

use billing_service::{Billing, RetryPolicy};
use billing_webhooks::{DispatchSettings, Dispatcher, WebhookError};
use clap::Args;

use crate::configuration::{ConfigError, parse_duration};

/// The settings of webhook delivery.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct WebhookArgs {
    /// Send webhooks from this process.
    #[arg(
        id = "webhook_enabled",
        long = "webhook-enabled",
        env = "BILLING_WEBHOOK_ENABLED",
        value_name = "BOOL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub enabled: bool,

    /// How long one request may take (connecting included) before the
    /// attempt counts as failed.
    #[arg(
        id = "webhook_timeout",
        long = "webhook-timeout",
        env = "BILLING_WEBHOOK_TIMEOUT",
        value_name = "DURATION",
        default_value = "5s",
        value_parser = parse_duration
    )]
    pub timeout: Duration,

    /// How long the task sleeps after a pass that found nothing to send.
    #[arg(
        id = "webhook_poll_interval",
        long = "webhook-poll-interval",
        env = "BILLING_WEBHOOK_POLL_INTERVAL",
        value_name = "DURATION",
        default_value = "500ms",
        value_parser = parse_duration
    )]
    pub poll_interval: Duration,

    /// The wait before the first retry of a failed attempt (it doubles per
    /// attempt, at most 12 hours, with jitter).
    #[arg(
        id = "webhook_retry_base",
        long = "webhook-retry-base",
        env = "BILLING_WEBHOOK_RETRY_BASE",
        value_name = "DURATION",
        default_value = "30s",
        value_parser = parse_duration
    )]
    pub retry_base: Duration,

    /// How long a delivery is retried before it is given up and its
    /// endpoint marked failing.
    #[arg(
        id = "webhook_retry_window",
        long = "webhook-retry-window",
        env = "BILLING_WEBHOOK_RETRY_WINDOW",
        value_name = "DURATION",
        default_value = "3days",
        value_parser = parse_duration
    )]
    pub retry_window: Duration,

    /// Requests in flight at once.
    #[arg(
        id = "webhook_concurrency",
        long = "webhook-concurrency",
        env = "BILLING_WEBHOOK_CONCURRENCY",
        value_name = "N",
        default_value_t = 8
    )]
    pub concurrency: usize,

    /// How long the delivery lease lasts without being extended.
    #[arg(
        id = "webhook_lease_ttl",
        long = "webhook-lease-ttl",
        env = "BILLING_WEBHOOK_LEASE_TTL",
        value_name = "DURATION",
        default_value = "60s",
        value_parser = parse_duration
    )]
    pub lease_ttl: Duration,
}

impl Default for WebhookArgs {
    /// The documented defaults: the command line's own.
    fn default() -> Self {
        crate::configuration::Settings::default().webhooks
    }
}

impl WebhookArgs {
    /// Checks the values clap cannot check alone.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(60) {
            return Err(ConfigError::new(
                "BILLING_WEBHOOK_TIMEOUT must be between 1ms and 60s",
            ));
        }
        if self.concurrency == 0 || self.concurrency > 256 {
            return Err(ConfigError::new(
                "BILLING_WEBHOOK_CONCURRENCY must be between 1 and 256",
            ));
        }
        if self.lease_ttl < self.timeout.saturating_mul(2) {
            return Err(ConfigError::new(
                "BILLING_WEBHOOK_LEASE_TTL must be at least twice BILLING_WEBHOOK_TIMEOUT",
            ));
        }
        if self.poll_interval.is_zero() || self.retry_base.is_zero() {
            return Err(ConfigError::new(
                "BILLING_WEBHOOK_POLL_INTERVAL and BILLING_WEBHOOK_RETRY_BASE must be longer than zero",
            ));
        }
        Ok(())
    }

    /// The dispatcher's settings.
    #[must_use]
    pub fn dispatch_settings(&self) -> DispatchSettings {
        DispatchSettings {
            request_timeout: self.timeout,
            concurrency: self.concurrency,
            lease_ttl: self.lease_ttl,
            poll_interval: self.poll_interval,
            retry: RetryPolicy {
                base: self.retry_base,
                window: self.retry_window,
                ..RetryPolicy::default()
            },
            ..DispatchSettings::default()
        }
    }

    /// The dispatcher of `billing`.
    ///
    /// # Errors
    /// [`WebhookError::Client`] when the HTTP client cannot be built.
    pub fn dispatcher(&self, billing: Billing) -> Result<Dispatcher, WebhookError> {
        Dispatcher::new(billing, self.dispatch_settings())
    }
}
