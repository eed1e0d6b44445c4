//! The outbox worker: delivers what customers sent to Flex, in order per
//! conversation, exactly once, surviving errors, rate limits and restarts.
//!
//! - Every conversation's rows run in row order; one task per conversation
//!   at a time, up to `concurrency` conversations at once.
//! - Woken with the id of the conversation whose row was just committed
//!   ([`Wakeups`]): a delivery starts for that conversation only, and only
//!   if none is running; a running one reads its conversation's next row
//!   after each row, so it takes new rows itself (a wake-up that arrives
//!   as it finds its queue empty makes it look once more). No wake-up
//!   rescans the queue: the full scan (every conversation's head row) runs
//!   at start, on the periodic sweep (which finds what a crash or a lost
//!   wake-up left), and when a retry or the end of a 429 pause is due. The
//!   `flexbridge_outbox_depth` gauge is counted by that scan.
//! - The "open" row (create the Flex channel and its webhooks) precedes a
//!   new conversation's messages; it is idempotent by construction (Flex
//!   returns the customer's active channel for the same `Target`; webhooks
//!   are listed before any is created).
//! - Sending a message is not idempotent, so a send that may repeat one
//!   that reached Flex first looks for the message in the channel (our
//!   client message id is in its attributes) and, if it is there, records
//!   it as delivered instead of sending it again. A send may repeat one in
//!   two ways. (1) An attempt failed without proof that nothing landed (a
//!   timeout, a 5xx): the retry is recorded with `maybe_landed`. (2) A run
//!   sent it and ended before recording the outcome: a crash, or a task
//!   that died on a store error or a panic. Rows go in order, so only the
//!   head row of a conversation can have been sent that way; the worker
//!   therefore looks first at the next send of every conversation that had
//!   rows when it started, and of every conversation whose task ended
//!   abnormally ([`Outbox`]'s `unsure` set), and starts no delivery before
//!   its first scan has listed them. Within a run, a task that recorded the
//!   previous outcome knows the next row was not sent. So a crash costs one
//!   lookup per conversation with queued rows, never a duplicate, and a
//!   message costs one commit (its outcome, with the next row taken).
//! - Failures: 429 waits `Retry-After` (and pauses every delivery that
//!   long, since Twilio limits the account); transient errors back off
//!   exponentially with jitter, capped; permanent ones (4xx) fail the
//!   message and tell the customer (`delivery` … `failed`). Work older than
//!   `give_up_after` fails too. A channel Flex cannot create, or no longer
//!   has (404), ends its conversation (`chat:ended`) and fails its queue.
//! - Each row goes through the backend of its conversation (the one that
//!   opened it), whichever backend new conversations use now.
//! - A "close" row (the customer ended the chat; the conversation is
//!   already closed in the store) comes after the conversation's other
//!   rows, so Flex gets the messages sent before the end first; it is
//!   idempotent. The customer's next conversation opens only once it is
//!   done (the store holds that "open" row back; finishing the close wakes
//!   it), since Chat would hand back the channel the close is about to end.
//! - At every start, each open conversation gets a "sync" row: its channel
//!   webhooks are pointed at this bridge again (`PUBLIC_BASE_URL` may have
//!   changed, e.g. a new tunnel) and what Flex said while the bridge could
//!   not hear it (agent messages, the chat's end) is applied through the
//!   same idempotent path as webhooks.
//! - Shutdown: no new work starts; in-flight deliveries get `shutdown_grace`
//!   to finish; anything cut short stays queued (marked) for the next start.

mod attempt;
mod wake;

pub use self::wake::Wakeups;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::core::bridge::{Bridge, Fanout};
use crate::core::clock::now_ms;
use crate::core::ids::ConversationId;
use crate::flex::Backends;
use crate::store::outbox::{BEGIN_NONE, OutboxJob};
use crate::store::{Store, StoreError};
use crate::telemetry::chain;

/// Tuning of the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Conversations delivered at the same time: at most this many
    /// requests to Twilio in flight. Twilio limits concurrent REST requests
    /// per account (error 20429; 100 is the commonly cited default, shared
    /// with everything else on the account), so the default takes about
    /// half. Too high costs 429s, which pause deliveries for `Retry-After`
    /// and retry them, never a message; raise it when Twilio raised the
    /// account's limit.
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
            concurrency: 64,
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

/// How long a conversation waits after a store error before it is tried again.
const STORE_ERROR_PAUSE_MS: i64 = 1_000;

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
    wakeups: Arc<Wakeups>,
    config: OutboxConfig,
    /// Conversations a task is working on; `true` when new work was
    /// announced for one while it ran (so it looks again before it ends).
    busy: Mutex<HashMap<ConversationId, bool>>,
    /// No delivery starts before this time (ms): Twilio said 429.
    paused_until: Mutex<i64>,
    /// The earliest time (ms) a full scan is wanted: a retry or the end of
    /// a pause is due then.
    scan_at: Mutex<i64>,
    /// Cancelled at shutdown: no new attempt begins.
    stopping: CancellationToken,
    /// Conversations whose head send may have left without its outcome
    /// recorded (they had rows when this worker started, or their task
    /// ended abnormally): their next send looks in Flex first.
    unsure: Mutex<HashSet<ConversationId>>,
}

