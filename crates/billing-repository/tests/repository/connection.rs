//! Connecting: clear errors for an unreachable database within the acquire
//! timeout, READ COMMITTED on PostgreSQL whatever the server default, the
//! SQLite settings, and one statement per save.

use std::error::Error as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use billing_repository::{Backend, DatabaseSettings, Plans, RepositoryError, Users, connect};
use billing_test_support::TestDatabase;
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

use crate::common::{basics, insert_plan, setup};

/// Every message of an error and its sources, joined.
fn full_message(err: &RepositoryError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(" / ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_fails_fast_and_names_host_and_port() {
    let mut settings = DatabaseSettings::new("postgres://billing:hunter2@127.0.0.1:1/billing");
    settings.acquire_timeout = Duration::from_secs(1);
    let started = Instant::now();
    let err = connect(&settings).await.expect_err("port 1 is closed");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(2500), "took {elapsed:?}");
    let RepositoryError::Unavailable { target, .. } = &err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert_eq!(target, "127.0.0.1:1");
    assert!(err.is_unavailable());
    let text = full_message(&err);
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!format!("{err:?}").contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_after_start_gives_unavailable() {
    // A lazy pool starts without a server, like one whose server went away.
    let mut settings = DatabaseSettings::new("postgres://billing:hunter2@127.0.0.1:1/billing");
    settings.acquire_timeout = Duration::from_secs(1);
    settings.min_connections = 0;
    settings.lazy = true;
    let db = connect(&settings)
        .await
        .expect("lazy pools start without a server");
    let started = Instant::now();
    let err = db.ping().await.expect_err("nothing listens on port 1");
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert!(
        matches!(&err, RepositoryError::Unavailable { target, .. } if target == "127.0.0.1:1"),
        "{err:?}"
    );
    let err = Users::find_by_id(&db, 1).await.expect_err("no server");
    assert!(err.is_unavailable(), "{err:?}");
    let err = db.begin().await.expect_err("no server");
    assert!(err.is_unavailable(), "{err:?}");
}

#[tokio::test]
async fn invalid_settings_are_refused() {
    let err = connect(&DatabaseSettings::new("mysql://u:secret@h/db"))
        .await
        .expect_err("mysql is not supported");
    assert!(
        matches!(err, RepositoryError::InvalidSettings { .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("secret"));

    let mut settings = DatabaseSettings::new("sqlite::memory:");
    settings.min_connections = 5;
    settings.max_connections = 2;
    let err = connect(&settings).await.expect_err("min > max");
    assert!(
        matches!(err, RepositoryError::InvalidSettings { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn in_memory_sqlite_works_with_one_connection() -> anyhow::Result<()> {
    let db = connect(&DatabaseSettings::new("sqlite::memory:")).await?;
    billing_migration::up_locked(db.connection()).await?;
    let user = crate::common::insert_user(&db, "mem@example.com").await?;
    assert_eq!(Users::get(&db, user.id).await?, user);
    Ok(())
}

async fn show(db: &impl ConnectionTrait, sql: &str) -> anyhow::Result<String> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .ok_or_else(|| anyhow::anyhow!("{sql} returned nothing"))?;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        return Ok(row.try_get_by_index::<String>(0)?);
    }
    // SQLite pragmas answer text or integers.
    match row.try_get_by_index::<String>(0) {
        Ok(text) => Ok(text),
        Err(_) => Ok(row.try_get_by_index::<i64>(0)?.to_string()),
    }
}

async fn session_settings(test_db: TestDatabase) -> anyhow::Result<()> {
    if test_db.backend() == billing_test_support::Backend::Postgres {
        // Make the database default something else: our connections must
        // still run at READ COMMITTED because they say so.
        let name = test_db
            .url()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let plain = test_db.connect().await?;
        plain
            .execute_unprepared(&format!(
                "ALTER DATABASE \"{name}\" SET default_transaction_isolation = 'serializable'"
            ))
            .await?;
        plain.close().await?;
        let plain = test_db.connect().await?;
        assert_eq!(
            show(&plain, "SHOW transaction_isolation").await?,
            "serializable"
        );
        plain.close().await?;
    }
    let db = setup(&test_db).await?;
    match db.backend() {
        Backend::Postgres => {
            assert_eq!(
                show(db.connection(), "SHOW transaction_isolation").await?,
                "read committed"
            );
            let tx = db.begin().await?;
            assert_eq!(
                show(tx.connection(), "SHOW transaction_isolation").await?,
                "read committed"
            );
            tx.commit().await?;
            let level = db
                .transaction(|tx| {
                    Box::pin(async move {
                        show(tx.connection(), "SHOW transaction_isolation")
                            .await
                            .map_err(|e| RepositoryError::Database { source: e.into() })
                    })
                })
                .await?;
            assert_eq!(level, "read committed");
            assert!(db.target().ends_with(":5432") || db.target().contains(':'));
        }
        Backend::Sqlite => {
            assert_eq!(show(db.connection(), "PRAGMA journal_mode").await?, "wal");
            assert_eq!(show(db.connection(), "PRAGMA foreign_keys").await?, "1");
            assert_eq!(show(db.connection(), "PRAGMA busy_timeout").await?, "5000");
            assert_eq!(show(db.connection(), "PRAGMA synchronous").await?, "2");
        }
    }
    db.ping().await?;
    db.close().await?;
    assert!(db.ping().await.expect_err("closed").is_unavailable());
    Ok(())
}
billing_test_support::test_on_each_backend!(session_settings);

async fn save_is_a_single_statement(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    basics(&db).await?;
    let plan = insert_plan(&db, "counted", "EUR", 7).await?;
    let statements: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&statements);
    let observed = db.clone().with_statement_observer(move |event| {
        seen.lock().unwrap().push(event.sql.to_owned());
    });

    let mut changed = plan.clone();
    changed.sort_order = 8;
    let saved = Plans::save(&observed, &changed, plan.version).await?;
    assert_eq!(saved.version, plan.version + 1);
    {
        let sql = statements.lock().unwrap();
        assert_eq!(sql.len(), 1, "{sql:#?}");
        let upper = sql[0].to_uppercase();
        assert!(upper.starts_with("UPDATE \"TARIF_PLAN\" SET"), "{}", sql[0]);
        assert!(upper.contains("\"VERSION\" = \"VERSION\" + "), "{}", sql[0]);
        assert!(upper.contains("RETURNING"), "{}", sql[0]);
    }
    statements.lock().unwrap().clear();

    // A stale save: the update, then the version read that classifies it.
    let err = Plans::save(&observed, &changed, plan.version)
        .await
        .expect_err("stale");
    assert!(err.is_concurrent_modification(), "{err:?}");
    assert_eq!(statements.lock().unwrap().len(), 2);
    Ok(())
}
billing_test_support::test_on_each_backend!(save_is_a_single_statement);

/// The name of the PostgreSQL database of `test_db`.
fn database_name(test_db: &TestDatabase) -> String {
    let path = test_db.url().rsplit('/').next().unwrap_or_default();
    path.split('?').next().unwrap_or_default().to_owned()
}

/// The backend process id of a connection of `db` (there is one).
async fn backend_pid(db: &billing_repository::Database) -> Result<String, sea_orm::DbErr> {
    let row = db
        .connection()
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT pg_backend_pid()::text",
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::Custom("no pid".to_owned()))?;
    row.try_get_by_index::<String>(0)
        .map_err(|e| sea_orm::DbErr::Custom(e.to_string()))
}

/// Ends the backend `pid` and waits until it is gone.
async fn terminate(plain: &sea_orm::DatabaseConnection, pid: &str) -> anyhow::Result<()> {
    plain
        .execute_unprepared(&format!("SELECT pg_terminate_backend({pid})"))
        .await?;
    for _ in 0..200 {
        let left = show(
            plain,
            &format!("SELECT count(*)::text FROM pg_stat_activity WHERE pid = {pid}"),
        )
        .await?;
        if left == "0" {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::bail!("backend {pid} did not end")
}

/// A transaction's only round trip before its first statement is `BEGIN`:
/// the connection already defaults to READ COMMITTED, so no
/// `SET TRANSACTION` follows it (PostgreSQL only; SQLite has none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn begin_sends_no_set_transaction() -> anyhow::Result<()> {
    let Some(test_db) = TestDatabase::create(billing_test_support::Backend::Postgres).await? else {
        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL test not run");
        return Ok(());
    };
    let db = setup(&test_db).await?;
    let plain = test_db.connect().await?;
    let tx = db.begin().await?;
    let last = show(
        &plain,
        &format!(
            "SELECT query FROM pg_stat_activity WHERE datname = '{}' \
             AND state = 'idle in transaction'",
            database_name(&test_db)
        ),
    )
    .await?;
    assert_eq!(last.trim(), "BEGIN", "the transaction's last statement");
    assert_eq!(
        show(tx.connection(), "SHOW transaction_isolation").await?,
        "read committed"
    );
    tx.rollback().await?;
    plain.close().await?;
    Ok(())
}

/// A connection in steady use is handed out without a check (its first
/// use after the server dropped it fails); one idle past
/// `test_before_acquire_idle` is checked first and replaced when dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_idle_connections_are_checked_before_use() -> anyhow::Result<()> {
    let Some(test_db) = TestDatabase::create(billing_test_support::Backend::Postgres).await? else {
        eprintln!("TEST_DATABASE_URL is not set: PostgreSQL test not run");
        return Ok(());
    };
    setup(&test_db).await?.close().await?;
    let plain = test_db.connect().await?;

    // A window far longer than this test: no check happens.
    let mut settings = crate::common::test_settings(&test_db, 1);
    settings.test_before_acquire_idle = Duration::from_secs(60);
    // The driver itself notices a closed socket now and then before the
    // next query, whatever the check; a pool that checked every checkout
    // would never hand out the dead connection, so one failed use in a few
    // tries shows that no check ran.
    let mut unchecked = false;
    for _ in 0..5 {
        let busy = connect(&settings).await?;
        let pid = backend_pid(&busy).await?;
        terminate(&plain, &pid).await?;
        unchecked = backend_pid(&busy).await.is_err();
        busy.close().await?;
        if unchecked {
            break;
        }
    }
    assert!(
        unchecked,
        "a connection used within the window was checked before use"
    );

    // A short window: the idle, dead connection is found and replaced.
    settings.test_before_acquire_idle = Duration::from_millis(50);
    let idle = connect(&settings).await?;
    let pid = backend_pid(&idle).await?;
    terminate(&plain, &pid).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let replaced = backend_pid(&idle).await?;
    assert_ne!(replaced, pid);
    idle.close().await?;
    plain.close().await?;
    Ok(())
}
