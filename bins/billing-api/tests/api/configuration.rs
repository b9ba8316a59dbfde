//! The binary's configuration: `--help`, the one-line refusal of invalid
//! settings, and a real start on a bare machine followed by SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use billing_test_support::unique_suffix;

const BINARY: &str = env!("CARGO_BIN_EXE_billing-api");

/// Every setting the issue asks for, by variable.
const VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "BILLING_REDIS_KEY_PREFIX",
    "BILLING_REDIS_POOL_SIZE",
    "BILLING_REDIS_CLUSTER",
    "BILLING_REDIS_CA_FILE",
    "BILLING_BIND",
    "BILLING_API_TOKEN",
    "BILLING_DB_MAX_CONNECTIONS",
    "BILLING_DB_MIN_CONNECTIONS",
    "BILLING_DB_ACQUIRE_TIMEOUT",
    "BILLING_IDEMPOTENCY_TTL",
    "BILLING_IDEMPOTENCY_IN_FLIGHT_TTL",
    "BILLING_MIGRATE_ON_START",
    "BILLING_LOG",
    "BILLING_LOG_FORMAT",
    "BILLING_BODY_LIMIT",
    "BILLING_SHUTDOWN_TIMEOUT",
    "BILLING_HEALTH_TIMEOUT",
    "BILLING_PASSWORD_HASH_QUEUE",
    "BILLING_WORKERS",
    "BILLING_WEBHOOK_ENABLED",
    "BILLING_WEBHOOK_TIMEOUT",
    "BILLING_WEBHOOK_POLL_INTERVAL",
    "BILLING_WEBHOOK_RETRY_BASE",
    "BILLING_WEBHOOK_RETRY_WINDOW",
    "BILLING_WEBHOOK_CONCURRENCY",
    "BILLING_WEBHOOK_LEASE_TTL",
];

/// A temporary SQLite URL, so that no test writes `./billing.db`.
fn sqlite_url() -> (String, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("billing-api-cli-{}.db", unique_suffix()));
    (format!("sqlite://{}?mode=rwc", path.display()), path)
}

fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

/// Runs the binary with a clean environment plus `vars`.
fn run(args: &[&str], vars: &[(&str, &str)]) -> anyhow::Result<Output> {
    let mut command = Command::new(BINARY);
    command.env_clear().args(args);
    for (name, value) in vars {
        command.env(name, value);
    }
    Ok(command.output()?)
}

fn stderr_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn help_lists_every_setting_and_its_variable() -> anyhow::Result<()> {
    let output = run(&["--help"], &[])?;
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout)?;
    for variable in VARIABLES {
        assert!(
            help.contains(&format!("[env: {variable}")),
            "{variable} missing:\n{help}"
        );
    }
    assert!(help.contains("sqlite://./billing.db?mode=rwc"), "{help}");
    assert!(help.contains("127.0.0.1:8080"), "{help}");
    assert!(help.contains("SIGTERM"), "{help}");
    Ok(())
}

#[test]
fn the_token_value_is_never_printed() -> anyhow::Result<()> {
    let output = run(
        &["--help"],
        &[("BILLING_API_TOKEN", "super-secret-token-value")],
    )?;
    let help = String::from_utf8(output.stdout)?;
    assert!(!help.contains("super-secret-token-value"), "{help}");
    Ok(())
}

#[test]
fn unparsable_values_stop_the_start() -> anyhow::Result<()> {
    let cases: &[(&str, &str, &str)] = &[
        ("BILLING_BIND", "localhost", "address:port"),
        ("BILLING_DB_ACQUIRE_TIMEOUT", "soon", "not a duration"),
        ("BILLING_IDEMPOTENCY_TTL", "1 fortnight", "not a duration"),
        ("BILLING_BODY_LIMIT", "64 parsecs", "unknown unit"),
        ("BILLING_LOG_FORMAT", "xml", "xml"),
        ("BILLING_MIGRATE_ON_START", "maybe", "maybe"),
        ("BILLING_REDIS_POOL_SIZE", "0", "at least 1"),
        ("BILLING_PASSWORD_HASH_QUEUE", "0", "at least 1"),
        ("BILLING_PASSWORD_HASH_QUEUE", "many", "not a whole number"),
        ("BILLING_WORKERS", "0", "0"),
        ("BILLING_LOG", "info,[", "log filter"),
    ];
    for (variable, value, expected) in cases {
        let output = run(&[], &[(variable, value)])?;
        assert_eq!(output.status.code(), Some(1), "{variable}={value}");
        let lines = stderr_lines(&output);
        assert_eq!(lines.len(), 1, "{variable}={value}: {lines:?}");
        assert!(lines[0].contains(variable), "{variable}={value}: {lines:?}");
        assert!(lines[0].contains(expected), "{variable}={value}: {lines:?}");
    }
    Ok(())
}

