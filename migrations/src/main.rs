//! `billing-migration`: the sea-orm-migration CLI for the billing schema
//! (`up`, `down`, `status`, `fresh`, …) reading `DATABASE_URL`.
//!
//! On PostgreSQL every command first takes the same advisory lock as
//! [`billing_migration::up_locked`], on a single-connection pool that holds it
//! until the process ends, so the CLI never races an API instance that is
//! migrating at start.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Statement,
};

#[tokio::main]
async fn main() {
    cli::run_cli_with_connection(billing_migration::Migrator, connect_holding_lock).await;
}

async fn connect_holding_lock(mut options: ConnectOptions) -> Result<DatabaseConnection, DbErr> {
    // One connection that is never recycled: the session-level advisory lock
    // lives exactly as long as it does.
    options
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .sqlx_logging(false);
    let db = Database::connect(options).await?;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        db.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_lock($1)",
            [billing_migration::MIGRATION_LOCK_KEY.into()],
        ))
        .await?;
    }
    Ok(db)
}
