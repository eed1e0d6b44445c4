//! `messages`: every message, both directions, with its customer's next
//! `seq`. [`Messages::accept`] is the bridge's commit point for a customer
//! message: in one transaction (a group commit, shared with other
//! customers' writes) it finds or opens the customer's live conversation
//! (queueing the "open" job for a new one), stores the message with the
//! next `seq`, advances the customer's counter and queues the message's
//! "send" job. Only after the commit is the customer acked. A retried
//! client message id is found by the insert's unique constraint
//! (`UNIQUE(customer_id, client_msg_id)`), then read back. On PostgreSQL,
//! where bridges write side by side, a write that inserts a message locks
//! its customer's row first (`dialect::lock_customer`): one customer's
//! messages get their `seq`, and their conversation, one at a time.

use std::sync::LazyLock;

use super::{
    Conn, Store, StoreError, StoreResult, conversations, corrupt, customers, dialect, outbox, sql,
};
use crate::core::ids::{ConversationId, CustomerId, RemoteChannel, Seq};
use crate::core::model::{Direction, MessageRecord};
use crate::core::storage::{
    Accepted, AgentMessage, EventKey, Inbound, IncomingCustomerMessage, SendOutcome,
    StoredAgentMessage,
};
use crate::core::work::{FailedMessage, JobKind};

/// The `messages` table.
#[derive(Clone, Copy)]
pub struct Messages<'a> {
    pub(super) store: &'a Store,
}

/// The columns a [`MessageRow`] reads.
const COLUMNS: &str =
    "id, seq, conversation_id, direction, author, body, client_msg_id, created_at";

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: i64,
    seq: i64,
    conversation_id: String,
    direction: String,
    author: String,
    body: String,
    client_msg_id: Option<String>,
    created_at: i64,
}

impl TryFrom<MessageRow> for MessageRecord {
    type Error = StoreError;

    fn try_from(row: MessageRow) -> StoreResult<Self> {
        Ok(Self {
            id: row.id,
            seq: Seq(row.seq),
            conversation_id: ConversationId::parse(&row.conversation_id)
                .map_err(|e| corrupt("messages.conversation_id", e))?,
            direction: Direction::parse(&row.direction)
                .ok_or_else(|| corrupt("messages.direction", &row.direction))?,
            author: row.author,
            body: row.body,
            client_msg_id: row.client_msg_id,
            created_at: row.created_at,
        })
    }
}

/// A customer message's way to Flex (`delivery`); agent messages have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Pending,
    Delivered,
    Failed,
}

impl Delivery {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

/// The conversation a new message goes to.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// This one (a customer message opening it).
    Conversation(&'a ConversationId),
    /// The newest conversation of a Flex channel (an agent's message).
    NewestOf(&'a RemoteChannel),
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
    flex_message: Option<&'a str>,
    delivery: Option<Delivery>,
    now: i64,
}

/// The INSERT of [`insert`], up to the condition choosing the conversation.
fn insert_sql(conversation: &str) -> String {
    format!(
        "INSERT INTO messages (customer_id, conversation_id, seq, direction, author, body,
                               client_msg_id, flex_message, delivery, created_at)
         SELECT cu.id, c.id, cu.last_seq + 1, $1, $2, $3, $4, $5, $6, $7
         FROM conversations c JOIN customers cu ON cu.id = c.customer_id
         WHERE {conversation} ON CONFLICT DO NOTHING RETURNING customer_id, {COLUMNS}"
    )
}

static INTO_CONVERSATION: LazyLock<String> = LazyLock::new(|| insert_sql("c.id = $8"));
static INTO_LIVE: LazyLock<String> = LazyLock::new(|| {
    insert_sql(&format!(
        "c.customer_id = $8 AND {}",
        conversations::live("c")
    ))
});
static INTO_NEWEST_OF: LazyLock<String> = LazyLock::new(|| {
    insert_sql(
        "c.id = (SELECT id FROM conversations WHERE flex_channel = $8
                 ORDER BY created_at DESC LIMIT 1)",
    )
});

#[derive(sqlx::FromRow)]
struct InsertedRow {
    customer_id: String,
    #[sqlx(flatten)]
    message: MessageRow,
}

