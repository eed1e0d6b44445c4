//! The outbox worker: delivers what customers sent to Flex, in order per
//! conversation, exactly once, surviving errors, rate limits and restarts.
//!
//! - Every conversation's rows run in row order; one task per conversation
//!   at a time, up to `concurrency` conversations at once.
//! - Woken by a `Notify` when a row is queued, by a timer when a retry is
//!   due, and by a periodic sweep (which also finds what a crash left).
//! - The "open" row (create the Flex channel and its webhooks) precedes a
//!   new conversation's messages; it is idempotent by construction (Flex
//!   returns the customer's active channel for the same `Target`; webhooks
//!   are listed before any is created).
//! - Sending a message is not idempotent, so before each attempt the row is
//!   marked `maybe_landed`; the mark is cleared only by a failure that
//!   proves nothing landed (429, refused connection, 4xx). Any attempt that
//!   starts with the mark set first looks for the message in the channel
//!   (our client message id is in its attributes) and, if it is there,
//!   records it as delivered instead of sending it again. A crash mid-send
//!   therefore costs one lookup, not a duplicate.
//! - Failures: 429 waits `Retry-After` (and pauses every delivery that
//!   long, since Twilio limits the account); transient errors back off
//!   exponentially with jitter, capped; permanent ones (4xx) fail the
//!   message and tell the customer (`delivery` … `failed`). Work older than
//!   `give_up_after` fails too. A channel Flex cannot create, or no longer
//!   has (404), ends its conversation (`chat:ended`) and fails its queue.
//! - Each row goes through the backend of its conversation (the one that
//!   opened it), whichever backend new conversations use now.
//! - At every start, each open conversation gets a "sync" row: its channel
//!   webhooks are pointed at this bridge again (`PUBLIC_BASE_URL` may have
//!   changed, e.g. a new tunnel) and what Flex said while the bridge could
//!   not hear it (agent messages, the chat's end) is applied through the
//!   same idempotent path as webhooks.
//! - Shutdown: no new work starts; in-flight deliveries get `shutdown_grace`
//!   to finish; anything cut short stays queued (marked) for the next start.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng as _;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::core::bridge::{Bridge, BridgeError, DeliveryOutcome, EventOutcome, Fanout, Notice};
use crate::core::clock::now_ms;
use crate::core::conversation::CloseReason;
use crate::core::ids::{ConversationId, CustomerId, FlexIdentity, MessageSid, Seq};
use crate::flex::{
    Backends, Disposition, FlexBackend, FlexError, OpenRequest, OutboundMessage, ResyncRequest,
};
use crate::store::outbox::{JobKind, OutboxJob, OutgoingMessage};
use crate::store::{Store, StoreError};
use crate::telemetry::chain;

/// Tuning of the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Conversations delivered at the same time.
    pub concurrency: usize,
    /// First retry delay; doubles per attempt.
    pub base_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Work queued longer than this fails instead of retrying.
    pub give_up_after: Duration,
    /// How often the queue is swept even without a wake-up.
    pub sweep_interval: Duration,
    /// How long shutdown waits for in-flight deliveries.
    pub shutdown_grace: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            concurrency: 32,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            give_up_after: Duration::from_secs(24 * 3600),
            sweep_interval: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Webhook receipts older than this are forgotten.
const RECEIPT_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// The delivery worker.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    /// Applies what a `sync` row brings back, like a webhook.
    bridge: Bridge,
    store: Store,
    backends: Backends,
    fanout: Arc<dyn Fanout>,
    notify: Arc<Notify>,
    config: OutboxConfig,
    /// Conversations a task is working on.
    busy: Mutex<HashSet<ConversationId>>,
    /// No delivery starts before this time (ms): Twilio said 429.
    paused_until: Mutex<i64>,
}

/// The row a failure belongs to.
#[derive(Clone, Copy)]
enum Row<'a> {
    Open,
    Send(&'a OutgoingMessage),
    Sync,
}

