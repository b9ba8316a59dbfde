//! [`RepositoryError`]: the one error type of the crate, and the mapping of
//! sea-orm / sqlx errors onto it.
//!
//! No sea-orm or sqlx error type appears in the public API: driver errors are
//! classified here (unique, foreign-key and check violations, lost
//! connections, lock conflicts) and otherwise kept only as a boxed
//! [`std::error::Error`] source for logs.

use std::error::Error as StdError;

use billing_domain::Resource;
use sea_orm::sqlx;
use sea_orm::sqlx::error::{DatabaseError, ErrorKind};
use sea_orm::sqlx::sqlite::SqliteError;
use sea_orm::{DbErr, RuntimeErr};

/// A boxed error kept as the source of a [`RepositoryError`] (for logs and
/// `Error::source` chains); its concrete type is private to this crate.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Everything that can go wrong when talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// No row with this id exists (any more).
    #[error("{} {id} not found", entity.table())]
    NotFound {
        /// The entity (its table names it in the message: `user`,
        /// `user_invoice` …).
        entity: Resource,
        /// The id that was looked for.
        id: i64,
    },

    /// The row exists but its version is not the one the writer read: someone
    /// else changed it in between. Nothing was written.
    #[error(
        "{} {id} was modified concurrently: expected version {expected}, current version {actual}",
        entity.table()
    )]
    ConcurrentModification {
        /// The entity (its table names it in the message).
        entity: Resource,
        /// Id of the row.
        id: i64,
        /// The version the writer expected.
        expected: i32,
        /// The version the row holds now.
        actual: i32,
    },

    /// A unique constraint refused the write (e-mail, slug, code, invoice
    /// number …).
    #[error("{} with this {field} already exists", entity.table())]
    AlreadyExists {
        /// The entity (its table names it in the message).
        entity: Resource,
        /// The column (or comma-separated columns) that must be unique.
        field: String,
    },

    /// The row refers to a row that does not exist (a plan with an unknown
    /// currency, details for a missing user …).
    #[error("{} refers to a row that does not exist ({constraint})", entity.table())]
    ReferencedRowMissing {
        /// The entity written (its table names it in the message).
        entity: Resource,
        /// The foreign key, when the database names it (PostgreSQL).
        constraint: String,
    },

    /// The row cannot be deleted (or its key changed) because other rows
    /// still refer to it (a currency used by plans …).
    #[error("{} is still referenced by other rows ({constraint})", entity.table())]
    StillReferenced {
        /// The entity (its table names it in the message).
        entity: Resource,
        /// The foreign key, when the database names it (PostgreSQL).
        constraint: String,
    },

    /// A check constraint refused the write (an upper-case e-mail, an enum
    /// value the schema does not know, a negative amount, an invoice whose
    /// amount is not net + tax …). Nothing was written. The same constraint
    /// names (`ck_<table>_…`) on PostgreSQL and SQLite.
    #[error("{} violates the check constraint {constraint}", entity.table())]
    CheckViolation {
        /// The entity (its table names it in the message).
        entity: Resource,
        /// The constraint name (`ck_user_status`) or, for an unnamed check
        /// on SQLite, its expression.
        constraint: String,
    },

    /// A value the schema cannot hold (e.g. an invoice dated outside the
    /// years an invoice number can carry). Nothing was written.
    #[error("invalid {}: {reason}", entity.table())]
    InvalidValue {
        /// The entity (its table names it in the message).
        entity: Resource,
        /// What is wrong.
        reason: String,
    },

    /// The database aborted the statement to resolve a conflict with another
    /// transaction (PostgreSQL deadlock or serialization failure, SQLite still
    /// busy after its busy timeout). Nothing of the transaction was kept;
    /// running the whole transaction again may succeed.
    #[error("the transaction conflicted with another one and was aborted")]
    TransactionConflict {
        /// The driver's error.
        #[source]
        source: BoxError,
    },

    /// The database cannot be reached: connection refused or lost, no
    /// connection available within the acquire timeout, server shutting
    /// down. `target` is `host:port` (or the SQLite file), never a password.
    #[error("the database at {target} is unavailable")]
    Unavailable {
        /// `host:port` of the server, or the SQLite file.
        target: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },

    /// The database server refuses new connections because it already
    /// serves as many as it allows: PostgreSQL's `too many clients`
    /// (SQLSTATE 53300), from its `max_connections` or a role's or
    /// database's `CONNECTION LIMIT`. The server is reachable; connections
    /// the pool already holds keep working. The instances sharing the
    /// server open too many connections together: lower their pool sizes or
    /// raise the server's limit.
    #[error("the database at {target} refuses new connections: {reason}")]
    ConnectionLimitReached {
        /// `host:port` of the server.
        target: String,
        /// The server's message (`sorry, too many clients already`), with
        /// its `max_connections` when a connection could read it.
        reason: String,
        /// The server's `max_connections`, when known.
        server_max_connections: Option<u32>,
    },

    /// The connection settings are invalid (unknown URL scheme, malformed
    /// URL, impossible pool sizes).
    #[error("invalid database settings: {setting} {reason}")]
    InvalidSettings {
        /// The [`DatabaseSettings`](crate::DatabaseSettings) field at fault
        /// (`url`, `max_connections`, …), for a caller to name the
        /// variable or flag it came from.
        setting: &'static str,
        /// What is wrong; never contains the URL's password.
        reason: String,
    },

    /// Any other database error (a bug or an unexpected server state).
    #[error("database error")]
    Database {
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

impl RepositoryError {
    /// Whether this is a [`RepositoryError::ConcurrentModification`]: re-read
    /// the row, re-validate the change and save again.
    #[must_use]
    pub fn is_concurrent_modification(&self) -> bool {
        matches!(self, Self::ConcurrentModification { .. })
    }

    /// Whether running the operation again (after re-reading what it
    /// depends on) may succeed: a concurrent modification or a transaction
    /// conflict. An unavailable database is not retryable at this level.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::ConcurrentModification { .. } | Self::TransactionConflict { .. } => true,
            Self::NotFound { .. }
            | Self::AlreadyExists { .. }
            | Self::ReferencedRowMissing { .. }
            | Self::StillReferenced { .. }
            | Self::CheckViolation { .. }
            | Self::InvalidValue { .. }
            | Self::Unavailable { .. }
            | Self::ConnectionLimitReached { .. }
            | Self::InvalidSettings { .. }
            | Self::Database { .. } => false,
        }
    }

    /// Whether the database could not be used for now (answer 503): it
    /// cannot be reached, or it refuses new connections.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. } | Self::ConnectionLimitReached { .. }
        )
    }

    /// Whether the server refused a connection because it is full
    /// ([`RepositoryError::ConnectionLimitReached`]).
    #[must_use]
    pub fn is_connection_limit_reached(&self) -> bool {
        matches!(self, Self::ConnectionLimitReached { .. })
    }
}

