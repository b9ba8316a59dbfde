//! Integration tests of the migration crate, on SQLite and (with
//! `TEST_DATABASE_URL`) PostgreSQL: the catalogue matches the specification,
//! `down` removes everything, and the database enforces what it must.

mod catalogue;
mod constraints;
mod lifecycle;
mod rules;
mod spec;
