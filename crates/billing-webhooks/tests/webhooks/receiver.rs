//! A webhook receiver on loopback: a bare HTTP/1.1 server that checks every
//! request's signature, records what it got, and answers as its script
//! says (200, 500, or too late).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use billing_webhooks::{DEFAULT_TOLERANCE, verify};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the receiver answers request number `n` (from 0).
pub type Script = Arc<dyn Fn(usize) -> Answer + Send + Sync>;

/// One answer.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    /// 200 at once.
    Ok,
    /// 500 at once.
    Fail,
    /// 200 after this long (past the sender's time-out).
    Late(Duration),
}

/// A received request.
#[derive(Clone, Debug)]
pub struct Received {
    pub body: serde_json::Value,
    pub signature_ok: bool,
    pub answer: Answer,
}

/// The running receiver.
pub struct Receiver {
    pub url: String,
    pub secret: Arc<Mutex<String>>,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(script: Script) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let secret = Arc::new(Mutex::new(String::new()));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (Arc::clone(&secret), Arc::clone(&received));
        tokio::spawn(async move {
            let count = Arc::new(Mutex::new(0_usize));
            while let Ok((stream, _)) = listener.accept().await {
                let (s, r, script, count) = (
                    Arc::clone(&s),
                    Arc::clone(&r),
                    Arc::clone(&script),
                    Arc::clone(&count),
                );
                tokio::spawn(async move {
                    let _ = serve(stream, s, r, script, count).await;
                });
            }
        });
        Ok(Self {
            url,
            secret,
            received,
        })
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("not poisoned").clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    secret: Arc<Mutex<String>>,
    received: Arc<Mutex<Vec<Received>>>,
    script: Script,
    count: Arc<Mutex<usize>>,
) -> anyhow::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let header = |name: &str| {
        head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let length: usize = header("content-length").unwrap_or_default().parse()?;
    while buffer.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = &buffer[header_end..header_end + length];
    let signature = header("billing-signature").unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    let secret = secret.lock().expect("not poisoned").clone();
    let signature_ok = verify(&secret, &signature, body, now, DEFAULT_TOLERANCE).is_ok();
    let n = {
        let mut count = count.lock().expect("not poisoned");
        *count += 1;
        *count - 1
    };
    let answer = if signature_ok {
        script(n)
    } else {
        Answer::Fail
    };
    received.lock().expect("not poisoned").push(Received {
        body: serde_json::from_slice(body)?,
        signature_ok,
        answer,
    });
    let status = match answer {
        Answer::Ok => "200 OK",
        Answer::Fail => "500 Internal Server Error",
        Answer::Late(delay) => {
            tokio::time::sleep(delay).await;
            "200 OK"
        }
    };
    let response = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(())
}
