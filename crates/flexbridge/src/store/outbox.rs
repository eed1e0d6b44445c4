//! The outbox's rows: work for Flex, in order per conversation (row id
//! order). The worker (`crate::outbox`) takes the head row of a
//! conversation, does it, and records the outcome here. Rows are deleted
//! when done or failed; the message row keeps the outcome.
//!
//! The write that finishes a row takes the conversation's next one: one
//! group commit per row, and the row comes back ready to go. Taking an
//! "open" or "sync" row that is due records its attempt (`attempts + 1`)
//! in the same transaction, so a conversation whose opening was tried is
//! known to maybe exist in Flex. A "send" is recorded only when it fails
//! (`attempts + 1`, and `maybe_landed` when it may have landed): which
//! sends a worker may have made without recording their outcome, it knows
//! itself (`crate::outbox`).

use sqlx::sqlite::SqliteRow;
use sqlx::{Row as _, SqliteConnection};

use super::{
    ConversationRecord, Store, StoreError, StoreResult, backend_of, conversation_columns,
    flex_ref_of, parse_id,
};
use crate::core::conversation::{CloseReason, ConversationState, Transition};
use crate::core::ids::{ChannelSid, ConversationId, CustomerId, MessageSid, Seq, TaskSid};
use crate::flex::{BackendKind, FlexRef, Opened};

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
    /// End the chat in Flex: the customer ended it (queued by
    /// [`Store::close_by_customer`], after the messages they sent before).
    /// Safe to repeat.
    Close,
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
    /// Attempts before this one.
    pub attempts: i64,
    /// An earlier attempt failed in a way that may have reached Flex: look
    /// before re-sending.
    pub maybe_landed: bool,
    /// The row may go now (it was due, and may begin): an "open" or "sync"
    /// row's attempt is recorded. `false` when it was only read.
    pub ready: bool,
    pub next_attempt_at: i64,
    pub created_at: i64,
}

