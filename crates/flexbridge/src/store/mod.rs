//! The store: customers, conversations, messages, outbox and webhook
//! receipts in SQLite (sqlx, runtime queries, WAL, foreign keys on).
//!
//! Everything the bridge promises about "nothing lost, nothing twice" rests
//! on this module: a customer message and its outbox row commit in one
//! transaction; uniqueness lives in the schema (`UNIQUE(customer_id,
//! client_msg_id)`, `UNIQUE(twilio_message_sid)`, one live conversation per
//! customer, webhook receipts keyed by idempotency key) and duplicates are
//! detected by `INSERT … ON CONFLICT DO NOTHING` + `rows_affected()`.
//!
//! SQLite allows one writer at a time, so the store keeps two pools: a
//! single-connection writer and a pool of readers (WAL readers never block
//! the writer). Every write the running bridge makes goes through
//! [`group_commit`]: one task runs the writes waiting, many callers' at a
//! time, in one `BEGIN IMMEDIATE` transaction on the writer, and answers
//! each caller once it committed. Only start-up and maintenance statements
//! (migrations, queueing the re-attachment of open conversations, pruning
//! receipts) use the writer pool directly.
//!
//! The SQL sticks to what PostgreSQL also accepts (`ON CONFLICT`,
//! `RETURNING`, partial indexes) so a `migrations/postgres/` dialect can be
//! added for several bridge instances (DESIGN §6); that is future work.
//!
//! - [`group_commit`]: the writer task, batching writes into transactions.
//! - [`customers`]: identities and resume-token hashes.
//! - [`messages`]: accepting customer messages, replay, history.
//! - [`inbound`]: applying Flex events (agent messages, joins, chat end).
//! - [`outbox`]: the delivery queue's rows.

pub mod customers;
pub mod group_commit;
pub mod inbound;
pub mod messages;
pub mod outbox;

use std::borrow::Cow;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row as _, SqliteConnection};

use self::group_commit::GroupCommit;
use crate::core::conversation::ConversationState;
use crate::core::ids::{ChannelSid, ConversationId, CustomerId, Seq};
use crate::flex::{BackendKind, FlexRef};

/// Errors of the store boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database URL is not a valid SQLite URL: {0}")]
    BadUrl(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("applying the database migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the database holds a value this version cannot read: {0}")]
    Corrupt(String),
    #[error("the store's writer has stopped")]
    WriterGone,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The migrations, embedded in the binary (one folder per SQL dialect).
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "outbox sync",
        include_str!("../../migrations/sqlite/0002_outbox_sync.sql"),
    ),
    (
        3,
        "flex ref",
        include_str!("../../migrations/sqlite/0003_flex_ref.sql"),
    ),
    (
        4,
        "last_seq trigger",
        include_str!("../../migrations/sqlite/0004_last_seq_trigger.sql"),
    ),
    (
        5,
        "queue delivery trigger",
        include_str!("../../migrations/sqlite/0005_queue_delivery_trigger.sql"),
    ),
    (
        6,
        "delivery decided trigger",
        include_str!("../../migrations/sqlite/0006_delivery_decided_trigger.sql"),
    ),
    (
        7,
        "outbox close",
        include_str!("../../migrations/sqlite/0007_outbox_close.sql"),
    ),
];

fn migrator() -> Migrator {
    Migrator::with_migrations(
        SQLITE_MIGRATIONS
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

use sqlx::SqlSafeStr as _;

/// The bridge's database.
#[derive(Clone, Debug)]
pub struct Store {
    /// One connection: every write transaction goes through it, in turn.
    writer: SqlitePool,
    /// Readers; for an in-memory database this is the writer itself.
    reader: SqlitePool,
    /// The writer task: the running bridge's writes, batched.
    group: GroupCommit,
}

/// How many reader connections to open.
const READERS: u32 = 4;

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
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        migrator().run(&writer).await?;
        let in_memory = database_url.contains(":memory:") || database_url.contains("mode=memory");
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READERS)
                .acquire_timeout(Duration::from_secs(30))
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

    /// Runs `write` on `state` in the next group commit (a `BEGIN IMMEDIATE`
    /// transaction shared with the other writes waiting); returns its
    /// result once that transaction committed.
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

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// Closes both pools, letting SQLite checkpoint the WAL.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Customer,
    Agent,
    System,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Agent => "agent",
            Self::System => "system",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        match s {
            "customer" => Ok(Self::Customer),
            "agent" => Ok(Self::Agent),
            "system" => Ok(Self::System),
            other => Err(StoreError::Corrupt(format!("message direction {other:?}"))),
        }
    }
}

