//! Throughput of `Repository::save` against the same hand-written
//! `UPDATE … RETURNING` statement through sqlx, at 1, 8 and 32 concurrent
//! tasks, on PostgreSQL.
//!
//! ```text
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p billing-repository --bench save
//! ```
//!
//! `BENCH_DATABASE_URL` (or else `TEST_DATABASE_URL`) names the server; the
//! bench creates a database of its own there and drops it at the end.
//! `BENCH_MILLIS` sets the length of one measurement (default 1000) and
//! `BENCH_ROUNDS` their number per side (default 9). The two sides alternate
//! (A-B, B-A, …) and the overhead is the median of the per-round ratios, so
//! slow drifts of the machine's load cancel out.
//!
//! Both sides run on the *same* sqlx pool (the repository's), so pool
//! settings such as the pre-ping cost both the same; each task updates its
//! own row, so there is no lock contention, only the cost of the code path.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use billing_domain::PasswordHash;
use billing_domain::entities::user;
use billing_domain::enums::{UserRole, UserStatus};
use billing_repository::{Database, DatabaseSettings, Users, connect, now};
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::ConnectionTrait;
use sea_orm::sqlx;

const CONCURRENCY: [usize; 3] = [1, 8, 32];

/// The statement `Users::save` sends (as recorded by a statement observer),
/// written by hand.
const RAW_SAVE: &str = r#"UPDATE "user" SET "email" = $1, "password_hash" = $2, "status" = $3, "role" = $4, "version" = "version" + $5, "updated_at" = $6 WHERE "user"."id" = $7 AND "user"."version" = $8 RETURNING "id", "email", "password_hash", "status", "role", "created_at", "updated_at", "version""#;

type RawRow = (
    i64,
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    i32,
);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Repository,
    RawSqlx,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(admin_url) = ["BENCH_DATABASE_URL", "TEST_DATABASE_URL"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|v| !v.trim().is_empty()))
    else {
        eprintln!("set BENCH_DATABASE_URL (or TEST_DATABASE_URL) to a PostgreSQL server");
        return Ok(());
    };
    let env_number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let duration = Duration::from_millis(env_number("BENCH_MILLIS", 1000));
    let rounds = usize::try_from(env_number("BENCH_ROUNDS", 9))?.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(&admin_url, duration, rounds))
}

async fn run(
    admin_url: &str,
    duration: Duration,
    rounds: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("billing_bench_{}", billing_test_support::unique_suffix());
    let admin = sea_orm::Database::connect(admin_url).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    let url = billing_test_support::replace_database_name(admin_url, &name)?;
    let result = bench(&url, duration, rounds).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    admin.close().await?;
    result
}

