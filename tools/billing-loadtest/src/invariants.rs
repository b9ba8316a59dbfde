//! The invariants checked over the database after every fault scenario,
//! against what the load was told (every 200 answer to a payment is an
//! acknowledgement):
//!
//! 1. every acknowledged payment is stored: the invoice is `paid`;
//! 2. each invoice (and so each key: one key per invoice) was acknowledged
//!    by at most one fresh (non-replayed) answer;
//! 3. each paid invoice was paid once (`version` 2: pending → paid) and is
//!    complete (`paid_at`, `payment_method`, `fencing_token`);
//! 4. each paid invoice activated its subscription exactly once (the
//!    subscription is `active` at `version` 2), and no unpaid invoice has
//!    an activated subscription: no half-done payment;
//! 5. invoice numbers have no gaps: per year, numbers 1..=n once each, n
//!    the year's counter in `invoice_sequence`;
//! 6. no row's `version` went backwards and no row vanished, comparing a
//!    snapshot taken before the fault with one after.
//!
//! The load prepares one subscription per invoice, which is what makes the
//! version arithmetic of 3 and 4 exact.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};

use crate::infra::PgServer;
use crate::load::{Outcome, Sample};

/// The tables whose versions are compared: every table of the schema with
/// an `id` and a `version` column, read from the database the migrations
/// built, so a table added to the schema is compared without a change here.
const VERSIONED_TABLES_SQL: &str = "SELECT c.table_name FROM information_schema.columns c \
     JOIN information_schema.columns i ON i.table_schema = c.table_schema \
     AND i.table_name = c.table_name AND i.column_name = 'id' \
     WHERE c.table_schema = current_schema() AND c.column_name = 'version' \
     ORDER BY c.table_name";

/// The versioned tables of `database` (see [`VERSIONED_TABLES_SQL`]).
///
/// # Errors
/// When the query fails or finds no such table.
pub fn versioned_tables(pg: &PgServer, database: &str) -> Result<Vec<String>> {
    let tables: Vec<String> = pg
        .query(database, VERSIONED_TABLES_SQL)?
        .into_iter()
        .filter_map(|row| row.into_iter().next())
        .collect();
    if tables.is_empty() {
        anyhow::bail!("{database} has no table with an id and a version column");
    }
    Ok(tables)
}

/// `(table, id) → version` of every row of the [`versioned_tables`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The versions.
    pub versions: BTreeMap<(String, i64), i64>,
}

impl Snapshot {
    /// Reads every row's version.
    ///
    /// # Errors
    /// When a query fails.
    pub fn take(pg: &PgServer, database: &str) -> Result<Self> {
        let sql = versioned_tables(pg, database)?
            .iter()
            .map(|table| format!("SELECT '{table}', id, version FROM \"{table}\""))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut versions = BTreeMap::new();
        for row in pg.query(database, &sql)? {
            let [table, id, version] = row.as_slice() else {
                continue;
            };
            versions.insert((table.clone(), id.parse()?), version.parse()?);
        }
        Ok(Self { versions })
    }

    /// Rows whose version is lower in `after`, or which are missing there.
    #[must_use]
    pub fn regressions(&self, after: &Self) -> Vec<String> {
        self.versions
            .iter()
            .filter_map(|(key, before)| match after.versions.get(key) {
                Some(now) if now >= before => None,
                Some(now) => Some(format!("{} {}: version {before} → {now}", key.0, key.1)),
                None => Some(format!(
                    "{} {}: vanished (was version {before})",
                    key.0, key.1
                )),
            })
            .collect()
    }
}

/// What the clients were told about each invoice's payment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acks {
    /// invoice → fresh 200 answers (the payment ran for that request).
    pub fresh: HashMap<i64, u32>,
    /// invoice → replayed 200 answers (`Idempotent-Replayed: true`).
    pub replayed: HashMap<i64, u32>,
}