/// A `due_by` that readies no row: the next row is only read.
pub const BEGIN_NONE: i64 = i64::MIN;

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
            "close" => JobKind::Close,
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
            ready: false,
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

    /// The next row of one conversation, if any; if it is due by
    /// `due_by` (ms; [`BEGIN_NONE`]: never), it is ready to go (an "open"
    /// or "sync" row's attempt recorded).
    pub async fn outbox_take(
        &self,
        conversation: &ConversationId,
        due_by: i64,
    ) -> StoreResult<Option<OutboxJob>> {
        self.write(
            (conversation.clone(), due_by),
            |(conversation, due_by), conn| Box::pin(take_next(conn, conversation, *due_by)),
        )
        .await
    }

    /// Schedules another attempt after a failed one.
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
                    // A send's attempt is counted here (open and sync rows
                    // counted theirs when taken).
                    sqlx::query(
                        "UPDATE outbox SET next_attempt_at = ?, last_error = ?, maybe_landed = ?,
                                attempts = attempts + (kind = 'send')
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

    /// The channel exists: the conversation is open (returned if this
    /// opened it), the row done; with the conversation's next row, taken
    /// as by [`Store::outbox_take`].
    pub async fn outbox_finish_open(
        &self,
        job: &OutboxJob,
        opened: &Opened,
        now: i64,
        due_by: i64,
    ) -> StoreResult<(Option<ConversationRecord>, Option<OutboxJob>)> {
        let finished = (job.clone(), opened.clone(), now, due_by);
        self.write(finished, |(job, opened, now, due_by), conn| {
            Box::pin(async move {
                let state = job.conversation_state.apply(Transition::Opened).ok();
                let mut opened_now = false;
                if let Some(state) = state {
                    opened_now = sqlx::query(
                        "UPDATE conversations SET state = ?, flex_channel_sid = ?,
                                flex_task_sid = ?, flex_ref = ?, updated_at = ?
                         WHERE id = ? AND state = 'opening'",
                    )
                    .bind(state.as_str())
                    .bind(opened.channel.as_str())
                    .bind(opened.task.as_ref().map(TaskSid::as_str))
                    .bind(opened.flex_ref.as_ref().map(FlexRef::to_text))
                    .bind(now)
                    .bind(job.conversation_id.as_str())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
                        == 1;
                }
                if !opened_now {
                    // The customer ended it before Flex had it: it stays
                    // closed, but its queued messages and its "close" row
                    // still need the channel.
                    sqlx::query(
                        "UPDATE conversations SET flex_channel_sid = ?, flex_task_sid = ?,
                                flex_ref = ?, updated_at = ?
                         WHERE id = ? AND state = 'closed' AND flex_channel_sid IS NULL",
                    )
                    .bind(opened.channel.as_str())
                    .bind(opened.task.as_ref().map(TaskSid::as_str))
                    .bind(opened.flex_ref.as_ref().map(FlexRef::to_text))
                    .bind(now)
                    .bind(job.conversation_id.as_str())
                    .execute(&mut *conn)
                    .await?;
                }
                let state = state.filter(|_| opened_now);
                let next = finish_row(conn, job, *due_by).await?;
                let conversation = state.map(|state| ConversationRecord {
                    id: job.conversation_id.clone(),
                    customer_id: job.customer_id.clone(),
                    state,
                    backend: job.backend,
                    flex_channel_sid: Some(opened.channel.clone()),
                    flex_ref: opened.flex_ref.clone(),
                    agent_name: None,
                    created_at: job.created_at,
                });
                Ok((conversation, next))
            })
        })
        .await
    }

    /// The message is in Flex (`Ok(sid)`) or refused for good
    /// (`Err(error)`): record it on the message, which drops its row
    /// (trigger, migration 0006); returns the conversation's next row,
    /// taken as by [`Store::outbox_take`].
    pub async fn outbox_settle_send(
        &self,
        job: &OutboxJob,
        message: &OutgoingMessage,
        outcome: Result<&MessageSid, &str>,
        now: i64,
        due_by: i64,
    ) -> StoreResult<Option<OutboxJob>> {
        let outcome = outcome.cloned().map_err(str::to_owned);
        let settled = (job.clone(), message.message_id, outcome, (now, due_by));
        self.write(
            settled,
            |(job, message_id, outcome, (now, due_by)), conn| {
                Box::pin(async move {
                    let update = match outcome {
                        Ok(sid) => sqlx::query(
                            "UPDATE messages SET delivery = 'delivered', twilio_message_sid = ?,
                                delivered_at = ?
                         WHERE id = ? AND delivery = 'pending'",
                        )
                        .bind(sid.as_str())
                        .bind(now),
                        Err(error) => sqlx::query(
                            "UPDATE messages SET delivery = 'failed', delivery_error = ?
                         WHERE id = ? AND delivery = 'pending'",
                        )
                        .bind(error.as_str()),
                    };
                    update.bind(message_id).execute(&mut *conn).await?;
                    take_next(conn, &job.conversation_id, *due_by).await
                })
            },
        )
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

    /// The customer ends their live conversation: it closes now
    /// (`customer_ended`; their next message opens a new one) and a "close"
    /// row is queued behind the rows it has, so what they sent before still
    /// reaches Flex first, in order. `None`, and nothing written, when they
    /// have no live conversation.
    pub async fn close_by_customer(
        &self,
        customer: &CustomerId,
        now: i64,
    ) -> StoreResult<Option<ConversationRecord>> {
        self.write((customer.clone(), now), |(customer, now), conn| {
            Box::pin(async move {
                let closed = sqlx::query(concat!(
                    "UPDATE conversations SET state = 'closed', close_reason = ?, updated_at = ?
                     WHERE customer_id = ? AND state <> 'closed' RETURNING ",
                    conversation_columns!()
                ))
                .bind(CloseReason::CustomerEnded.as_str())
                .bind(*now)
                .bind(customer.as_str())
                .fetch_optional(&mut *conn)
                .await?
                .as_ref()
                .map(ConversationRecord::from_row)
                .transpose()?;
                if let Some(conversation) = &closed {
                    sqlx::query(
                        "INSERT INTO outbox (conversation_id, kind, next_attempt_at, created_at)
                         VALUES (?, 'close', ?, ?)",
                    )
                    .bind(conversation.id.as_str())
                    .bind(*now)
                    .bind(*now)
                    .execute(&mut *conn)
                    .await?;
                }
                Ok(closed)
            })
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

    /// Drops a row that is done (or cannot be done); returns the
    /// conversation's next row, taken as by [`Store::outbox_take`].
    pub async fn outbox_done(
        &self,
        job: &OutboxJob,
        due_by: i64,
    ) -> StoreResult<Option<OutboxJob>> {
        self.write((job.clone(), due_by), |(job, due_by), conn| {
            Box::pin(finish_row(conn, job, *due_by))
        })
        .await
    }

    /// How many rows wait.
    pub async fn outbox_depth(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(self.reader())
            .await?)
    }
}

/// The next row of `conversation`, ready if due by `due_by`.
async fn take_next(
    conn: &mut SqliteConnection,
    conversation: &ConversationId,
    due_by: i64,
) -> StoreResult<Option<OutboxJob>> {
    let row = sqlx::query(
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
    .fetch_optional(&mut *conn)
    .await?;
    let Some(mut job) = row.as_ref().map(OutboxJob::from_row).transpose()? else {
        return Ok(None);
    };
    if job.kind == JobKind::Open && closing_before(conn, &job).await? {
        // Nothing to do until then; finishing that close wakes this one
        // (and the sweep finds it in any case).
        return Ok(None);
    }
    if job.next_attempt_at > due_by {
        return Ok(Some(job));
    }
    if !matches!(job.kind, JobKind::Send(_)) {
        sqlx::query("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?")
            .bind(job.id)
            .execute(conn)
            .await?;
    }
    job.ready = true;
    Ok(Some(job))
}

/// Whether another conversation of the opening conversation's customer
/// still has its "close" row queued. The new conversation opens after
/// that close: Flex (Chat) answers a create for the same customer with
/// their channel that is still active, which the close would then end.
async fn closing_before(conn: &mut SqliteConnection, job: &OutboxJob) -> StoreResult<bool> {
    let waiting: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM outbox o JOIN conversations c ON c.id = o.conversation_id
         WHERE o.kind = 'close' AND c.customer_id = ? AND o.conversation_id <> ?
         LIMIT 1",
    )
    .bind(job.customer_id.as_str())
    .bind(job.conversation_id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(waiting.is_some())
}

/// Deletes a row (done, or failed for good) and takes its conversation's next.
async fn finish_row(
    conn: &mut SqliteConnection,
    job: &OutboxJob,
    due_by: i64,
) -> StoreResult<Option<OutboxJob>> {
    sqlx::query("DELETE FROM outbox WHERE id = ?")
        .bind(job.id)
        .execute(&mut *conn)
        .await?;
    take_next(conn, &job.conversation_id, due_by).await
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
    // Failing the queued messages drops their rows (trigger); the rest
    // (open, sync) go below.
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
mod tests;
