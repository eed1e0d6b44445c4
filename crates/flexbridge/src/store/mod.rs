//! The store: customers, conversations, messages, the outbox and webhook
//! receipts in SQLite (the embedded default: one file, WAL) or PostgreSQL
//! (several bridges on one database), through sqlx's runtime queries. It
//! implements the core's storage port ([`crate::core::storage::Storage`],
//! in `port.rs`).
//!
//! One room per table, each a handle on [`Store`] with every statement on
//! its table: [`Store::customers`], [`Store::conversations`],
//! [`Store::messages`], [`Store::outbox`], [`Store::receipts`],
//! [`Store::attachments`]. A write
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
//! The store keeps two pools: a single-connection writer and a pool of
//! readers. Every write the running bridge makes goes through
//! [`group_commit`]: one task runs the writes waiting, many callers' at a
//! time, in one transaction on the writer, and answers each caller once it
//! committed; nothing else uses the writer pool (the start-up and
//! maintenance statements are group-commit writes too). SQLite allows one
//! writer at a time anyway; on PostgreSQL each bridge batches the same way,
//! which keeps its commits few.
//!
//! One code path over both databases: every statement is written once, in
//! SQL both accept — `$N` placeholders, `ON CONFLICT`, `RETURNING`,
//! partial indexes, `CASE` rather than arithmetic on booleans, `BIGINT`
//! integers for flags and times — and run through `sql` (which says why
//! neither sqlx's `Any` driver nor generics). What differs is named in
//! [`dialect`] (opening the pools, `BEGIN IMMEDIATE`, the migrations
//! folders `migrations/sqlite/` and `migrations/postgres/`, PostgreSQL's
//! row locks); [`lock`] keeps a PostgreSQL database to one bridge when
//! no Redis joins several.
//!
//! The outbox's leases (which bridge delivers a conversation's queue, and
//! until when) are columns of `conversations`, claimed in the name of this
//! store's [`LeaseHolder`]; [`outbox`] says how.

pub mod attachments;
pub mod conversations;
pub mod customers;
pub mod dialect;
pub mod group_commit;
pub mod leases;
pub mod lock;
pub mod messages;
pub mod outbox;
mod port;
pub mod receipts;
mod sql;

use std::sync::Arc;
use std::time::Duration;

pub use self::attachments::Attachments;
pub use self::conversations::Conversations;
pub use self::customers::Customers;
pub use self::dialect::{Dialect, database_file};
use self::group_commit::GroupCommit;
pub use self::leases::Leases;
pub use self::messages::Messages;
pub use self::outbox::OutboxQueue;
pub use self::receipts::Receipts;
pub(crate) use self::sql::{Conn, Pool};
use crate::core::storage::StorageError;

/// Errors of the store boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database URL is not valid: {0}")]
    BadUrl(#[source] sqlx::Error),
    #[error(
        "the database URL {0} names no database flexbridge knows: use sqlite:… or postgres://…"
    )]
    UnknownDatabase(String),
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

/// How long an outbox lease lasts unless renewed, by default
/// (`FLEXBRIDGE_OUTBOX_LEASE_MS`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// In whose name, and for how long, this store claims conversations'
/// outbox queues (`outbox`'s module doc says how leases work).
#[derive(Clone, Debug)]
pub struct LeaseHolder {
    /// This bridge process, as the `lease_owner` column names it: host,
    /// process id and a random part (two bridges of one process, as in the
    /// tests, differ).
    pub owner: Arc<str>,
    /// How long a claim or renewal holds, in milliseconds.
    pub lease_ms: i64,
}

impl LeaseHolder {
    /// A new owner, holding for `lease`.
    pub fn new(lease: Duration) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|host| host.trim().to_owned())
            .filter(|host| !host.is_empty())
            .unwrap_or_else(|| "bridge".to_owned());
        let owner = format!(
            "{host}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        Self {
            owner: owner.into(),
            lease_ms: crate::core::clock::duration_ms(lease).max(1),
        }
    }

    /// When a claim or renewal made at `now` ends.
    pub fn until(&self, now: i64) -> i64 {
        now.saturating_add(self.lease_ms)
    }
}

