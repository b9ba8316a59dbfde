//! Reads the schema back from the database catalogue (PostgreSQL's
//! `information_schema` / `pg_catalog`, SQLite's pragmas) into one normalised
//! form that can be compared with the specification.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};

/// The kind of a column, as far as the schema specification cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    BigInt,
    Integer,
    SmallInt,
    Text,
    /// An exact decimal: `NUMERIC(precision, scale)` on PostgreSQL. SQLite
    /// keeps no precision and reports `Decimal(0, 0)` for its `decimal_text`.
    Decimal(u32, u32),
    Timestamp,
    Boolean,
    Json,
}

impl Kind {
    /// What SQLite can tell of this kind: it declares every identity and
    /// big integer as `integer` and keeps no decimal precision.
    pub fn into_sqlite_report(self) -> Self {
        match self {
            Self::BigInt => Self::Integer,
            Self::Decimal(_, _) => Self::Decimal(0, 0),
            Self::Integer
            | Self::SmallInt
            | Self::Text
            | Self::Timestamp
            | Self::Boolean
            | Self::Json => self,
        }
    }
}

/// What `ON DELETE` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OnDelete {
    Cascade,
    Restrict,
    SetNull,
    NoAction,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub kind: Kind,
    pub nullable: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Index {
    pub columns: Vec<String>,
    /// Whether the index has a `WHERE` clause.
    pub partial: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ForeignKey {
    pub column: String,
    pub table: String,
    pub target: String,
    pub on_delete: OnDelete,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    pub columns: BTreeMap<String, Column>,
    /// Unique indexes, the primary key aside.
    pub unique: BTreeSet<Index>,
    /// Non-unique indexes.
    pub plain: BTreeSet<Index>,
    pub foreign_keys: BTreeSet<ForeignKey>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalogue {
    pub tables: BTreeMap<String, Table>,
}

impl Catalogue {
    /// This catalogue as SQLite would report it.
    pub fn into_sqlite_report(mut self) -> Self {
        for table in self.tables.values_mut() {
            for column in table.columns.values_mut() {
                column.kind = column.kind.into_sqlite_report();
            }
        }
        self
    }
}

/// Reads the catalogue of the connected database, leaving out
/// sea-orm-migration's own `seaql_migrations` table.
pub async fn read(db: &DatabaseConnection) -> anyhow::Result<Catalogue> {
    let backend = db.get_database_backend();
    let mut catalogue = if backend == DatabaseBackend::Postgres {
        read_postgres(db).await?
    } else if backend == DatabaseBackend::Sqlite {
        read_sqlite(db).await?
    } else {
        anyhow::bail!("no catalogue reader for {backend:?}")
    };
    catalogue.tables.remove("seaql_migrations");
    Ok(catalogue)
}

async fn rows(
    db: &DatabaseConnection,
    sql: &str,
) -> anyhow::Result<Vec<sea_orm_migration::sea_orm::QueryResult>> {
    Ok(db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?)
}

async fn read_postgres(db: &DatabaseConnection) -> anyhow::Result<Catalogue> {
    let mut catalogue = Catalogue::default();
    for row in rows(
        db,
        "SELECT table_name::text AS table_name FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .await?
    {
        catalogue
            .tables
            .insert(row.try_get("", "table_name")?, Table::default());
    }

    for row in rows(
        db,
        "SELECT table_name::text AS table_name, column_name::text AS column_name, \
                is_nullable::text AS is_nullable, data_type::text AS data_type, \
                COALESCE(numeric_precision, 0)::int4 AS precision, COALESCE(numeric_scale, 0)::int4 AS scale \
         FROM information_schema.columns WHERE table_schema = current_schema()",
    )
    .await?
    {
        let table: String = row.try_get("", "table_name")?;
        let data_type: String = row.try_get("", "data_type")?;
        let precision: i32 = row.try_get("", "precision")?;
        let scale: i32 = row.try_get("", "scale")?;
        let kind = match data_type.as_str() {
            "bigint" => Kind::BigInt,
            "integer" => Kind::Integer,
            "smallint" => Kind::SmallInt,
            "character varying" | "text" => Kind::Text,
            "numeric" => Kind::Decimal(u32::try_from(precision)?, u32::try_from(scale)?),
            "timestamp with time zone" => Kind::Timestamp,
            "boolean" => Kind::Boolean,
            "json" | "jsonb" => Kind::Json,
            other => anyhow::bail!("{table}: unexpected PostgreSQL type {other}"),
        };
        let nullable = row.try_get::<String>("", "is_nullable")? == "YES";
        if let Some(t) = catalogue.tables.get_mut(&table) {
            t.columns.insert(row.try_get("", "column_name")?, Column { kind, nullable });
        }
    }

    for row in rows(
        db,
        "SELECT t.relname::text AS table_name, ix.indisunique AS is_unique, ix.indisprimary AS is_primary, \
                (ix.indpred IS NOT NULL) AS is_partial, \
                array_to_string(ARRAY(SELECT a.attname::text FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) \
                    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord), ',') AS columns \
         FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = current_schema()",
    )
    .await?
    {
        if row.try_get::<bool>("", "is_primary")? {
            continue;
        }
        let table: String = row.try_get("", "table_name")?;
        let columns: String = row.try_get("", "columns")?;
        let index = Index {
            columns: columns.split(',').map(str::to_owned).collect(),
            partial: row.try_get("", "is_partial")?,
        };
        if let Some(t) = catalogue.tables.get_mut(&table) {
            if row.try_get::<bool>("", "is_unique")? {
                t.unique.insert(index);
            } else {
                t.plain.insert(index);
            }
        }
    }

    for row in rows(
        db,
        "SELECT tc.relname::text AS table_name, a.attname::text AS column_name, \
                rt.relname::text AS target_table, ra.attname::text AS target_column, \
                c.confdeltype::text AS on_delete \
         FROM pg_constraint c \
         JOIN pg_class tc ON tc.oid = c.conrelid JOIN pg_class rt ON rt.oid = c.confrelid \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
         JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1] \
         JOIN pg_namespace n ON n.oid = c.connamespace \
         WHERE c.contype = 'f' AND n.nspname = current_schema()",
    )
    .await?
    {
        let table: String = row.try_get("", "table_name")?;
        let on_delete = match row.try_get::<String>("", "on_delete")?.as_str() {
            "c" => OnDelete::Cascade,
            "r" => OnDelete::Restrict,
            "n" => OnDelete::SetNull,
            "a" => OnDelete::NoAction,
            other => anyhow::bail!("{table}: unexpected ON DELETE code {other}"),
        };
        let foreign_key = ForeignKey {
            column: row.try_get("", "column_name")?,
            table: row.try_get("", "target_table")?,
            target: row.try_get("", "target_column")?,
            on_delete,
        };
        if let Some(t) = catalogue.tables.get_mut(&table) {
            t.foreign_keys.insert(foreign_key);
        }
    }
    Ok(catalogue)
}

async fn read_sqlite(db: &DatabaseConnection) -> anyhow::Result<Catalogue> {
    let mut catalogue = Catalogue::default();
    let names: Vec<String> = rows(
        db,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .await?
    .iter()
    .map(|row| row.try_get("", "name"))
    .collect::<Result<_, _>>()?;

    for name in names {
        let mut table = Table::default();
        let quoted = name.replace('\'', "''");
        for row in rows(
            db,
            &format!(
                "SELECT name, type, \"notnull\" AS not_null, pk FROM pragma_table_info('{quoted}')"
            ),
        )
        .await?
        {
            let declared: String = row.try_get("", "type")?;
            let declared = declared.to_ascii_lowercase();
            let kind = match declared.as_str() {
                "integer" | "bigint" => Kind::Integer,
                "smallint" => Kind::SmallInt,
                "text" => Kind::Text,
                t if t.starts_with("varchar") => Kind::Text,
                // TEXT affinity: the decimal string is kept digit for digit.
                "decimal_text" => Kind::Decimal(0, 0),
                "timestamp_with_timezone_text" => Kind::Timestamp,
                "boolean" => Kind::Boolean,
                "json_text" | "jsonb_text" => Kind::Json,
                other => anyhow::bail!("{name}: unexpected SQLite type {other}"),
            };
            // An INTEGER PRIMARY KEY is the rowid: never null, whatever
            // `notnull` says.
            let nullable =
                row.try_get::<i32>("", "not_null")? == 0 && row.try_get::<i32>("", "pk")? == 0;
            table
                .columns
                .insert(row.try_get("", "name")?, Column { kind, nullable });
        }

        for row in rows(db, &format!("SELECT name, \"unique\" AS is_unique, origin, partial FROM pragma_index_list('{quoted}')")).await? {
            let origin: String = row.try_get("", "origin")?;
            if origin == "pk" {
                continue;
            }
            let index_name: String = row.try_get("", "name")?;
            let columns = rows(
                db,
                &format!("SELECT name FROM pragma_index_info('{}') ORDER BY seqno", index_name.replace('\'', "''")),
            )
            .await?
            .iter()
            .map(|r| r.try_get("", "name"))
            .collect::<Result<Vec<String>, _>>()?;
            let index = Index { columns, partial: row.try_get::<i32>("", "partial")? == 1 };
            if row.try_get::<i32>("", "is_unique")? == 1 {
                table.unique.insert(index);
            } else {
                table.plain.insert(index);
            }
        }

        for row in rows(db, &format!("SELECT \"from\" AS column_name, \"table\" AS target_table, \"to\" AS target_column, on_delete FROM pragma_foreign_key_list('{quoted}')")).await? {
            let on_delete = match row.try_get::<String>("", "on_delete")?.as_str() {
                "CASCADE" => OnDelete::Cascade,
                "RESTRICT" => OnDelete::Restrict,
                "SET NULL" => OnDelete::SetNull,
                "NO ACTION" => OnDelete::NoAction,
                other => anyhow::bail!("{name}: unexpected ON DELETE {other}"),
            };
            table.foreign_keys.insert(ForeignKey {
                column: row.try_get("", "column_name")?,
                table: row.try_get("", "target_table")?,
                target: row.try_get("", "target_column")?,
                on_delete,
            });
        }
        catalogue.tables.insert(name, table);
    }
    Ok(catalogue)
}
