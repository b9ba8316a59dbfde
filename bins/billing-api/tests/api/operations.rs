//! Operations: `billing-api probe` (the image's health check), `RUST_LOG`
//! when `BILLING_LOG` is unset, and the business metrics on `/metrics`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use billing_test_support::{TestDatabase, test_on_each_backend, unique_suffix};

use crate::fixtures::{billed, json_with, pay};
use crate::helpers::spawn_app;

const BINARY: &str = env!("CARGO_BIN_EXE_billing-api");

/// `billing-api` with a clean environment plus `vars`.
fn binary(vars: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    for (name, value) in vars {
        command.env(name, value);
    }
    command
}

async fn probe_exits_zero_when_ready_and_one_otherwise(db: TestDatabase) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let bind = format!("127.0.0.1:{}", app.port);
    let ready = tokio::task::spawn_blocking(move || {
        binary(&[("BILLING_BIND", &bind)]).arg("probe").output()
    })
    .await??;
    assert!(
        ready.status.success(),
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );
    // The same address bound to every interface is asked on loopback.
    let any = format!("0.0.0.0:{}", app.port);
    let token = "probe-token-0123456789abcdef";
    let ready_any = tokio::task::spawn_blocking(move || {
        binary(&[("BILLING_BIND", &any), ("BILLING_API_TOKEN", token)])
            .args(["probe", "--path", "/health/live"])
            .output()
    })
    .await??;
    assert!(ready_any.status.success());

    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let down = tokio::task::spawn_blocking(move || {
        binary(&[("BILLING_BIND", &closed.to_string())])
            .args(["probe", "--timeout", "2s"])
            .output()
    })
    .await??;
    assert_eq!(down.status.code(), Some(1));
    let stderr = String::from_utf8(down.stderr)?;
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("Error: no answer from http://"),
        "{stderr}"
    );

    // A route that answers, but not 200.
    let bind = format!("127.0.0.1:{}", app.port);
    let missing = tokio::task::spawn_blocking(move || {
        binary(&[("BILLING_BIND", &bind)])
            .args(["probe", "--path", "/no-such-route"])
            .output()
    })
    .await??;
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8(missing.stderr)?.contains("answered 404"));
    Ok(())
}

/// Reads `child`'s stdout lines until `done` matches one or `limit` passes;
/// returns the lines read.
fn read_until(child: &mut std::process::Child, done: &str, limit: Duration) -> Vec<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + limit;
    let mut read = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) {
            let finished = line.contains(done);
            read.push(line);
            if finished {
                break;
            }
        }
    }
    read
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_log_filters_the_logs_when_billing_log_is_unset() -> anyhow::Result<()> {
    let file = std::env::temp_dir().join(format!("billing-rust-log-{}.db", unique_suffix()));
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let run = |vars: Vec<(&'static str, String)>| {
        let url = url.clone();
        move || -> anyhow::Result<Vec<String>> {
            let mut command = binary(&[
                ("DATABASE_URL", url.as_str()),
                ("BILLING_BIND", "127.0.0.1:0"),
                ("BILLING_LOG_FORMAT", "json"),
            ]);
            for (name, value) in &vars {
                command.env(name, value);
            }
            let mut child = command
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            let lines = read_until(&mut child, "billing-api listening", Duration::from_secs(30));
            child.kill().ok();
            child.wait().ok();
            Ok(lines)
        }
    };
    let debug_lines = |lines: &[String]| {
        lines
            .iter()
            .filter(|line| line.contains(r#""level":"DEBUG""#))
            .count()
    };

    let with_rust_log =
        tokio::task::spawn_blocking(run(vec![("RUST_LOG", "debug".to_owned())])).await??;
    assert!(
        with_rust_log
            .iter()
            .any(|l| l.contains("billing-api listening")),
        "{with_rust_log:#?}"
    );
    assert!(debug_lines(&with_rust_log) > 0, "{with_rust_log:#?}");

    // BILLING_LOG wins over RUST_LOG.
    let both = tokio::task::spawn_blocking(run(vec![
        ("RUST_LOG", "debug".to_owned()),
        ("BILLING_LOG", "info".to_owned()),
    ]))
    .await??;
    assert!(both.iter().any(|l| l.contains("billing-api listening")));
    assert_eq!(debug_lines(&both), 0, "{both:#?}");

    // A RUST_LOG that does not parse is refused in one line naming it.
    let bad =
        tokio::task::spawn_blocking(move || binary(&[("RUST_LOG", "info,=[")]).output()).await??;
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8(bad.stderr)?;
    assert!(
        stderr.starts_with("Error: invalid configuration: RUST_LOG"),
        "{stderr}"
    );
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", file.display())).ok();
    }
    Ok(())
}

/// The value of the sample `name` (with its labels, as rendered) in
/// `metrics`.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn business_metrics_count_payments_replays_and_the_numbering_wait(
    db: TestDatabase,
) -> anyhow::Result<()> {
    let app = spawn_app(db).await?;
    let set = billed(&app, "metrics@example.com", "metrics").await?;
    let paid = json_with(pay(&app, &set.invoice["id"], "pay-metrics-1").await?, 200).await?;
    assert_eq!(paid["status"], "paid");
    let replay = pay(&app, &set.invoice["id"], "pay-metrics-1").await?;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let refused = pay(&app, &set.invoice["id"], "pay-metrics-2").await?;
    assert_eq!(refused.status().as_u16(), 409);

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let expect = [
        (r#"billing_payments_total{outcome="succeeded"}"#, 1.0),
        (r#"billing_payments_total{outcome="refused"}"#, 1.0),
        (r#"billing_payments_total{outcome="failed"}"#, 0.0),
        (r#"billing_refunds_total{outcome="succeeded"}"#, 0.0),
        (
            r#"billing_idempotent_replays_total{route="/api/v1/invoices/{id}/pay"}"#,
            1.0,
        ),
        ("billing_invoice_number_wait_seconds_count", 1.0),
    ];
    for (name, value) in expect {
        assert_eq!(sample(&metrics, name), Some(value), "{name} in\n{metrics}");
    }
    Ok(())
}

test_on_each_backend!(
    probe_exits_zero_when_ready_and_one_otherwise,
    business_metrics_count_payments_replays_and_the_numbering_wait,
);
