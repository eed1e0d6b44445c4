//! The store: customers, conversations, messages, the outbox and webhook
//! receipts in SQLite (sqlx, runtime queries, WAL, foreign keys on). It
//! implements the core's storage port ([`crate::core::storage::Storage`],
//! in `port.rs`).
//!
//! One room per table, each a handle on [`Store`] with every statement on
//! its table: [`Store::customers`], [`Store::conversations`],
//! [`Store::messages`], [`Store::outbox`], [`Store::receipts`]. A write
//! that spans tables (accepting a customer message, settling a job) is one
//! transaction that calls each table's statements in turn; no triggers.
//!
//! Everything the bridge promises about "nothing lost, nothing twice" rests
//! here: a customer message and its outbox row commit in one transaction;
//! uniqueness lives in the schema (`UNIQUE(customer_id, client_msg_id)`,
//! `UNIQUE(flex_message)`, one live conversation per customer, webhook
//! receipts keyed by idempotency key) and duplicates are detected by
//! `INSERT … ON CONFLICT DO NOTHING` + `rows_affected()`.
//!
//! SQLite allows one writer at a time, so the store keeps two pools: a
//! single-connection writer and a pool of readers (WAL readers never block
//! the writer). Every write the running bridge makes goes through
//! [`group_commit`]: one task runs the writes waiting, many callers' at a
//! time, in one `BEGIN IMMEDIATE` transaction on the writer, and answers
//! each caller once it committed; nothing else uses the writer pool (the
//! start-up and maintenance statements are group-commit writes too).
//!
//! Dialect: the SQL is what PostgreSQL accepts too — `$N` placeholders,
//! `ON CONFLICT`, `RETURNING`, partial indexes, `CASE` rather than
//! arithmetic on booleans, integers for flags. What is SQLite's own is
//! named in `dialect` (the connection type, `BEGIN IMMEDIATE`, the
//! migrations folder), so a PostgreSQL store adds a dialect, not a rewrite.

pub mod conversations;
pub mod customers;
mod dialect;
pub mod group_commit;
pub mod messages;
pub mod outbox;
mod port;
pub mod receipts;

use std::str::FromStr as _;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use self::conversations::Conversations;
pub use self::customers::Customers;
pub(crate) use self::dialect::{Conn, Pool};
pub use self::dialect::{DatabaseLock, database_file};
use self::group_commit::GroupCommit;
pub use self::messages::Messages;
pub use self::outbox::OutboxQueue;
pub use self::receipts::Receipts;
use crate::core::storage::StorageError;

/// Errors of the store boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database URL is not a valid SQLite URL: {0}")]
    BadUrl(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("applying the database migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error(
        "the database was made by a pre-release flexbridge whose migrations were squashed into \
         one baseline; delete it (and its -wal/-shm files) and start again"
    )]
    PreReleaseSchema,
    #[error("the database holds a value this version cannot read: {0}")]
    Corrupt(String),
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error(
        "another flexbridge is running on the database {path}: one bridge per SQLite file \
         (stop the other one, or give this one its own DATABASE_URL; several instances \
         share PostgreSQL)"
    )]
    InUse { path: String },
    #[error("cannot lock the database {path}: {reason}")]
    Lock { path: String, reason: String },
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Whether the same write would fail again: it breaks a constraint,
    /// or reads a row this version cannot.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(error)) => {
                !matches!(error.kind(), sqlx::error::ErrorKind::Other)
            }
            Self::Corrupt(_) => true,
            _ => false,
        }
    }
}

impl From<StoreError> for StorageError {
    fn from(error: StoreError) -> Self {
        if error.is_permanent() {
            StorageError::permanent(error)
        } else {
            StorageError::new(error)
        }
    }
}

/// A column that does not hold what this version writes.
pub(crate) fn corrupt(column: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{column}: {error}"))
}

/// The bridge's database.
#[derive(Clone, Debug)]
pub struct Store {
    /// One connection: every write transaction goes through it, in turn.
    writer: Pool,
    /// Readers; for an in-memory database this is the writer itself.
    reader: Pool,
    /// The writer task: the running bridge's writes, batched.
    group: GroupCommit,
}

/// How many reader connections to open.
const READERS: u32 = 4;