/// Inserts a message with its customer's next `seq` and advances the
/// customer's counter; a customer message also gets its "send" job. `None`,
/// and nothing written, when a unique constraint says it is already stored
/// or the target has no conversation (`Target::LiveOf`: no live one;
/// `Target::NewestOf`: no conversation has the channel). Returns whose
/// message it is with it.
async fn insert(
    conn: &mut Conn<'_>,
    m: NewMessage<'_>,
) -> StoreResult<Option<(CustomerId, MessageRecord)>> {
    let (sql, target) = match m.into {
        Target::Conversation(id) => (&*INTO_CONVERSATION, id.as_str()),
        Target::LiveOf(customer) => (&*INTO_LIVE, customer.as_str()),
        Target::NewestOf(channel) => (&*INTO_NEWEST_OF, channel.as_str()),
    };
    let row: Option<InsertedRow> = sql::query_as(sql.as_str())
        .bind(m.direction.as_str())
        .bind(m.author)
        .bind(m.body)
        .bind(m.client_msg_id)
        .bind(m.flex_message)
        .bind(m.delivery.map(Delivery::as_str))
        .bind(m.now)
        .bind(target)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let customer =
        CustomerId::parse(&row.customer_id).map_err(|e| corrupt("messages.customer_id", e))?;
    let message = MessageRecord::try_from(row.message)?;
    customers::advance_seq(&mut *conn, customer.as_str(), message.seq).await?;
    if m.direction == Direction::Customer {
        let conversation = &message.conversation_id;
        outbox::queue(conn, conversation, JobKind::SEND, Some(message.id), m.now).await?;
    }
    Ok(Some((customer, message)))
}

impl Messages<'_> {
    /// Accepts a customer message (see the module doc).
    pub async fn accept(self, m: IncomingCustomerMessage) -> StoreResult<Accepted> {
        self.store
            .write(m, |m, conn| Box::pin(accept(conn, m)))
            .await
    }

    /// Stores an agent's message (once per Flex message) in the newest
    /// conversation of its channel. The insert finds the conversation,
    /// and `UNIQUE(flex_message)` is the idempotency check (the event's key
    /// is derived from the message alone, so no receipt is written for
    /// it). Only when nothing was inserted does a read tell a duplicate
    /// from an unknown channel.
    pub async fn record_agent(
        self,
        key: EventKey,
        message: AgentMessage,
    ) -> StoreResult<Inbound<StoredAgentMessage>> {
        self.store
            .write((key, message), |(key, message), conn| {
                Box::pin(async move {
                    dialect::lock_customer_of_channel(conn, &key.channel).await?;
                    let inserted = insert(
                        &mut *conn,
                        NewMessage {
                            into: Target::NewestOf(&key.channel),
                            direction: Direction::Agent,
                            author: &message.author,
                            body: &message.body,
                            client_msg_id: None,
                            flex_message: Some(message.message.as_str()),
                            delivery: None,
                            now: key.now,
                        },
                    )
                    .await?;
                    if let Some((customer, message)) = inserted {
                        return Ok(Inbound::Applied(StoredAgentMessage { customer, message }));
                    }
                    Ok(if conversations::has_channel(conn, &key.channel).await? {
                        Inbound::Duplicate
                    } else {
                        Inbound::UnknownChannel
                    })
                })
            })
            .await
    }

    /// A customer's messages with `seq > since`, oldest first, at most `limit`.
    pub async fn since(
        self,
        customer: &CustomerId,
        since: Seq,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {COLUMNS} FROM messages
                 WHERE customer_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
            )
        });
        let rows: Vec<MessageRow> = sql::query_as(SQL.as_str())
            .bind(customer.as_str())
            .bind(since.0)
            .bind(i64::from(limit))
            .fetch_all(self.store.reader())
            .await?;
        rows.into_iter().map(MessageRecord::try_from).collect()
    }

    /// The messages of one conversation, oldest first, at most `limit`
    /// (a transcript).
    pub async fn of_conversation(
        self,
        conversation: &ConversationId,
        limit: u32,
    ) -> StoreResult<Vec<MessageRecord>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {COLUMNS} FROM messages
                 WHERE conversation_id = $1 ORDER BY seq LIMIT $2"
            )
        });
        let rows: Vec<MessageRow> = sql::query_as(SQL.as_str())
            .bind(conversation.as_str())
            .bind(i64::from(limit))
            .fetch_all(self.store.reader())
            .await?;
        rows.into_iter().map(MessageRecord::try_from).collect()
    }
}