/// The kind of statement that failed, to tell a missing parent (insert or
/// update) from a still-referenced row (delete) where the database does not
/// say which (SQLite).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// A query or a connection-level operation.
    Read,
    /// An insert or update.
    Write,
    /// A delete.
    Delete,
}

/// Where an error happened: the entity (table), if a statement on one
/// failed, and the database target.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ErrorContext<'a> {
    pub(crate) entity: Option<Resource>,
    pub(crate) target: &'a str,
    pub(crate) op: Op,
}

/// The sqlx error inside a sea-orm error, if there is one.
fn sqlx_error(err: &DbErr) -> Option<&sqlx::Error> {
    let runtime = if let DbErr::Conn(r) | DbErr::Exec(r) | DbErr::Query(r) = err {
        r
    } else {
        return None;
    };
    if let RuntimeErr::SqlxError(e) = runtime {
        Some(e.as_ref())
    } else {
        None
    }
}

/// Whether a sqlx error means the server cannot be reached (as opposed to a
/// statement the server refused).
fn sqlx_error_is_unavailable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

/// Maps a sea-orm error onto a [`RepositoryError`].
pub(crate) fn map_db_err(err: DbErr, cx: ErrorContext<'_>) -> RepositoryError {
    if matches!(err, DbErr::ConnectionAcquire(_)) {
        return unavailable(cx.target, err);
    }
    let Some(sqlx_err) = sqlx_error(&err) else {
        return RepositoryError::Database {
            source: Box::new(err),
        };
    };
    if let sqlx::Error::Database(db_err) = sqlx_err {
        return classify_database_error(db_err.as_ref(), cx).unwrap_or_else(|kind| match kind {
            Fallback::Unavailable => unavailable(cx.target, err),
            Fallback::Conflict => RepositoryError::TransactionConflict {
                source: Box::new(err),
            },
            Fallback::Other => RepositoryError::Database {
                source: Box::new(err),
            },
        });
    }
    if sqlx_error_is_unavailable(sqlx_err) {
        unavailable(cx.target, err)
    } else {
        RepositoryError::Database {
            source: Box::new(err),
        }
    }
}