async fn bench(
    url: &str,
    duration: Duration,
    rounds: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let max_tasks = CONCURRENCY.iter().copied().max().unwrap_or(1);
    let server_version = {
        let db = connect(&DatabaseSettings::new(url)).await?;
        let row = db
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                "SHOW server_version",
            ))
            .await?
            .ok_or("no server version")?;
        let version: String = row.try_get_by_index(0)?;
        db.close().await?;
        version
    };
    println!(
        "PostgreSQL {server_version}; {} ms per measurement, {rounds} alternating rounds per side\n",
        duration.as_millis()
    );
    // (pre-ping on every checkout, durable commits): the production
    // settings first; then without the pre-ping round trip; then also
    // without waiting for the WAL flush, where the client's CPU cost shows
    // most.
    for (pre_ping, synchronous_commit) in [(true, true), (false, true), (false, false)] {
        let admin = connect(&DatabaseSettings::new(url)).await?;
        admin
            .connection()
            .execute_unprepared(&format!(
                "ALTER DATABASE \"{}\" SET synchronous_commit = {}",
                url.rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .split('?')
                    .next()
                    .unwrap_or_default(),
                if synchronous_commit { "on" } else { "off" }
            ))
            .await?;
        admin.close().await?;
        let mut settings = DatabaseSettings::new(url);
        settings.min_connections = u32::try_from(max_tasks)?;
        settings.max_connections = u32::try_from(max_tasks)?;
        settings.test_before_acquire = pre_ping;
        let db = connect(&settings).await?;
        billing_migration::up_locked(db.connection()).await?;
        let mut users = Vec::new();
        for i in 0..max_tasks {
            users.push(
                Users::insert(
                    &db,
                    user::ActiveModel {
                        email: Set(format!("bench-{pre_ping}-{i}@example.com")),
                        password_hash: Set(PasswordHash("$argon2id$v=19$bench".into())),
                        status: Set(UserStatus::Pending),
                        role: Set(UserRole::User),
                        ..Default::default()
                    },
                )
                .await?,
            );
        }
        println!(
            "pool: {max_tasks} connections, test_before_acquire (pre-ping) = {pre_ping}, \
             synchronous_commit = {}\n",
            if synchronous_commit { "on" } else { "off" }
        );
        println!(
            "| tasks | repository saves/s | raw sqlx saves/s | overhead (median of paired rounds) | \
             client CPU µs/save, repository | client CPU µs/save, raw |"
        );
        println!("|---:|---:|---:|---:|---:|---:|");
        for tasks in CONCURRENCY {
            // Warm up both paths (prepared statements, connections).
            let warm_up = Duration::from_millis(300);
            run_side(&db, &users[..tasks], Side::Repository, warm_up).await?;
            run_side(&db, &users[..tasks], Side::RawSqlx, warm_up).await?;
            let mut repo = Vec::new();
            let mut raw = Vec::new();
            let mut ratios = Vec::new();
            for round in 0..rounds {
                let order = if round % 2 == 0 {
                    [Side::Repository, Side::RawSqlx]
                } else {
                    [Side::RawSqlx, Side::Repository]
                };
                let mut pair = BTreeMap::new();
                for side in order {
                    pair.insert(side, run_side(&db, &users[..tasks], side, duration).await?);
                }
                let (Some(r), Some(w)) =
                    (pair.remove(&Side::Repository), pair.remove(&Side::RawSqlx))
                else {
                    continue;
                };
                ratios.push(overhead_permille(r.rate, w.rate));
                repo.push(r);
                raw.push(w);
            }
            println!(
                "| {tasks} | {} | {} | {} | {} | {} |",
                median(repo.iter().map(|m| m.rate).collect()),
                median(raw.iter().map(|m| m.rate).collect()),
                format_permille(median_signed(ratios)),
                median(repo.iter().map(|m| m.cpu_micros_per_save).collect()),
                median(raw.iter().map(|m| m.cpu_micros_per_save).collect()),
            );
        }
        println!();
        db.close().await?;
        // Fresh rows for the next pool: drop the old ones.
        let cleanup = connect(&DatabaseSettings::new(url)).await?;
        cleanup
            .connection()
            .execute_unprepared(r#"DELETE FROM "user""#)
            .await?;
        cleanup.close().await?;
    }
    Ok(())
}

/// One measurement: saves per second, and the CPU time this process spent
/// per save (user + system, all threads), in microseconds.
#[derive(Clone, Copy, Debug)]
struct Measurement {
    rate: u64,
    cpu_micros_per_save: u64,
}

/// CPU time of this process so far (user + system, all threads), in
/// microseconds, from `/proc/self/stat` (Linux; clock ticks of 10 ms).
fn process_cpu_micros() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // Fields after the command name (which is in parentheses): state is
    // field 3, utime 14 and stime 15.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) * 10_000
}

