//! What is SQLite's own in the store, named once: the connection and pool
//! types, how a write transaction begins, the migrations, and the lock
//! that keeps a second bridge off the file ([`DatabaseLock`]). Every
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

/// The migrations, embedded in the binary: version, description, SQL, and
/// whether it runs outside sqlx's transaction (a migration that rebuilds a
/// table turns foreign keys off first, which SQLite ignores inside a
/// transaction; it opens and commits its own).
const MIGRATIONS: &[(i64, &str, &str, bool)] = &[
    (
        1,
        "baseline",
        include_str!("../../migrations/sqlite/0001_baseline.sql"),
        false,
    ),
    (
        2,
        "reliability",
        include_str!("../../migrations/sqlite/0002_reliability.sql"),
        true,
    ),
    (
        4,
        "pre engagement",
        include_str!("../../migrations/sqlite/0004_pre_engagement.sql"),
        false,
    ),
];

fn migrator() -> Migrator {
    migrator_up_to(i64::MAX)
}

/// The migrations up to `version` (tests build older schemas with it).
pub(crate) fn migrator_up_to(version: i64) -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .filter(|(v, ..)| *v <= version)
            .map(|(version, description, sql, no_tx)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sqlx::AssertSqlSafe(*sql).into_sql_str(),
                    *no_tx,
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
        Err(MigrateError::VersionMismatch(1) | MigrateError::VersionMissing(3..=7)) => {
            Err(StoreError::PreReleaseSchema)
        }
        Err(error) => Err(StoreError::Migrate(error)),
    }
}

/// A running bridge's claim on its SQLite file: an exclusive advisory
/// lock (`flock`, through `std::fs::File::try_lock`) held until it is
/// dropped. Two bridges on one file would both deliver its outbox to Flex
/// (duplicates), so the second is refused at start. SQLite's own locks
/// (`fcntl`) are separate from this one, so readers — `flexbridge
/// doctor`, a test's own connection — still open the file. An in-memory
/// database has nothing to lock. (Several instances share PostgreSQL
/// instead, with leases.)
#[derive(Debug)]
pub struct DatabaseLock {
    _file: Option<std::fs::File>,
}

impl DatabaseLock {
    /// Takes the lock on the file `database_url` names (creating an empty
    /// file, which SQLite then makes a database, if there is none yet).
    pub fn acquire(database_url: &str) -> Result<Self, StoreError> {
        let Some(path) = database_file(database_url)? else {
            return Ok(Self { _file: None });
        };
        let path = path.as_path();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|error| StoreError::Lock {
                path: path.display().to_string(),
                reason: error.to_string(),
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: Some(file) }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse {
                path: path.display().to_string(),
            }),
            Err(std::fs::TryLockError::Error(error)) => Err(StoreError::Lock {
                path: path.display().to_string(),
                reason: error.to_string(),
            }),
        }
    }
}

/// The file `database_url` names (`None` for an in-memory database).
pub fn database_file(database_url: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
    use std::str::FromStr as _;
    let options =
        sqlx::sqlite::SqliteConnectOptions::from_str(database_url).map_err(StoreError::BadUrl)?;
    let in_memory = database_url.contains(":memory:") || database_url.contains("mode=memory");
    let path = options.get_filename();
    Ok((!in_memory && !path.as_os_str().is_empty()).then(|| path.to_path_buf()))
}

#[cfg(test)]
mod tests;
