//! `outbox`: work for Flex, in order per conversation (row id order). The
//! worker (`crate::outbox`) takes the head job of a conversation, does it,
//! and the core records the outcome here. A job's row is deleted when it
//! is done or failed; a message row keeps a send's outcome.
//!
//! The write that finishes a job takes the conversation's next one: one
//! group commit per job, and the next comes back ready to go
//! ([`NextJob::Ready`]) when it may begin. Taking an "open", "sync" or
//! "close" job that begins records its attempt (`attempts + 1`) in the
//! same transaction, so a conversation whose opening was tried is known to
//! maybe exist in Flex. A "send" is recorded only when it fails
//! (`attempts + 1`, and `maybe_landed` when it may have landed): which
//! sends a worker may have made without recording their outcome, it knows
//! itself (`crate::outbox`).
//!
//! One bridge at a time delivers a conversation's queue: the take that
//! starts a delivery claims the conversation's lease, every later take
//! checks it still holds it, and the write that ends the delivery
//! releases it (`super::leases`). A take whose conversation another
//! bridge holds answers [`NextJob::Held`].

use std::sync::LazyLock;

use super::conversations::{self, Change, Which, parse_flex_ref, parse_state};
use super::dialect::{FOR_UPDATE, Locking};
use super::leases::{self, Claim};
use super::{Conn, Store, StoreError, StoreResult, attachments, corrupt, messages, sql};
use crate::core::backend::{BackendName, Opened};
use crate::core::conversation::{CloseReason, ConversationState};
use crate::core::ids::{ConversationId, CustomerId, RemoteChannel, Seq};
use crate::core::model::ConversationRecord;
use crate::core::pre_engagement::PreEngagement;
use crate::core::storage::SendOutcome;
use crate::core::work::{
    Abandoned, Begin, JobKind, NextJob, OutboxJob, OutgoingAttachment, OutgoingMessage, QueueHead,
};

/// The `outbox` table.
#[derive(Clone, Copy)]
pub struct OutboxQueue<'a> {
    pub(super) store: &'a Store,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    conversation_id: String,
    kind: String,
    message_id: Option<i64>,
    attempts: i64,
    maybe_landed: i64,
    next_attempt_at: i64,
    created_at: i64,
    customer_id: String,
    state: String,
    backend: String,
    flex_channel: Option<String>,
    flex_ref: Option<String>,
    customer_name: String,
    customer_pre_engagement: Option<String>,
    seq: Option<i64>,
    client_msg_id: Option<String>,
    body: Option<String>,
    message_created_at: Option<i64>,
    attachment_id: Option<String>,
    media_sid: Option<String>,
    #[sqlx(flatten)]
    file: attachments::MessageFileRow,
    lease_owner: Option<String>,
    lease_expires_at: Option<i64>,
    conversation_created_at: i64,
}

impl TryFrom<JobRow> for OutboxJob {
    type Error = StoreError;

    fn try_from(row: JobRow) -> StoreResult<Self> {
        let kind = match row.kind.as_str() {
            JobKind::OPEN => JobKind::Open,
            JobKind::SYNC => JobKind::Sync,
            JobKind::CLOSE => JobKind::Close,
            JobKind::SEND => {
                let missing = || corrupt("outbox.message_id", "a send without its message");
                JobKind::Send(OutgoingMessage {
                    message_id: row.message_id.ok_or_else(missing)?,
                    seq: Seq(row.seq.ok_or_else(missing)?),
                    client_msg_id: row.client_msg_id.unwrap_or_default(),
                    body: row.body.ok_or_else(missing)?,
                    accepted_at: row.message_created_at.ok_or_else(missing)?,
                    attachment: match &row.attachment_id {
                        Some(id) => Some(OutgoingAttachment {
                            attachment: row.file.attachment(id)?.ok_or_else(|| {
                                corrupt("messages.attachment_id", "a file that is not stored")
                            })?,
                            media: row.media_sid.clone(),
                        }),
                        None => None,
                    },
                })
            }
            other => return Err(corrupt("outbox.kind", other)),
        };
        Ok(Self {
            id: row.id,
            conversation_id: ConversationId::parse(&row.conversation_id)
                .map_err(|e| corrupt("outbox.conversation_id", e))?,
            customer_id: CustomerId::parse(&row.customer_id)
                .map_err(|e| corrupt("conversations.customer_id", e))?,
            customer_name: row.customer_name,
            pre_engagement: row
                .customer_pre_engagement
                .map(|text| {
                    PreEngagement::parse(&text).map_err(|e| corrupt("customers.pre_engagement", e))
                })
                .transpose()?
                .unwrap_or_default(),
            conversation_state: parse_state(&row.state)?,
            backend: BackendName::new(row.backend),
            channel: row.flex_channel.map(RemoteChannel::new),
            flex_ref: parse_flex_ref(row.flex_ref.as_deref())?,
            kind,
            attempts: row.attempts,
            maybe_landed: row.maybe_landed != 0,
            next_attempt_at: row.next_attempt_at,
            created_at: row.created_at,
            conversation_created_at: row.conversation_created_at,
        })
    }
}

