//! [`TlsRedis`]: a `redis-server` serving TLS only, with certificates the
//! `openssl` command makes for it, for the tests of `rediss://`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};

use crate::unique_suffix;

/// A `redis-server` listening on a free loopback port over TLS only (no
/// plain-text port), as managed Redis services do. Its directory holds two
/// certificate authorities: [`ca_file`](Self::ca_file), which signed the
/// server's certificate (for `127.0.0.1` and `localhost`), and
/// [`other_ca_file`](Self::other_ca_file), which did not. Stopped and its
/// directory removed on drop.
#[derive(Debug)]
pub struct TlsRedis {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl TlsRedis {
    /// Makes the certificates and starts the server; returns once it
    /// accepts connections.
    ///
    /// # Errors
    /// When `openssl` or `redis-server` is missing or fails, or the server
    /// does not listen within 20 s.
    pub fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("billing-tls-redis-{}", unique_suffix()));
        std::fs::create_dir_all(&dir)?;
        let mut server = Self {
            child: None,
            dir: dir.clone(),
            port: 0,
        };
        make_certificates(&dir)?;
        server.port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = server.child.insert(
            Command::new("redis-server")
                .args(["--port", "0", "--bind", "127.0.0.1", "--tls-port"])
                .arg(server.port.to_string())
                .arg("--tls-cert-file")
                .arg(dir.join("server.pem"))
                .arg("--tls-key-file")
                .arg(dir.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(dir.join("ca.pem"))
                .args([
                    "--tls-auth-clients",
                    "no",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(&dir)
                .arg("--logfile")
                .arg(dir.join("redis.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot start redis-server (is it installed?)")?,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", server.port)).is_err() {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
                bail!("redis-server exited with {status}: {log}");
            }
            ensure!(
                Instant::now() < deadline,
                "redis-server did not listen on its TLS port"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// `rediss://127.0.0.1:<port>`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    /// The PEM file of the CA that signed the server's certificate.
    #[must_use]
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The PEM file of a CA that did not sign it.
    #[must_use]
    pub fn other_ca_file(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `ca.pem` signs `server.pem`; `other-ca.pem` is unrelated.
fn make_certificates(dir: &Path) -> anyhow::Result<()> {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )?;
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    for (name, subject) in [
        ("ca", "/CN=billing test CA"),
        ("other-ca", "/CN=another CA"),
    ] {
        let key = format!("{name}.key");
        let pem = format!("{name}.pem");
        openssl(
            dir,
            &["req", "-x509", "-nodes", "-days", "2"],
            &ec,
            &["-subj", subject, "-keyout", &key, "-out", &pem],
        )?;
    }
    openssl(
        dir,
        &["req", "-nodes"],
        &ec,
        &[
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    )?;
    openssl(
        dir,
        &["x509", "-req", "-days", "2"],
        &[],
        &[
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    )
}

fn openssl(dir: &Path, head: &[&str], key: &[&str], tail: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("openssl")
        .args(head)
        .args(key)
        .args(tail)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .context("cannot run openssl (is it installed?)")?;
    ensure!(
        output.status.success(),
        "openssl {head:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