/// `RUST_BACKTRACE=1` (set in many shells and CI images) must not turn the
/// one-line refusal into a report with a backtrace, neither for a value
/// that does not parse nor for settings that do not fit together.
#[test]
fn a_configuration_error_is_one_line_even_with_rust_backtrace() -> anyhow::Result<()> {
    let cases: &[(&str, &str)] = &[
        ("BILLING_DB_MAX_CONNECTIONS", "abc"),
        ("BILLING_DB_MAX_CONNECTIONS", "0"),
        ("BILLING_BODY_LIMIT", "0"),
    ];
    for backtrace in ["1", "full"] {
        for (variable, value) in cases {
            let output = run(
                &[],
                &[
                    (variable, value),
                    ("RUST_BACKTRACE", backtrace),
                    ("RUST_LIB_BACKTRACE", backtrace),
                ],
            )?;
            assert_eq!(output.status.code(), Some(1), "{variable}={value}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                stderr.lines().count(),
                1,
                "{variable}={value} RUST_BACKTRACE={backtrace}: {stderr}"
            );
            assert!(
                stderr.starts_with("Error: ") && stderr.contains(variable),
                "{stderr}"
            );
            assert!(!stderr.contains("backtrace"), "{stderr}");
            assert!(output.stdout.is_empty(), "nothing may start: {variable}");
        }
    }
    Ok(())
}

#[test]
fn settings_that_do_not_fit_together_stop_the_start_with_one_line() -> anyhow::Result<()> {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("DATABASE_URL", "mysql://u:hunter2@h/db")],
            "DATABASE_URL",
        ),
        (
            &[("DATABASE_URL", "mysql://u@h/db?password=hunter2")],
            "DATABASE_URL",
        ),
        (&[("DATABASE_URL", "")], "DATABASE_URL"),
        (&[("REDIS_URL", "")], "REDIS_URL"),
        (&[("REDIS_URL", "http://h/?token=hunter2")], "REDIS_URL"),
        (&[("REDIS_URL", "http://u:hunter2@h")], "REDIS_URL"),
        (
            &[(
                "REDIS_URL",
                "redis://:hunter2@a:7000,redis://:hunter2@b:7001",
            )],
            "BILLING_REDIS_CLUSTER=true",
        ),
        (&[("BILLING_REDIS_CLUSTER", "true")], "needs REDIS_URL"),
        (
            &[
                ("REDIS_URL", "redis://:hunter2@h:6379"),
                ("BILLING_REDIS_CA_FILE", "/etc/hosts"),
            ],
            "is not rediss://",
        ),
        (
            &[
                ("REDIS_URL", "rediss://:hunter2@h:6379"),
                ("BILLING_REDIS_CA_FILE", "/nonexistent/ca.pem"),
            ],
            "BILLING_REDIS_CA_FILE",
        ),
        (&[("BILLING_API_TOKEN", "hunter2")], "BILLING_API_TOKEN"),
        (
            &[("BILLING_API_TOKEN", "hunter2 hunter2 hunter2")],
            "BILLING_API_TOKEN",
        ),
        (&[("BILLING_BIND", "0.0.0.0:8080")], "BILLING_API_TOKEN"),
        (
            &[
                ("BILLING_DB_MIN_CONNECTIONS", "10"),
                ("BILLING_DB_MAX_CONNECTIONS", "5"),
            ],
            "BILLING_DB_MIN_CONNECTIONS",
        ),
        (
            &[("BILLING_DB_MAX_CONNECTIONS", "0")],
            "BILLING_DB_MAX_CONNECTIONS",
        ),
        (
            &[("BILLING_IDEMPOTENCY_TTL", "10s")],
            "BILLING_IDEMPOTENCY_IN_FLIGHT_TTL",
        ),
        (
            &[("BILLING_IDEMPOTENCY_TTL", "400days")],
            "BILLING_IDEMPOTENCY_TTL",
        ),
        (
            &[("BILLING_DB_ACQUIRE_TIMEOUT", "0s")],
            "BILLING_DB_ACQUIRE_TIMEOUT",
        ),
        (&[("BILLING_BODY_LIMIT", "0")], "BILLING_BODY_LIMIT"),
        (
            &[("BILLING_PAYMENT_WINDOW", "0s")],
            "BILLING_PAYMENT_WINDOW",
        ),
        (
            &[("BILLING_PAYMENT_LOCK_TTL", "0s")],
            "BILLING_PAYMENT_LOCK_TTL",
        ),
        (
            &[
                ("BILLING_REDIS_KEY_PREFIX", "a{b}"),
                ("REDIS_URL", "redis://127.0.0.1:1"),
            ],
            "BILLING_REDIS_KEY_PREFIX",
        ),
    ];
    for (vars, expected) in cases {
        let output = run(&[], vars)?;
        assert_eq!(output.status.code(), Some(1), "{vars:?}");
        let lines = stderr_lines(&output);
        assert_eq!(lines.len(), 1, "{vars:?}: {lines:?}");
        assert!(lines[0].contains(expected), "{vars:?}: {lines:?}");
        assert!(
            !lines[0].contains("hunter2"),
            "a secret was printed: {lines:?}"
        );
        assert!(output.stdout.is_empty(), "nothing may start: {vars:?}");
    }
    Ok(())
}

