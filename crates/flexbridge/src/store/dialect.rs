//! What differs between SQLite and PostgreSQL in the store, named once:
//! which database a URL names, how its pools are opened, how a write
//! transaction begins, its migrations, and the row locks PostgreSQL needs
//! because several bridges write at once. Every statement elsewhere is SQL
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
type Step = (i64, &'static str, &'static str);

/// The migrations, embedded in the binary; each folder says the same in
/// its dialect, with the same numbers.
const SQLITE_MIGRATIONS: &[Step] = &[
    (
        1,
        "baseline",
        include_str!("../../migrations/sqlite/0001_baseline.sql"),
    ),
    (
        3,
        "outbox leases",
        include_str!("../../migrations/sqlite/0003_outbox_leases.sql"),
    ),
    (
        4,
        "pre engagement",
        include_str!("../../migrations/sqlite/0004_pre_engagement.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[Step] = &[
    (
        1,
        "baseline",
        include_str!("../../migrations/postgres/0001_baseline.sql"),
    ),
    (
        3,
        "outbox leases",
        include_str!("../../migrations/postgres/0003_outbox_leases.sql"),
    ),
    (
        4,
        "pre engagement",
        include_str!("../../migrations/postgres/0004_pre_engagement.sql"),
    ),
];

fn migrator(steps: &[Step]) -> Migrator {
    Migrator::with_migrations(
        steps
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

/// The migration numbers this version knows, in order (for `doctor`).
pub fn known_migrations(dialect: Dialect) -> Vec<i64> {
    let steps = match dialect {
        Dialect::Sqlite => SQLITE_MIGRATIONS,
        Dialect::Postgres => POSTGRES_MIGRATIONS,
    };
    steps.iter().map(|(version, _, _)| *version).collect()
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
            Err(MigrateError::VersionMismatch(1) | MigrateError::VersionMissing(2..=7)),
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