impl Acks {
    /// Collects the 200 answers to payments in `samples`.
    #[must_use]
    pub fn from_samples<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Self {
        let mut acks = Self::default();
        for sample in samples {
            let (Some(invoice), Outcome::Status(200)) = (sample.invoice, sample.outcome) else {
                continue;
            };
            let counts = if sample.replayed {
                &mut acks.replayed
            } else {
                &mut acks.fresh
            };
            *counts.entry(invoice).or_default() += 1;
        }
        acks
    }

    /// Whether `invoice` got any 200.
    #[must_use]
    pub fn acknowledged(&self, invoice: i64) -> bool {
        self.fresh.contains_key(&invoice) || self.replayed.contains_key(&invoice)
    }
}

/// One checked invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether it holds.
    pub ok: bool,
    /// Counts, or the first offenders.
    pub detail: String,
}

/// The row of an invoice with its subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceRow {
    /// Invoice id.
    pub id: i64,
    /// Invoice status.
    pub status: String,
    /// Invoice version.
    pub version: i64,
    /// Whether `paid_at`, `payment_method` and `fencing_token` are set.
    pub payment_complete: bool,
    /// The linked subscription's status and version.
    pub subscription: Option<(String, i64)>,
}

/// Reads every invoice with its subscription.
///
/// # Errors
/// When the query fails.
pub fn invoice_rows(pg: &PgServer, database: &str) -> Result<Vec<InvoiceRow>> {
    let rows = pg.query(
        database,
        "SELECT i.id, i.status, i.version, \
         (i.paid_at IS NOT NULL AND i.payment_method IS NOT NULL AND i.fencing_token IS NOT NULL), \
         COALESCE(s.status, ''), COALESCE(s.version, -1) \
         FROM user_invoice i LEFT JOIN subscription s ON s.id = i.subscription_id ORDER BY i.id",
    )?;
    rows.into_iter()
        .map(|row| {
            let field = |i: usize| row.get(i).cloned().unwrap_or_default();
            let subscription_status = field(4);
            Ok(InvoiceRow {
                id: field(0).parse().context("invoice id")?,
                status: field(1),
                version: field(2).parse().context("invoice version")?,
                payment_complete: field(3) == "t",
                subscription: (!subscription_status.is_empty())
                    .then(|| -> Result<(String, i64)> {
                        Ok((subscription_status, field(5).parse()?))
                    })
                    .transpose()?,
            })
        })
        .collect()
}

/// Per year: (year, invoices, distinct numbers, lowest, highest, the
/// counter of `invoice_sequence`).
///
/// # Errors
/// When the query fails.
pub fn number_ranges(pg: &PgServer, database: &str) -> Result<Vec<[i64; 6]>> {
    let rows = pg.query(
        database,
        "WITH n AS (SELECT split_part(invoice_number, '-', 2)::int AS year, \
                           split_part(invoice_number, '-', 3)::bigint AS seq, invoice_number \
                    FROM user_invoice) \
         SELECT n.year, count(*), count(DISTINCT n.invoice_number), min(n.seq), max(n.seq), \
                COALESCE(max(s.last_number), -1) \
         FROM n LEFT JOIN invoice_sequence s ON s.year = n.year GROUP BY n.year ORDER BY n.year",
    )?;
    rows.into_iter()
        .map(|row| {
            let mut out = [0_i64; 6];
            for (slot, value) in out.iter_mut().zip(row.iter()) {
                *slot = value.parse()?;
            }
            Ok(out)
        })
        .collect()
}

/// Runs every check.
///
/// # Errors
/// When the database cannot be read.
pub fn check_all(
    pg: &PgServer,
    database: &str,
    acks: &Acks,
    before: &Snapshot,
) -> Result<Vec<Check>> {
    let invoices = invoice_rows(pg, database)?;
    let ranges = number_ranges(pg, database)?;
    let after = Snapshot::take(pg, database)?;
    Ok(evaluate(&invoices, &ranges, acks, before, &after))
}

/// Paid, or paid and then refunded (a refund leaves the subscription as
/// it is).
fn is_paid(status: &str) -> bool {
    status == "paid" || status == "refunded"
}

/// The version of an invoice paid once (pending 1 → paid 2), refunded
/// once after (3).
fn paid_version(status: &str) -> i64 {
    if status == "refunded" { 3 } else { 2 }
}