/// Maps an error of establishing the pool: everything but a configuration
/// error means the database cannot be used, hence `Unavailable`.
pub(crate) fn map_connect_err(err: DbErr, target: &str) -> RepositoryError {
    if let Some(sqlx::Error::Configuration(reason)) = sqlx_error(&err) {
        return RepositoryError::InvalidSettings {
            setting: "url",
            reason: format!("is refused by the driver: {reason}"),
        };
    }
    unavailable(target, err)
}

fn unavailable(target: &str, err: DbErr) -> RepositoryError {
    RepositoryError::Unavailable {
        target: target.to_owned(),
        source: Box::new(err),
    }
}

/// What a database error is when it is not a constraint violation.
enum Fallback {
    Unavailable,
    Conflict,
    Other,
}

fn classify_database_error(
    db_err: &dyn DatabaseError,
    cx: ErrorContext<'_>,
) -> Result<RepositoryError, Fallback> {
    let code = db_err.code().unwrap_or_default();
    let fallback = || {
        if db_err.try_downcast_ref::<SqliteError>().is_some() {
            classify_sqlite_code(&code)
        } else {
            classify_sqlstate(&code)
        }
    };
    // A constraint is refused on a statement on a table; one without a
    // table (a connection's or a transaction's) is classified by its code.
    let Some(entity) = cx.entity else {
        return Err(fallback());
    };
    let kind = db_err.kind();
    if kind == ErrorKind::UniqueViolation {
        return Ok(RepositoryError::AlreadyExists {
            entity,
            field: unique_violation_field(db_err, entity.table()),
        });
    }
    // SQLite reports an `ON DELETE RESTRICT` refusal with the extended code
    // SQLITE_CONSTRAINT_TRIGGER (1811), not SQLITE_CONSTRAINT_FOREIGNKEY.
    let sqlite_foreign_key = db_err.try_downcast_ref::<SqliteError>().is_some()
        && db_err
            .message()
            .starts_with("FOREIGN KEY constraint failed");
    if kind == ErrorKind::ForeignKeyViolation || sqlite_foreign_key {
        let constraint = db_err.constraint().unwrap_or_default().to_owned();
        // PostgreSQL says which side failed: "insert or update on table …"
        // (missing parent) or "update or delete on table …" (still
        // referenced). SQLite only says "FOREIGN KEY constraint failed", so
        // the kind of statement decides.
        let still_referenced = if db_err.message().starts_with("update or delete on table") {
            true
        } else if db_err.message().starts_with("insert or update on table") {
            false
        } else {
            cx.op == Op::Delete
        };
        return Ok(if still_referenced {
            RepositoryError::StillReferenced { entity, constraint }
        } else {
            RepositoryError::ReferencedRowMissing { entity, constraint }
        });
    }
    // SQLite cannot add a CHECK to an existing table: the schema emulates
    // those with triggers that `RAISE(ABORT, 'CHECK constraint failed:
    // <name>')`, reported as SQLITE_CONSTRAINT_TRIGGER (1811), not
    // SQLITE_CONSTRAINT_CHECK. Both carry the constraint in the message.
    let sqlite_check = db_err.try_downcast_ref::<SqliteError>().is_some()
        && db_err.message().starts_with(SQLITE_CHECK_PREFIX);
    if kind == ErrorKind::CheckViolation || sqlite_check {
        return Ok(RepositoryError::CheckViolation {
            entity,
            constraint: check_constraint_name(db_err),
        });
    }
    Err(fallback())
}

/// How SQLite begins the message of a refused CHECK, native or emulated by a
/// trigger of the schema.
const SQLITE_CHECK_PREFIX: &str = "CHECK constraint failed: ";

/// The name of the violated check: PostgreSQL names it; SQLite puts it
/// (or, for an unnamed native CHECK, its expression) after
/// [`SQLITE_CHECK_PREFIX`].
fn check_constraint_name(db_err: &dyn DatabaseError) -> String {
    if let Some(constraint) = db_err.constraint() {
        return constraint.to_owned();
    }
    let message = db_err.message();
    message
        .strip_prefix(SQLITE_CHECK_PREFIX)
        .unwrap_or(message)
        .to_owned()
}

