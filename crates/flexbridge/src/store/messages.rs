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
    Conn, Store, StoreError, StoreResult, attachments, conversations, corrupt, customers, dialect,
    outbox, sql,
};
use crate::core::attachment::{Attachment, AttachmentId};
use crate::core::ids::{ClientMessageId, ConversationId, CustomerId, RemoteChannel, Seq};
use crate::core::model::{ConversationRecord, Direction, MessageRecord};
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
    "id, seq, conversation_id, direction, author, body, client_msg_id, created_at, attachment_id";

/// [`COLUMNS`] of `messages m`, with the carried file's (`attachments a`).
static JOINED: LazyLock<String> = LazyLock::new(|| {
    let mut columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("m.{c}")).collect();
    columns.push(attachments::AS_MESSAGE_COLUMNS.to_owned());
    columns.join(", ")
});

/// `messages m` and the file each carries.
const FROM_JOINED: &str = "messages m LEFT JOIN attachments a ON a.id = m.attachment_id";

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
    attachment_id: Option<String>,
    /// The file's columns: absent from an insert's `RETURNING`.
    #[sqlx(flatten)]
    file: attachments::MessageFileRow,
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
            attachment: row
                .attachment_id
                .map(|id| row.file.attachment(&id))
                .transpose()?
                .flatten(),
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
    /// Its position in the Flex channel, if known.
    flex_index: Option<i64>,
    delivery: Option<Delivery>,
    /// The file it carries (stored already).
    attachment: Option<&'a Attachment>,
    now: i64,
}

/// The INSERT of [`insert`], up to the condition choosing the conversation.
fn insert_sql(conversation: &str) -> String {
    format!(
        "INSERT INTO messages (customer_id, conversation_id, seq, direction, author, body,
                               client_msg_id, flex_message, delivery, created_at, flex_index,
                               attachment_id)
         SELECT cu.id, c.id, cu.last_seq + 1, $1, $2, $3, $4, $5, $6, $7, $8, $10
         FROM conversations c JOIN customers cu ON cu.id = c.customer_id
         WHERE {conversation} ON CONFLICT DO NOTHING RETURNING customer_id, {COLUMNS}"
    )
}

