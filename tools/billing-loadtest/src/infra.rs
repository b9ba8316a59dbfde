//! The servers behind the API: a database on the shared PostgreSQL
//! (created and dropped per run), a private PostgreSQL cluster and a
//! private Redis for the fault scenarios (which stop and restart them, so
//! they must never be the machine's shared ones), and the counters read
//! from them (`pg_stat_database`, `pg_stat_statements`, Redis
//! `INFO commandstats`).
//!
//! SQL goes through `psql` and Redis commands through `redis-cli`: both
//! come with the servers, and this keeps the tool free of database drivers.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

mod private_pg;
mod redis;

pub use private_pg::{PrivatePostgres, postgres_bin_dir};
pub use redis::{
    PrivateRedis, command_calls_since, parse_commandstats, redis_cli, redis_command_calls,
    redis_port,
};

/// Where a PostgreSQL server listens (user `postgres`, trust or
/// password-less authentication on loopback).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgServer {
    /// Host, `127.0.0.1`.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
}

impl PgServer {
    /// The server of a `postgres://user@host:port[/db]` URL (no password).
    ///
    /// # Errors
    /// When the URL does not have that shape.
    pub fn from_url(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .with_context(|| format!("{url}: expected postgres://user@host:port"))?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let (user, hostport) = authority
            .rsplit_once('@')
            .with_context(|| format!("{url}: expected a user (postgres://postgres@host:port)"))?;
        if user.contains(':') {
            bail!("{url}: passwords are not supported here; use trust authentication on loopback");
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().context("port")?),
            None => (hostport, 5432),
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            user: user.to_owned(),
        })
    }

    /// `postgres://user@host:port/<database>`.
    #[must_use]
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{}@{}:{}/{database}",
            self.user, self.host, self.port
        )
    }

    /// Runs `sql` in `database` with psql; returns its rows, each a vector
    /// of its tab-separated fields.
    ///
    /// # Errors
    /// When psql fails (with its message).
    pub fn query(&self, database: &str, sql: &str) -> Result<Vec<Vec<String>>> {
        let output = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", &self.host, "-p", &self.port.to_string()])
            .args(["-U", &self.user, "-d", database, "-c", sql])
            .stdin(Stdio::null())
            .output()
            .context("running psql (install postgresql-client)")?;
        if !output.status.success() {
            bail!(
                "psql on {database}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| line.split('\t').map(str::to_owned).collect())
            .collect())
    }

    /// The single value of a one-row, one-column query.
    ///
    /// # Errors
    /// As [`Self::query`], or when there is no value.
    pub fn scalar(&self, database: &str, sql: &str) -> Result<String> {
        self.query(database, sql)?
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next())
            .with_context(|| format!("no value from: {sql}"))
    }

    /// Creates database `name`.
    ///
    /// # Errors
    /// As [`Self::query`].
    pub fn create_database(&self, name: &str) -> Result<()> {
        self.query("postgres", &format!("CREATE DATABASE \"{name}\""))
            .map(drop)
    }

    /// Drops database `name`, disconnecting its clients.
    ///
    /// # Errors
    /// As [`Self::query`].
    pub fn drop_database(&self, name: &str) -> Result<()> {
        self.query(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )
        .map(drop)
    }

    /// Whether the server accepts connections (`pg_isready`).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        Command::new("pg_isready")
            .args(["-q", "-h", &self.host, "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The counters of `database` in `pg_stat_database`.
    ///
    /// # Errors
    /// As [`Self::query`].
    pub fn database_stats(&self, database: &str) -> Result<DbStats> {
        let row = self
            .query(
                "postgres",
                &format!(
                    "SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, \
                     tup_updated, tup_deleted FROM pg_stat_database WHERE datname = '{database}'"
                ),
            )?
            .into_iter()
            .next()
            .with_context(|| format!("no pg_stat_database row for {database}"))?;
        let n = |i: usize| -> u64 { row.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
        Ok(DbStats {
            commits: n(0),
            rollbacks: n(1),
            tuples_returned: n(2),
            tuples_fetched: n(3),
            tuples_inserted: n(4),
            tuples_updated: n(5),
            tuples_deleted: n(6),
        })
    }

    /// Reads [`Self::database_stats`] until two reads 600 ms apart agree
    /// (backends report their counters when idle, with a delay), at most
    /// `patience`.
    ///
    /// # Errors
    /// As [`Self::query`].
    pub async fn settled_database_stats(
        &self,
        database: &str,
        patience: Duration,
    ) -> Result<DbStats> {
        let started = Instant::now();
        let mut last = self.database_stats(database)?;
        loop {
            tokio::time::sleep(Duration::from_millis(600)).await;
            let now = self.database_stats(database)?;
            if now == last || started.elapsed() > patience {
                return Ok(now);
            }
            last = now;
        }
    }

    /// The process ids of the server's backends connected to `database`
    /// (the API's pooled connections).
    ///
    /// # Errors
    /// As [`Self::query`].
    pub fn backend_pids(&self, database: &str) -> Result<Vec<u32>> {
        Ok(self
            .query(
                "postgres",
                &format!("SELECT pid FROM pg_stat_activity WHERE datname = '{database}'"),
            )?
            .into_iter()
            .filter_map(|row| row.first().and_then(|pid| pid.parse().ok()))
            .collect())
    }

    /// Statements executed in `database` so far according to
    /// `pg_stat_statements`, or `None` when the extension is not loaded
    /// (`shared_preload_libraries`).
    #[must_use]
    pub fn statements(&self, database: &str) -> Option<u64> {
        self.scalar(
            "postgres",
            &format!(
                "SELECT COALESCE(sum(s.calls), 0) FROM pg_stat_statements s \
                 JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '{database}'"
            ),
        )
        .ok()
        .and_then(|v| v.parse().ok())
    }

    /// Creates the `pg_stat_statements` view in the `postgres` database;
    /// whether it is usable (the library must be preloaded).
    #[must_use]
    pub fn enable_statements(&self) -> bool {
        self.query(
            "postgres",
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
        )
        .is_ok()
            && self.statements("postgres").is_some()
    }
}

/// Cumulative counters of one database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DbStats {
    /// Committed transactions (each statement outside a transaction counts).
    pub commits: u64,
    /// Rolled-back transactions.
    pub rollbacks: u64,
    /// Rows read by sequential scans and index scans.
    pub tuples_returned: u64,
    /// Rows fetched by index scans.
    pub tuples_fetched: u64,
    /// Rows inserted.
    pub tuples_inserted: u64,
    /// Rows updated.
    pub tuples_updated: u64,
    /// Rows deleted.
    pub tuples_deleted: u64,
}

impl DbStats {
    /// `self - earlier`, counter by counter.
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            commits: self.commits.saturating_sub(earlier.commits),
            rollbacks: self.rollbacks.saturating_sub(earlier.rollbacks),
            tuples_returned: self.tuples_returned.saturating_sub(earlier.tuples_returned),
            tuples_fetched: self.tuples_fetched.saturating_sub(earlier.tuples_fetched),
            tuples_inserted: self.tuples_inserted.saturating_sub(earlier.tuples_inserted),
            tuples_updated: self.tuples_updated.saturating_sub(earlier.tuples_updated),
            tuples_deleted: self.tuples_deleted.saturating_sub(earlier.tuples_deleted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_postgres_urls_without_passwords() {
        let server = PgServer::from_url("postgres://postgres@127.0.0.1:5432/postgres");
        assert!(
            server
                .as_ref()
                .is_ok_and(|s| s.port == 5432 && s.user == "postgres")
        );
        let server = PgServer::from_url("postgres://me@localhost");
        assert!(
            server
                .as_ref()
                .is_ok_and(|s| s.port == 5432 && s.host == "localhost")
        );
        assert!(PgServer::from_url("postgres://me:secret@h:1/db").is_err());
        assert!(PgServer::from_url("mysql://x@h").is_err());
        let url = PgServer::from_url("postgres://postgres@127.0.0.1:5432").map(|s| s.url("db"));
        assert_eq!(
            url.ok().as_deref(),
            Some("postgres://postgres@127.0.0.1:5432/db")
        );
    }
}