/// What one attempt at a row ended in.
enum Step {
    /// The row is done; this is the conversation's next row, if any (ready
    /// if it may go now).
    Done(Option<Box<OutboxJob>>),
    /// The row waits (retry scheduled, or nothing to do yet).
    Wait,
}

/// The worker loop's own state: which conversations to start, and the
/// tasks running.
#[derive(Default)]
struct Dispatch {
    tasks: JoinSet<()>,
    /// Conversations with due work that wait for a free task, in order.
    backlog: VecDeque<ConversationId>,
    /// The members of `backlog`.
    queued: HashSet<ConversationId>,
}

impl Outbox {
    /// The worker for `bridge`'s store, delivering through `backends`.
    pub fn new(bridge: Bridge, backends: Backends, config: OutboxConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: bridge.store().clone(),
                fanout: bridge.fanout().clone(),
                wakeups: bridge.outbox_wakeups().clone(),
                bridge,
                backends,
                config,
                busy: Mutex::new(HashMap::new()),
                paused_until: Mutex::new(0),
                scan_at: Mutex::new(0),
                stopping: CancellationToken::new(),
                unsure: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// Runs until `shutdown`, then lets in-flight deliveries finish.
    pub async fn run(self, shutdown: CancellationToken) {
        let inner = &self.inner;
        let mut dispatch = Dispatch::default();
        let mut last_prune = 0;
        // No delivery starts before a first scan listed the conversations a
        // previous run may have left mid-send.
        let mut scanned = false;
        loop {
            while let Some(done) = dispatch.tasks.try_join_next() {
                log_task_end(done);
            }
            if !scanned || now_ms() >= *lock(&inner.scan_at) {
                scanned |= self.full_scan(&mut dispatch, !scanned).await;
            }
            if scanned {
                for conversation in inner.wakeups.take() {
                    dispatch.enqueue(conversation);
                }
                self.start_tasks(&mut dispatch);
            }
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
            let wait = until(*lock(&inner.scan_at));
            let tasks = &mut dispatch.tasks;
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = inner.wakeups.notified() => {}
                () = tokio::time::sleep(wait) => {}
                Some(done) = tasks.join_next(), if !tasks.is_empty() => log_task_end(done),
            }
        }
        inner.stopping.cancel();
        let drained = tokio::time::timeout(inner.config.shutdown_grace, async {
            while let Some(done) = dispatch.tasks.join_next().await {
                log_task_end(done);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "outbox: deliveries still running at shutdown were cut short; they resume on the next start"
            );
            dispatch.tasks.shutdown().await;
        }
    }

    /// Reads every conversation's head row: those due join the backlog;
    /// the next scan is set for the earliest one not yet due (at the
    /// latest, one sweep interval from now). The first scan (`at_start`)
    /// also marks every conversation with rows as unsure. Whether it read.
    async fn full_scan(&self, dispatch: &mut Dispatch, at_start: bool) -> bool {
        let inner = &self.inner;
        let now = now_ms();
        let mut next_scan = now + duration_ms(inner.config.sweep_interval);
        let read = match inner.store.outbox_heads().await {
            Ok(heads) => {
                if at_start {
                    let mut unsure = lock(&inner.unsure);
                    unsure.extend(heads.iter().map(|head| head.conversation_id.clone()));
                }
                let depth: i64 = heads.iter().map(|head| head.rows).sum();
                metrics::gauge!("flexbridge_outbox_depth").set(depth as f64);
                let paused_until = *lock(&inner.paused_until);
                for head in heads {
                    let due = head.next_attempt_at.max(paused_until);
                    if due > now {
                        next_scan = next_scan.min(due);
                    } else {
                        dispatch.enqueue(head.conversation_id);
                    }
                }
                true
            }
            Err(error) => {
                tracing::error!(error.cause_chain = %chain(&error), "reading the outbox");
                next_scan = next_scan.min(now + STORE_ERROR_PAUSE_MS);
                false
            }
        };
        *lock(&inner.scan_at) = next_scan;
        read
    }

    /// Starts a task for each backlogged conversation, as long as tasks
    /// are free. A conversation that already has one is told to look again.
    fn start_tasks(&self, dispatch: &mut Dispatch) {
        let limit = self.inner.config.concurrency.max(1);
        while dispatch.tasks.len() < limit {
            let Some(conversation) = dispatch.backlog.pop_front() else {
                break;
            };
            dispatch.queued.remove(&conversation);
            {
                let mut busy = lock(&self.inner.busy);
                if let Some(again) = busy.get_mut(&conversation) {
                    *again = true;
                    continue;
                }
                busy.insert(conversation.clone(), false);
            }
            let outbox = self.clone();
            dispatch.tasks.spawn(async move {
                outbox.drain_conversation(conversation).await;
            });
        }
    }

    /// Works through one conversation's rows until it is empty or waits,
    /// and until no new work was announced for it meanwhile. Each row's
    /// outcome is recorded together with taking the next row.
    async fn drain_conversation(&self, conversation: ConversationId) {
        let busy = BusyGuard {
            outbox: self,
            conversation: &conversation,
        };
        let mut step = self.take(&conversation).await;
        loop {
            step = match step {
                Ok(Step::Done(Some(job))) if job.ready => self.attempt(*job).await,
                Ok(Step::Done(Some(job))) => {
                    // Not due yet, paused by a 429, or shutting down.
                    let paused_until = *lock(&self.inner.paused_until);
                    self.scan_at(job.next_attempt_at.max(paused_until));
                    Ok(Step::Wait)
                }
                Ok(Step::Done(None) | Step::Wait) if busy.look_again() => {
                    self.take(&conversation).await
                }
                Ok(Step::Done(None) | Step::Wait) => return,
                Err(error) => {
                    tracing::error!(%conversation, error.cause_chain = %chain(&error), "outbox store error");
                    self.scan_at(now_ms() + STORE_ERROR_PAUSE_MS);
                    return;
                }
            };
        }
    }

    /// The conversation's next row, ready if it may go now.
    async fn take(&self, conversation: &ConversationId) -> Result<Step, StoreError> {
        let next = self
            .inner
            .store
            .outbox_take(conversation, self.due_by())
            .await?;
        Ok(Step::Done(next.map(Box::new)))
    }

    /// Rows due by this time (ms) may go now: none while a 429 pause lasts
    /// or once shutdown started.
    fn due_by(&self) -> i64 {
        let now = now_ms();
        if self.inner.stopping.is_cancelled() || now < *lock(&self.inner.paused_until) {
            BEGIN_NONE
        } else {
            now
        }
    }

    /// Whether `conversation`'s next send must look in Flex first because
    /// its head may have left without its outcome recorded; it no longer
    /// must after this (a failed look-up is recorded as `maybe_landed`).
    fn take_unsure(&self, conversation: &ConversationId) -> bool {
        lock(&self.inner.unsure).remove(conversation)
    }

    /// Asks for a full scan at `at` (ms) at the latest.
    fn scan_at(&self, at: i64) {
        let mut scan_at = lock(&self.inner.scan_at);
        if at < *scan_at {
            *scan_at = at;
            drop(scan_at);
            self.inner.wakeups.nudge();
        }
    }

    /// `base · 2^(attempts-1)`, capped, times a random factor in [0.5, 1].
    fn backoff(&self, attempts: i64) -> Duration {
        backoff(
            &self.inner.config,
            attempts,
            rand::Rng::random_range(&mut rand::rng(), 0.5..=1.0),
        )
    }
}

impl Dispatch {
    /// Adds `conversation` to the backlog unless it is there already.
    fn enqueue(&mut self, conversation: ConversationId) {
        if self.queued.insert(conversation.clone()) {
            self.backlog.push_back(conversation);
        }
    }
}

/// A task's claim on its conversation. Ends it for good only when no new
/// work was announced meanwhile; dropped otherwise (the task ended on a
/// store error, a panic, or at shutdown), it frees the conversation and
/// marks it unsure: a send may have left without its outcome recorded.
struct BusyGuard<'a> {
    outbox: &'a Outbox,
    conversation: &'a ConversationId,
}

