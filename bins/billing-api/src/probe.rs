//! `billing-api probe`: one `GET` to a running instance (by default
//! `/health/ready`), for container health checks. The runtime image has no
//! `curl`; the binary asks itself.
//!
//! The request is plain HTTP/1.1 over loopback with `Connection: close`; the
//! answer's status line decides, the body is not read beyond it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why the probe did not get a 200.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Nothing answered at the address, or the connection broke.
    #[error("no answer from http://{address}{path}")]
    Connection {
        /// The address asked.
        address: SocketAddr,
        /// The path asked.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// No complete answer within the timeout.
    #[error("no answer from http://{address}{path} within {timeout:?}")]
    Timeout {
        /// The address asked.
        address: SocketAddr,
        /// The path asked.
        path: String,
        /// The limit.
        timeout: Duration,
    },
    /// The answer was not HTTP.
    #[error("http://{address}{path} did not answer HTTP")]
    NotHttp {
        /// The address asked.
        address: SocketAddr,
        /// The path asked.
        path: String,
    },
    /// The instance answered, but not 200.
    #[error("http://{address}{path} answered {status}")]
    Status {
        /// The address asked.
        address: SocketAddr,
        /// The path asked.
        path: String,
        /// The status code.
        status: u16,
    },
}

/// The address to ask for an instance bound to `bind`: the same port, on
/// loopback when `bind` is every interface (`0.0.0.0`, `::`).
#[must_use]
pub fn target(bind: SocketAddr) -> SocketAddr {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip @ (IpAddr::V4(_) | IpAddr::V6(_)) => ip,
    };
    SocketAddr::new(ip, bind.port())
}

/// Sends `GET path` to `address` and waits at most `timeout` for the status
/// line.
///
/// # Errors
/// A [`ProbeError`] unless the answer is `200`.
pub async fn probe(address: SocketAddr, path: &str, timeout: Duration) -> Result<(), ProbeError> {
    let status = tokio::time::timeout(timeout, status_of(address, path))
        .await
        .map_err(|_elapsed| ProbeError::Timeout {
            address,
            path: path.to_owned(),
            timeout,
        })?
        .map_err(|source| ProbeError::Connection {
            address,
            path: path.to_owned(),
            source,
        })?;
    match status {
        Some(200) => Ok(()),
        Some(status) => Err(ProbeError::Status {
            address,
            path: path.to_owned(),
            status,
        }),
        None => Err(ProbeError::NotHttp {
            address,
            path: path.to_owned(),
        }),
    }
}

/// The status code of the answer to `GET path`, `None` if the answer does
/// not start with an HTTP status line.
async fn status_of(address: SocketAddr, path: &str) -> std::io::Result<Option<u16>> {
    let mut stream = TcpStream::connect(address).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nUser-Agent: billing-api-probe\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::with_capacity(256);
    let mut buffer = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    Ok(match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => code.parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_is_asked_on_loopback() {
        assert_eq!(
            target("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            target("[::]:8080".parse().unwrap()),
            "[::1]:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            target("10.1.2.3:9000".parse().unwrap()),
            "10.1.2.3:9000".parse::<SocketAddr>().unwrap()
        );
    }
}
