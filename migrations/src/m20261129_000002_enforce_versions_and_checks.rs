//! Makes two guarantees structural, enforced by the database on PostgreSQL
//! and SQLite alike, whatever path a write takes (the repository, sea-orm's
//! `ActiveModel::update` / `update_many`, or raw SQL on the connection):
//!
//! 1. **Every UPDATE raises `version` and moves `updated_at`.** A trigger on
//!    every versioned table gives an UPDATE that does not raise `version`
//!    `version = OLD.version + 1` and `updated_at = now`, so `version` never
//!    goes down and never stays put. `Repository::save` already sets
//!    `version = read + 1` and its own `updated_at`: the trigger leaves such
//!    an UPDATE alone.
//! 2. **The database refuses what the domain would refuse**: every enum
//!    column holds one of the domain enum's stored values (taken from the
//!    enum itself, so a new variant cannot be forgotten here), money is never
//!    negative, an invoice's `amount` is `net_amount + tax_amount`, rates and
//!    minor units stay in their domain ranges.
//!
//! PostgreSQL gets a `BEFORE UPDATE … FOR EACH ROW` plpgsql trigger (it
//! rewrites `NEW`, so `RETURNING` reports the raised version) and real
//! `CHECK` constraints (`ALTER TABLE … ADD CONSTRAINT`, which also validates
//! the rows already stored).
//!
//! SQLite cannot rewrite `NEW` in a trigger, nor add a `CHECK` to an existing
//! table. The version trigger is therefore `AFTER UPDATE … WHEN NEW.version
//! <= OLD.version` and updates the row once more; its own UPDATE raises the
//! version, so it does not fire again even with `recursive_triggers` on. The
//! checks are emulated with `BEFORE INSERT` / `BEFORE UPDATE OF <columns>`
//! triggers that `RAISE(ABORT, 'CHECK constraint failed: <name>')`, the
//! message SQLite gives for a native CHECK. Triggers were chosen over
//! rebuilding the tables (create a copy with the CHECKs, copy the rows, drop,
//! rename, recreate every index) because a rebuild needs `PRAGMA
//! foreign_keys = OFF`, which SQLite ignores inside a transaction (so the
//! rebuild could not be atomic) and which would otherwise let dropping
//! `user` cascade-delete the rows of every table referring to it; `down`
//! would need the same rebuild in reverse. Triggers are created and dropped
//! in one transaction without touching a row. The rows already stored are
//! validated first, as PostgreSQL does, so both backends refuse to migrate a
//! database that already breaks a rule, and leave nothing behind.

use billing_domain::enums::{
    BillingPeriod, CaseStatus, InvoiceStatus, SubscriptionStatus, UserRole, UserStatus,
};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ActiveEnum, ConnectionTrait, DatabaseBackend, Statement};

/// Adds the version triggers and the checks; `down` removes them.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every table with a `version` column (all but `invoice_sequence`).
pub(crate) const VERSIONED_TABLES: [&str; 9] = [
    "user",
    "user_details",
    "user_case",
    "currency",
    "tax",
    "tax_rate",
    "tarif_plan",
    "subscription",
    "user_invoice",
];

/// The PostgreSQL trigger function shared by every versioned table.
const BUMP_FUNCTION: &str = "billing_bump_version";

