//! Child processes: spawning with a log file, stopping (SIGTERM, then
//! SIGKILL) when dropped, free loopback ports, and the resident memory of a
//! process read from `/proc/<pid>/status`.
//!
//! Everything this crate starts is owned by a [`Child`]; dropping it stops
//! the process, so an error or Ctrl-C (which unwinds the scenario's future)
//! leaves nothing running.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A free TCP port on 127.0.0.1 (bound once and released: another process
/// could take it in between, which the caller notices when its child fails
/// to start).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Whether this process runs as root (uid 0), read from `/proc/self/status`.
#[must_use]
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// A value in KiB from a `/proc/<pid>/status` line such as
/// `VmHWM:     51234 kB`.
#[must_use]
pub fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The peak resident set size (`VmHWM`) of `pid` in KiB, while it runs.
#[must_use]
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_kib(&status, "VmHWM")
}

/// The current resident set size (`VmRSS`) of `pid` in KiB.
#[must_use]
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_kib(&status, "VmRSS")
}

/// Resets the peak resident set size of `pid` to its current size (writes
/// `5` to `/proc/<pid>/clear_refs`), so that the next [`peak_rss_kib`]
/// reads the peak of what happened since. Returns whether it worked.
#[must_use]
pub fn reset_peak_rss(pid: u32) -> bool {
    fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// CPU time (user + system) `pid` has used so far, in clock ticks, from
/// `/proc/<pid>/stat`.
#[must_use]
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu(&stat)
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line; the
/// command name in parentheses may contain spaces.
#[must_use]
pub fn parse_stat_cpu(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) is index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The processes whose command name (`/proc/<pid>/comm`) is `name`.
#[must_use]
pub fn pids_named(name: &str) -> Vec<u32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == name)
        })
        .collect()
}

/// CPU ticks used so far by all processes named `name` (those that exit
/// in between are not counted).
#[must_use]
pub fn cpu_ticks_named(name: &str) -> u64 {
    pids_named(name).into_iter().filter_map(cpu_ticks).sum()
}

/// (busy, total) clock ticks of the whole machine from `/proc/stat`.
#[must_use]
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let values: Vec<u64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    // idle + iowait
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when unknown).
#[must_use]
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// Sends `signal` (a name such as `TERM`, `KILL`, `STOP`) to `pid` with the
/// `kill` command (this crate links no libc).
///
/// # Errors
/// When `kill` cannot be run or fails.
pub fn send_signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -{signal} {pid} failed");
    }
    Ok(())
}

/// A running child process, stopped when dropped: SIGTERM, up to
/// [`Child::GRACE`] to exit, then SIGKILL.
#[derive(Debug)]
pub struct Child {
    name: String,
    child: Option<std::process::Child>,
    log: Option<PathBuf>,
}

impl Child {
    /// How long a dropped child gets to exit after SIGTERM.
    pub const GRACE: Duration = Duration::from_secs(5);

    /// Spawns `command` with its stdout and stderr appended to `log` (or
    /// discarded when `None`) and stdin closed.
    ///
    /// # Errors
    /// When the log cannot be opened or the program cannot be started.
    pub fn spawn(name: &str, command: &mut Command, log: Option<&Path>) -> Result<Self> {
        command.stdin(Stdio::null());
        match log {
            Some(path) => {
                let file = File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                command.stdout(file.try_clone()?).stderr(file);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", command.get_program()))?;
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            log: log.map(Path::to_path_buf),
        })
    }

    /// The process id (0 once it has been reaped).
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, std::process::Child::id)
    }

    /// The name given at spawn.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log file, if any.
    #[must_use]
    pub fn log(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The last `lines` lines of the log, for error messages.
    #[must_use]
    pub fn log_tail(&self, lines: usize) -> String {
        let Some(path) = &self.log else {
            return String::new();
        };
        let text = fs::read_to_string(path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `Some(description)` when the process has exited, `None` while it
    /// runs.
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(error) => Some(format!("cannot query: {error}")),
        }
    }

    /// Kills the process with SIGKILL at once and reaps it.
    pub fn kill_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already exited: kill fails, wait reaps it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; reaps the process.
    pub fn terminate(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        if send_signal(child.id(), "TERM").is_ok() {
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.terminate(Self::GRACE);
    }
}

/// A directory removed (with its contents) when dropped, unless kept.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    /// Creates `<base>/<prefix>-<pid>-<random>`.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(base: &Path, prefix: &str) -> Result<Self> {
        let random: u32 = rand::random();
        let path = base.join(format!("{prefix}-{}-{random:08x}", std::process::id()));
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path, keep: false })
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory (logs) after the run.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// The process owning the loopback TCP socket bound to `port`: its inode
/// from `/proc/net/tcp{,6}`, then the process whose `fd` links to it.
#[must_use]
pub fn pid_of_local_port(port: u16) -> Option<u32> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            text.lines().skip(1).find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let local = fields.get(1)?;
                let (_, hex) = local.rsplit_once(':')?;
                (u16::from_str_radix(hex, 16).ok()? == port)
                    .then(|| fields.get(9).map(|s| (*s).to_owned()))?
            })
        })?;
    let target = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path())
                .is_ok_and(|link| link.to_str() == Some(target.as_str()))
            {
                return Some(pid);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields_of_proc_status() {
        let status =
            "Name:\tbilling-api\nVmPeak:\t  300000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(status_field_kib(status, "VmHWM"), Some(51_234));
        assert_eq!(status_field_kib(status, "VmRSS"), Some(40_000));
        assert_eq!(status_field_kib(status, "VmSwap"), None);
    }

    #[test]
    fn reads_cpu_ticks_of_proc_stat() {
        let stat = "1234 (tokio runtime) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 12 0";
        assert_eq!(parse_stat_cpu(stat), Some(300));
        assert!(cpu_ticks(std::process::id()).is_some());
        assert!(machine_ticks().is_some_and(|(busy, total)| busy <= total));
    }

    #[test]
    fn reads_its_own_memory() {
        assert!(peak_rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }

    #[test]
    fn free_ports_are_nonzero() {
        assert!(free_port().is_ok_and(|port| port > 0));
    }
}
