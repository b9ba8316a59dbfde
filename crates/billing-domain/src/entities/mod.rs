//! The sea-orm entities of the billing schema, one module per table.
//!
//! Every table of the billing records has `id` (BIGINT identity),
//! `created_at`, `updated_at` (UTC) and `version` (starts at 1, raised by one
//! on every update: the optimistic lock). Table names are those of the
//! original schema. Two bookkeeping tables have neither `id` nor `version`:
//! `invoice_sequence` (the invoice counter) and `idempotency_record` (the
//! outcomes of requests that ran under an idempotency key). The billing
//! cycle's two records are written once and never updated, so they have no
//! `version` either: `subscription_renewal` (one renewal invoice per
//! subscription and period) and `dunning_attempt` (one row per retry). The outbox `event` and the
//! webhook tables (`webhook_endpoint`, `webhook_delivery`, `webhook_attempt`)
//! are bookkeeping too.

pub mod currency;
pub mod dunning_attempt;
pub mod event;
pub mod idempotency_record;
pub mod invoice_sequence;
pub mod subscription;
pub mod subscription_renewal;
pub mod tarif_plan;
pub mod tax;
pub mod tax_rate;
pub mod user;
pub mod user_case;
pub mod user_details;
pub mod user_invoice;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod webhook_endpoint;