/// What a check demands of a row.
enum Rule {
    /// The column holds one of these values.
    OneOf {
        column: &'static str,
        values: Vec<String>,
    },
    /// The decimal column is `>= 0`.
    NonNegative(&'static str),
    /// The decimal column is `> 0`.
    Positive(&'static str),
    /// The decimal column is within `[low, high]`.
    DecimalBetween {
        column: &'static str,
        low: &'static str,
        high: &'static str,
    },
    /// The integer column is within `[low, high]`.
    IntegerBetween {
        column: &'static str,
        low: i64,
        high: i64,
    },
    /// The decimal `total` equals `parts[0] + parts[1]`, exactly.
    SumOf {
        total: &'static str,
        parts: [&'static str; 2],
    },
}

/// One named check on one table.
struct Check {
    name: &'static str,
    table: &'static str,
    rule: Rule,
}

/// The stored values of a domain enum, in declaration order.
fn values_of<E: ActiveEnum<Value = String>>() -> Vec<String> {
    E::values()
}

/// Every check this migration adds, in the order they are added: the enum
/// columns, then the amounts and ranges.
fn checks() -> Vec<Check> {
    let mut checks = enum_checks();
    checks.extend(value_checks());
    checks
}

/// The check that `table.column` holds one of `values`.
fn one_of(
    name: &'static str,
    table: &'static str,
    column: &'static str,
    values: Vec<String>,
) -> Check {
    Check {
        name,
        table,
        rule: Rule::OneOf { column, values },
    }
}

/// The check `name` of `rule` on `table`.
fn rule(name: &'static str, table: &'static str, rule: Rule) -> Check {
    Check { name, table, rule }
}

/// The checks of the enum columns. The allowed values come from the domain
/// enums themselves.
fn enum_checks() -> Vec<Check> {
    vec![
        one_of(
            "ck_user_status",
            "user",
            "status",
            values_of::<UserStatus>(),
        ),
        one_of("ck_user_role", "user", "role", values_of::<UserRole>()),
        one_of(
            "ck_user_case_status",
            "user_case",
            "status",
            values_of::<CaseStatus>(),
        ),
        one_of(
            "ck_tarif_plan_billing_period",
            "tarif_plan",
            "billing_period",
            values_of::<BillingPeriod>(),
        ),
        one_of(
            "ck_subscription_status",
            "subscription",
            "status",
            values_of::<SubscriptionStatus>(),
        ),
        one_of(
            "ck_user_invoice_status",
            "user_invoice",
            "status",
            values_of::<InvoiceStatus>(),
        ),
    ]
}

/// The checks of amounts, rates and minor units, after the domain's
/// validations they mirror.
fn value_checks() -> Vec<Check> {
    vec![
        // `money::validate_price`: a plan price is never negative.
        rule(
            "ck_tarif_plan_price_non_negative",
            "tarif_plan",
            Rule::NonNegative("price"),
        ),
        // `TaxBreakdown`: net, tax and gross of a non-negative price with a
        // rate in [0, 100] are non-negative, and gross = net + tax.
        rule(
            "ck_user_invoice_amount_non_negative",
            "user_invoice",
            Rule::NonNegative("amount"),
        ),
        rule(
            "ck_user_invoice_net_amount_non_negative",
            "user_invoice",
            Rule::NonNegative("net_amount"),
        ),
        rule(
            "ck_user_invoice_tax_amount_non_negative",
            "user_invoice",
            Rule::NonNegative("tax_amount"),
        ),
        rule(
            "ck_user_invoice_amount_is_net_plus_tax",
            "user_invoice",
            Rule::SumOf {
                total: "amount",
                parts: ["net_amount", "tax_amount"],
            },
        ),
        // `exchange::validate_exchange_rate`: greater than zero.
        rule(
            "ck_currency_exchange_rate_positive",
            "currency",
            Rule::Positive("exchange_rate"),
        ),
        // `money::validate_decimal_places`: 0 to 4 minor units.
        rule(
            "ck_currency_decimal_places_range",
            "currency",
            Rule::IntegerBetween {
                column: "decimal_places",
                low: 0,
                high: 4,
            },
        ),
        // `taxation::validate_tax_rate`: a percentage in [0, 100].
        rule(
            "ck_tax_rate_percent",
            "tax",
            Rule::DecimalBetween {
                column: "rate",
                low: "0",
                high: "100",
            },
        ),
        rule(
            "ck_tax_rate_rate_percent",
            "tax_rate",
            Rule::DecimalBetween {
                column: "rate",
                low: "0",
                high: "100",
            },
        ),
    ]
}

/// `"name"`, with embedded quotes doubled.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, with embedded quotes doubled.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl Rule {
    /// The columns whose change can break the rule.
    fn columns(&self) -> Vec<&'static str> {
        match self {
            Self::OneOf { column, .. }
            | Self::NonNegative(column)
            | Self::Positive(column)
            | Self::DecimalBetween { column, .. }
            | Self::IntegerBetween { column, .. } => vec![*column],
            Self::SumOf { total, parts } => vec![*total, parts[0], parts[1]],
        }
    }

    /// The PostgreSQL `CHECK` expression (NUMERIC arithmetic is exact).
    fn postgres(&self) -> String {
        match self {
            Self::OneOf { column, values } => one_of_sql(&ident(column), values),
            Self::NonNegative(column) => format!("{} >= 0", ident(column)),
            Self::Positive(column) => format!("{} > 0", ident(column)),
            Self::DecimalBetween { column, low, high } => {
                format!("{} BETWEEN {low} AND {high}", ident(column))
            }
            Self::IntegerBetween { column, low, high } => {
                format!("{} BETWEEN {low} AND {high}", ident(column))
            }
            Self::SumOf { total, parts } => format!(
                "{} = {} + {}",
                ident(total),
                ident(parts[0]),
                ident(parts[1])
            ),
        }
    }

    /// The SQLite expression over the row `row` (`NEW.` in a trigger, empty
    /// in a plain `SELECT`). Decimals are TEXT there (see
    /// `schema::SQLITE_DECIMAL_TYPE`): compared with a number they would be
    /// compared as text, so signs and ranges compare `CAST(… AS REAL)` (exact
    /// enough for a sign or a bound with four decimals), and the sum is
    /// checked exactly on the integer and four fractional digits.
    fn sqlite(&self, row: &str) -> String {
        let col = |c: &str| format!("{row}{}", ident(c));
        let real = |c: &str| format!("CAST({} AS REAL)", col(c));
        match self {
            Self::OneOf { column, values } => one_of_sql(&col(column), values),
            Self::NonNegative(column) => format!("{} >= 0", real(column)),
            Self::Positive(column) => format!("{} > 0", real(column)),
            Self::DecimalBetween { column, low, high } => {
                format!("{} BETWEEN {low} AND {high}", real(column))
            }
            Self::IntegerBetween { column, low, high } => {
                format!("{} BETWEEN {low} AND {high}", col(column))
            }
            Self::SumOf { total, parts } => {
                let (t, a, b) = (col(total), col(parts[0]), col(parts[1]));
                let fractions = format!("({} + {})", fraction_units(&a), fraction_units(&b));
                // The digit arithmetic holds for non-negative values; a
                // negative one is refused by the non-negative checks, so
                // here it is left to them (as on PostgreSQL, where only
                // they fire when the sum adds up).
                format!(
                    "{} < 0 OR {} < 0 OR {} < 0 OR ({} AND {} AND {} AND {} + {} + {fractions} / 10000 = {} AND {fractions} % 10000 = {})",
                    real(total),
                    real(parts[0]),
                    real(parts[1]),
                    at_most_four_decimals(&t),
                    at_most_four_decimals(&a),
                    at_most_four_decimals(&b),
                    integer_part(&a),
                    integer_part(&b),
                    integer_part(&t),
                    fraction_units(&t),
                )
            }
        }
    }
}

fn one_of_sql(column: &str, values: &[String]) -> String {
    let list = values
        .iter()
        .map(|v| literal(v))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{column} IN ({list})")
}

/// The digits after the point of a decimal text (empty when it has none).
fn fraction_digits(x: &str) -> String {
    format!("(CASE WHEN instr({x}, '.') > 0 THEN substr({x}, instr({x}, '.') + 1) ELSE '' END)")
}

/// The integer part of a non-negative decimal text, as an INTEGER.
fn integer_part(x: &str) -> String {
    format!(
        "CAST(CASE WHEN instr({x}, '.') > 0 THEN substr({x}, 1, instr({x}, '.') - 1) ELSE {x} END AS INTEGER)"
    )
}

/// The first four fractional digits of a decimal text, in units of 0.0001.
fn fraction_units(x: &str) -> String {
    format!(
        "CAST(substr({} || '0000', 1, 4) AS INTEGER)",
        fraction_digits(x)
    )
}

/// Nothing but zeros after the fourth fractional digit (`NUMERIC(19,4)`).
fn at_most_four_decimals(x: &str) -> String {
    format!("rtrim(substr({}, 5), '0') = ''", fraction_digits(x))
}

/// `updated_at = now` on SQLite, in the text the application stores
/// (`DateTime::to_rfc3339_opts(SecondsFormat::AutoSi, false)`:
/// `2026-11-29T21:38:36.123+00:00`, no fraction on a whole second). SQLite's
/// clock has millisecond resolution; the value is at least one millisecond
/// after the old one, so it moves forward even when the old value, written
/// by the application with microseconds, lies in the same millisecond.
fn sqlite_next_updated_at() -> &'static str {
    "replace(CASE WHEN julianday('now') > julianday(OLD.\"updated_at\") \
       THEN strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') \
       ELSE strftime('%Y-%m-%dT%H:%M:%f+00:00', OLD.\"updated_at\", '+0.001 seconds') END, \
     '.000+', '+')"
}

