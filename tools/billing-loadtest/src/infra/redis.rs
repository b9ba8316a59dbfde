//! A private `redis-server` for the fault scenarios and the private
//! benchmark target, and `redis-cli`: commands, the port of a URL, and the
//! `INFO commandstats` counters.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::{self, Child};

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

#[cfg(test)]
mod tests {
    use super::*;

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