/// Accepts one message inside a group commit; a duplicate writes nothing.
/// The common case (the customer's conversation is live) is one insert:
/// it takes the live conversation, and its unique client message id is
/// the duplicate check.
async fn accept(conn: &mut Conn<'_>, m: &IncomingCustomerMessage) -> StoreResult<Accepted> {
    dialect::lock_customer(conn, &m.customer).await?;
    let new_message = |into| NewMessage {
        into,
        direction: Direction::Customer,
        author: &m.author,
        body: m.body.as_str(),
        client_msg_id: Some(m.client_msg_id.as_str()),
        flex_message: None,
        delivery: Some(Delivery::Pending),
        now: m.now,
    };
    if let Some((_, message)) = insert(conn, new_message(Target::LiveOf(&m.customer))).await? {
        return Ok(Accepted::New {
            message,
            opened: None,
        });
    }
    // Nothing was written: a retry of a stored message (in any
    // conversation, even one closed since), or no live conversation.
    if let Some(message) = by_client_id(&mut *conn, m).await? {
        return Ok(Accepted::Duplicate { message });
    }
    let conversation =
        conversations::insert_opening(&mut *conn, &m.customer, &m.backend, m.now).await?;
    outbox::queue(&mut *conn, &conversation.id, JobKind::OPEN, None, m.now).await?;
    let inserted = insert(conn, new_message(Target::Conversation(&conversation.id))).await?;
    let (_, message) = inserted.ok_or_else(|| {
        StoreError::Corrupt("a new customer message conflicted with a stored one".into())
    })?;
    Ok(Accepted::New {
        message,
        opened: Some(conversation),
    })
}

/// The customer's stored message with `m`'s client message id.
async fn by_client_id(
    conn: &mut Conn<'_>,
    m: &IncomingCustomerMessage,
) -> StoreResult<Option<MessageRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!("SELECT {COLUMNS} FROM messages WHERE customer_id = $1 AND client_msg_id = $2")
    });
    let row: Option<MessageRow> = sql::query_as(SQL.as_str())
        .bind(m.customer.as_str())
        .bind(m.client_msg_id.as_str())
        .fetch_optional(conn)
        .await?;
    row.map(MessageRecord::try_from).transpose()
}

/// Records a pending customer message's fate (once; a decided message
/// keeps its first outcome).
pub(super) async fn settle(
    conn: &mut Conn<'_>,
    message_id: i64,
    outcome: &SendOutcome,
    now: i64,
) -> StoreResult<()> {
    let pending = Delivery::Pending.as_str();
    let update = match outcome {
        SendOutcome::Delivered(flex_message) => sql::query(
            "UPDATE messages SET delivery = $1, flex_message = $2, delivered_at = $3
             WHERE id = $4 AND delivery = $5",
        )
        .bind(Delivery::Delivered.as_str())
        .bind(flex_message.as_str())
        .bind(now),
        SendOutcome::Failed(error) => sql::query(
            "UPDATE messages SET delivery = $1, delivery_error = $2, delivered_at = $3
             WHERE id = $4 AND delivery = $5",
        )
        .bind(Delivery::Failed.as_str())
        .bind(error.as_str())
        .bind(Option::<i64>::None),
    };
    update.bind(message_id).bind(pending).execute(conn).await?;
    Ok(())
}

/// Fails every message queued (a "send" job) for `conversation`; returns
/// them, oldest first. Their jobs are left to the caller to delete.
pub(super) async fn fail_queued(
    conn: &mut Conn<'_>,
    conversation: &ConversationId,
    error: &str,
) -> StoreResult<Vec<FailedMessage>> {
    #[derive(sqlx::FromRow)]
    struct FailedRow {
        customer_id: String,
        seq: i64,
        client_msg_id: Option<String>,
    }
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE messages SET delivery = $1, delivery_error = $2
             WHERE delivery = $3 AND id IN (SELECT message_id FROM outbox
                                            WHERE conversation_id = $4 AND kind = '{}')
             RETURNING customer_id, seq, client_msg_id",
            JobKind::SEND
        )
    });
    let rows: Vec<FailedRow> = sql::query_as(SQL.as_str())
        .bind(Delivery::Failed.as_str())
        .bind(error)
        .bind(Delivery::Pending.as_str())
        .bind(conversation.as_str())
        .fetch_all(conn)
        .await?;
    let mut failed = rows
        .into_iter()
        .map(|row| {
            Ok(FailedMessage {
                customer_id: CustomerId::parse(&row.customer_id)
                    .map_err(|e| corrupt("messages.customer_id", e))?,
                seq: Seq(row.seq),
                client_msg_id: row.client_msg_id.unwrap_or_default(),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    failed.sort_by_key(|m| m.seq);
    Ok(failed)
}

#[cfg(test)]
mod tests;