fn first<T: std::fmt::Display>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().take(5).map(ToString::to_string).collect();
    let more = items.len().saturating_sub(5);
    if more > 0 {
        format!("{} (and {more} more)", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// The checks over rows already read (pure, for tests).
#[must_use]
pub fn evaluate(
    invoices: &[InvoiceRow],
    ranges: &[[i64; 6]],
    acks: &Acks,
    before: &Snapshot,
    after: &Snapshot,
) -> Vec<Check> {
    vec![
        acknowledged_stored(invoices, acks),
        acknowledged_once(acks),
        paid_once(invoices, acks),
        subscriptions_activated(invoices),
        numbers_gapless(ranges),
        versions_forward(before, after),
    ]
}

/// Every acknowledged payment is stored: its invoice is paid.
fn acknowledged_stored(invoices: &[InvoiceRow], acks: &Acks) -> Check {
    let by_id: HashMap<i64, &InvoiceRow> = invoices.iter().map(|row| (row.id, row)).collect();
    let mut lost = Vec::new();
    for invoice in acks.fresh.keys().chain(acks.replayed.keys()) {
        match by_id.get(invoice) {
            Some(row) if is_paid(&row.status) => {}
            Some(row) => lost.push(format!("invoice {invoice} is {}", row.status)),
            None => lost.push(format!("invoice {invoice} is missing")),
        }
    }
    lost.sort();
    lost.dedup();
    let acknowledged = acks.fresh.len()
        + acks
            .replayed
            .keys()
            .filter(|i| !acks.fresh.contains_key(i))
            .count();
    Check {
        name: "every acknowledged payment is stored (invoice paid)",
        ok: lost.is_empty(),
        detail: if lost.is_empty() {
            format!("{acknowledged} invoices acknowledged, all paid")
        } else {
            first(&lost)
        },
    }
}

/// No key got two fresh (not replayed) 200s.
fn acknowledged_once(acks: &Acks) -> Check {
    let mut twice: Vec<String> = acks
        .fresh
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(invoice, n)| format!("invoice {invoice}: {n} fresh 200s"))
        .collect();
    twice.sort();
    let replays: u32 = acks.replayed.values().sum();
    Check {
        name: "each payment acknowledged at most once per key (fresh answers)",
        ok: twice.is_empty(),
        detail: if twice.is_empty() {
            format!(
                "{} fresh acknowledgements, {replays} replays",
                acks.fresh.len()
            )
        } else {
            first(&twice)
        },
    }
}

/// Each paid invoice was paid once and completely.
fn paid_once(invoices: &[InvoiceRow], acks: &Acks) -> Check {
    let paid: Vec<&InvoiceRow> = invoices.iter().filter(|r| is_paid(&r.status)).collect();
    let mut bad_paid: Vec<String> = paid
        .iter()
        .filter(|r| r.version != paid_version(&r.status) || !r.payment_complete)
        .map(|r| {
            format!(
                "invoice {} version {} complete={}",
                r.id, r.version, r.payment_complete
            )
        })
        .collect();
    bad_paid.sort();
    let unacknowledged = paid.iter().filter(|r| !acks.acknowledged(r.id)).count();
    Check {
        name: "each paid invoice was paid once and completely (version 2, or 3 once refunded; paid_at, method, fencing token)",
        ok: bad_paid.is_empty(),
        detail: if bad_paid.is_empty() {
            format!(
                "{} paid invoices ({unacknowledged} paid without a 200 reaching the client: \
                 answer lost to the fault, allowed)",
                paid.len()
            )
        } else {
            first(&bad_paid)
        },
    }
}

/// Each paid invoice activated its subscription once; the others left it pending.
fn subscriptions_activated(invoices: &[InvoiceRow]) -> Check {
    let mut half_done = Vec::new();
    let mut activated = 0_usize;
    for row in invoices {
        let Some((status, version)) = &row.subscription else {
            continue;
        };
        let fine = if is_paid(&row.status) {
            activated += 1;
            status == "active" && *version == 2
        } else {
            status == "pending" && *version == 1
        };
        if !fine {
            half_done.push(format!(
                "invoice {} ({}) → subscription {status} version {version}",
                row.id, row.status
            ));
        }
    }
    Check {
        name: "each paid invoice activated its subscription exactly once; no half-done payment",
        ok: half_done.is_empty(),
        detail: if half_done.is_empty() {
            format!("{activated} subscriptions activated once, the others still pending")
        } else {
            first(&half_done)
        },
    }
}

/// The invoice numbers of each year are 1..=n, n the counter.
fn numbers_gapless(ranges: &[[i64; 6]]) -> Check {
    let mut gaps = Vec::new();
    for [year, count, distinct, low, high, counter] in ranges {
        if !(count == distinct && *low == 1 && high == count && counter == count) {
            gaps.push(format!(
                "{year}: {count} invoices, {distinct} distinct numbers, {low}..={high}, counter {counter}"
            ));
        }
    }
    let total: i64 = ranges.iter().map(|r| r[1]).sum();
    Check {
        name: "invoice numbers are gapless per year (1..=n, n = invoice_sequence)",
        ok: gaps.is_empty(),
        detail: if gaps.is_empty() {
            format!("{total} numbers over {} year(s), no gap", ranges.len())
        } else {
            first(&gaps)
        },
    }
}

/// No row's version went backwards and no row vanished.
fn versions_forward(before: &Snapshot, after: &Snapshot) -> Check {
    let regressions = before.regressions(after);
    Check {
        name: "no row's version went backwards, no row vanished",
        ok: regressions.is_empty(),
        detail: if regressions.is_empty() {
            format!(
                "{} rows before, {} after",
                before.versions.len(),
                after.versions.len()
            )
        } else {
            first(&regressions)
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn row(id: i64, status: &str, version: i64, sub: Option<(&str, i64)>) -> InvoiceRow {
        InvoiceRow {
            id,
            status: status.to_owned(),
            version,
            payment_complete: status == "paid",
            subscription: sub.map(|(s, v)| (s.to_owned(), v)),
        }
    }

    fn ack(invoice: i64, replayed: bool) -> Sample {
        Sample {
            start: Duration::ZERO,
            latency: Duration::ZERO,
            outcome: Outcome::Status(200),
            target: 0,
            invoice: Some(invoice),
            replayed,
            code: None,
        }
    }

    fn snapshot(rows: &[(&str, i64, i64)]) -> Snapshot {
        Snapshot {
            versions: rows
                .iter()
                .map(|(t, id, v)| (((*t).to_owned(), *id), *v))
                .collect(),
        }
    }

    #[test]
    fn a_consistent_database_passes() {
        let invoices = vec![
            row(1, "paid", 2, Some(("active", 2))),
            row(2, "pending", 1, Some(("pending", 1))),
            row(3, "paid", 2, Some(("active", 2))),
        ];
        let acks = Acks::from_samples(&[ack(1, false), ack(1, true)]);
        let before = snapshot(&[("user_invoice", 1, 1)]);
        let after = snapshot(&[("user_invoice", 1, 2)]);
        let checks = evaluate(&invoices, &[[2026, 3, 3, 1, 3, 3]], &acks, &before, &after);
        assert!(checks.iter().all(|c| c.ok), "{checks:#?}");
    }

    #[test]
    fn every_violation_is_caught() {
        let invoices = vec![
            // Acknowledged but not stored.
            row(1, "pending", 1, Some(("pending", 1))),
            // Paid twice.
            row(2, "paid", 3, Some(("active", 2))),
            // Half done: subscription activated, invoice not paid.
            row(3, "pending", 1, Some(("active", 2))),
        ];
        let acks = Acks::from_samples(&[ack(1, false), ack(2, false), ack(2, false)]);
        let before = snapshot(&[("subscription", 7, 3), ("tax", 1, 1)]);
        let after = snapshot(&[("subscription", 7, 2)]);
        let checks = evaluate(&invoices, &[[2026, 3, 3, 1, 4, 4]], &acks, &before, &after);
        assert!(checks.iter().all(|c| !c.ok), "{checks:#?}");
    }
}
