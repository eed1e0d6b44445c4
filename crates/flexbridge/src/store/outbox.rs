//! The outbox's rows: work for Flex, in order per conversation (row id
//! order). The worker (`crate::outbox`) reads the head row of each
//! conversation, does it, and records the outcome here. Rows are deleted
//! when done or failed; the message row keeps the outcome.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row as _, SqliteConnection};

use super::{
    ConversationRecord, Store, StoreError, StoreResult, backend_of, conversation_columns,
    flex_ref_of, parse_id,
};
use crate::core::conversation::{CloseReason, ConversationState, Transition};
use crate::core::ids::{ChannelSid, ConversationId, CustomerId, MessageSid, Seq, TaskSid};
use crate::flex::{BackendKind, FlexRef};

/// What a row asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    /// Create the Flex channel and its webhooks.
    Open,
    /// Post one customer message to the channel.
    Send(OutgoingMessage),
    /// Re-point the channel's webhooks here and catch up on what Flex said
    /// while the bridge could not hear it (queued at start-up).
    Sync,
}

/// A customer message waiting for Flex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub message_id: i64,
    pub seq: Seq,
    pub client_msg_id: String,
    pub body: String,
    /// When the customer's message was accepted (for the latency metric).
    pub accepted_at: i64,
}

/// The head row of a conversation, with what is needed to carry it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxJob {
    pub id: i64,
    pub conversation_id: ConversationId,
    pub customer_id: CustomerId,
    pub customer_name: String,
    pub conversation_state: ConversationState,
    /// The backend that opens (opened) the conversation and serves it.
    pub backend: BackendKind,
    pub channel: Option<ChannelSid>,
    /// What that backend recorded when it opened the conversation.
    pub flex_ref: Option<FlexRef>,
    pub kind: JobKind,
    pub attempts: i64,
    /// An earlier attempt may have reached Flex: look before re-sending.
    pub maybe_landed: bool,
    pub next_attempt_at: i64,
    pub created_at: i64,
}

/// The head of one conversation's queue, for scheduling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueHead {
    pub conversation_id: ConversationId,
    pub next_attempt_at: i64,
    /// How many rows the conversation has queued (head included).
    pub rows: i64,
}

/// What abandoning a conversation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abandoned {
    /// The conversation, if this closed it.
    pub closed: Option<ConversationRecord>,
    /// Its queued messages, which failed.
    pub failed: Vec<FailedMessage>,
}

/// A message that will not reach Flex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedMessage {
    pub customer_id: CustomerId,
    pub seq: Seq,
    pub client_msg_id: String,
}

