//! Load and fault-injection tooling for `billing-api`.
//!
//! Two binaries, both benchmarks rather than tests (they take minutes and
//! start servers), so they stay out of `cargo test`:
//!
//! - `billing-load` ([`bench`](mod@bench)): starts the API and a bare actix-web
//!   handler on loopback, prepares data through the HTTP API, runs bounded
//!   loads (`GET /plans`, `GET /invoices/{id}`, `POST /invoices`,
//!   `POST /invoices/{id}/pay`) at several connection counts and prints a
//!   markdown table: requests per second, p50/p99 latency, errors, the
//!   API's peak resident memory, PostgreSQL and Redis work per request, the
//!   start-up time of the embedded default, and the goals met or missed.
//! - `billing-faults` ([`faults`]): three API instances over a private
//!   PostgreSQL cluster and a private Redis (never the machine's shared
//!   ones), a payment load, one fault (Redis stopped, PostgreSQL
//!   restarted, an instance killed), a PASS/FAIL verdict on timings, and
//!   the database [`invariants`] afterwards; `kill-during-delivery` kills
//!   the instances sending webhooks and counts, at a loopback
//!   [`receiver`], that no event was lost.
//!
//! See `docs/PERFORMANCE.md` and `docs/RELIABILITY.md` for the commands
//! and the measured figures.

pub mod api;
pub mod bare;
pub mod bench;
pub mod ceilings;
pub mod chains;
pub mod client;
pub mod faults;
pub mod infra;
pub mod invariants;
pub mod load;
pub mod process;
pub mod receiver;
pub mod stats;