#[test]
fn an_unreachable_redis_stops_the_start_with_one_line() -> anyhow::Result<()> {
    let (database_url, path) = sqlite_url();
    let output = run(
        &[],
        &[
            ("DATABASE_URL", &database_url),
            ("REDIS_URL", "redis://:hunter2@127.0.0.1:1"),
            ("BILLING_LOG", "off"),
        ],
    )?;
    remove_sqlite(&path);
    assert_eq!(output.status.code(), Some(1));
    let lines = stderr_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("Redis"), "{lines:?}");
    assert!(lines[0].contains("127.0.0.1:1"), "{lines:?}");
    assert!(!lines[0].contains("hunter2"), "{lines:?}");
    Ok(())
}

/// A TLS Redis whose certificate the configured CA did not sign: one line
/// naming the TLS failure and the certificate, at once.
#[test]
fn an_untrusted_redis_certificate_stops_the_start_with_one_line() -> anyhow::Result<()> {
    if billing_test_support::redis_url().is_none() {
        eprintln!("TEST_REDIS_URL is not set: Redis TLS test not run");
        return Ok(());
    }
    let server = billing_test_support::TlsRedis::start()?;
    let (database_url, path) = sqlite_url();
    let ca_file = server.other_ca_file();
    let started = Instant::now();
    let output = run(
        &[],
        &[
            ("DATABASE_URL", &database_url),
            ("REDIS_URL", &server.url()),
            ("BILLING_REDIS_CA_FILE", &ca_file.display().to_string()),
            ("BILLING_LOG", "off"),
        ],
    )?;
    remove_sqlite(&path);
    assert_eq!(output.status.code(), Some(1));
    let lines = stderr_lines(&output);
    eprintln!("{lines:?} after {:?}", started.elapsed());
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("TLS handshake with Redis failed"),
        "{lines:?}"
    );
    assert!(lines[0].contains("certificate"), "{lines:?}");
    assert!(lines[0].contains(&server.url()), "{lines:?}");
    Ok(())
}

#[test]
fn an_unreachable_database_stops_the_start_with_one_line() -> anyhow::Result<()> {
    let output = run(
        &[],
        &[
            (
                "DATABASE_URL",
                "postgres://billing:hunter2@127.0.0.1:1/billing",
            ),
            ("BILLING_DB_ACQUIRE_TIMEOUT", "1s"),
            ("BILLING_LOG", "off"),
        ],
    )?;
    assert_eq!(output.status.code(), Some(1));
    let lines = stderr_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("database"), "{lines:?}");
    assert!(!lines[0].contains("hunter2"), "{lines:?}");
    Ok(())
}

/// `billing-api` with no configuration but a port: migrates a new SQLite
/// file, answers within seconds, and stops cleanly on SIGTERM.
#[test]
fn the_binary_starts_on_a_bare_machine_and_stops_on_sigterm() -> anyhow::Result<()> {
    let (database_url, path) = sqlite_url();
    let mut child = Command::new(BINARY)
        .env_clear()
        .env("DATABASE_URL", &database_url)
        .env("BILLING_BIND", "127.0.0.1:0")
        .env("BILLING_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let started = Instant::now();

    // Read the log until the listening line names the port.
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let address = loop {
        let line = lines_rx.recv_timeout(Duration::from_secs(30));
        let Ok(line) = line else {
            let _ = child.kill();
            anyhow::bail!("no listening line within 30 s: {log:#?}");
        };
        let entry: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| anyhow::anyhow!("log line is not JSON ({e}): {line}"))?;
        log.push(line);
        if entry["message"] == "billing-api listening" {
            break entry["address"].as_str().unwrap_or_default().to_owned();
        }
    };
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let ready = probe(&format!("http://{address}/health/ready"));
    let ready_status = ready.as_ref().map(|(status, _)| *status).ok();

    // SIGTERM: a graceful stop, exit code 0.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("still running 15 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    remove_sqlite(&path);

    let (_, body) = ready?;
    assert_eq!(ready_status, Some(200), "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body)?,
        serde_json::json!({"status": "ok", "database": "ok", "redis": "embedded"})
    );
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let rest: Vec<String> = lines_rx.try_iter().collect();
    assert!(
        rest.iter().any(|line| line.contains("graceful shutdown")),
        "{rest:#?}"
    );
    Ok(())
}

/// A blocking HTTP/1.1 GET with a fresh tokio runtime (the test is sync).
fn probe(url: &str) -> anyhow::Result<(u16, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        billing_webhooks::install_crypto_provider();
        let response = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    })
}
