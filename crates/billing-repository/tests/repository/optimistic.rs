//! Optimistic locking: a stale save fails and writes nothing; concurrent
//! read-modify-save loops lose no update.

use billing_domain::Resource;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use billing_repository::{Plans, RepositoryError};
use billing_test_support::TestDatabase;

use crate::common::{basics, insert_plan, is_sqlite, setup, setup_with};

async fn stale_save_is_refused_and_changes_nothing(test_db: TestDatabase) -> anyhow::Result<()> {
    let db = setup(&test_db).await?;
    basics(&db).await?;
    let original = insert_plan(&db, "stale", "EUR", 1).await?;

    // Two writers read version 1.
    let mut first = original.clone();
    first.name = "first writer".into();
    let mut second = original.clone();
    second.name = "second writer".into();
    second.sort_order = 42;

    let winner = Plans::save(&db, &first, original.version).await?;
    assert_eq!(winner.version, 2);

    let err = Plans::save(&db, &second, original.version)
        .await
        .expect_err("the second writer read version 1");
    let RepositoryError::ConcurrentModification {
        entity,
        id,
        expected,
        actual,
    } = err
    else {
        panic!("expected ConcurrentModification, got {err:?}");
    };
    assert_eq!(
        (entity, id, expected, actual),
        (Resource::Plan, original.id, 1, 2)
    );
    // The row holds exactly the winner's change.
    assert_eq!(Plans::get(&db, original.id).await?, winner);

    // An expected version from the future is refused too.
    let err = Plans::save(&db, &second, 7)
        .await
        .expect_err("no such version yet");
    assert!(
        matches!(
            err,
            RepositoryError::ConcurrentModification {
                expected: 7,
                actual: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(Plans::get(&db, original.id).await?, winner);
    Ok(())
}
billing_test_support::test_on_each_backend!(stale_save_is_refused_and_changes_nothing);

const TASKS: usize = 16;
const INCREMENTS: usize = 50;

/// 16 tasks × 50 read-modify-save increments of one row's counter
/// (`sort_order`), each retrying on `ConcurrentModification`: every
/// increment lands exactly once.
async fn no_lost_updates(test_db: TestDatabase) -> anyhow::Result<()> {
    // One connection per task on PostgreSQL; SQLite runs one writer at a
    // time whatever the pool size.
    let db = setup_with(&test_db, 17).await?;
    basics(&db).await?;
    let plan = insert_plan(&db, "counter", "EUR", 1).await?;
    assert_eq!((plan.sort_order, plan.version), (1, 1));

    let conflicts = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let db = db.clone();
        let conflicts = Arc::clone(&conflicts);
        tasks.push(tokio::spawn(async move {
            for _ in 0..INCREMENTS {
                loop {
                    let current = Plans::get(&db, plan.id).await?;
                    let mut next = current.clone();
                    next.sort_order += 1;
                    match Plans::save(&db, &next, current.version).await {
                        Ok(_) => break,
                        Err(e) if e.is_concurrent_modification() => {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                            tokio::task::yield_now().await;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Ok::<_, RepositoryError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    let last = Plans::get(&db, plan.id).await?;
    let expected = i32::try_from(1 + TASKS * INCREMENTS)?;
    eprintln!(
        "{}: {} increments in {elapsed:?}, {} conflicts retried",
        if is_sqlite(&db) { "sqlite" } else { "postgres" },
        TASKS * INCREMENTS,
        conflicts.load(Ordering::Relaxed)
    );
    assert_eq!(last.sort_order, expected, "lost updates");
    assert_eq!(last.version, expected, "every save raised the version once");
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    Ok(())
}
billing_test_support::test_on_each_backend!(no_lost_updates);
