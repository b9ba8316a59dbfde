//! Integration tests of webhook delivery against a receiving server on
//! loopback, each on SQLite + the in-process coordination backend and on
//! PostgreSQL + Redis (when `TEST_DATABASE_URL` and `TEST_REDIS_URL` are
//! set).

mod delivery;
mod receiver;
mod support;
