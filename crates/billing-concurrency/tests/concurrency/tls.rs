//! Redis over TLS (`rediss://`), as managed Redis services offer it: a
//! `redis-server` listening on a TLS port only, with a certificate authority
//! and a server certificate made for the test by the `openssl` command
//! ([`TlsRedis`]).
//!
//! Locks, fencing tokens and idempotency claims work over it when the CA is
//! trusted; a server signed by another CA is refused at once, naming the TLS
//! error; an unusable CA file is refused when the client is
//! built. Run when `TEST_REDIS_URL` is set (the Redis tests are on); they
//! then need `redis-server` and `openssl` on the `PATH`, and fail without.

use std::error::Error as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use billing_concurrency::{
    Coordination, CoordinationError, IdempotencyOutcome, RedisSettings, StoredOutcome, fingerprint,
};
use billing_test_support::TlsRedis;

const LONG: Duration = Duration::from_secs(30);

/// Settings for `server`, trusting `ca_file`, under a namespace of the
/// test's own.
fn settings(server: &TlsRedis, ca_file: Option<PathBuf>) -> RedisSettings {
    RedisSettings {
        ca_file,
        connect_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(2),
        ..RedisSettings::new(server.url()).with_key_prefix(format!(
            "billing-test-{}",
            billing_test_support::unique_suffix()
        ))
    }
}

/// Whether the Redis tests are on; prints a note when not.
fn enabled() -> bool {
    let on = billing_test_support::redis_url().is_some();
    if !on {
        eprintln!("TEST_REDIS_URL is not set: Redis TLS test not run");
    }
    on
}

/// With the CA trusted, every operation works over TLS: locks exclude,
/// fencing tokens increase, an idempotency key is claimed once, completed
/// and replayed byte for byte. The server has no plain-text port, so
/// nothing here can pass without TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_fencing_and_idempotency_over_tls() -> anyhow::Result<()> {
    if !enabled() {
        return Ok(());
    }
    let server = TlsRedis::start()?;
    // Two instances sharing the server and a namespace.
    let settings = settings(&server, Some(server.ca_file()));
    let coordination = Coordination::redis(settings.clone()).await?;
    coordination.ping().await.context("ping over TLS")?;
    let other = Coordination::redis(settings).await?;

    let first = coordination.lock("invoice:1", LONG).await?;
    let busy = other.try_lock("invoice:1", LONG, Duration::ZERO).await;
    assert!(
        matches!(busy, Err(CoordinationError::LockNotAcquired { .. })),
        "{busy:?}"
    );
    let first_fence = first.fencing_token();
    assert!(first.release().await?);
    let second = other.try_lock("invoice:1", LONG, Duration::ZERO).await?;
    assert!(second.fencing_token() > first_fence);
    assert!(second.extend(LONG).await?);
    assert!(second.release().await?);

    let idempotency = coordination.idempotency();
    let print = fingerprint("user:1", "POST", "/pay", b"{}");
    let IdempotencyOutcome::Started(ticket) = idempotency.begin("user:1", "k1", &print).await?
    else {
        bail!("the first claim must start");
    };
    let again = other.idempotency().begin("user:1", "k1", &print).await?;
    assert!(matches!(again, IdempotencyOutcome::InFlight), "{again:?}");
    let outcome = StoredOutcome(b"{\"paid\":true}\xff".to_vec());
    assert!(idempotency.complete(&ticket, &outcome).await?);
    match other.idempotency().begin("user:1", "k1", &print).await? {
        IdempotencyOutcome::Replay(stored) => assert_eq!(stored, outcome),
        outcome @ (IdempotencyOutcome::Started(_)
        | IdempotencyOutcome::InFlight
        | IdempotencyOutcome::Mismatch) => {
            bail!("expected the stored outcome, got {outcome:?}")
        }
    }
    Ok(())
}

/// A server whose certificate another CA signed is refused at once (one
/// attempt, well within the budget), as `Unavailable` whose cause names the TLS
/// error; so is one checked against the system's roots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_is_refused_clearly() -> anyhow::Result<()> {
    if !enabled() {
        return Ok(());
    }
    let server = TlsRedis::start()?;
    for ca_file in [Some(server.other_ca_file()), None] {
        let settings = settings(&server, ca_file.clone());
        let budget = settings.connect_timeout + settings.command_timeout;
        let coordination = Coordination::redis(settings).await?;
        let started = Instant::now();
        let result = coordination.ping().await;
        let elapsed = started.elapsed();
        let Err(error @ CoordinationError::Unavailable { attempts, .. }) = &result else {
            bail!("{ca_file:?}: expected Unavailable, got {result:?}");
        };
        let mut chain = error.to_string();
        let mut cause = error.source();
        while let Some(current) = cause {
            chain.push_str(": ");
            chain.push_str(&current.to_string());
            cause = current.source();
        }
        eprintln!("{ca_file:?}: {chain}");
        assert_eq!(*attempts, 1, "a TLS refusal is not retried");
        assert!(elapsed < budget, "took {elapsed:?}");
        assert!(chain.contains("TLS handshake with Redis failed"), "{chain}");
        assert!(chain.contains("certificate"), "{chain}");
        assert!(chain.contains("UnknownIssuer"), "{chain}");
    }
    Ok(())
}

/// A CA file that is missing, holds no certificate, or is given for a
/// plain `redis://` URL is refused when the client is built.
#[tokio::test]
async fn unusable_ca_file_is_refused() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!(
        "billing-tls-settings-{}",
        billing_test_support::unique_suffix()
    ));
    std::fs::create_dir_all(&dir)?;
    let not_pem = dir.join("not-a-certificate.pem");
    std::fs::write(&not_pem, "hello\n")?;
    let cases = [
        (
            RedisSettings {
                ca_file: Some(dir.join("missing.pem")),
                ..RedisSettings::new("rediss://127.0.0.1:6380")
            },
            "cannot be read",
        ),
        (
            RedisSettings {
                ca_file: Some(not_pem.clone()),
                ..RedisSettings::new("rediss://127.0.0.1:6380")
            },
            "holds no PEM certificate",
        ),
        (
            RedisSettings {
                ca_file: Some(not_pem),
                ..RedisSettings::new("redis://127.0.0.1:6379")
            },
            "is not rediss://",
        ),
    ];
    for (settings, expected) in cases {
        let result = Coordination::redis(settings.clone()).await;
        match result {
            Err(error @ CoordinationError::InvalidSettings { .. }) => {
                assert!(error.to_string().contains(expected), "{error}");
            }
            other => bail!("{settings:?}: expected InvalidSettings, got {other:?}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