/// The bridge's database.
#[derive(Clone, Debug)]
pub struct Store {
    dialect: Dialect,
    /// One connection: every write transaction goes through it, in turn.
    writer: Pool,
    /// Readers; for an in-memory database this is the writer itself.
    reader: Pool,
    /// The writer task: the running bridge's writes, batched.
    group: GroupCommit,
    holder: LeaseHolder,
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates the database
    /// at `database_url` (`sqlite://path/to.db`, `sqlite::memory:`,
    /// `postgres://user:password@host/database`), claiming leases with
    /// the default lease.
    pub async fn connect(database_url: &str) -> StoreResult<Self> {
        Self::connect_with(database_url, LeaseHolder::new(DEFAULT_LEASE)).await
    }

    /// [`Store::connect`], claiming leases as `holder`.
    pub async fn connect_with(database_url: &str, holder: LeaseHolder) -> StoreResult<Self> {
        let (dialect, pools) = dialect::open(database_url).await?;
        let group = GroupCommit::start(dialect, pools.writer.clone());
        Ok(Self {
            dialect,
            writer: pools.writer,
            reader: pools.reader,
            group,
            holder,
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Who this store's leases are held by, and for how long.
    pub fn holder(&self) -> &LeaseHolder {
        &self.holder
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

    pub fn attachments(&self) -> Attachments<'_> {
        Attachments { store: self }
    }

    pub fn receipts(&self) -> Receipts<'_> {
        Receipts { store: self }
    }

    /// The outbox's leases (columns of `conversations`).
    pub fn leases(&self) -> Leases<'_> {
        Leases { store: self }
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
        sql::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// The migrations the database has applied (for `doctor`).
    pub async fn applied_migrations(&self) -> StoreResult<Vec<i64>> {
        dialect::applied_migrations(&self.reader).await
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

    /// Which database a store test runs on: every store test runs on
    /// both ([`on_both_databases!`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum TestDb {
        /// A file in a temporary directory.
        Sqlite,
        /// A fresh database on the test run's PostgreSQL server
        /// (`testbed::postgres`, started by the first test that needs it).
        Postgres,
    }

    /// What keeps a test's database alive; dropping it removes the
    /// database.
    #[derive(Debug)]
    pub enum DbGuard {
        Sqlite(tempfile::TempDir),
        Postgres(testbed::postgres::TestDatabase),
    }

    impl DbGuard {
        /// The database's URL.
        pub fn url(&self) -> String {
            match self {
                Self::Sqlite(dir) => format!("sqlite://{}", dir.path().join("test.db").display()),
                Self::Postgres(database) => database.url().to_owned(),
            }
        }
    }

    /// Runs each `async fn test(db: TestDb)` once per database, as the
    /// tests `test::sqlite` and `test::postgres`.
    macro_rules! on_both_databases {
        ($($test:ident),+ $(,)?) => {
            $(
                mod $test {
                    #[tokio::test]
                    async fn sqlite() {
                        super::$test($crate::store::test_support::TestDb::Sqlite).await;
                    }

                    #[tokio::test]
                    async fn postgres() {
                        super::$test($crate::store::test_support::TestDb::Postgres).await;
                    }
                }
            )+
        };
    }
    pub(crate) use on_both_databases;

    /// A fresh, empty database of `db`'s kind (dropped with the guard).
    pub async fn temp_database(db: TestDb) -> DbGuard {
        match db {
            TestDb::Sqlite => DbGuard::Sqlite(tempfile::tempdir().expect("temp dir")),
            TestDb::Postgres => DbGuard::Postgres(
                tokio::task::spawn_blocking(testbed::postgres::shared_database)
                    .await
                    .expect("joined")
                    .expect("a database on the test PostgreSQL server"),
            ),
        }
    }

    /// A fresh store on `db` (dropped with the guard).
    pub async fn temp_store(db: TestDb) -> (Store, DbGuard) {
        let guard = temp_database(db).await;
        let store = reopen(&guard).await;
        (store, guard)
    }

    /// The store in `guard`'s database (as a restarted bridge opens it).
    pub async fn reopen(guard: &DbGuard) -> Store {
        Store::connect(&guard.url()).await.expect("store")
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
            attachment: None,
            backend,
            rate_limit: None,
            now,
        }
    }
}
