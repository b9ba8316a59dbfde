//! A private PostgreSQL cluster (`initdb`, `pg_ctl`) for the fault
//! scenarios and the private benchmark target, owned by this tool.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::PgServer;
use crate::process;

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

/// Runs `command`, failing with its output unless it succeeds.
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
