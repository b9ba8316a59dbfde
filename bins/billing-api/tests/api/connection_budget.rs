//! Connection budgets on PostgreSQL: instances start serving after one
//! connection, several instances fit a server that cannot give each its
//! whole minimum, and a server that refuses every connection (`too many
//! clients`) leaves the instance up and not ready, with a message naming the
//! settings to change, until it has room.
//!
//! The server's limit is a login role's `CONNECTION LIMIT` (refused with the
//! same SQLSTATE 53300 as `max_connections`), so these tests never fill the
//! shared server for other tests.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use billing_test_support::{Backend, TestDatabase, unique_suffix};
use sea_orm::ConnectionTrait;
use sea_orm::sqlx::{
    ConnectOptions as _, Connection as _, PgConnection, postgres::PgConnectOptions,
};
use serde_json::{Value, json};

use crate::helpers::{TestOptions, spawn_app_with, spawn_instances_at_once};

const BINARY: &str = env!("CARGO_BIN_EXE_billing-api");

/// A login role of the test server that may hold at most `limit`
/// connections, with the rights to migrate the test database. Dropped
/// with what it owns by [`LimitedRole::drop_role`].
struct LimitedRole {
    name: String,
    /// The test database's URL with this role as user.
    url: String,
}

impl LimitedRole {
    async fn create(db: &TestDatabase, limit: u32) -> anyhow::Result<Self> {
        let name = format!("billing_budget_{}", unique_suffix());
        let mut url = reqwest::Url::parse(db.url())?;
        let database = url.path().trim_start_matches('/').to_owned();
        let admin = db.connect().await?;
        for statement in [
            format!("CREATE ROLE \"{name}\" LOGIN CONNECTION LIMIT {limit}"),
            format!("GRANT CONNECT, CREATE, TEMPORARY ON DATABASE \"{database}\" TO \"{name}\""),
            format!("GRANT ALL ON SCHEMA public TO \"{name}\""),
        ] {
            admin.execute_unprepared(&statement).await?;
        }
        admin.close().await?;
        url.set_username(&name)
            .map_err(|()| anyhow::anyhow!("cannot set the user of {url}"))?;
        Ok(Self {
            name,
            url: url.to_string(),
        })
    }

    /// A connection as this role, outside any pool.
    async fn hold(&self) -> anyhow::Result<PgConnection> {
        let options: PgConnectOptions = self.url.parse()?;
        Ok(options.connect().await?)
    }

    /// Drops what the role owns in `db`, then the role.
    async fn drop_role(&self, db: &TestDatabase) -> anyhow::Result<()> {
        let admin = db.connect().await?;
        admin
            .execute_unprepared(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{}'",
                self.name
            ))
            .await?;
        admin
            .execute_unprepared(&format!("DROP OWNED BY \"{}\"", self.name))
            .await?;
        admin
            .execute_unprepared(&format!("DROP ROLE \"{}\"", self.name))
            .await?;
        admin.close().await?;
        Ok(())
    }
}

/// A fresh PostgreSQL test database, or `None` without `TEST_DATABASE_URL`.
async fn postgres() -> anyhow::Result<Option<TestDatabase>> {
    let db = TestDatabase::create(Backend::Postgres).await?;
    if db.is_none() {
        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL-only test not run");
    }
    Ok(db)
}