impl OutboxJob {
    fn from_row(row: &SqliteRow) -> StoreResult<Self> {
        let kind: &str = row.try_get("kind")?;
        let kind = match kind {
            "open" => JobKind::Open,
            "sync" => JobKind::Sync,
            "send" => JobKind::Send(OutgoingMessage {
                message_id: row.try_get("message_id")?,
                seq: Seq(row.try_get("seq")?),
                client_msg_id: row
                    .try_get::<Option<String>, _>("client_msg_id")?
                    .unwrap_or_default(),
                body: row.try_get("body")?,
                accepted_at: row.try_get("message_created_at")?,
            }),
            other => return Err(StoreError::Corrupt(format!("outbox kind {other:?}"))),
        };
        let state: &str = row.try_get("state")?;
        let channel: Option<&str> = row.try_get("flex_channel_sid")?;
        Ok(Self {
            id: row.try_get("id")?,
            conversation_id: parse_id(row, "conversation_id", ConversationId::parse)?,
            customer_id: parse_id(row, "customer_id", CustomerId::parse)?,
            customer_name: row.try_get("customer_name")?,
            conversation_state: ConversationState::parse(state)
                .ok_or_else(|| StoreError::Corrupt(format!("conversation state {state:?}")))?,
            backend: backend_of(row)?,
            channel: channel
                .map(|sid| ChannelSid::parse(sid).map_err(|e| StoreError::Corrupt(e.to_string())))
                .transpose()?,
            flex_ref: flex_ref_of(row)?,
            kind,
            attempts: row.try_get("attempts")?,
            maybe_landed: row.try_get::<i64, _>("maybe_landed")? != 0,
            next_attempt_at: row.try_get("next_attempt_at")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

impl Store {
    /// The head row of every conversation that has work (a full scan: the
    /// worker runs it at start and on its sweep, not per message).
    pub async fn outbox_heads(&self) -> StoreResult<Vec<QueueHead>> {
        let rows = sqlx::query(
            "SELECT o.conversation_id, o.next_attempt_at, h.row_count
             FROM outbox o
             JOIN (SELECT conversation_id, MIN(id) AS head, COUNT(*) AS row_count
                   FROM outbox GROUP BY conversation_id) h
               ON h.head = o.id",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(QueueHead {
                    conversation_id: parse_id(row, "conversation_id", ConversationId::parse)?,
                    next_attempt_at: row.try_get("next_attempt_at")?,
                    rows: row.try_get("row_count")?,
                })
            })
            .collect()
    }

    /// The next row of one conversation, if any.
    pub async fn outbox_next(
        &self,
        conversation: &ConversationId,
    ) -> StoreResult<Option<OutboxJob>> {
        sqlx::query(
            "SELECT o.id, o.conversation_id, o.kind, o.message_id, o.attempts, o.maybe_landed,
                    o.next_attempt_at, o.created_at,
                    c.customer_id, c.state, c.backend, c.flex_channel_sid, c.flex_ref,
                    cu.name AS customer_name,
                    m.seq, m.client_msg_id, m.body, m.created_at AS message_created_at
             FROM outbox o
             JOIN conversations c ON c.id = o.conversation_id
             JOIN customers cu ON cu.id = c.customer_id
             LEFT JOIN messages m ON m.id = o.message_id
             WHERE o.conversation_id = ?
             ORDER BY o.id LIMIT 1",
        )
        .bind(conversation.as_str())
        .fetch_optional(self.reader())
        .await?
        .as_ref()
        .map(OutboxJob::from_row)
        .transpose()
    }

    /// Records that an attempt starts; with `may_land`, a crash or an
    /// ambiguous failure from here on makes the next attempt look first.
    pub async fn outbox_begin_attempt(&self, job: i64, may_land: bool) -> StoreResult<()> {
        self.write((job, may_land), |&(job, may_land), conn| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1,
                                       maybe_landed = CASE WHEN ? THEN 1 ELSE maybe_landed END
                     WHERE id = ?",
                )
                .bind(may_land)
                .bind(job)
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Schedules another attempt.
    pub async fn outbox_retry_later(
        &self,
        job: i64,
        next_attempt_at: i64,
        error: &str,
        maybe_landed: bool,
    ) -> StoreResult<()> {
        let retry = (job, next_attempt_at, error.to_owned(), maybe_landed);
        self.write(
            retry,
            |(job, next_attempt_at, error, maybe_landed), conn| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE outbox SET next_attempt_at = ?, last_error = ?, maybe_landed = ?
                     WHERE id = ?",
                    )
                    .bind(next_attempt_at)
                    .bind(error)
                    .bind(maybe_landed)
                    .bind(job)
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            },
        )
        .await
    }

    /// The channel exists: the conversation is open, the row done.
    pub async fn outbox_finish_open(
        &self,
        job: &OutboxJob,
        channel: &ChannelSid,
        task: Option<&TaskSid>,
        flex_ref: Option<&FlexRef>,
        now: i64,
    ) -> StoreResult<Option<ConversationRecord>> {
        let opened = (
            job.clone(),
            channel.clone(),
            task.cloned(),
            flex_ref.cloned(),
            now,
        );
        self.write(opened, |(job, channel, task, flex_ref, now), conn| {
            Box::pin(async move {
                let next = job.conversation_state.apply(Transition::Opened).ok();
                if let Some(next) = next {
                    sqlx::query(
                        "UPDATE conversations SET state = ?, flex_channel_sid = ?,
                                flex_task_sid = ?, flex_ref = ?, updated_at = ?
                         WHERE id = ? AND state = 'opening'",
                    )
                    .bind(next.as_str())
                    .bind(channel.as_str())
                    .bind(task.as_ref().map(TaskSid::as_str))
                    .bind(flex_ref.as_ref().map(FlexRef::to_text))
                    .bind(now)
                    .bind(job.conversation_id.as_str())
                    .execute(&mut *conn)
                    .await?;
                }
                delete_row(conn, job.id).await?;
                Ok(next.map(|state| ConversationRecord {
                    id: job.conversation_id.clone(),
                    customer_id: job.customer_id.clone(),
                    state,
                    backend: job.backend,
                    flex_channel_sid: Some(channel.clone()),
                    flex_ref: flex_ref.clone(),
                    agent_name: None,
                    created_at: job.created_at,
                }))
            })
        })
        .await
    }

