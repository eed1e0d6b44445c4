//! What differs between SQLite and PostgreSQL in the store, named once:
//! which database a URL names, how its pools are opened, how a write
//! transaction begins, its migrations, the row locks PostgreSQL needs
//! because several bridges write at once, and the lock that keeps a
//! second bridge off a SQLite file ([`FileLock`]). Every statement elsewhere is SQL
//! both accept, run through `super::sql`.
//!
//! - **SQLite** (the embedded default, one bridge per file): WAL with
//!   `synchronous=NORMAL`; one writer connection (SQLite has one writer)
//!   and read-only readers. A group commit's transaction is `BEGIN
//!   IMMEDIATE`, taking the write lock at once, so it is the only writer
//!   and needs no row lock.
//! - **PostgreSQL** (several bridges on one database): one writer
//!   connection per bridge too (its group commit batches the same way,
//!   which is what keeps commits cheap), a pool of readers, a plain
//!   `BEGIN` (READ COMMITTED). Writes of several bridges run side by side,
//!   so a write that reads a customer's counter or live conversation and
//!   then writes from it locks the customer's row first
//!   ([`lock_customer`]): two bridges accepting messages of one customer
//!   take turns, and five tabs' first messages open one conversation.

use std::borrow::Cow;
use std::str::FromStr as _;
use std::sync::OnceLock;
use std::time::Duration;

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::sql::{self, Conn, Pool};
use super::{StoreError, StoreResult};
use crate::core::ids::{CustomerId, RemoteChannel};

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The database `url` names: `sqlite:` or `postgres://` / `postgresql://`.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }

    /// How a group commit's transaction begins.
    pub fn begin_write(self) -> &'static str {
        match self {
            // Take SQLite's write lock at once, so a batch never fails
            // half-way on a lock upgrade.
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }
}

/// The store's pools.
pub struct Pools {
    /// One connection, for the group commit.
    pub writer: Pool,
    /// Readers (for an in-memory SQLite database, the writer itself).
    pub reader: Pool,
}

/// How many reader connections SQLite opens.
const SQLITE_READERS: u32 = 4;
/// At most this many reader connections to PostgreSQL.
const POSTGRES_READERS: u32 = 8;
/// How long a PostgreSQL statement waits for a connection (and so for the
/// server to answer a connect) before it fails: a stopped server fails
/// writes (customers get a retryable `internal`) rather than hanging them.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// A SQLite pool of `size` connections, all opened at once and kept. A
/// SQLite file connection does not go stale, so none is pinged before use,
/// closed when idle or replaced with age: that saves a round trip per
/// statement, and no acquire ever waits for a connection to be made — so a
/// paused tokio clock (tests) cannot time one out either.
fn sqlite_pool_options(size: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(size)
        .min_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(false)
        .idle_timeout(None)
        .max_lifetime(None)
}

/// A PostgreSQL pool of up to `size` connections. A server restart breaks
/// them, so each is checked before use and replaced when it fails.
fn postgres_pool_options(size: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(size)
        .min_connections(0)
        .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
        .test_before_acquire(true)
}

/// Opens the pools of the database at `url` (creating a SQLite file if
/// needed) and brings its schema up to date.
pub async fn open(url: &str) -> StoreResult<(Dialect, Pools)> {
    match Dialect::of_url(url) {
        Some(Dialect::Sqlite) => Ok((Dialect::Sqlite, open_sqlite(url).await?)),
        Some(Dialect::Postgres) => Ok((Dialect::Postgres, open_postgres(url).await?)),
        None => Err(StoreError::UnknownDatabase(redact(url))),
    }
}

async fn open_sqlite(url: &str) -> StoreResult<Pools> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(StoreError::BadUrl)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let writer = sqlite_pool_options(1).connect_with(options.clone()).await?;
    migrate(&Pool::Sqlite(writer.clone())).await?;
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    let reader = if in_memory {
        writer.clone()
    } else {
        sqlite_pool_options(SQLITE_READERS)
            .connect_with(options.read_only(true))
            .await?
    };
    Ok(Pools {
        writer: Pool::Sqlite(writer),
        reader: Pool::Sqlite(reader),
    })
}