/// Saves per second over `duration`, every task saving its own row.
async fn run_side(
    db: &Database,
    users: &[user::Model],
    side: Side,
    duration: Duration,
) -> Result<Measurement, Box<dyn std::error::Error>> {
    // Current versions first: the other side moved them on.
    let mut current = Vec::new();
    for u in users {
        current.push(Users::get(db, u.id).await?);
    }
    let cpu_before = process_cpu_micros();
    let started = Instant::now();
    let deadline = started + duration;
    let mut handles = Vec::new();
    for model in current {
        let db = db.clone();
        handles.push(tokio::spawn(async move {
            let pool = db.connection().get_postgres_connection_pool().clone();
            let mut model = model;
            let mut count = 0_u64;
            while Instant::now() < deadline {
                model.status = if model.status == UserStatus::Active {
                    UserStatus::Pending
                } else {
                    UserStatus::Active
                };
                model = match side {
                    Side::Repository => Users::save(&db, &model, model.version).await?,
                    Side::RawSqlx => raw_save(&pool, &model).await?,
                };
                count += 1;
            }
            Ok::<u64, Box<dyn std::error::Error + Send + Sync>>(count)
        }));
    }
    let mut total = 0;
    for handle in handles {
        total += handle.await?.map_err(|e| e.to_string())?;
    }
    let micros = u64::try_from(started.elapsed().as_micros())?.max(1);
    let cpu = process_cpu_micros().saturating_sub(cpu_before);
    Ok(Measurement {
        rate: total * 1_000_000 / micros,
        cpu_micros_per_save: cpu / total.max(1),
    })
}

/// The hand-written equivalent of `Users::save`: the same statement, the
/// row decoded into the same model.
async fn raw_save(
    pool: &sqlx::PgPool,
    model: &user::Model,
) -> Result<user::Model, Box<dyn std::error::Error + Send + Sync>> {
    let row: Option<RawRow> = sqlx::query_as(RAW_SAVE)
        .bind(&model.email)
        .bind(&model.password_hash.0)
        .bind(status_text(model.status))
        .bind(role_text(model.role))
        .bind(1_i32)
        .bind(now())
        .bind(model.id)
        .bind(model.version)
        .fetch_optional(pool)
        .await?;
    let (id, email, password_hash, status, role, created_at, updated_at, version) =
        row.ok_or("concurrent modification")?;
    Ok(user::Model {
        id,
        email,
        password_hash: PasswordHash(password_hash),
        status: parse_status(&status)?,
        role: parse_role(&role)?,
        created_at,
        updated_at,
        version,
    })
}

fn status_text(status: UserStatus) -> &'static str {
    match status {
        UserStatus::Pending => "pending",
        UserStatus::Active => "active",
        UserStatus::Suspended => "suspended",
        UserStatus::Deleted => "deleted",
    }
}

fn parse_status(text: &str) -> Result<UserStatus, String> {
    match text {
        "pending" => Ok(UserStatus::Pending),
        "active" => Ok(UserStatus::Active),
        "suspended" => Ok(UserStatus::Suspended),
        "deleted" => Ok(UserStatus::Deleted),
        other => Err(format!("unknown status {other}")),
    }
}

fn role_text(role: UserRole) -> &'static str {
    match role {
        UserRole::User => "user",
        UserRole::Admin => "admin",
        UserRole::Vendor => "vendor",
    }
}

fn parse_role(text: &str) -> Result<UserRole, String> {
    match text {
        "user" => Ok(UserRole::User),
        "admin" => Ok(UserRole::Admin),
        "vendor" => Ok(UserRole::Vendor),
        other => Err(format!("unknown role {other}")),
    }
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn median_signed(mut values: Vec<i128>) -> i128 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// How much longer a repository save takes than a raw one, from the
/// throughputs of one round: `raw / repo - 1`, in per mille.
fn overhead_permille(repo: u64, raw: u64) -> i128 {
    if repo == 0 {
        return 0;
    }
    i128::from(raw) * 1000 / i128::from(repo) - 1000
}

/// Per mille as a percentage with one decimal and a sign.
fn format_permille(permille: i128) -> String {
    let sign = if permille < 0 { "-" } else { "+" };
    let abs = permille.abs();
    format!("{sign}{}.{}%", abs / 10, abs % 10)
}