fn version_trigger(table: &str) -> String {
    format!("trg_{table}_bump_version")
}

fn check_trigger(check: &Check, event: &str) -> String {
    format!("{}_{event}", check.name)
}

async fn execute(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    manager.get_connection().execute_unprepared(sql).await?;
    Ok(())
}

async fn up_postgres(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    execute(
        manager,
        &format!(
            "CREATE OR REPLACE FUNCTION {BUMP_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.version <= OLD.version THEN
        NEW.version := OLD.version + 1;
        NEW.updated_at := GREATEST(clock_timestamp(), OLD.updated_at + interval '1 microsecond');
    END IF;
    RETURN NEW;
END
$$"
        ),
    )
    .await?;
    for table in VERSIONED_TABLES {
        execute(
            manager,
            &format!(
                "CREATE TRIGGER {} BEFORE UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION {BUMP_FUNCTION}()",
                version_trigger(table),
                ident(table)
            ),
        )
        .await?;
    }
    for check in checks() {
        execute(
            manager,
            &format!(
                "ALTER TABLE {} ADD CONSTRAINT {} CHECK ({})",
                ident(check.table),
                check.name,
                check.rule.postgres()
            ),
        )
        .await?;
    }
    Ok(())
}

async fn down_postgres(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    for check in checks() {
        execute(
            manager,
            &format!(
                "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
                ident(check.table),
                check.name
            ),
        )
        .await?;
    }
    for table in VERSIONED_TABLES {
        execute(
            manager,
            &format!(
                "DROP TRIGGER IF EXISTS {} ON {}",
                version_trigger(table),
                ident(table)
            ),
        )
        .await?;
    }
    execute(
        manager,
        &format!("DROP FUNCTION IF EXISTS {BUMP_FUNCTION}()"),
    )
    .await
}

