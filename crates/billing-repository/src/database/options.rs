//! How [`DatabaseSettings`] become the connect options of a PostgreSQL or
//! SQLite pool, and the target (`host:port` or file) errors name.

use std::str::FromStr;

use sea_orm::ConnectOptions;
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use crate::error::RepositoryError;
use crate::settings::DatabaseSettings;

/// Applies the PostgreSQL options; returns the `host:port` target.
pub(super) fn configure_postgres(
    options: &mut ConnectOptions,
    settings: &DatabaseSettings,
) -> Result<String, RepositoryError> {
    let parsed = PgConnectOptions::from_str(&settings.url).map_err(|e| {
        RepositoryError::InvalidSettings {
            setting: "url",
            reason: format!("cannot be parsed as a PostgreSQL URL: {e}"),
        }
    })?;
    let host = parsed.get_host();
    let target = match parsed.get_socket() {
        Some(socket) => socket.display().to_string(),
        None if host.starts_with('/') => host.to_owned(),
        None if host.contains(':') => format!("[{host}]:{}", parsed.get_port()),
        None => format!("{host}:{}", parsed.get_port()),
    };
    if let Some(timeout) = settings.statement_timeout {
        options.statement_timeout(timeout);
    }
    if let Some(name) = &settings.application_name {
        options.set_application_name(name.clone());
    }
    // Explicit READ COMMITTED for every statement of every connection; a
    // startup parameter overrides server-, database- and role-level
    // defaults. (sea-orm applies `statement_timeout` through the same
    // `options` parameter before this hook runs; `options()` appends.)
    options.map_sqlx_postgres_opts(|o| {
        o.options([("default_transaction_isolation", "read committed")])
    });
    Ok(target)
}

/// Applies the SQLite options; returns the file name as target.
pub(super) fn configure_sqlite(
    options: &mut ConnectOptions,
    settings: &DatabaseSettings,
) -> Result<String, RepositoryError> {
    let parsed = SqliteConnectOptions::from_str(&settings.url).map_err(|e| {
        RepositoryError::InvalidSettings {
            setting: "url",
            reason: format!("cannot be parsed as a SQLite URL: {e}"),
        }
    })?;
    let in_memory = settings.url.contains(":memory:") || settings.url.contains("mode=memory");
    let target = if in_memory {
        ":memory:".to_owned()
    } else {
        parsed.get_filename().display().to_string()
    };
    if in_memory {
        // Every connection to `:memory:` is a database of its own, and the
        // database dies with its last connection: one connection, forever.
        options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    }
    let busy_timeout = settings.sqlite_busy_timeout;
    options.map_sqlx_sqlite_opts(move |o| {
        let o = o
            .foreign_keys(true)
            .busy_timeout(busy_timeout)
            .synchronous(SqliteSynchronous::Full);
        if in_memory {
            o
        } else {
            o.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
        }
    });
    Ok(target)
}