/// A pool of `size` connections, all opened at once and kept. A SQLite
/// file connection does not go stale, so none is pinged before use, closed
/// when idle or replaced with age: that saves a round trip per statement,
/// and no acquire ever waits for a connection to be made — so a paused
/// tokio clock (tests) cannot time one out either.
fn pool_options(size: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(size)
        .min_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(false)
        .idle_timeout(None)
        .max_lifetime(None)
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `database_url`
    /// (`sqlite://path/to.db`, `sqlite::memory:`).
    pub async fn connect(database_url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(database_url)
            .map_err(StoreError::BadUrl)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let writer = pool_options(1).connect_with(options.clone()).await?;
        dialect::migrate(&writer).await?;
        let in_memory = database_url.contains(":memory:") || database_url.contains("mode=memory");
        let reader = if in_memory {
            writer.clone()
        } else {
            pool_options(READERS)
                .connect_with(options.read_only(true))
                .await?
        };
        let group = GroupCommit::start(writer.clone());
        Ok(Self {
            writer,
            reader,
            group,
        })
    }

    pub fn customers(&self) -> Customers<'_> {
        Customers { store: self }
    }

    pub fn conversations(&self) -> Conversations<'_> {
        Conversations { store: self }
    }

    pub fn messages(&self) -> Messages<'_> {
        Messages { store: self }
    }

    pub fn outbox(&self) -> OutboxQueue<'_> {
        OutboxQueue { store: self }
    }

    pub fn receipts(&self) -> Receipts<'_> {
        Receipts { store: self }
    }

    /// Runs `write` on `state` in the next group commit (a transaction
    /// shared with the other writes waiting); returns its result once that
    /// transaction committed.
    pub(crate) async fn write<S, T>(
        &self,
        state: S,
        write: group_commit::WriteFn<S, T>,
    ) -> StoreResult<T>
    where
        S: Send + Sync + 'static,
        T: Send + 'static,
    {
        self.group.write(state, write).await
    }

    /// How many write transactions the store has committed (its group
    /// commits; for diagnostics and tests).
    pub fn commits(&self) -> u64 {
        self.group.commits()
    }

    pub(crate) fn reader(&self) -> &Pool {
        &self.reader
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// Closes both pools (the writer task gives its connection back
    /// first), letting SQLite checkpoint the WAL.
    pub async fn close(&self) {
        self.group.release().await;
        self.reader.close().await;
        self.writer.close().await;
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::core::backend::BackendName;
    use crate::core::ids::{ClientMessageId, CustomerId, CustomerName, MessageBody, ResumeToken};
    use crate::core::model::ConversationRecord;
    use crate::core::storage::IncomingCustomerMessage;

    /// The backend name the store tests open conversations with.
    pub const CHAT: BackendName = BackendName::from_static("chat");
    /// Another backend name.
    pub const CONVERSATIONS: BackendName = BackendName::from_static("conversations");

    /// A fresh store in a temporary directory (dropped with the guard).
    pub async fn temp_store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = reopen(&dir).await;
        (store, dir)
    }

    /// The store in `dir` (as a restarted bridge opens it).
    pub async fn reopen(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        Store::connect(&url).await.expect("store")
    }

    /// A new customer named Ada.
    pub async fn customer(store: &Store) -> CustomerId {
        let id = CustomerId::generate();
        let name = CustomerName::parse("Ada").expect("a name");
        store
            .customers()
            .create(
                &id,
                &name,
                &ResumeToken::generate().hash(),
                &crate::core::pre_engagement::PreEngagement::default(),
                0,
            )
            .await
            .expect("a customer");
        id
    }

    /// A new customer whose first message (`m1`, "hello") opens a
    /// conversation with `backend` (not yet opened in Flex).
    pub async fn opening(store: &Store, backend: BackendName) -> ConversationRecord {
        let id = customer(store).await;
        writes(store, &id, "m1", "hello", backend, 0).await;
        store
            .conversations()
            .latest_of(&id)
            .await
            .expect("read")
            .expect("a conversation")
    }

    /// `customer` sends `body` as client message `client_msg_id` (accepted).
    pub async fn writes(
        store: &Store,
        customer: &CustomerId,
        client_msg_id: &str,
        body: &str,
        backend: BackendName,
        now: i64,
    ) {
        store
            .messages()
            .accept(incoming(customer, client_msg_id, body, backend, now))
            .await
            .expect("accepted");
    }

    /// A customer message as the core hands it to the store.
    pub fn incoming(
        customer: &CustomerId,
        client_msg_id: &str,
        body: &str,
        backend: BackendName,
        now: i64,
    ) -> IncomingCustomerMessage {
        IncomingCustomerMessage {
            customer: customer.clone(),
            author: "Ada".to_owned(),
            client_msg_id: ClientMessageId::parse(client_msg_id).expect("an id"),
            body: MessageBody::parse(body).expect("a body"),
            backend,
            now,
        }
    }
}
