//! Integration tests of `billing-repository`, every one on SQLite and (when
//! `TEST_DATABASE_URL` is set) PostgreSQL, each in a fresh database.

mod checks;
mod common;
mod connection;
mod crud;
mod invoices;
mod optimistic;
mod queries;
mod transactions;
mod unique;
mod versions;
