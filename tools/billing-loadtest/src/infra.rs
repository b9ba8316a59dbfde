//! The servers behind the API: a database on the shared PostgreSQL
//! (created and dropped per run), a private PostgreSQL cluster and a
//! private Redis for the fault scenarios (which stop and restart them, so
//! they must never be the machine's shared ones), and the counters read
//! from them (`pg_stat_database`, `pg_stat_statements`, Redis
//! `INFO commandstats`).
//!
//! SQL goes through `psql` and Redis commands through `redis-cli`: both
//! come with the servers, and this keeps the tool free of database drivers.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::{self, Child};

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

/// The PostgreSQL binaries (`initdb`, `pg_ctl`): the newest
/// `/usr/lib/postgresql/<version>/bin`, or the directory of `initdb` on the
/// `PATH`.
///
/// # Errors
/// When none is found.
pub fn postgres_bin_dir() -> Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").is_file())
        .context("initdb not found: install the PostgreSQL server package (postgresql)")
}

/// A private PostgreSQL cluster in a temporary directory, on its own port,
/// owned by this tool: stopped (immediate) and removed when dropped.
///
/// PostgreSQL refuses to run as root, so as root its commands run as user
/// `postgres` (`runuser`) and the directory is given to that user.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    options: String,
    as_postgres: bool,
    server: PgServer,
    running: bool,
}

impl PrivatePostgres {
    /// `initdb` in `<dir>/pgdata` and start on a free port, with
    /// `max_connections` and extra `-c` settings (`settings`, e.g.
    /// `shared_preload_libraries=pg_stat_statements`).
    ///
    /// # Errors
    /// When a step fails (with its output).
    pub fn start(dir: &Path, max_connections: u32, settings: &[&str]) -> Result<Self> {
        let bin = postgres_bin_dir()?;
        let as_postgres = process::is_root();
        let data = dir.join("pgdata");
        let log = dir.join("postgres.log");
        fs::create_dir_all(&data)?;
        fs::write(&log, "")?;
        run(Command::new("chmod").arg("700").arg(&data))?;
        if as_postgres {
            // The parent must be reachable, the data and log owned, by
            // `postgres`.
            run(Command::new("chmod").arg("755").arg(dir))?;
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(&log)
                .arg(&data))?;
        }
        let port = process::free_port()?;
        let mut this = Self {
            bin,
            data,
            log,
            options: String::new(),
            as_postgres,
            server: PgServer {
                host: "127.0.0.1".to_owned(),
                port,
                user: "postgres".to_owned(),
            },
            running: false,
        };
        let mut options = format!(
            "-p {port} -k /tmp -c listen_addresses=127.0.0.1 -c max_connections={max_connections}"
        );
        for setting in settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        this.options = options;
        let initdb = this.bin.join("initdb");
        let data = this.data.to_string_lossy().into_owned();
        run(&mut this.command(
            &initdb,
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        ))?;
        this.pg_ctl_start()?;
        Ok(this)
    }

    fn command(&self, program: &Path, args: &[&str]) -> Command {
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command
                .args(["-u", "postgres", "--"])
                .arg(program)
                .args(args);
            command
        } else {
            let mut command = Command::new(program);
            command.args(args);
            command
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<()> {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.data.to_string_lossy().into_owned();
        let log = self.log.to_string_lossy().into_owned();
        let mut full = vec!["-D", &data, "-l", &log];
        full.extend_from_slice(args);
        run(&mut self.command(&pg_ctl, &full))
    }

    fn pg_ctl_start(&mut self) -> Result<()> {
        let options = self.options.clone();
        self.pg_ctl(&["-w", "-t", "30", "-o", &options, "start"])?;
        self.running = true;
        Ok(())
    }

    /// Where it listens.
    #[must_use]
    pub fn server(&self) -> &PgServer {
        &self.server
    }

    /// `pg_ctl stop -m fast`: active transactions roll back, clients are
    /// disconnected.
    ///
    /// # Errors
    /// When pg_ctl fails.
    pub fn stop(&mut self) -> Result<()> {
        self.pg_ctl(&["-w", "-t", "30", "-m", "fast", "stop"])?;
        self.running = false;
        Ok(())
    }

    /// `pg_ctl start` again (same port and settings), waiting until it
    /// accepts connections.
    ///
    /// # Errors
    /// When pg_ctl fails.
    pub fn start_again(&mut self) -> Result<()> {
        self.pg_ctl_start()
    }

    /// The server's log.
    #[must_use]
    pub fn log(&self) -> &Path {
        &self.log
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self.pg_ctl(&["-w", "-t", "30", "-m", "immediate", "stop"]);
        }
    }
}

