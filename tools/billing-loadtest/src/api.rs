//! A `billing-api` child process: its settings (passed as environment
//! variables, the ones inherited from the caller removed first), its
//! readiness, its memory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::process::{self, Child};

/// How to start one `billing-api` instance.
#[derive(Clone, Debug)]
pub struct ApiSpec {
    /// The release binary (`target/release/billing-api`).
    pub bin: PathBuf,
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `REDIS_URL`; `None` for the in-process backend.
    pub redis_url: Option<String>,
    /// `BILLING_REDIS_KEY_PREFIX`.
    pub redis_key_prefix: String,
    /// `BILLING_API_TOKEN`.
    pub token: String,
    /// `BILLING_WORKERS`.
    pub workers: usize,
    /// `BILLING_LOG`.
    pub log: String,
    /// Any other `BILLING_*` settings.
    pub extra_env: Vec<(String, String)>,
}

impl ApiSpec {
    /// The variables the child gets.
    #[must_use]
    pub fn env(&self, port: u16) -> Vec<(String, String)> {
        let mut env = vec![
            ("DATABASE_URL".to_owned(), self.database_url.clone()),
            ("BILLING_BIND".to_owned(), format!("127.0.0.1:{port}")),
            ("BILLING_API_TOKEN".to_owned(), self.token.clone()),
            ("BILLING_WORKERS".to_owned(), self.workers.to_string()),
            ("BILLING_LOG".to_owned(), self.log.clone()),
            (
                "BILLING_REDIS_KEY_PREFIX".to_owned(),
                self.redis_key_prefix.clone(),
            ),
        ];
        if let Some(redis) = &self.redis_url {
            env.push(("REDIS_URL".to_owned(), redis.clone()));
        }
        env.extend(self.extra_env.iter().cloned());
        env
    }
}

/// A running `billing-api`.
#[derive(Debug)]
pub struct ApiProcess {
    child: Child,
    port: u16,
    base: String,
    started: Instant,
}

impl ApiProcess {
    /// Starts the binary on 127.0.0.1:`port`, its output appended to `log`.
    ///
    /// # Errors
    /// When the binary cannot be started.
    pub fn spawn(name: &str, spec: &ApiSpec, port: u16, log: &Path) -> Result<Self> {
        if !spec.bin.is_file() {
            bail!(
                "{} does not exist: build it first with `cargo build --release -p billing-api` \
                 (or pass --api-bin)",
                spec.bin.display()
            );
        }
        let mut command = Command::new(&spec.bin);
        for (key, _) in std::env::vars_os() {
            let Some(key) = key.to_str() else { continue };
            if key.starts_with("BILLING_") || key == "DATABASE_URL" || key == "REDIS_URL" {
                command.env_remove(key);
            }
        }
        command.envs(spec.env(port));
        let started = Instant::now();
        let child = Child::spawn(name, &mut command, Some(log))?;
        Ok(Self {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            started,
        })
    }

    /// `http://127.0.0.1:<port>`.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The child process.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Peak resident memory since start or the last reset, in KiB.
    #[must_use]
    pub fn peak_rss_kib(&self) -> Option<u64> {
        process::peak_rss_kib(self.pid())
    }

    /// Polls `GET /health/ready` every 2 ms until it answers 200; returns
    /// the time from spawn to that answer.
    ///
    /// # Errors
    /// When the process exits or `timeout` passes first (with the tail of
    /// its log).
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<Duration> {
        wait_ready_at(&self.base, self.started, timeout, &mut self.child).await
    }

    /// SIGKILL now.
    pub fn kill(&mut self) {
        self.child.kill_now();
    }
}

/// Polls `<base>/health/ready` until 200, failing early when `child`
/// exits; returns the time since `started`.
///
/// # Errors
/// When the child exits or `timeout` passes.
pub async fn wait_ready_at(
    base: &str,
    started: Instant,
    timeout: Duration,
    child: &mut Child,
) -> Result<Duration> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(0)
        .build()?;
    let url = format!("{base}/health/ready");
    loop {
        if let Ok(response) = http.get(&url).send().await
            && response.status().as_u16() == 200
        {
            return Ok(started.elapsed());
        }
        if let Some(status) = child.exited() {
            bail!(
                "{} exited ({status}) before it was ready; its log ends:\n{}",
                child.name(),
                child.log_tail(20)
            );
        }
        if started.elapsed() > timeout {
            bail!(
                "{} was not ready within {timeout:?}; its log ends:\n{}",
                child.name(),
                child.log_tail(20)
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_every_setting() {
        let spec = ApiSpec {
            bin: PathBuf::from("billing-api"),
            database_url: "sqlite://x.db?mode=rwc".to_owned(),
            redis_url: None,
            redis_key_prefix: "p".to_owned(),
            token: "t".to_owned(),
            workers: 2,
            log: "warn".to_owned(),
            extra_env: vec![("BILLING_DB_MAX_CONNECTIONS".to_owned(), "10".to_owned())],
        };
        let env = spec.env(4000);
        let get = |k: &str| {
            env.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("BILLING_BIND"), Some("127.0.0.1:4000"));
        assert_eq!(get("REDIS_URL"), None);
        assert_eq!(get("BILLING_DB_MAX_CONNECTIONS"), Some("10"));
        assert_eq!(get("BILLING_WORKERS"), Some("2"));
    }
}
