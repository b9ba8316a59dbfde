//! Property tests of the billing rules: one binary, one module per topic.
//!
//! Each property runs proptest's default 256 cases.

mod exchange;
mod invoice_number;
mod lifecycle;
mod money;
mod rate_history;
mod support;
mod taxation;
mod values;