async fn open_postgres(url: &str) -> StoreResult<Pools> {
    let options = postgres_options(url)?;
    let writer = postgres_pool_options(1)
        .connect_with(options.clone())
        .await?;
    migrate(&Pool::Postgres(writer.clone())).await?;
    let reader = postgres_pool_options(POSTGRES_READERS).connect_lazy_with(options);
    Ok(Pools {
        writer: Pool::Postgres(writer),
        reader: Pool::Postgres(reader),
    })
}

/// The connection options `url` gives, named `flexbridge` in
/// `pg_stat_activity`.
pub fn postgres_options(url: &str) -> StoreResult<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(url)
        .map_err(StoreError::BadUrl)?
        .application_name("flexbridge"))
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// A statement written once with `{lock}` where PostgreSQL's row-lock
/// clause goes (`FOR UPDATE`, `FOR UPDATE SKIP LOCKED`), and nothing on
/// SQLite, whose write transaction already excludes every other writer;
/// each dialect's text is built once.
pub struct Locking {
    template: &'static str,
    lock: &'static str,
    sqlite: OnceLock<String>,
    postgres: OnceLock<String>,
}

/// Bridges sharing a database lock rows in one order (by `id`): two
/// batches locking the same rows cannot deadlock.
pub const FOR_UPDATE: &str = "FOR UPDATE";
/// A lease claim never waits for a row another bridge's open transaction
/// holds: claims of the same conversations in two batches, in other
/// orders, would deadlock (PostgreSQL breaks it after a second, a second
/// in which no lease is renewed). A row skipped counts as held, and the
/// claim is tried again.
pub const SKIP_LOCKED: &str = "FOR UPDATE SKIP LOCKED";

impl Locking {
    pub const fn new(template: &'static str, lock: &'static str) -> Self {
        Self {
            template,
            lock,
            sqlite: OnceLock::new(),
            postgres: OnceLock::new(),
        }
    }

    /// The statement for `conn`'s database.
    pub fn on(&'static self, conn: &Conn<'_>) -> &'static str {
        match conn {
            Conn::Sqlite(_) => self
                .sqlite
                .get_or_init(|| self.template.replace("{lock}", "")),
            Conn::Postgres(_) => self
                .postgres
                .get_or_init(|| self.template.replace("{lock}", self.lock)),
        }
    }
}