    /// The message is in Flex (`Ok(sid)`) or refused for good
    /// (`Err(error)`): record it on the message, drop the row.
    pub async fn outbox_settle_send(
        &self,
        job: i64,
        message: &OutgoingMessage,
        outcome: Result<&MessageSid, &str>,
        now: i64,
    ) -> StoreResult<()> {
        let outcome = outcome.cloned().map_err(str::to_owned);
        let settled = (job, message.message_id, outcome, now);
        self.write(settled, |(job, message_id, outcome, now), conn| {
            Box::pin(async move {
                let update = match outcome {
                    Ok(sid) => sqlx::query(
                        "UPDATE messages SET delivery = 'delivered', twilio_message_sid = ?,
                                delivered_at = ?
                         WHERE id = ?",
                    )
                    .bind(sid.as_str())
                    .bind(now),
                    Err(error) => sqlx::query(
                        "UPDATE messages SET delivery = 'failed', delivery_error = ? WHERE id = ?",
                    )
                    .bind(error.as_str()),
                };
                update.bind(message_id).execute(&mut *conn).await?;
                delete_row(conn, *job).await
            })
        })
        .await
    }

    /// The conversation cannot go on in Flex (its channel cannot be
    /// created, or is gone): it closes (if it was not closed yet) and every
    /// message queued for it fails.
    pub async fn outbox_abandon(
        &self,
        conversation: &ConversationId,
        reason: CloseReason,
        error: &str,
        now: i64,
    ) -> StoreResult<Abandoned> {
        let failure = (conversation.clone(), reason, error.to_owned(), now);
        self.write(failure, |(conversation, reason, error, now), conn| {
            Box::pin(abandon(conn, conversation, *reason, error, *now))
        })
        .await
    }

    /// Queues a `sync` row for every open conversation that has none yet.
    pub async fn queue_sync_of_open_conversations(&self, now: i64) -> StoreResult<u64> {
        Ok(sqlx::query(
            "INSERT INTO outbox (conversation_id, kind, next_attempt_at, created_at)
             SELECT c.id, 'sync', ?, ? FROM conversations c
             WHERE c.state = 'open' AND c.flex_channel_sid IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM outbox o
                               WHERE o.conversation_id = c.id AND o.kind = 'sync')",
        )
        .bind(now)
        .bind(now)
        .execute(self.writer())
        .await?
        .rows_affected())
    }

    /// Moves the conversations that have not reached Flex yet — `opening`,
    /// with an "open" row never attempted — from another backend to
    /// `current` (FLEX_BACKEND changed): nothing of them exists in Flex, so
    /// they open with the configured backend. Those whose opening was
    /// attempted stay with their backend, which may have made something.
    pub async fn adopt_unopened_conversations(&self, current: BackendKind) -> StoreResult<u64> {
        Ok(sqlx::query(
            "UPDATE conversations SET backend = ?
             WHERE state = 'opening' AND backend <> ?
               AND NOT EXISTS (SELECT 1 FROM outbox o
                               WHERE o.conversation_id = conversations.id
                                 AND o.kind = 'open' AND o.attempts > 0)",
        )
        .bind(current.as_str())
        .bind(current.as_str())
        .execute(self.writer())
        .await?
        .rows_affected())
    }

    /// Drops a row that is done (or cannot be done).
    pub async fn outbox_done(&self, job: i64) -> StoreResult<()> {
        self.write(job, |&job, conn| Box::pin(delete_row(conn, job)))
            .await
    }

    /// How many rows wait.
    pub async fn outbox_depth(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(self.reader())
            .await?)
    }
}

