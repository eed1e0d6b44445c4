//! What is SQLite's own in the store, named once: the connection and pool
//! types, how a write transaction begins, and the migrations. Every
//! statement elsewhere is SQL that PostgreSQL accepts too.

use std::borrow::Cow;

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};

use super::StoreError;

/// The database.
pub type Db = sqlx::Sqlite;
/// A connection inside a write transaction.
pub type Conn = sqlx::SqliteConnection;
/// A pool of connections.
pub type Pool = sqlx::SqlitePool;

/// How a group commit's transaction begins: taking SQLite's write lock at
/// once, so a batch never fails half-way on a lock upgrade.
pub const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// The migrations, embedded in the binary.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "baseline",
        include_str!("../../migrations/sqlite/0001_baseline.sql"),
    ),
    (
        4,
        "pre engagement",
        include_str!("../../migrations/sqlite/0004_pre_engagement.sql"),
    ),
];

fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sqlx::AssertSqlSafe(*sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Brings the schema up to date. A database of the pre-release schema
/// (its migration 1 differs, or it applied migrations this version does
/// not have) is refused with a message saying what to do.
pub async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    match migrator().run(pool).await {
        Ok(()) => Ok(()),
        Err(MigrateError::VersionMismatch(1) | MigrateError::VersionMissing(2..=7)) => {
            Err(StoreError::PreReleaseSchema)
        }
        Err(error) => Err(StoreError::Migrate(error)),
    }
}