/// Locks `customer`'s row until the write transaction ends, before a
/// write that reads their counter or live conversation and writes from
/// it. PostgreSQL only: SQLite's write transaction already excludes every
/// other writer, so there it costs nothing.
pub async fn lock_customer(conn: &mut Conn<'_>, customer: &CustomerId) -> StoreResult<()> {
    if let Conn::Postgres(_) = conn {
        sql::query("SELECT 1 FROM customers WHERE id = $1 FOR UPDATE")
            .bind(customer.as_str())
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// [`lock_customer`] for the customer of `channel`'s newest conversation
/// (an agent's message: the webhook names the channel only).
pub async fn lock_customer_of_channel(
    conn: &mut Conn<'_>,
    channel: &RemoteChannel,
) -> StoreResult<()> {
    if let Conn::Postgres(_) = conn {
        sql::query(
            "SELECT 1 FROM customers WHERE id = (SELECT customer_id FROM conversations
                                               WHERE flex_channel = $1
                                               ORDER BY created_at DESC LIMIT 1)
             FOR UPDATE",
        )
        .bind(channel.as_str())
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Whether `error` may have left the connection unusable (rather than one
/// statement refused): the group commit then takes another.
pub fn is_connection_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed => true,
        // PostgreSQL's class 08 (connection exception) and 57P (operator
        // intervention: the server shutting down or restarting).
        sqlx::Error::Database(error) => error
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// One migration: its number, description and SQL.
///
/// A migration that runs outside sqlx's transaction (SQLite's rebuild of
/// a table turns foreign keys off first, which SQLite ignores inside a
/// transaction) opens and commits its own.
type Step = (i64, &'static str, &'static str, bool);

/// The migrations, embedded in the binary; each folder says the same in
/// its dialect, with the same numbers.
const SQLITE_MIGRATIONS: &[Step] = &[
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
        3,
        "scale out",
        include_str!("../../migrations/sqlite/0003_scale_out.sql"),
        false,
    ),
    (
        4,
        "pre engagement",
        include_str!("../../migrations/sqlite/0004_pre_engagement.sql"),
        false,
    ),
    (
        5,
        "attachments",
        include_str!("../../migrations/sqlite/0005_attachments.sql"),
        false,
    ),
];
const POSTGRES_MIGRATIONS: &[Step] = &[
    (
        1,
        "baseline",
        include_str!("../../migrations/postgres/0001_baseline.sql"),
        false,
    ),
    (
        2,
        "reliability",
        include_str!("../../migrations/postgres/0002_reliability.sql"),
        false,
    ),
    (
        3,
        "scale out",
        include_str!("../../migrations/postgres/0003_scale_out.sql"),
        false,
    ),
    (
        4,
        "pre engagement",
        include_str!("../../migrations/postgres/0004_pre_engagement.sql"),
        false,
    ),
    (
        5,
        "attachments",
        include_str!("../../migrations/postgres/0005_attachments.sql"),
        false,
    ),
];

fn migrator(steps: &[Step]) -> Migrator {
    migrator_up_to(steps, i64::MAX)
}

/// The SQLite migrations up to `version` (tests build older schemas).
#[cfg(test)]
pub(crate) fn sqlite_migrator_up_to(version: i64) -> Migrator {
    migrator_up_to(SQLITE_MIGRATIONS, version)
}

fn migrator_up_to(steps: &[Step], version: i64) -> Migrator {
    Migrator::with_migrations(
        steps
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

/// The migration numbers this version knows, in order (for `doctor`).
pub fn known_migrations(dialect: Dialect) -> Vec<i64> {
    let steps = match dialect {
        Dialect::Sqlite => SQLITE_MIGRATIONS,
        Dialect::Postgres => POSTGRES_MIGRATIONS,
    };
    steps.iter().map(|(version, ..)| *version).collect()
}

/// Brings the schema up to date (PostgreSQL: under sqlx's advisory lock,
/// so bridges starting together migrate once). A SQLite database of the
/// pre-release schema (its migration 1 differs, or it applied migrations
/// this version does not have) is refused with a message saying what to
/// do.
pub async fn migrate(pool: &Pool) -> StoreResult<()> {
    let ran = match pool {
        Pool::Sqlite(pool) => migrator(SQLITE_MIGRATIONS).run(pool).await,
        Pool::Postgres(pool) => migrator(POSTGRES_MIGRATIONS).run(pool).await,
    };
    match (ran, pool) {
        (Ok(()), _) => Ok(()),
        (
            Err(MigrateError::VersionMismatch(1) | MigrateError::VersionMissing(5..=7)),
            Pool::Sqlite(_),
        ) => Err(StoreError::PreReleaseSchema),
        (Err(error), _) => Err(StoreError::Migrate(error)),
    }
}

/// The migrations the database has applied, in order (for `doctor`).
pub async fn applied_migrations(pool: &Pool) -> StoreResult<Vec<i64>> {
    Ok(
        sql::query_scalar::<i64>("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(pool)
            .await?,
    )
}

/// A running bridge's claim on its SQLite file: an exclusive advisory
/// lock (`flock`, through `std::fs::File::try_lock`) held until it is
/// dropped. Two bridges on one file would both deliver its outbox to Flex
/// (duplicates), so the second is refused at start. SQLite's own locks
/// (`fcntl`) are separate from this one, so readers — `flexbridge
/// doctor`, a test's own connection — still open the file. An in-memory
/// database has nothing to lock. (Several instances share PostgreSQL
/// instead, with leases; `super::lock` holds this one for SQLite.)
#[derive(Debug)]
pub struct FileLock {
    _file: Option<std::fs::File>,
}

impl FileLock {
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

/// The file `database_url` names (`None` for an in-memory SQLite
/// database, or a server's: PostgreSQL).
pub fn database_file(database_url: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
    if Dialect::of_url(database_url) != Some(Dialect::Sqlite) {
        return Ok(None);
    }
    use std::str::FromStr as _;
    let options =
        sqlx::sqlite::SqliteConnectOptions::from_str(database_url).map_err(StoreError::BadUrl)?;
    let in_memory = database_url.contains(":memory:") || database_url.contains("mode=memory");
    let path = options.get_filename();
    Ok((!in_memory && !path.as_os_str().is_empty()).then(|| path.to_path_buf()))
}

#[cfg(test)]
mod tests;