/// A private `redis-server` on its own port without persistence
/// (`--save "" --appendonly no`), a child of this tool.
#[derive(Debug)]
pub struct PrivateRedis {
    port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts it on a free port, waiting for `PING`.
    ///
    /// # Errors
    /// When it does not start.
    pub async fn start(dir: &Path) -> Result<Self> {
        let mut this = Self {
            port: process::free_port()?,
            log: dir.join("redis.log"),
            child: None,
        };
        this.start_again().await?;
        Ok(this)
    }

    /// `redis://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::pid)
    }

    /// Kills it (SIGKILL): Redis is gone at once, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill_now();
        }
    }

    /// Starts it (again) on the same port, empty, waiting for `PING`.
    ///
    /// # Errors
    /// When it does not answer within 10 s.
    pub async fn start_again(&mut self) -> Result<()> {
        let mut command = Command::new("redis-server");
        command.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]);
        self.child = Some(Child::spawn("redis-server", &mut command, Some(&self.log))?);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if redis_cli(self.port, &["PING"]).is_ok_and(|out| out.trim() == "PONG") {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("redis-server on port {} did not answer PING", self.port)
    }
}

/// Runs `redis-cli -p <port> <args>`; its output.
///
/// # Errors
/// When it fails.
pub fn redis_cli(port: u16, args: &[&str]) -> Result<String> {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running redis-cli (install redis-tools)")?;
    if !output.status.success() {
        bail!(
            "redis-cli: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The port of a `redis://host:port[/db]` URL.
///
/// # Errors
/// When it has none that parses.
pub fn redis_port(url: &str) -> Result<u16> {
    let rest = url
        .strip_prefix("redis://")
        .with_context(|| format!("{url}: expected redis://host:port"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match hostport.rsplit_once(':') {
        Some((_, port)) => port.parse().context("redis port"),
        None => Ok(6379),
    }
}

/// Redis `INFO commandstats`: calls per command.
///
/// # Errors
/// When redis-cli fails.
pub fn redis_command_calls(port: u16) -> Result<BTreeMap<String, u64>> {
    Ok(parse_commandstats(&redis_cli(
        port,
        &["INFO", "commandstats"],
    )?))
}

/// Parses `cmdstat_<name>:calls=<n>,…` lines.
#[must_use]
pub fn parse_commandstats(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("cmdstat_")?;
            let (name, fields) = rest.split_once(':')?;
            let calls = fields
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// Calls per command in `after` minus `before`, without the commands this
/// tool sends itself (`info`, `ping`) and without zero entries.
#[must_use]
pub fn command_calls_since(
    after: &BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter(|(name, _)| name.as_str() != "info")
        .filter_map(|(name, calls)| {
            let delta = calls.saturating_sub(before.get(name).copied().unwrap_or(0));
            (delta > 0).then(|| (name.clone(), delta))
        })
        .collect()
}

fn run(command: &mut Command) -> Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{:?} {:?} failed: {}{}",
            command.get_program(),
            command.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
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

    #[test]
    fn parses_redis_urls_and_commandstats() {
        assert_eq!(redis_port("redis://127.0.0.1:6380").ok(), Some(6380));
        assert_eq!(redis_port("redis://:pw@h:7000/2").ok(), Some(7000));
        assert_eq!(redis_port("redis://h").ok(), Some(6379));
        let info = "# Commandstats\r\ncmdstat_evalsha:calls=12,usec=30,usec_per_call=2.5,rejected_calls=0,failed_calls=0\r\ncmdstat_info:calls=3,usec=1\r\n";
        let calls = parse_commandstats(info);
        assert_eq!(calls.get("evalsha"), Some(&12));
        let before = BTreeMap::from([("evalsha".to_owned(), 2)]);
        let delta = command_calls_since(&calls, &before);
        assert_eq!(delta, BTreeMap::from([("evalsha".to_owned(), 10)]));
    }
}
