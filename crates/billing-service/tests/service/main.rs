//! Integration tests of the use cases, each on SQLite + the in-process
//! coordination backend and on PostgreSQL + Redis (when `TEST_DATABASE_URL`
//! and `TEST_REDIS_URL` are set; then they must pass, never skip).

mod support;

mod catalogue;
mod idempotency;
mod invoices;
mod payments;
mod subscriptions;
mod users;
