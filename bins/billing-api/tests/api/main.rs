//! Integration tests of `billing-api` over real HTTP: each test starts the
//! application on a random loopback port over a fresh database, on SQLite
//! with in-process coordination and (when `TEST_DATABASE_URL` and
//! `TEST_REDIS_URL` are set) on PostgreSQL with Redis. [`instances`] runs
//! three instances over one PostgreSQL database and one Redis;
//! [`managed_redis`] runs them over Redis Cluster and over TLS.

mod auth;
mod cases;
mod catalogue_cache;
mod configuration;
mod connection_budget;
mod contract;
mod contract_probes;
mod currencies;
mod cycle;
mod docs_page;
mod erasure;
mod errors;
mod fixtures;
mod health;
mod helpers;
mod idempotency;
mod instances;
mod invoices;
mod managed_redis;
mod no_op_changes;
mod observability;
mod openapi;
mod operations;
mod outages;
mod paid_time;
mod plans;
mod raw_http;
mod readme_walkthrough;
mod rebasing;
mod rejections;
mod retry;
mod startup;
mod subscriptions;
mod taxes;
mod users;
mod webhooks;