/// Classifies a SQLite extended result code.
fn classify_sqlite_code(code: &str) -> Fallback {
    match code.parse::<i32>().map(|c| c & 0xff) {
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6) with their extended codes:
        // another connection held the lock beyond the busy timeout.
        Ok(5 | 6) => Fallback::Conflict,
        Ok(_) | Err(_) => Fallback::Other,
    }
}

/// Classifies a PostgreSQL SQLSTATE.
fn classify_sqlstate(code: &str) -> Fallback {
    match code {
        // serialization_failure, deadlock_detected, lock_not_available
        "40001" | "40P01" | "55P03" => Fallback::Conflict,
        // admin_shutdown, crash_shutdown, cannot_connect_now,
        // too_many_connections, and the whole class 08 (connection exception)
        "57P01" | "57P02" | "57P03" | "53300" => Fallback::Unavailable,
        c if c.starts_with("08") => Fallback::Unavailable,
        _ => Fallback::Other,
    }
}

/// The unique column(s) named by a unique violation.
///
/// PostgreSQL names the index: the schema calls unique indexes
/// `uq_<table>_<column>`, and primary keys are `<table>_pkey`. SQLite names
/// the columns: `UNIQUE constraint failed: user.email`.
fn unique_violation_field(db_err: &dyn DatabaseError, entity: &str) -> String {
    if let Some(constraint) = db_err.constraint() {
        let table = db_err.table().unwrap_or(entity);
        return field_of_constraint(constraint, table);
    }
    let message = db_err.message();
    if let Some((_, columns)) = message.split_once("constraint failed: ") {
        return columns
            .split(',')
            .map(|c| {
                let c = c.trim();
                c.rsplit_once('.').map_or(c, |(_, column)| column)
            })
            .collect::<Vec<_>>()
            .join(",");
    }
    message.to_owned()
}

/// The column a PostgreSQL constraint name stands for.
fn field_of_constraint(constraint: &str, table: &str) -> String {
    match constraint {
        // The two partial unique indexes: their names say what they mean,
        // the column is what SQLite reports for them.
        "uq_currency_single_default" => return "is_default".to_owned(),
        "uq_tax_rate_single_open" => return "tax_id".to_owned(),
        _ => {}
    }
    if constraint == format!("{table}_pkey") {
        return if table == "invoice_sequence" {
            "year".to_owned()
        } else {
            "id".to_owned()
        };
    }
    constraint
        .strip_prefix("uq_")
        .and_then(|rest| rest.strip_prefix(table))
        .and_then(|rest| rest.strip_prefix('_'))
        .unwrap_or(constraint)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraint_names_give_columns() {
        assert_eq!(field_of_constraint("uq_user_email", "user"), "email");
        assert_eq!(
            field_of_constraint("uq_user_details_user_id", "user_details"),
            "user_id"
        );
        assert_eq!(
            field_of_constraint("uq_user_invoice_invoice_number", "user_invoice"),
            "invoice_number"
        );
        assert_eq!(
            field_of_constraint("uq_currency_single_default", "currency"),
            "is_default"
        );
        assert_eq!(field_of_constraint("user_pkey", "user"), "id");
        assert_eq!(
            field_of_constraint("invoice_sequence_pkey", "invoice_sequence"),
            "year"
        );
        assert_eq!(
            field_of_constraint("something_else", "user"),
            "something_else"
        );
    }

    #[test]
    fn codes_are_classified() {
        assert!(matches!(classify_sqlite_code("5"), Fallback::Conflict));
        assert!(matches!(classify_sqlite_code("517"), Fallback::Conflict));
        assert!(matches!(classify_sqlite_code("1"), Fallback::Other));
        assert!(matches!(classify_sqlstate("40P01"), Fallback::Conflict));
        assert!(matches!(classify_sqlstate("40001"), Fallback::Conflict));
        assert!(matches!(classify_sqlstate("08006"), Fallback::Unavailable));
        assert!(matches!(classify_sqlstate("57P01"), Fallback::Unavailable));
        assert!(matches!(classify_sqlstate("23502"), Fallback::Other));
    }

    #[test]
    fn retryable_kinds() {
        let cm = RepositoryError::ConcurrentModification {
            entity: Resource::User,
            id: 1,
            expected: 1,
            actual: 2,
        };
        assert!(cm.is_retryable() && cm.is_concurrent_modification());
        let nf = RepositoryError::NotFound {
            entity: Resource::User,
            id: 1,
        };
        assert!(!nf.is_retryable());
        assert_eq!(nf.to_string(), "user 1 not found");
    }
}