/// Queues a job at the end of `conversation`'s queue, due now.
pub(super) async fn queue(
    conn: &mut Conn<'_>,
    conversation: &ConversationId,
    kind: &'static str,
    message_id: Option<i64>,
    now: i64,
) -> StoreResult<()> {
    sql::query(
        "INSERT INTO outbox (conversation_id, kind, message_id, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(conversation.as_str())
    .bind(kind)
    .bind(message_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The next job of `conversation`, begun if `begin` lets it, for the
/// delivery `owner` runs: when the job does not begin (none, or not due),
/// the delivery ends and its lease is released; when another bridge holds
/// the conversation now, it is left alone ([`NextJob::Held`]).
async fn take_next(
    conn: &mut Conn<'_>,
    conversation: &ConversationId,
    begin: Begin,
    owner: &str,
) -> StoreResult<NextJob> {
    let row: Option<JobRow> = sql::query_as(
        "SELECT o.id, o.conversation_id, o.kind, o.message_id, o.attempts, o.maybe_landed,
                o.next_attempt_at, o.created_at,
                c.customer_id, c.state, c.backend, c.flex_channel, c.flex_ref,
                c.lease_owner, c.lease_expires_at,
                c.created_at AS conversation_created_at,
                cu.name AS customer_name, cu.pre_engagement AS customer_pre_engagement,
                m.seq, m.client_msg_id, m.body, m.created_at AS message_created_at,
                m.attachment_id, a.media_sid, a.filename AS att_filename,
                a.content_type AS att_content_type, a.size AS att_size
         FROM outbox o
         JOIN conversations c ON c.id = o.conversation_id
         JOIN customers cu ON cu.id = c.customer_id
         LEFT JOIN messages m ON m.id = o.message_id
         LEFT JOIN attachments a ON a.id = m.attachment_id
         WHERE o.conversation_id = $1
         ORDER BY o.id LIMIT 1",
    )
    .bind(conversation.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(mut row) = row else {
        leases::release(conn, conversation, owner).await?;
        return Ok(NextJob::Empty);
    };
    let lease_owner = row.lease_owner.take();
    let lease_expires_at = row.lease_expires_at.take();
    let job = OutboxJob::try_from(row)?;
    let due = match begin {
        Begin::DueBy(now) => job.next_attempt_at <= now,
        Begin::Nothing => false,
    };
    if due && lease_owner.as_deref() != Some(owner) {
        // Taken over meanwhile (this bridge stopped renewing in time).
        tracing::warn!(%conversation, "the conversation's lease was lost; leaving it to its new holder");
        return Ok(NextJob::Held(lease_expires_at.unwrap_or(0)));
    }
    if job.kind == JobKind::Open && closing_before(conn, &job).await? {
        // Nothing to do until then; finishing that close wakes this one
        // (and the sweep finds it in any case).
        leases::release(conn, conversation, owner).await?;
        return Ok(NextJob::Empty);
    }
    if !due {
        leases::release(conn, conversation, owner).await?;
        return Ok(NextJob::NotBefore(job.next_attempt_at));
    }
    if !matches!(job.kind, JobKind::Send(_)) {
        sql::query("UPDATE outbox SET attempts = attempts + 1 WHERE id = $1")
            .bind(job.id)
            .execute(conn)
            .await?;
    }
    Ok(NextJob::Ready(Box::new(job)))
}

/// Whether another conversation of the opening conversation's customer
/// still has its "close" job queued. The new conversation opens after
/// that close: Flex (Chat) answers a create for the same customer with
/// their channel that is still active, which the close would then end.
async fn closing_before(conn: &mut Conn<'_>, job: &OutboxJob) -> StoreResult<bool> {
    Ok(sql::query_scalar::<bool>(
        "SELECT EXISTS (SELECT 1 FROM outbox o JOIN conversations c ON c.id = o.conversation_id
                        WHERE o.kind = $1 AND c.customer_id = $2 AND o.conversation_id <> $3)",
    )
    .bind(JobKind::CLOSE)
    .bind(job.customer_id.as_str())
    .bind(job.conversation_id.as_str())
    .fetch_one(conn)
    .await?)
}

/// Deletes a job (done, or failed for good) and takes its conversation's
/// next.
async fn finish(
    conn: &mut Conn<'_>,
    job: &OutboxJob,
    begin: Begin,
    owner: &str,
) -> StoreResult<NextJob> {
    sql::query("DELETE FROM outbox WHERE id = $1")
        .bind(job.id)
        .execute(&mut *conn)
        .await?;
    take_next(conn, &job.conversation_id, begin, owner).await
}

impl OutboxQueue<'_> {
    /// The head job of every conversation that has work, and until when
    /// another bridge holds it (a full scan: the worker runs it at start
    /// and on its sweep, not per message).
    pub async fn heads(self) -> StoreResult<Vec<QueueHead>> {
        #[derive(sqlx::FromRow)]
        struct HeadRow {
            conversation_id: String,
            next_attempt_at: i64,
            row_count: i64,
            held_until: Option<i64>,
        }
        let rows: Vec<HeadRow> = sql::query_as(
            "SELECT o.conversation_id, o.next_attempt_at, h.row_count,
                    CASE WHEN c.lease_owner <> $1 THEN c.lease_expires_at END AS held_until
             FROM outbox o
             JOIN (SELECT conversation_id, MIN(id) AS head, COUNT(*) AS row_count
                   FROM outbox GROUP BY conversation_id) h
               ON h.head = o.id
             JOIN conversations c ON c.id = o.conversation_id",
        )
        .bind(&*self.store.holder.owner)
        .fetch_all(self.store.reader())
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(QueueHead {
                    conversation_id: ConversationId::parse(&row.conversation_id)
                        .map_err(|e| corrupt("outbox.conversation_id", e))?,
                    next_attempt_at: row.next_attempt_at,
                    rows: row.row_count,
                    held_until: row.held_until,
                })
            })
            .collect()
    }

    /// The next job of one conversation, ready if `begin` lets it begin:
    /// the first take of a delivery, which claims the conversation's lease
    /// for this store's holder (a job taken over from a bridge that is
    /// gone comes back `maybe_landed`), or answers [`NextJob::Held`] when
    /// another bridge holds it.
    pub async fn take(self, conversation: &ConversationId, begin: Begin) -> StoreResult<NextJob> {
        let take = (conversation.clone(), begin, self.store.holder.clone());
        self.store
            .write(take, |(conversation, begin, holder), conn| {
                Box::pin(async move {
                    if let Begin::DueBy(now) = *begin
                        && let Claim::Held(until) =
                            leases::claim(conn, conversation, holder, now).await?
                    {
                        return Ok(NextJob::Held(until));
                    }
                    take_next(conn, conversation, *begin, &holder.owner).await
                })
            })
            .await
    }

    /// Schedules another attempt after a failed one; the delivery ends
    /// (its lease released) until then.
    pub async fn retry_later(
        self,
        job: i64,
        next_attempt_at: i64,
        error: &str,
        maybe_landed: bool,
    ) -> StoreResult<()> {
        let retry = (
            (job, next_attempt_at),
            error.to_owned(),
            maybe_landed,
            self.store.holder.owner.clone(),
        );
        self.store
            .write(
                retry,
                |((job, next_attempt_at), error, maybe_landed, owner), conn| {
                    Box::pin(async move {
                        // A send's attempt is counted here (the other jobs
                        // counted theirs when they began).
                        sql::query(
                            "UPDATE outbox SET next_attempt_at = $1, last_error = $2,
                                maybe_landed = $3,
                                attempts = attempts + CASE WHEN kind = $4 THEN 1 ELSE 0 END
                         WHERE id = $5",
                        )
                        .bind(next_attempt_at)
                        .bind(error)
                        .bind(i64::from(*maybe_landed))
                        .bind(JobKind::SEND)
                        .bind(job)
                        .execute(&mut *conn)
                        .await?;
                        sql::query(
                            "UPDATE conversations SET lease_owner = NULL, lease_expires_at = NULL
                             WHERE id = (SELECT conversation_id FROM outbox WHERE id = $1)
                               AND lease_owner = $2",
                        )
                        .bind(job)
                        .bind(&**owner)
                        .execute(conn)
                        .await?;
                        Ok(())
                    })
                },
            )
            .await
    }

    /// Queues a "sync" job for every open conversation that has none yet
    /// (re-attach to them after a start); how many were queued.
    pub async fn queue_sync_of_open(self, now: i64) -> StoreResult<u64> {
        self.reattach(now, i64::MAX).await
    }

    /// Start-up recovery, claimed per conversation: every open conversation
    /// that no start re-attached after `since` (ms) is stamped as
    /// re-attached now and gets a "sync" job (unless it has one). Bridges
    /// starting together on one database run this side by side; each
    /// conversation's stamp is claimed by one of them (a conditional
    /// update of its row), so each is re-attached once. How many syncs
    /// were queued.
    pub async fn reattach(self, now: i64, since: i64) -> StoreResult<u64> {
        // Rows locked in `id` order (PostgreSQL): bridges starting
        // together wait for each other's claims rather than deadlock,
        // and then find them stamped.
        static CLAIM: LazyLock<Locking> = LazyLock::new(|| {
            Locking::new(
                format!(
                    "UPDATE conversations SET reattached_at = $1
                     WHERE id IN (SELECT id FROM conversations
                                  WHERE state = '{}' AND flex_channel IS NOT NULL
                                    AND (reattached_at IS NULL OR reattached_at <= $2)
                                  ORDER BY id {{lock}})
                     RETURNING id",
                    ConversationState::Open
                )
                .leak(),
                FOR_UPDATE,
            )
        });
        self.store
            .write((now, since), |(now, since), conn| {
                Box::pin(async move {
                    let claimed: Vec<String> = sql::query_scalar(CLAIM.on(conn))
                        .bind(*now)
                        .bind(*since)
                        .fetch_all(&mut *conn)
                        .await?;
                    let mut queued = 0;
                    for conversation in claimed {
                        queued += sql::query(
                            "INSERT INTO outbox (conversation_id, kind, next_attempt_at, created_at)
                             SELECT $1, $2, $3, $3
                             WHERE NOT EXISTS (SELECT 1 FROM outbox
                                               WHERE conversation_id = $1 AND kind = $2)",
                        )
                        .bind(conversation.as_str())
                        .bind(JobKind::SYNC)
                        .bind(*now)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected();
                    }
                    Ok(queued)
                })
            })
            .await
    }

    /// Queues a "sync" job for every open conversation not re-synced since
    /// `stale_before` (ms) that has none queued: the periodic re-sync, which
    /// finds an agent message whose webhook Flex never delivered even when
    /// no later message reveals the gap. How many it queued.
    pub async fn queue_sync_of_stale(self, now: i64, stale_before: i64) -> StoreResult<u64> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "INSERT INTO outbox (conversation_id, kind, next_attempt_at, created_at)
                 SELECT c.id, $1, $2, $2 FROM conversations c
                 WHERE c.state = '{}' AND c.flex_channel IS NOT NULL
                   AND COALESCE(c.synced_at, c.updated_at) < $3
                   AND NOT EXISTS (SELECT 1 FROM outbox o
                                   WHERE o.conversation_id = c.id AND o.kind = $1)",
                ConversationState::Open
            )
        });
        self.store
            .write((now, stale_before), |(now, stale_before), conn| {
                Box::pin(async move {
                    Ok(sql::query(SQL.as_str())
                        .bind(JobKind::SYNC)
                        .bind(now)
                        .bind(stale_before)
                        .execute(conn)
                        .await?
                        .rows_affected())
                })
            })
            .await
    }

    /// A re-sync looked at the conversation's channel up to
    /// `through_index` (see `Storage::resynced`).
    pub async fn resynced(
        self,
        conversation: &ConversationId,
        through_index: Option<i64>,
        now: i64,
    ) -> StoreResult<()> {
        let done = (conversation.clone(), through_index, now);
        self.store
            .write(done, |(conversation, through_index, now), conn| {
                Box::pin(async move {
                    sql::query(
                        "UPDATE conversations SET synced_at = $1,
                            flex_synced_index = CASE
                                WHEN $2 IS NULL THEN flex_synced_index
                                WHEN flex_synced_index IS NULL OR flex_synced_index < $2 THEN $2
                                ELSE flex_synced_index END
                         WHERE id = $3",
                    )
                    .bind(*now)
                    .bind(*through_index)
                    .bind(conversation.as_str())
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    /// How many jobs wait.
    pub async fn depth(self) -> StoreResult<i64> {
        Ok(sql::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(self.store.reader())
            .await?)
    }

    /// The channel exists: the conversation is open (returned if this
    /// opened it), the job done; with the conversation's next job.
    pub async fn finish_open(
        self,
        job: &OutboxJob,
        opened: &Opened,
        now: i64,
        begin: Begin,
    ) -> StoreResult<(Option<ConversationRecord>, NextJob)> {
        let finished = (
            job.clone(),
            opened.clone(),
            (now, begin),
            self.store.holder.owner.clone(),
        );
        self.store
            .write(finished, |(job, opened, (now, begin), owner), conn| {
                Box::pin(async move {
                    let which = Which::Id(&job.conversation_id);
                    let changed =
                        conversations::apply(&mut *conn, which, Change::Opened(opened), *now)
                            .await?;
                    if changed.is_none() {
                        // The customer ended it before Flex had it.
                        conversations::record_channel_of_closed(
                            &mut *conn,
                            &job.conversation_id,
                            opened,
                            *now,
                        )
                        .await?;
                    }
                    let next = finish(conn, job, *begin, owner).await?;
                    Ok((changed, next))
                })
            })
            .await
    }

    /// The message is in Flex or refused for good: recorded on the
    /// message, its job done; with the conversation's next job.
    pub async fn settle_send(
        self,
        job: &OutboxJob,
        message: &OutgoingMessage,
        outcome: &SendOutcome,
        now: i64,
        begin: Begin,
    ) -> StoreResult<NextJob> {
        let settled = (
            (job.clone(), message.message_id),
            outcome.clone(),
            (now, begin),
            self.store.holder.owner.clone(),
        );
        self.store
            .write(
                settled,
                |((job, message_id), outcome, (now, begin), owner), conn| {
                    Box::pin(async move {
                        messages::settle(&mut *conn, *message_id, outcome, *now).await?;
                        finish(conn, job, *begin, owner).await
                    })
                },
            )
            .await
    }

    /// Drops a job that is done (or cannot be done); with the
    /// conversation's next job.
    pub async fn finish(self, job: &OutboxJob, begin: Begin) -> StoreResult<NextJob> {
        let finished = (job.clone(), begin, self.store.holder.owner.clone());
        self.store
            .write(finished, |(job, begin, owner), conn| {
                Box::pin(finish(conn, job, *begin, owner))
            })
            .await
    }

    /// The conversation cannot go on in Flex (its channel cannot be
    /// created, or is gone): it closes (if it was not closed yet), every
    /// message queued for it fails, its queue empties (and its delivery
    /// ends: the lease is released).
    pub async fn abandon(
        self,
        conversation: &ConversationId,
        reason: CloseReason,
        error: &str,
        now: i64,
    ) -> StoreResult<Abandoned> {
        let failure = (
            (conversation.clone(), reason),
            error.to_owned(),
            now,
            self.store.holder.owner.clone(),
        );
        self.store
            .write(
                failure,
                |((conversation, reason), error, now, owner), conn| {
                    Box::pin(async move {
                        let which = Which::Id(conversation);
                        let closed =
                            conversations::apply(&mut *conn, which, Change::Closed(*reason), *now)
                                .await?;
                        let failed = messages::fail_queued(&mut *conn, conversation, error).await?;
                        sql::query("DELETE FROM outbox WHERE conversation_id = $1")
                            .bind(conversation.as_str())
                            .execute(&mut *conn)
                            .await?;
                        leases::release(conn, conversation, owner).await?;
                        Ok(Abandoned { closed, failed })
                    })
                },
            )
            .await
    }
}

#[cfg(test)]
mod tests;
