//! `up`, `down`, `fresh` and concurrent `up_locked` on both backends.

use billing_migration::{Migrator, up_locked};
use billing_test_support::{Backend, TestDatabase, test_on_each_backend};
use sea_orm_migration::MigratorTrait;

use crate::catalogue::{self, Catalogue};
use crate::spec;

fn expected_for(backend: Backend) -> Catalogue {
    match backend {
        Backend::Postgres => spec::expected(),
        Backend::Sqlite => spec::expected().into_sqlite_report(),
    }
}

/// Compares table by table so a failure names the table that differs.
fn assert_matches_spec(actual: &Catalogue, backend: Backend) {
    let expected = expected_for(backend);
    assert_eq!(
        actual.tables.keys().collect::<Vec<_>>(),
        expected.tables.keys().collect::<Vec<_>>(),
        "tables"
    );
    for (name, table) in &expected.tables {
        let got = &actual.tables[name];
        assert_eq!(got.columns, table.columns, "columns of {name}");
        assert_eq!(got.unique, table.unique, "unique indexes of {name}");
        assert_eq!(got.plain, table.plain, "plain indexes of {name}");
        assert_eq!(
            got.foreign_keys, table.foreign_keys,
            "foreign keys of {name}"
        );
    }
    for name in spec::ORIGINAL_TABLES {
        assert!(
            actual.tables.contains_key(name),
            "original table {name} is missing"
        );
    }
}

async fn up_creates_the_specified_schema(db: TestDatabase) -> anyhow::Result<()> {
    let conn = db.connect().await?;
    up_locked(&conn).await?;
    assert_matches_spec(&catalogue::read(&conn).await?, db.backend());
    Ok(())
}

async fn down_removes_everything_and_up_works_again(db: TestDatabase) -> anyhow::Result<()> {
    let conn = db.connect().await?;
    up_locked(&conn).await?;
    Migrator::down(&conn, None).await?;
    let after_down = catalogue::read(&conn).await?;
    assert!(
        after_down.tables.is_empty(),
        "left behind: {:?}",
        after_down.tables.keys()
    );
    assert_eq!(
        Migrator::get_pending_migrations(&conn).await?.len(),
        Migrator::migrations().len()
    );

    up_locked(&conn).await?;
    assert_matches_spec(&catalogue::read(&conn).await?, db.backend());
    assert!(Migrator::get_pending_migrations(&conn).await?.is_empty());
    Ok(())
}

async fn fresh_rebuilds_the_schema(db: TestDatabase) -> anyhow::Result<()> {
    let conn = db.connect().await?;
    Migrator::fresh(&conn).await?;
    Migrator::fresh(&conn).await?;
    assert_matches_spec(&catalogue::read(&conn).await?, db.backend());
    Ok(())
}

/// Several processes starting at once: every `up_locked` succeeds and the
/// schema is created once. On SQLite (one process by design) the calls run
/// one after another and the later ones find nothing to do.
async fn concurrent_up_locked_applies_once(db: TestDatabase) -> anyhow::Result<()> {
    let mut connections = Vec::new();
    for _ in 0..4 {
        connections.push(db.connect().await?);
    }
    match db.backend() {
        Backend::Postgres => {
            let runs = connections.iter().map(up_locked);
            for result in futures::future::join_all(runs).await {
                result?;
            }
        }
        Backend::Sqlite => {
            for conn in &connections {
                up_locked(conn).await?;
            }
        }
    }
    let conn = &connections[0];
    assert_eq!(
        Migrator::get_applied_migrations(conn).await?.len(),
        Migrator::migrations().len()
    );
    assert_matches_spec(&catalogue::read(conn).await?, db.backend());
    Ok(())
}

test_on_each_backend!(
    up_creates_the_specified_schema,
    down_removes_everything_and_up_works_again,
    fresh_rebuilds_the_schema,
    concurrent_up_locked_applies_once,
);