/// A stored message, as replayed to the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub id: i64,
    pub seq: Seq,
    pub conversation_id: ConversationId,
    pub direction: Direction,
    pub author: String,
    pub body: String,
    pub client_msg_id: Option<String>,
    pub created_at: i64,
}

/// The columns [`MessageRecord::from_row`] reads (a macro so `concat!` can
/// build `&'static str` queries from it).
macro_rules! message_columns {
    () => {
        "id, seq, conversation_id, direction, author, body, client_msg_id, created_at"
    };
}
pub(crate) use message_columns;

impl MessageRecord {
    fn from_row(row: &SqliteRow) -> StoreResult<Self> {
        Ok(Self {
            id: row.try_get("id")?,
            seq: Seq(row.try_get("seq")?),
            conversation_id: parse_id(row, "conversation_id", ConversationId::parse)?,
            direction: Direction::parse(row.try_get("direction")?)?,
            author: row.try_get("author")?,
            body: row.try_get("body")?,
            client_msg_id: row.try_get("client_msg_id")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// A stored conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRecord {
    pub id: ConversationId,
    pub customer_id: CustomerId,
    pub state: ConversationState,
    /// The backend that opens (opened) it and serves it to its end.
    pub backend: BackendKind,
    pub flex_channel_sid: Option<ChannelSid>,
    /// What that backend recorded when it opened it (opaque here).
    pub flex_ref: Option<FlexRef>,
    pub agent_name: Option<String>,
    pub created_at: i64,
}

/// The columns [`ConversationRecord::from_row`] reads.
macro_rules! conversation_columns {
    () => {
        "id, customer_id, state, backend, flex_channel_sid, flex_ref, agent_name, created_at"
    };
}
pub(crate) use conversation_columns;

impl ConversationRecord {
    fn from_row(row: &SqliteRow) -> StoreResult<Self> {
        let state: &str = row.try_get("state")?;
        let channel: Option<&str> = row.try_get("flex_channel_sid")?;
        Ok(Self {
            id: parse_id(row, "id", ConversationId::parse)?,
            customer_id: parse_id(row, "customer_id", CustomerId::parse)?,
            state: ConversationState::parse(state)
                .ok_or_else(|| StoreError::Corrupt(format!("conversation state {state:?}")))?,
            backend: backend_of(row)?,
            flex_channel_sid: channel
                .map(|sid| {
                    ChannelSid::parse(sid)
                        .map_err(|e| StoreError::Corrupt(format!("flex_channel_sid: {e}")))
                })
                .transpose()?,
            flex_ref: flex_ref_of(row)?,
            agent_name: row.try_get("agent_name")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// A conversation's `backend` column.
fn backend_of(row: &SqliteRow) -> StoreResult<BackendKind> {
    parse_id(row, "backend", |raw| {
        BackendKind::parse(raw).ok_or_else(|| format!("unknown backend {raw:?}"))
    })
}

/// A conversation's `flex_ref` column.
fn flex_ref_of(row: &SqliteRow) -> StoreResult<Option<FlexRef>> {
    let text: Option<&str> = row.try_get("flex_ref")?;
    text.map(|text| FlexRef::parse(text).map_err(|e| StoreError::Corrupt(format!("flex_ref: {e}"))))
        .transpose()
}

fn parse_id<T, E: std::fmt::Display>(
    row: &SqliteRow,
    column: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> StoreResult<T> {
    let raw: &str = row.try_get(column)?;
    parse(raw).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// The conversation a new message goes to.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// This one (a customer message opening it).
    Conversation(&'a ConversationId),
    /// The newest conversation of a Flex channel (an agent's message).
    NewestOf(&'a ChannelSid),
    /// The customer's live conversation; nothing is inserted without one.
    LiveOf(&'a CustomerId),
}

/// One message to insert (inside the caller's write transaction).
struct NewMessage<'a> {
    into: Target<'a>,
    direction: Direction,
    author: &'a str,
    body: &'a str,
    client_msg_id: Option<&'a str>,
    twilio_message_sid: Option<&'a str>,
    delivery: Option<&'static str>,
    now: i64,
}

/// The INSERT of [`insert_message`], up to the conversation it picks;
/// `$also`: columns returned before the message's (e.g. `"customer_id, "`).
macro_rules! insert_message_sql {
    ($conversation:literal) => {
        insert_message_sql!($conversation, "")
    };
    ($conversation:literal, $also:literal) => {
        concat!(
            "INSERT INTO messages (customer_id, conversation_id, seq, direction, author, body,
                                   client_msg_id, twilio_message_sid, delivery, created_at)
             SELECT cu.id, c.id, cu.last_seq + 1, ?, ?, ?, ?, ?, ?, ?
             FROM conversations c JOIN customers cu ON cu.id = c.customer_id
             WHERE ",
            $conversation,
            " ON CONFLICT DO NOTHING RETURNING ",
            $also,
            message_columns!()
        )
    };
}

/// Inserts a message with its customer's next `seq` (`last_seq + 1`; a
/// trigger records it, migration 0004; a customer message's delivery is
/// queued by another, migration 0005), in one statement. `None`, and
/// nothing written, when a unique constraint says it is already stored or
/// the target has no conversation (`Target::LiveOf`: no live one;
/// `Target::NewestOf`: no conversation has the channel).
async fn insert_message(
    conn: &mut SqliteConnection,
    m: NewMessage<'_>,
) -> StoreResult<Option<MessageRecord>> {
    insert_message_row(conn, m)
        .await?
        .as_ref()
        .map(MessageRecord::from_row)
        .transpose()
}

/// [`insert_message`]'s row: the message's columns (and, for
/// `Target::NewestOf`, whose customer it went to: `customer_id`).
async fn insert_message_row(
    conn: &mut SqliteConnection,
    m: NewMessage<'_>,
) -> StoreResult<Option<SqliteRow>> {
    let (sql, target) = match m.into {
        Target::Conversation(id) => (insert_message_sql!("c.id = ?"), id.as_str()),
        Target::LiveOf(customer) => (
            insert_message_sql!("c.customer_id = ? AND c.state <> 'closed'"),
            customer.as_str(),
        ),
        Target::NewestOf(channel) => (
            insert_message_sql!(
                "c.id = (SELECT id FROM conversations WHERE flex_channel_sid = ?
                         ORDER BY created_at DESC LIMIT 1)",
                "customer_id, "
            ),
            channel.as_str(),
        ),
    };
    Ok(sqlx::query(sql)
        .bind(m.direction.as_str())
        .bind(m.author)
        .bind(m.body)
        .bind(m.client_msg_id)
        .bind(m.twilio_message_sid)
        .bind(m.delivery)
        .bind(m.now)
        .bind(target)
        .fetch_optional(conn)
        .await?)
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::core::ids::{ClientMessageId, CustomerName, MessageBody, ResumeToken};
    use crate::flex::BackendKind;
    use crate::store::messages::IncomingCustomerMessage;

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
            .create_customer(&id, &name, &ResumeToken::generate().hash(), 0)
            .await
            .expect("a customer");
        id
    }

    /// A new customer whose first message (`m1`, "hello") opens a
    /// conversation with `backend` (not yet opened in Flex).
    pub async fn opening(store: &Store, backend: BackendKind) -> ConversationRecord {
        let id = customer(store).await;
        writes(store, &id, "m1", "hello", backend, 0).await;
        store
            .latest_conversation(&id)
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
        backend: BackendKind,
        now: i64,
    ) {
        store
            .accept_customer_message(IncomingCustomerMessage {
                customer,
                author: "Ada",
                client_msg_id: &ClientMessageId::parse(client_msg_id).expect("an id"),
                body: &MessageBody::parse(body).expect("a body"),
                backend,
                now,
            })
            .await
            .expect("accepted");
    }
}