async fn readiness(client: &reqwest::Client, url: &str) -> anyhow::Result<(u16, Value)> {
    let response = client.get(url).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

/// Six instances with the production pool settings, started at the same
/// moment on a server that grants their role 20 connections: fewer than
/// two instances' minimum used to be, more than all six need before their
/// first request. Every one starts and is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_instances_started_at_once_on_one_server_all_become_ready() -> anyhow::Result<()> {
    let Some(db) = postgres().await? else {
        return Ok(());
    };
    // They migrate at start too (one of them applies the schema, under
    // the advisory lock), as instances without a migration job do.
    let role = LimitedRole::create(&db, 20).await?;
    let options = TestOptions {
        database_url: Some(role.url.clone()),
        default_pool: true,
        ..TestOptions::default()
    };
    let started = Instant::now();
    let apps = spawn_instances_at_once(db, 6, options).await;
    let elapsed = started.elapsed();
    eprintln!("six instances started together in {elapsed:?}");
    let mut running = Vec::new();
    let mut failures = Vec::new();
    for app in apps {
        match app {
            Ok(app) => running.push(app),
            Err(error) => failures.push(format!("{error:#}")),
        }
    }
    assert!(
        failures.is_empty(),
        "instances that did not start: {failures:#?}"
    );
    assert_eq!(running.len(), 6);
    for app in &running {
        let (status, body) = readiness(&app.client, &app.url("/health/ready")).await?;
        assert_eq!((status, &body["database"]), (200, &json!("ok")), "{body}");
        let currencies = app
            .api_client
            .get(app.url("/api/v1/currencies"))
            .send()
            .await?;
        assert_eq!(currencies.status().as_u16(), 200);
    }
    let db = std::sync::Arc::clone(&running[0].db);
    drop(running);
    role.drop_role(&db).await
}

/// One instance against a server that refuses every connection of its role:
/// it starts anyway, reports the database down and answers 503 on the API,
/// then becomes ready (migrated and seeded) once connections are granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_server_leaves_the_instance_up_and_not_ready_until_it_has_room() -> anyhow::Result<()>
{
    let Some(db) = postgres().await? else {
        return Ok(());
    };
    // Two: seeding reads through the pool while its transaction holds a
    // connection.
    let role = LimitedRole::create(&db, 2).await?;
    let holders = [role.hold().await?, role.hold().await?];
    let options = TestOptions {
        database_url: Some(role.url.clone()),
        ..TestOptions::default()
    };
    let app = spawn_app_with(db, options).await?;

    let (status, body) = readiness(&app.client, &app.url("/health/ready")).await?;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["database"], json!("down"), "{body}");
    let refused = app
        .api_client
        .get(app.url("/api/v1/currencies"))
        .send()
        .await?;
    assert_eq!(refused.status().as_u16(), 503);
    let problem: Value = refused.json().await?;
    assert_eq!(
        problem["code"],
        json!("dependency_unavailable"),
        "{problem}"
    );

    for holder in holders {
        holder.close().await?;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = readiness(&app.client, &app.url("/health/ready")).await?;
        if status == 200 {
            assert_eq!(body["database"], json!("ok"));
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "still not ready: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Prepared once it could: migrated and seeded.
    let currencies: Value = app
        .api_client
        .get(app.url("/api/v1/currencies"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(currencies["items"][0]["code"], json!("EUR"), "{currencies}");
    let db = std::sync::Arc::clone(&app.db);
    drop(app);
    role.drop_role(&db).await
}

/// The binary on a full server keeps running and says why, naming the
/// setting to change and the server's limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_names_the_setting_when_the_server_is_full() -> anyhow::Result<()> {
    let Some(db) = postgres().await? else {
        return Ok(());
    };
    let role = LimitedRole::create(&db, 1).await?;
    let holder = role.hold().await?;
    let mut child = Command::new(BINARY)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &role.url)
        .env("BILLING_BIND", "127.0.0.1:0")
        .env("BILLING_DB_ACQUIRE_TIMEOUT", "1s")
        .env("BILLING_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut message = None;
    let mut listening = false;
    while Instant::now() < deadline && (message.is_none() || !listening) {
        let Ok(line) = received.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        if line.contains("BILLING_DB_MAX_CONNECTIONS") {
            message = Some(line.clone());
        }
        listening |= line.contains("billing-api listening");
    }
    let still_running = child.try_wait()?.is_none();
    child.kill().ok();
    child.wait().ok();
    holder.close().await?;
    role.drop_role(&db).await?;

    let message = message.expect("a log line naming BILLING_DB_MAX_CONNECTIONS");
    assert!(message.contains("too many connections"), "{message}");
    assert!(message.contains("max_connections"), "{message}");
    assert!(message.contains("refuses new connections"), "{message}");
    assert!(!message.contains("pool timed out"), "{message}");
    assert!(listening, "the instance serves while the database is full");
    assert!(still_running, "the instance keeps running");
    Ok(())
}
