//! The billing schema as sea-orm migrations: the [`Migrator`] to embed, and
//! [`up_locked`], the `up` to call where several processes may start at once.
//!
//! ```no_run
//! # async fn run(db: &sea_orm_migration::sea_orm::DatabaseConnection) -> Result<(), sea_orm_migration::DbErr> {
//! billing_migration::up_locked(db).await?;
//! # Ok(()) }
//! ```

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, TransactionTrait,
};

mod m20261125_000001_create_billing_schema;
mod m20261129_000001_create_idempotency_record;
mod m20261129_000002_enforce_versions_and_checks;
mod m20261129_000003_create_billing_cycle;
mod m20261130_000001_create_event_outbox;
mod schema;

/// The migrations of the billing schema, oldest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_billing_schema::Migration),
            Box::new(m20261129_000001_create_idempotency_record::Migration),
            Box::new(m20261129_000002_enforce_versions_and_checks::Migration),
            Box::new(m20261129_000003_create_billing_cycle::Migration),
            Box::new(m20261130_000001_create_event_outbox::Migration),
        ]
    }
}

/// The PostgreSQL advisory-lock key that serialises migration runs
/// (`"billing"` in ASCII).
pub const MIGRATION_LOCK_KEY: i64 = 0x0062_696c_6c69_6e67;

/// Applies all pending migrations, safe to call from several processes at
/// once.
///
/// sea-orm-migration takes no lock of its own, so two API instances starting
/// together could both try to create the schema. On PostgreSQL this runs the
/// migrations inside one transaction that first takes
/// `pg_advisory_xact_lock(MIGRATION_LOCK_KEY)`: a second caller waits for the
/// first to commit, then finds nothing pending. The schema changes commit or
/// roll back as a whole. On SQLite (one process) it is a plain `up`.
///
/// # Errors
/// Returns the database error of a failed migration or of taking the lock;
/// nothing of a failed run is committed on PostgreSQL.
pub async fn up_locked(db: &DatabaseConnection) -> Result<(), DbErr> {
    // `DatabaseBackend` is non-exhaustive: only PostgreSQL needs the lock.
    if db.get_database_backend() == DatabaseBackend::Postgres {
        let txn = db.begin().await?;
        txn.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [MIGRATION_LOCK_KEY.into()],
        ))
        .await?;
        Migrator::up(&txn, None).await?;
        txn.commit().await
    } else {
        Migrator::up(db, None).await
    }
}
