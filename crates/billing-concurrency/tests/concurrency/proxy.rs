//! Loopback TCP helpers for failure tests: a proxy to Redis whose
//! connections can be cut, and a server that accepts and never answers.

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards 127.0.0.1:<random port> to a Redis server.
pub struct Proxy {
    address: SocketAddr,
    cut: watch::Sender<u64>,
    acceptor: JoinHandle<()>,
}

impl Proxy {
    /// Starts forwarding to the host and port of `redis_url`.
    pub async fn start(redis_url: &str) -> anyhow::Result<Self> {
        let target = host_port(redis_url)?;
        let target = tokio::net::lookup_host(&target)
            .await?
            .next()
            .with_context(|| format!("cannot resolve {target}"))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (cut, _) = watch::channel(0);
        let cuts = cut.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Ok(Self {
            address,
            cut,
            acceptor,
        })
    }

    /// The URL to give the client instead of Redis's.
    pub fn url(&self) -> String {
        format!("redis://{}", self.address)
    }

    /// Closes every connection open through the proxy, as a Redis restart
    /// or a network blip would; new connections still go through.
    pub fn cut_connections(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.cut_connections();
    }
}

/// A server that accepts connections and never sends a byte.
pub struct SilentServer {
    address: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl SilentServer {
    /// Starts listening on 127.0.0.1:<random port>.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let acceptor = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Ok(Self { address, acceptor })
    }

    /// Its `redis://` URL.
    pub fn url(&self) -> String {
        format!("redis://{}", self.address)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

/// `host:port` of a `redis://[user:pass@]host[:port][/db]` URL.
fn host_port(url: &str) -> anyhow::Result<String> {
    let rest = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .with_context(|| format!("not a URL: {url}"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Ok(if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:6379")
    })
}
