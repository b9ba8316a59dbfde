//! A loopback webhook receiver for the fault scenarios: an actix-web
//! server on `127.0.0.1:0` (in its own thread and actix system) that
//! checks each request's `Billing-Signature` with
//! [`billing_webhooks::verify`], records the event it carries (id, type,
//! resource, version), and answers 200 after a short random pause so that
//! requests are in flight when an instance is killed. Until the endpoint's
//! secret is known it answers 503 (the sender retries).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::{Context, Result};
use serde_json::Value;

/// One request that carried a valid signature.
#[derive(Clone, Debug)]
pub struct Receipt {
    /// The event's id.
    pub event_id: i64,
    /// `invoice`, `subscription`, `user`.
    pub resource_kind: String,
    /// The resource's id.
    pub resource_id: i64,
    /// The resource's version after the change.
    pub version: i64,
    /// When it arrived, from the receiver's start.
    pub at: Duration,
}

#[derive(Debug, Default)]
struct State {
    secret: Option<String>,
    receipts: Vec<Receipt>,
    refused: u64,
    unauthenticated: u64,
    /// Requests being answered: sequence number → the sender's port.
    in_flight: BTreeMap<u64, u16>,
    next: u64,
}

/// What the receiver has seen; shared with its handler.
#[derive(Debug)]
pub struct Inbox {
    origin: Instant,
    pause: (u64, u64),
    state: Mutex<State>,
}

impl Inbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the endpoint's secret: requests are checked from now on.
    pub fn set_secret(&self, secret: &str) {
        self.lock().secret = Some(secret.to_owned());
    }

    /// Every valid request so far, in arrival order.
    #[must_use]
    pub fn receipts(&self) -> Vec<Receipt> {
        self.lock().receipts.clone()
    }

    /// Requests refused for a bad or missing signature.
    #[must_use]
    pub fn refused(&self) -> u64 {
        self.lock().refused
    }

    /// Requests answered 503 because the secret was not known yet.
    #[must_use]
    pub fn before_secret(&self) -> u64 {
        self.lock().unauthenticated
    }

    /// The senders' ports of the requests being answered now.
    #[must_use]
    pub fn in_flight_ports(&self) -> Vec<u16> {
        self.lock().in_flight.values().copied().collect()
    }

    /// Time since the receiver started.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    inbox: Arc<Inbox>,
    addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// Starts the receiver on a free loopback port; each answer waits a
    /// random `pause_ms.0..=pause_ms.1` milliseconds.
    ///
    /// # Errors
    /// When it cannot bind.
    pub fn start(pause_ms: (u64, u64)) -> Result<Self> {
        let inbox = Arc::new(Inbox {
            origin: Instant::now(),
            pause: pause_ms,
            state: Mutex::new(State::default()),
        });
        let (sender, started) = std::sync::mpsc::channel();
        let shared = Arc::clone(&inbox);
        std::thread::Builder::new()
            .name("webhook-receiver".to_owned())
            .spawn(move || {
                let system = actix_web::rt::System::new();
                system.block_on(async move {
                    let data = web::Data::from(shared);
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .app_data(web::PayloadConfig::new(1 << 20))
                            .default_service(web::post().to(receive))
                    })
                    .workers(2)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .bind(("127.0.0.1", 0));
                    let server = match server {
                        Ok(server) => server,
                        Err(error) => {
                            let _ = sender.send(Err(error));
                            return;
                        }
                    };
                    let addr = server.addrs()[0];
                    let running = server.run();
                    let _ = sender.send(Ok((addr, running.handle())));
                    let _ = running.await;
                });
            })?;
        let (addr, handle) = started
            .recv()
            .context("the receiver thread ended before binding")?
            .context("binding the receiver")?;
        Ok(Self {
            inbox,
            addr,
            handle,
        })
    }

    /// `http://127.0.0.1:<port>/billing-events`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/billing-events", self.addr)
    }

    /// What it has seen.
    #[must_use]
    pub fn inbox(&self) -> &Arc<Inbox> {
        &self.inbox
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Stops the server; its thread ends with it.
        drop(self.handle.stop(false));
    }
}

async fn receive(request: HttpRequest, body: web::Bytes, inbox: web::Data<Inbox>) -> HttpResponse {
    let header = request
        .headers()
        .get(billing_webhooks::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let seq = {
        let mut state = inbox.lock();
        let Some(secret) = state.secret.clone() else {
            state.unauthenticated += 1;
            return HttpResponse::ServiceUnavailable().finish();
        };
        let valid = billing_webhooks::verify(
            &secret,
            &header,
            &body,
            now,
            billing_webhooks::DEFAULT_TOLERANCE,
        )
        .is_ok();
        let receipt = valid
            .then(|| receipt_of(&body, inbox.origin.elapsed()))
            .flatten();
        let Some(receipt) = receipt else {
            state.refused += 1;
            return HttpResponse::BadRequest().finish();
        };
        state.receipts.push(receipt);
        state.next += 1;
        let seq = state.next;
        let port = request.peer_addr().map_or(0, |a| a.port());
        state.in_flight.insert(seq, port);
        seq
    };
    let (low, high) = inbox.pause;
    let pause = if high > low {
        rand::random_range(low..=high)
    } else {
        low
    };
    tokio::time::sleep(Duration::from_millis(pause)).await;
    inbox.lock().in_flight.remove(&seq);
    HttpResponse::Ok().finish()
}

fn receipt_of(body: &[u8], at: Duration) -> Option<Receipt> {
    let event: Value = serde_json::from_slice(body).ok()?;
    let resource = event.get("resource")?;
    Some(Receipt {
        event_id: event.get("id")?.as_i64()?,
        resource_kind: resource.get("kind")?.as_str()?.to_owned(),
        resource_id: resource.get("id")?.as_i64()?,
        version: resource.get("version")?.as_i64()?,
        at,
    })
}