/// What one attempt at a row ended in.
enum Step {
    /// The row is done; the conversation's next row may go.
    Done,
    /// The row waits (retry scheduled, or nothing to do yet).
    Wait,
}

impl Outbox {
    /// The worker for `bridge`'s store, delivering through `backends`.
    pub fn new(bridge: Bridge, backends: Backends, config: OutboxConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: bridge.store().clone(),
                fanout: bridge.fanout().clone(),
                notify: bridge.outbox_notify().clone(),
                bridge,
                backends,
                config,
                busy: Mutex::new(HashSet::new()),
                paused_until: Mutex::new(0),
            }),
        }
    }

    /// Runs until `shutdown`, then lets in-flight deliveries finish.
    pub async fn run(self, shutdown: CancellationToken) {
        let inner = &self.inner;
        let permits = Arc::new(Semaphore::new(inner.config.concurrency.max(1)));
        let stopping = shutdown.child_token();
        let mut tasks = JoinSet::new();
        let mut last_prune = 0;
        loop {
            while let Some(done) = tasks.try_join_next() {
                log_task_end(done);
            }
            let wait = match self.dispatch(&permits, &mut tasks, &stopping).await {
                Ok(wait) => wait,
                Err(error) => {
                    tracing::error!(error.cause_chain = %chain(&error), "reading the outbox");
                    Duration::from_secs(1)
                }
            };
            if now_ms() - last_prune > 3_600_000 {
                last_prune = now_ms();
                if let Err(error) = inner
                    .store
                    .prune_receipts(last_prune - RECEIPT_RETENTION_MS)
                    .await
                {
                    tracing::warn!(error.cause_chain = %chain(&error), "pruning webhook receipts");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = inner.notify.notified() => {}
                () = tokio::time::sleep(wait) => {}
                Some(done) = tasks.join_next(), if !tasks.is_empty() => log_task_end(done),
            }
        }
        stopping.cancel();
        let drained = tokio::time::timeout(inner.config.shutdown_grace, async {
            while let Some(done) = tasks.join_next().await {
                log_task_end(done);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "outbox: deliveries still running at shutdown were cut short; they resume on the next start"
            );
            tasks.shutdown().await;
        }
    }

    /// Starts a task for every conversation whose head row is due; returns
    /// how long until the next known due time (at most the sweep interval).
    async fn dispatch(
        &self,
        permits: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
        stopping: &CancellationToken,
    ) -> Result<Duration, StoreError> {
        let inner = &self.inner;
        let heads = inner.store.outbox_heads().await?;
        metrics::gauge!("flexbridge_outbox_depth").set(inner.store.outbox_depth().await? as f64);
        let now = now_ms();
        let paused_until = *lock(&inner.paused_until);
        let mut next_due = now + duration_ms(inner.config.sweep_interval);
        for head in heads {
            let due = head.next_attempt_at.max(paused_until);
            if due > now {
                next_due = next_due.min(due);
                continue;
            }
            if lock(&inner.busy).contains(&head.conversation_id) {
                continue;
            }
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                // All busy: a finishing task wakes the loop again.
                break;
            };
            lock(&inner.busy).insert(head.conversation_id.clone());
            let outbox = self.clone();
            let stopping = stopping.clone();
            tasks.spawn(async move {
                outbox
                    .drain_conversation(&head.conversation_id, permit, &stopping)
                    .await;
            });
        }
        Ok(Duration::from_millis(
            u64::try_from((next_due - now).max(1)).unwrap_or(1),
        ))
    }

    /// Works through one conversation's rows until it is empty or waits.
    async fn drain_conversation(
        &self,
        conversation: &ConversationId,
        _permit: OwnedSemaphorePermit,
        stopping: &CancellationToken,
    ) {
        let inner = &self.inner;
        let _busy = BusyGuard {
            outbox: self,
            conversation,
        };
        while !stopping.is_cancelled() {
            let step = match inner.store.outbox_next(conversation).await {
                Ok(Some(job)) if job.next_attempt_at <= now_ms() => self.attempt(job).await,
                Ok(_) => Ok(Step::Wait),
                Err(error) => Err(error),
            };
            match step {
                Ok(Step::Done) => {}
                Ok(Step::Wait) => break,
                Err(error) => {
                    tracing::error!(%conversation, error.cause_chain = %chain(&error), "outbox store error");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }

    async fn attempt(&self, job: OutboxJob) -> Result<Step, StoreError> {
        if now_ms() < *lock(&self.inner.paused_until) {
            return Ok(Step::Wait);
        }
        let row = match &job.kind {
            JobKind::Open => Row::Open,
            JobKind::Send(message) => Row::Send(message),
            JobKind::Sync => Row::Sync,
        };
        let Some(backend) = self.inner.backends.get(job.backend).map(AsRef::as_ref) else {
            let missing = FlexError::NotConfigured(format!("no {} backend", job.backend));
            return self.failed(&job, row, missing, false).await;
        };
        match row {
            Row::Open => self.open(&job, backend).await,
            Row::Send(message) => self.send(&job, message, backend).await,
            Row::Sync => self.sync(&job, backend).await,
        }
    }

    async fn open(&self, job: &OutboxJob, backend: &dyn FlexBackend) -> Result<Step, StoreError> {
        let inner = &self.inner;
        inner.store.outbox_begin_attempt(job.id, false).await?;
        let identity = FlexIdentity::for_customer(&job.customer_id);
        let request = OpenRequest {
            conversation: &job.conversation_id,
            customer: &job.customer_id,
            identity: &identity,
            customer_name: &job.customer_name,
        };
        match backend.open(&request).await {
            Ok(opened) => {
                let conversation = inner
                    .store
                    .outbox_finish_open(
                        job,
                        &opened.channel,
                        opened.task.as_ref(),
                        opened.flex_ref.as_ref(),
                        now_ms(),
                    )
                    .await?;
                tracing::info!(conversation = %job.conversation_id, channel = %opened.channel, "Flex channel open");
                if let Some(conversation) = conversation {
                    inner
                        .fanout
                        .notify(&job.customer_id, Notice::Conversation(conversation))
                        .await;
                }
                Ok(Step::Done)
            }
            Err(error) => self.failed(job, Row::Open, error, false).await,
        }
    }

    async fn send(
        &self,
        job: &OutboxJob,
        message: &OutgoingMessage,
        backend: &dyn FlexBackend,
    ) -> Result<Step, StoreError> {
        let inner = &self.inner;
        let Some(channel) = &job.channel else {
            // Cannot happen while the open row precedes every send; never
            // post to a channel we do not have (the post's `Channels/undefined`).
            tracing::error!(conversation = %job.conversation_id, "a message is queued for a conversation without a channel");
            return self
                .settle(job, message, Err("the conversation has no Flex channel"))
                .await;
        };
        if job.maybe_landed {
            match backend.find_sent(channel, &message.client_msg_id).await {
                Ok(Some(sid)) => {
                    tracing::info!(conversation = %job.conversation_id, seq = message.seq.0, "an earlier attempt had landed; not sending again");
                    return self.settle(job, message, Ok(&sid)).await;
                }
                Ok(None) => {}
                Err(error) => return self.failed(job, Row::Send(message), error, true).await,
            }
        }
        inner.store.outbox_begin_attempt(job.id, true).await?;
        let identity = FlexIdentity::for_customer(&job.customer_id);
        let outbound = OutboundMessage {
            identity: &identity,
            client_msg_id: &message.client_msg_id,
            seq: message.seq,
            body: &message.body,
        };
        match backend.send(channel, &outbound).await {
            Ok(sid) => self.settle(job, message, Ok(&sid)).await,
            Err(error) => self.failed(job, Row::Send(message), error, false).await,
        }
    }

    /// Re-attaches to an open conversation after a start: webhooks pointed
    /// here, missed agent messages and a missed chat end applied (through
    /// the same idempotent path as webhooks).
    async fn sync(&self, job: &OutboxJob, backend: &dyn FlexBackend) -> Result<Step, StoreError> {
        let inner = &self.inner;
        let Some(channel) = job
            .channel
            .as_ref()
            .filter(|_| job.conversation_state.is_live())
        else {
            inner.store.outbox_done(job.id).await?;
            return Ok(Step::Done);
        };
        inner.store.outbox_begin_attempt(job.id, false).await?;
        let identity = FlexIdentity::for_customer(&job.customer_id);
        let request = ResyncRequest {
            channel,
            identity: &identity,
            flex_ref: job.flex_ref.as_ref(),
        };
        let events = match backend.resync(&request).await {
            Ok(events) => events,
            Err(error) => return self.failed(job, Row::Sync, error, false).await,
        };
        let mut caught_up = 0;
        for event in events {
            let event = crate::flex::with_agent_name(backend, event).await;
            match inner.bridge.apply_flex_event(&event).await {
                Ok(EventOutcome::Applied) => caught_up += 1,
                Ok(_) => {}
                Err(BridgeError::Store(error)) => return Err(error),
                Err(error) => {
                    tracing::warn!(error.cause_chain = %chain(&error), "applying a missed event")
                }
            }
        }
        if caught_up > 0 {
            tracing::info!(conversation = %job.conversation_id, caught_up, "caught up on what Flex said while the bridge was away");
        }
        inner.store.outbox_done(job.id).await?;
        Ok(Step::Done)
    }

    /// Records a message's fate (in Flex as `sid`, or refused for good
    /// with an error) and tells the customer.
    async fn settle(
        &self,
        job: &OutboxJob,
        message: &OutgoingMessage,
        outcome: Result<&MessageSid, &str>,
    ) -> Result<Step, StoreError> {
        let now = now_ms();
        self.inner
            .store
            .outbox_settle_send(job.id, message, outcome, now)
            .await?;
        if outcome.is_ok() {
            metrics::counter!("flexbridge_messages_out_total").increment(1);
            metrics::histogram!("flexbridge_delivery_latency_seconds")
                .record((now - message.accepted_at).max(0) as f64 / 1000.0);
        }
        let outcome = match outcome {
            Ok(_) => DeliveryOutcome::Delivered,
            Err(error) => DeliveryOutcome::Failed(error.to_owned()),
        };
        self.tell(
            &job.customer_id,
            message.seq,
            &message.client_msg_id,
            outcome,
        )
        .await;
        Ok(Step::Done)
    }

    async fn tell(
        &self,
        customer: &CustomerId,
        seq: Seq,
        client_msg_id: &str,
        outcome: DeliveryOutcome,
    ) {
        let notice = Notice::Delivery {
            seq,
            client_msg_id: client_msg_id.to_owned(),
            outcome,
        };
        self.inner.fanout.notify(customer, notice).await;
    }

    /// Decides what a failure means for the row. `still_maybe_landed`:
    /// the failure happened while checking an earlier attempt, whose
    /// uncertainty remains.
    async fn failed(
        &self,
        job: &OutboxJob,
        row: Row<'_>,
        error: FlexError,
        still_maybe_landed: bool,
    ) -> Result<Step, StoreError> {
        let inner = &self.inner;
        let now = now_ms();
        let attempts = job.attempts + 1;
        let too_old = now - job.created_at > duration_ms(inner.config.give_up_after);
        let disposition = if too_old {
            Disposition::Permanent
        } else {
            error.disposition()
        };
        let error_text = chain(&error);
        let (delay, maybe_landed) = match disposition {
            Disposition::Permanent => {
                tracing::warn!(conversation = %job.conversation_id, error = %error_text, "Flex refused; giving up");
                // A channel Flex no longer has ends its conversation.
                let gone = error.is_not_found() && !matches!(row, Row::Open);
                return match row {
                    _ if gone => {
                        self.abandon(job, CloseReason::ChannelGone, &error_text)
                            .await
                    }
                    Row::Send(message) => self.settle(job, message, Err(&error_text)).await,
                    Row::Open => {
                        self.abandon(job, CloseReason::OpenFailed, &error_text)
                            .await
                    }
                    Row::Sync => {
                        inner.store.outbox_done(job.id).await?;
                        Ok(Step::Done)
                    }
                };
            }
            Disposition::RateLimited(retry_after) => {
                let delay = retry_after.unwrap_or_else(|| self.backoff(attempts));
                let until = now + duration_ms(delay);
                let mut paused = lock(&inner.paused_until);
                *paused = (*paused).max(until);
                tracing::warn!(
                    delay_ms = duration_ms(delay),
                    "Twilio rate limit (429); pausing deliveries"
                );
                (delay, still_maybe_landed)
            }
            Disposition::Transient { maybe_landed } => {
                (self.backoff(attempts), maybe_landed || still_maybe_landed)
            }
        };
        tracing::warn!(
            conversation = %job.conversation_id, attempts, retry_in_ms = duration_ms(delay),
            maybe_landed, error = %error_text, "delivery failed; will retry"
        );
        inner
            .store
            .outbox_retry_later(job.id, now + duration_ms(delay), &error_text, maybe_landed)
            .await?;
        Ok(Step::Wait)
    }

    /// The conversation cannot go on in Flex: it closes, each of its queued
    /// messages fails, and the customer is told (their next message opens
    /// a new conversation).
    async fn abandon(
        &self,
        job: &OutboxJob,
        reason: CloseReason,
        error: &str,
    ) -> Result<Step, StoreError> {
        let abandoned = self
            .inner
            .store
            .outbox_abandon(&job.conversation_id, reason, error, now_ms())
            .await?;
        for message in abandoned.failed {
            let outcome = DeliveryOutcome::Failed(error.to_owned());
            self.tell(
                &message.customer_id,
                message.seq,
                &message.client_msg_id,
                outcome,
            )
            .await;
        }
        if let Some(conversation) = abandoned.closed {
            tracing::warn!(conversation = %conversation.id, reason = reason.as_str(), "conversation abandoned");
            let fanout = &self.inner.fanout;
            fanout
                .notify(&job.customer_id, Notice::Conversation(conversation.clone()))
                .await;
            fanout
                .notify(
                    &job.customer_id,
                    Notice::ChatEnded {
                        conversation,
                        reason,
                    },
                )
                .await;
        }
        Ok(Step::Done)
    }

    /// `base · 2^(attempts-1)`, capped, times a random factor in [0.5, 1].
    fn backoff(&self, attempts: i64) -> Duration {
        backoff(
            &self.inner.config,
            attempts,
            rand::rng().random_range(0.5..=1.0),
        )
    }
}

/// Frees a conversation for the next task when this one ends (even by a
/// panic), and wakes the loop: rows queued meanwhile are picked up.
struct BusyGuard<'a> {
    outbox: &'a Outbox,
    conversation: &'a ConversationId,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        lock(&self.outbox.inner.busy).remove(self.conversation);
        self.outbox.inner.notify.notify_one();
    }
}

fn backoff(config: &OutboxConfig, attempts: i64, jitter: f64) -> Duration {
    let exponent = u32::try_from((attempts - 1).clamp(0, 20)).unwrap_or(20);
    let raw = config
        .base_backoff
        .saturating_mul(2u32.saturating_pow(exponent));
    raw.min(config.max_backoff).mul_f64(jitter)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn log_task_end(result: Result<(), tokio::task::JoinError>) {
    if let Err(error) = result
        && error.is_panic()
    {
        tracing::error!(?error, "an outbox task panicked");
    }
}

#[cfg(test)]
mod tests;