static INTO_CONVERSATION: LazyLock<String> = LazyLock::new(|| insert_sql("c.id = $9"));
static INTO_LIVE: LazyLock<String> = LazyLock::new(|| {
    insert_sql(&format!(
        "c.customer_id = $9 AND {}",
        conversations::live("c")
    ))
});
static INTO_NEWEST_OF: LazyLock<String> = LazyLock::new(|| {
    insert_sql(
        "c.id = (SELECT id FROM conversations WHERE flex_channel = $9
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
        .bind(m.flex_index)
        .bind(target)
        .bind(m.attachment.map(|a| a.id.as_str()))
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let customer =
        CustomerId::parse(&row.customer_id).map_err(|e| corrupt("messages.customer_id", e))?;
    let mut message = MessageRecord::try_from(row.message)?;
    message.attachment = m.attachment.cloned();
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

    /// Stores an agent's message (once per Flex message of a conversation)
    /// in the newest conversation of its channel. The insert finds the
    /// conversation, and `UNIQUE(conversation_id, flex_message)` is the
    /// idempotency check (the event's key is derived from the message
    /// alone, so no receipt is written for it). Only when nothing was
    /// inserted does a read tell a duplicate from an unknown channel. The
    /// same SID in another conversation is not a duplicate (a Flex account
    /// that repeats an earlier one's SIDs): stored, and logged at WARN.
    pub async fn record_agent(
        self,
        key: EventKey,
        message: AgentMessage,
    ) -> StoreResult<Inbound<StoredAgentMessage>> {
        self.store
            .write((key, message), |(key, message), conn| {
                Box::pin(async move {
                    dialect::lock_customer_of_channel(conn, &key.channel).await?;
                    if message.check_gap
                        && let Some(index) = message.index
                        && let Some(conversation) = gap_before(conn, &key.channel, index).await?
                    {
                        return Ok(Inbound::Gap(Box::new(conversation)));
                    }
                    let inserted = insert(
                        &mut *conn,
                        NewMessage {
                            into: Target::NewestOf(&key.channel),
                            direction: Direction::Agent,
                            author: &message.author,
                            body: &message.body,
                            client_msg_id: None,
                            flex_message: Some(message.message.as_str()),
                            flex_index: message.index,
                            delivery: None,
                            attachment: None,
                            now: key.now,
                        },
                    )
                    .await?;
                    if let Some((customer, mut stored)) = inserted {
                        warn_of_collision(conn, key, &stored).await?;
                        // The file once the message is known to be new (a
                        // repeated webhook inserts neither).
                        if let Some(media) = &message.media {
                            let file =
                                attachments::insert_agent(conn, &customer, media, key.now).await?;
                            carry(conn, stored.id, &file.id).await?;
                            stored.attachment = Some(file);
                        }
                        return Ok(Inbound::Applied(StoredAgentMessage {
                            customer,
                            message: stored,
                        }));
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

    /// The customer's stored message with this client message id.
    pub async fn by_client_id(
        self,
        customer: &CustomerId,
        client_msg_id: &ClientMessageId,
    ) -> StoreResult<Option<MessageRecord>> {
        let row: Option<MessageRow> = sql::query_as(BY_CLIENT_ID.as_str())
            .bind(customer.as_str())
            .bind(client_msg_id.as_str())
            .fetch_optional(self.store.reader())
            .await?;
        row.map(MessageRecord::try_from).transpose()
    }

    /// The customer messages queued (a "send" job) for `conversation`,
    /// oldest first.
    pub async fn queued(self, conversation: &ConversationId) -> StoreResult<Vec<FailedMessage>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT m.customer_id, m.seq, m.client_msg_id FROM messages m
                 JOIN outbox o ON o.message_id = m.id
                 WHERE o.conversation_id = $1 AND o.kind = '{}' ORDER BY m.seq",
                JobKind::SEND
            )
        });
        let rows: Vec<(String, i64, Option<String>)> = sql::query_as(SQL.as_str())
            .bind(conversation.as_str())
            .fetch_all(self.store.reader())
            .await?;
        rows.into_iter()
            .map(|(customer, seq, client_msg_id)| {
                Ok(FailedMessage {
                    customer_id: CustomerId::parse(&customer)
                        .map_err(|e| corrupt("messages.customer_id", e))?,
                    seq: Seq(seq),
                    client_msg_id: client_msg_id.unwrap_or_default(),
                })
            })
            .collect()
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
                "SELECT {} FROM {FROM_JOINED}
                 WHERE m.customer_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3",
                *JOINED
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
                "SELECT {} FROM {FROM_JOINED}
                 WHERE m.conversation_id = $1 ORDER BY m.seq LIMIT $2",
                *JOINED
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
    if let Some(limit) = m.rate_limit {
        // A retry of a stored message costs no token: its original ack.
        if let Some(message) = by_client_id(&mut *conn, m).await? {
            return Ok(Accepted::Duplicate { message });
        }
        if !customers::take_rate_token(conn, &m.customer, limit, m.now).await? {
            return Ok(Accepted::RateLimited);
        }
    }
    let new_message = |into| NewMessage {
        into,
        direction: Direction::Customer,
        author: &m.author,
        body: m.body.as_str(),
        client_msg_id: Some(m.client_msg_id.as_str()),
        flex_message: None,
        flex_index: None,
        delivery: Some(Delivery::Pending),
        attachment: m.attachment.as_ref(),
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
    if let Some(file) = &m.attachment
        && attachments::is_carried(&mut *conn, &file.id).await?
    {
        return Ok(Accepted::AttachmentCarried);
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

/// The channel's newest conversation, when a message at `index` comes
/// after a position of the channel it has not seen: the positions after
/// the last re-sync's (`flex_synced_index`) and before `index` that no
/// stored message holds. (A message of someone else, e.g. Flex's own,
/// counts as unseen until a re-sync lists it; our own send whose outcome
/// is not recorded yet too: each costs one re-sync, never a message.)
async fn gap_before(
    conn: &mut Conn<'_>,
    channel: &RemoteChannel,
    index: i64,
) -> StoreResult<Option<ConversationRecord>> {
    let Some(conversation) = conversations::newest_of_channel(&mut *conn, channel).await? else {
        return Ok(None);
    };
    let synced: Option<i64> =
        sql::query_scalar("SELECT flex_synced_index FROM conversations WHERE id = $1")
            .bind(conversation.id.as_str())
            .fetch_one(&mut *conn)
            .await?;
    let synced = synced.unwrap_or(-1);
    if index <= synced + 1 {
        return Ok(None);
    }
    let known: i64 = sql::query_scalar(
        "SELECT COUNT(*) FROM messages
         WHERE conversation_id = $1 AND flex_index > $2 AND flex_index < $3",
    )
    .bind(conversation.id.as_str())
    .bind(synced)
    .bind(index)
    .fetch_one(conn)
    .await?;
    Ok((index - 1 - synced > known).then_some(conversation))
}

/// Logs (WARN) when the Flex message just stored has the SID of a message
/// of another conversation: not a duplicate, but a sign that the Flex
/// account repeats SIDs (e.g. a development emulator with a fixed seed
/// started again against an old database).
async fn warn_of_collision(
    conn: &mut Conn<'_>,
    key: &EventKey,
    message: &MessageRecord,
) -> StoreResult<()> {
    let Some(sid) =
        sql::query_scalar::<Option<String>>("SELECT flex_message FROM messages WHERE id = $1")
            .bind(message.id)
            .fetch_one(&mut *conn)
            .await?
    else {
        return Ok(());
    };
    let other: Option<String> = sql::query_scalar(
        "SELECT conversation_id FROM messages
         WHERE flex_message = $1 AND conversation_id <> $2 LIMIT 1",
    )
    .bind(&sid)
    .bind(message.conversation_id.as_str())
    .fetch_optional(conn)
    .await?;
    if let Some(other) = other {
        tracing::warn!(
            conversation = %message.conversation_id, other_conversation = %other,
            flex_message = %sid, channel = %key.channel,
            "a Flex message SID already seen in another conversation; stored as a new message \
             (does the Flex account repeat SIDs? a development emulator with a fixed seed?)"
        );
    }
    Ok(())
}

/// A customer's message by its client message id.
static BY_CLIENT_ID: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM {FROM_JOINED} WHERE m.customer_id = $1 AND m.client_msg_id = $2",
        *JOINED
    )
});

/// The customer's stored message with `m`'s client message id.
async fn by_client_id(
    conn: &mut Conn<'_>,
    m: &IncomingCustomerMessage,
) -> StoreResult<Option<MessageRecord>> {
    let row: Option<MessageRow> = sql::query_as(BY_CLIENT_ID.as_str())
        .bind(m.customer.as_str())
        .bind(m.client_msg_id.as_str())
        .fetch_optional(conn)
        .await?;
    row.map(MessageRecord::try_from).transpose()
}

/// Makes message `message_id` carry file `file`.
async fn carry(conn: &mut Conn<'_>, message_id: i64, file: &AttachmentId) -> StoreResult<()> {
    sql::query("UPDATE messages SET attachment_id = $1 WHERE id = $2")
        .bind(file.as_str())
        .bind(message_id)
        .execute(conn)
        .await?;
    Ok(())
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
        SendOutcome::Delivered(posted) => sql::query(
            "UPDATE messages SET delivery = $1, flex_message = $2, flex_index = $3,
                    delivered_at = $4
             WHERE id = $5 AND delivery = $6",
        )
        .bind(Delivery::Delivered.as_str())
        .bind(posted.message.as_str())
        .bind(posted.index)
        .bind(now),
        SendOutcome::Failed(error) => sql::query(
            "UPDATE messages SET delivery = $1, delivery_error = $2, flex_index = $3,
                    delivered_at = $4
             WHERE id = $5 AND delivery = $6",
        )
        .bind(Delivery::Failed.as_str())
        .bind(error.as_str())
        .bind(Option::<i64>::None)
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