async fn up_sqlite(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let conn = manager.get_connection();
    let checks = checks();
    // What `ALTER TABLE … ADD CONSTRAINT` does on PostgreSQL: refuse to add a
    // rule the stored rows already break. Every rule is checked before any
    // trigger is created, so a refused migration leaves nothing behind.
    for check in &checks {
        let row = conn
            .query_one_raw(Statement::from_string(
                DatabaseBackend::Sqlite,
                format!(
                    "SELECT count(*) AS n FROM {} WHERE NOT ({})",
                    ident(check.table),
                    check.rule.sqlite("")
                ),
            ))
            .await?;
        let broken: i64 = match row {
            Some(row) => row.try_get("", "n")?,
            None => 0,
        };
        if broken > 0 {
            return Err(DbErr::Migration(format!(
                "{broken} row(s) of {} break the new check {}; fix them before migrating",
                check.table, check.name
            )));
        }
    }
    for check in &checks {
        let condition = check.rule.sqlite("NEW.");
        let raise = format!(
            "SELECT RAISE(ABORT, {})",
            literal(&format!("CHECK constraint failed: {}", check.name))
        );
        let columns = check
            .rule
            .columns()
            .into_iter()
            .map(ident)
            .collect::<Vec<_>>()
            .join(", ");
        execute(
            manager,
            &format!(
                "CREATE TRIGGER {} BEFORE INSERT ON {} FOR EACH ROW WHEN NOT ({condition}) BEGIN {raise}; END",
                check_trigger(check, "insert"),
                ident(check.table)
            ),
        )
        .await?;
        execute(
            manager,
            &format!(
                "CREATE TRIGGER {} BEFORE UPDATE OF {columns} ON {} FOR EACH ROW WHEN NOT ({condition}) BEGIN {raise}; END",
                check_trigger(check, "update"),
                ident(check.table)
            ),
        )
        .await?;
    }
    for table in VERSIONED_TABLES {
        execute(
            manager,
            &format!(
                "CREATE TRIGGER {trigger} AFTER UPDATE ON {t} FOR EACH ROW \
                 WHEN NEW.\"version\" <= OLD.\"version\" BEGIN \
                 UPDATE {t} SET \"version\" = OLD.\"version\" + 1, \"updated_at\" = {now} \
                 WHERE \"id\" = NEW.\"id\"; END",
                trigger = version_trigger(table),
                t = ident(table),
                now = sqlite_next_updated_at(),
            ),
        )
        .await?;
    }
    Ok(())
}

async fn down_sqlite(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    for table in VERSIONED_TABLES {
        execute(
            manager,
            &format!("DROP TRIGGER IF EXISTS {}", version_trigger(table)),
        )
        .await?;
    }
    for check in checks() {
        for event in ["insert", "update"] {
            execute(
                manager,
                &format!("DROP TRIGGER IF EXISTS {}", check_trigger(&check, event)),
            )
            .await?;
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite too (sea-orm-migration wraps only
    /// PostgreSQL migrations by default): all triggers or none.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // `DatabaseBackend` is non-exhaustive: anything but SQLite is treated
        // as PostgreSQL, the only other backend the schema supports.
        if manager.get_database_backend() == DatabaseBackend::Sqlite {
            up_sqlite(manager).await
        } else {
            up_postgres(manager).await
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Sqlite {
            down_sqlite(manager).await
        } else {
            down_postgres(manager).await
        }
    }
}