/// Deletes one row (done, or failed for good).
async fn delete_row(conn: &mut SqliteConnection, job: i64) -> StoreResult<()> {
    sqlx::query("DELETE FROM outbox WHERE id = ?")
        .bind(job)
        .execute(conn)
        .await?;
    Ok(())
}

/// [`Store::outbox_abandon`] inside its group commit.
async fn abandon(
    conn: &mut SqliteConnection,
    conversation: &ConversationId,
    reason: CloseReason,
    error: &str,
    now: i64,
) -> StoreResult<Abandoned> {
    let closed = sqlx::query(concat!(
        "UPDATE conversations SET state = 'closed', close_reason = ?, updated_at = ?
         WHERE id = ? AND state <> 'closed' RETURNING ",
        conversation_columns!()
    ))
    .bind(reason.as_str())
    .bind(now)
    .bind(conversation.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(ConversationRecord::from_row)
    .transpose()?;
    let failed = sqlx::query(
        "UPDATE messages SET delivery = 'failed', delivery_error = ?
         WHERE id IN (SELECT message_id FROM outbox WHERE conversation_id = ? AND kind = 'send')
         RETURNING customer_id, seq, client_msg_id",
    )
    .bind(error)
    .bind(conversation.as_str())
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM outbox WHERE conversation_id = ?")
        .bind(conversation.as_str())
        .execute(&mut *conn)
        .await?;
    let mut failed = failed
        .iter()
        .map(|row| {
            Ok(FailedMessage {
                customer_id: parse_id(row, "customer_id", CustomerId::parse)?,
                seq: Seq(row.try_get("seq")?),
                client_msg_id: row
                    .try_get::<Option<String>, _>("client_msg_id")?
                    .unwrap_or_default(),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    failed.sort_by_key(|m| m.seq);
    Ok(Abandoned { closed, failed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::{ClientMessageId, CustomerName, MessageBody, ResumeToken};
    use crate::store::messages::IncomingCustomerMessage;
    use crate::store::test_support::temp_store;

    /// A new customer whose first message opens a conversation with `backend`.
    async fn opening(store: &Store, backend: BackendKind) -> ConversationRecord {
        let id = CustomerId::generate();
        let name = CustomerName::parse("Ada").expect("a name");
        store
            .create_customer(&id, &name, &ResumeToken::generate().hash(), 0)
            .await
            .expect("a customer");
        store
            .accept_customer_message(IncomingCustomerMessage {
                customer: &id,
                author: "Ada",
                client_msg_id: &ClientMessageId::parse("m1").expect("an id"),
                body: &MessageBody::parse("hello").expect("a body"),
                backend,
                now: 0,
            })
            .await
            .expect("accepted");
        store
            .latest_conversation(&id)
            .await
            .expect("read")
            .expect("a conversation")
    }

    async fn backend_now(store: &Store, conversation: &ConversationRecord) -> BackendKind {
        store
            .latest_conversation(&conversation.customer_id)
            .await
            .expect("read")
            .expect("a conversation")
            .backend
    }

    #[tokio::test]
    async fn conversations_not_yet_tried_in_flex_move_to_the_configured_backend_and_tried_ones_stay()
     {
        let (store, _dir) = temp_store().await;
        let untried = opening(&store, BackendKind::Chat).await;
        let tried = opening(&store, BackendKind::Chat).await;
        let job = store
            .outbox_next(&tried.id)
            .await
            .expect("read")
            .expect("its open row");
        store
            .outbox_begin_attempt(job.id, false)
            .await
            .expect("attempted");
        let already = opening(&store, BackendKind::Conversations).await;

        let moved = store
            .adopt_unopened_conversations(BackendKind::Conversations)
            .await
            .expect("adopted");

        assert_eq!(moved, 1);
        assert_eq!(
            backend_now(&store, &untried).await,
            BackendKind::Conversations
        );
        assert_eq!(backend_now(&store, &tried).await, BackendKind::Chat);
        assert_eq!(
            backend_now(&store, &already).await,
            BackendKind::Conversations
        );
        let job = store
            .outbox_next(&untried.id)
            .await
            .expect("read")
            .expect("its open row");
        assert_eq!(job.backend, BackendKind::Conversations);
    }
}
