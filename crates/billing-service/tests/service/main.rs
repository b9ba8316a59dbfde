//! Integration tests of the use cases, each on SQLite + the in-process
//! coordination backend and on PostgreSQL + Redis (when `TEST_DATABASE_URL`
//! and `TEST_REDIS_URL` are set; then they must pass, never skip).

// The futures of the use cases nest deeply, and laying out those of the
// tests, which hold them and the harness's, takes more than the default 128
// levels of queries.
#![recursion_limit = "256"]

mod support;

mod catalogue;
mod catalogue_cache;
mod cycle;
mod cycle_bench;
mod erasure;
mod events;
mod idempotency;
mod invoices;
mod no_op_changes;
mod numbering;
mod paid_time;
mod payments;
mod rebasing;
mod subscriptions;
mod users;