impl BusyGuard<'_> {
    /// Whether the task should read its conversation again: work was
    /// announced since it last looked. Otherwise the conversation is freed
    /// (under the same lock the dispatcher checks, so no announcement falls
    /// between the two).
    fn look_again(&self) -> bool {
        let mut busy = lock(&self.outbox.inner.busy);
        match busy.get_mut(self.conversation) {
            Some(again) if *again => {
                *again = false;
                true
            }
            _ => {
                busy.remove(self.conversation);
                false
            }
        }
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let inner = &self.outbox.inner;
        // Still claimed: the task did not end through `look_again`.
        let Some(again) = lock(&inner.busy).remove(self.conversation) else {
            return;
        };
        lock(&inner.unsure).insert(self.conversation.clone());
        if again {
            inner.wakeups.wake(self.conversation);
        }
    }
}

fn backoff(config: &OutboxConfig, attempts: i64, jitter: f64) -> Duration {
    let exponent = u32::try_from((attempts - 1).clamp(0, 20)).unwrap_or(20);
    let raw = config
        .base_backoff
        .saturating_mul(2u32.saturating_pow(exponent));
    raw.min(config.max_backoff).mul_f64(jitter)
}

/// How long until `at` (ms), at least 1 ms.
fn until(at: i64) -> Duration {
    Duration::from_millis(u64::try_from((at - now_ms()).max(1)).unwrap_or(1))
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
