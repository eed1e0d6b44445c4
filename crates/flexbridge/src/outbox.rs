//! The outbox worker: delivers what customers sent to Flex, in order per
//! conversation, exactly once, surviving errors, rate limits and restarts.
//! It schedules and calls Flex; what each outcome means (stored, told to
//! the customer) the core decides ([`Bridge`]'s outcome methods).
//!
//! - Every conversation's jobs run in row order; one task per
//!   conversation at a time, up to `concurrency` conversations at once.
//! - Woken with the id of the conversation whose job was just committed
//!   ([`Wakeups`]): a delivery starts for that conversation only, and only
//!   if none is running; a running one takes its conversation's next job
//!   with each outcome, so it takes new jobs itself (a wake-up that
//!   arrives as it finds its queue empty makes it look once more). No
//!   wake-up rescans the queue: the full scan (every conversation's head
//!   job) runs at start, on the periodic sweep (which finds what a crash or
//!   a lost wake-up left), and when a retry or the end of a 429 pause is
//!   due. (The `flexbridge_outbox_depth` gauge is counted in the store at
//!   each scrape of `/metrics`, so it is exact between scans too.)
//! - Re-sync: every open conversation not re-synced for
//!   `resync_interval` gets a "sync" job on the next sweep, so an agent
//!   message whose webhook Flex never delivered arrives within that time
//!   even when no later message reveals the gap (a later one does at once:
//!   `core::bridge` fills the gap before storing it).
//! - Recovery first: before its first scan, the worker moves conversations
//!   not yet in Flex to the configured backend and queues a "sync" job for
//!   every open conversation (re-point its webhooks here, apply what Flex
//!   said while the bridge could not hear it).
//! - The "open" job (create the Flex channel and its webhooks) precedes a
//!   new conversation's messages; it is idempotent by construction (Flex
//!   returns the customer's active channel for the same `Target`; webhooks
//!   are listed before any is created).
//! - Sending a message is not idempotent, so a send that may repeat one
//!   that reached Flex first looks for the message in the channel (our
//!   client message id is in its attributes) and, if it is there, records
//!   it as delivered instead of sending it again. A send may repeat one in
//!   two ways. (1) An attempt failed without proof that nothing landed (a
//!   timeout, a 5xx, and a 429: Twilio documents 429 as refused before
//!   it runs, but the emulator can make one land and exactly once should
//!   not rest on a reading of Twilio's intent, so a 429'd send costs one
//!   lookup after its pause): the retry is recorded with `maybe_landed`. (2) A run
//!   sent it and ended before recording the outcome: a crash, or a task
//!   that died on a store error or a panic. Jobs go in order, so only the
//!   head job of a conversation can have been sent that way; the worker
//!   therefore looks first at the next send of every conversation that had
//!   jobs when it started, and of every conversation whose task ended
//!   abnormally (the `unsure` set), and starts no delivery before its first
//!   scan has listed them. Within a run, a task that recorded the previous
//!   outcome knows the next job was not sent. So a crash costs one lookup
//!   per conversation with queued jobs, never a duplicate, and a message
//!   costs one commit (its outcome, with the next job taken).
//! - Failures: 429 waits `Retry-After` (and pauses every delivery that
//!   long, since Twilio limits the account); transient errors back off
//!   exponentially with jitter, capped; permanent ones (4xx) fail the
//!   message and tell the customer (`delivery` … `failed`). Work older than
//!   `give_up_after` fails too. A channel Flex cannot create, or no longer
//!   has (404), ends its conversation (`chat:ended`) and fails its queue.
//! - A poison job never spins: a step whose outcome the store refuses for
//!   good (a constraint violation, a row it cannot read) is settled as
//!   failed — a message gets `delivery` `failed` with a reason, an "open"
//!   abandons its conversation, a "sync" or "close" is dropped — with an
//!   ERROR line naming it and `flexbridge_outbox_poison_jobs_total`; the
//!   conversation's queue moves on. (A store that is merely unavailable
//!   is retried, as before.)
//! - Each job goes through the backend of its conversation (the one that
//!   opened it), whichever backend new conversations use now.
//! - A "close" job (the customer ended the chat; the conversation is
//!   already closed in the store) comes after the conversation's other
//!   jobs, so Flex gets the messages sent before the end first; it is
//!   idempotent. The customer's next conversation opens only once it is
//!   done (the store holds that "open" job back; finishing the close wakes
//!   it), since Chat would hand back the channel the close is about to end.
//! - One bridge at a time delivers a conversation: the first take of a
//!   delivery claims the conversation's lease in the database, the
//!   worker renews the leases of its running deliveries three times per
//!   lease, and the write that ends a delivery releases it
//!   (`store::leases`). A conversation another bridge holds is tried again
//!   shortly (its holder may just be letting go) and at the latest when
//!   its lease ends; one whose holder stopped renewing is taken over then,
//!   its head send looked for in Flex first (a taken-over conversation is
//!   unsure). A bridge alone on its database ([`OutboxConfig::alone`])
//!   takes an earlier run's leases over at start instead of waiting. One
//!   of several that cannot renew for two thirds of a lease stops its
//!   deliveries in flight, so that none is still sending when another
//!   bridge takes them over.
//! - Recovery is claimed per conversation: several bridges starting
//!   together re-attach each open conversation once (`store::outbox`'s
//!   `reattach`), and adopt an unopened one only when no delivery holds it.
//! - Time is the injected [`Clock`]'s (tests pause tokio's clock).
//! - Shutdown: no new work starts; in-flight deliveries get `shutdown_grace`
//!   to finish; anything cut short stays queued (marked) for the next start.

mod attempt;
mod claims;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::core::backend::Backends;
use crate::core::clock::{Clock, duration_ms};
use crate::core::ids::ConversationId;
use crate::core::storage::StorageError;
use crate::core::work::{Begin, NextJob, Wakeups};
use crate::core::{Bridge, chain, lock};
use crate::store::Store;

/// Tuning of the worker (its defaults are the settings', `config::OutboxSettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Conversations delivered at the same time: at most this many
    /// requests to Twilio in flight (docs/architecture.md §4.2 says how
    /// to choose it against Twilio's concurrency limit).
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
    /// This bridge is the only one on its database (SQLite; PostgreSQL
    /// without Redis, held by `store::lock`): a lease another owner holds
    /// is an earlier run's, taken over at start, and every start
    /// re-attaches every open conversation. Otherwise leases are taken
    /// over when they expire, and a start re-attaches only what no other
    /// start did within a lease.
    pub alone: bool,
    /// How often an open conversation is re-synced with Flex even when
    /// nothing reveals a gap (checked on each sweep).
    pub resync_interval: Duration,
}

/// What the worker works with.
pub struct OutboxParts {
    /// Decides what each outcome means (stores it, tells the customer).
    pub bridge: Bridge,
    /// The queue's own statements (scan, take, retry later, recovery).
    pub store: Store,
    /// Every job goes through its conversation's backend.
    pub backends: Backends,
    /// Which conversations have new work.
    pub wakeups: Arc<Wakeups>,
    pub clock: Clock,
    pub config: OutboxConfig,
}

/// Webhook receipts older than this are forgotten.
const RECEIPT_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

/// How long a conversation waits after a store error before it is tried again.
const STORE_ERROR_PAUSE_MS: i64 = 1_000;

/// How soon a conversation another bridge holds is tried again (its
/// holder may have just found its queue empty as this bridge's job was
/// committed), at most: its lease's end comes first if sooner.
const HELD_RECHECK_MS: i64 = 250;

/// The delivery worker.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    bridge: Bridge,
    store: Store,
    backends: Backends,
    wakeups: Arc<Wakeups>,
    clock: Clock,
    config: OutboxConfig,
    /// Conversations a task is working on; `true` when new work was
    /// announced for one while it ran (so it looks again before it ends).
    busy: Mutex<HashMap<ConversationId, bool>>,
    /// No delivery starts before this time (ms): Twilio said 429.
    paused_until: Mutex<i64>,
    /// The earliest time (ms) a full scan is wanted: a retry or the end of
    /// a pause is due then.
    scan_at: Mutex<i64>,
    /// `run`'s shutdown token: once cancelled, no new attempt begins.
    stopping: OnceLock<CancellationToken>,
    /// Conversations whose head send may have left without its outcome
    /// recorded (they had jobs when this worker started, or their task
    /// ended abnormally): their next send looks in Flex first.
    unsure: Mutex<HashSet<ConversationId>>,
    /// Conversations another bridge holds, and when to try them again (ms).
    held: Mutex<HashMap<ConversationId, i64>>,
    /// Set by the lease keeper when this bridge could not renew its
    /// leases in time: the deliveries in flight stop.
    stop_deliveries: std::sync::atomic::AtomicBool,
}

/// Where a conversation's delivery stands after a step.
enum Step {
    /// The job is done; this is the conversation's next.
    Next(NextJob),
    /// The job waits (retry scheduled, or nothing to do yet).
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
    pub fn new(parts: OutboxParts) -> Self {
        let OutboxParts {
            bridge,
            store,
            backends,
            wakeups,
            clock,
            config,
        } = parts;
        Self {
            inner: Arc::new(Inner {
                bridge,
                store,
                backends,
                wakeups,
                clock,
                config,
                busy: Mutex::new(HashMap::new()),
                paused_until: Mutex::new(0),
                scan_at: Mutex::new(0),
                stopping: OnceLock::new(),
                unsure: Mutex::new(HashSet::new()),
                held: Mutex::new(HashMap::new()),
                stop_deliveries: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    fn now(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// Runs until `shutdown`, then lets in-flight deliveries finish. Ends
    /// with an error only if it cannot go on (it never does today: store
    /// errors are retried); the supervisor stops the process then.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let inner = &self.inner;
        // A second `run` of the same worker would share the first's token.
        let _ = inner.stopping.set(shutdown.clone());
        tracing::info!(owner = %inner.store.holder().owner, alone = inner.config.alone, "outbox: delivering as this lease owner");
        // Renews the running deliveries' leases until the worker ends.
        let _keeper =
            AbortOnDropHandle::new(tokio::spawn(self.clone().keep_leases(shutdown.clone())));
        let mut dispatch = Dispatch::default();
        let mut last_prune = 0;
        let mut recovered = false;
        // No delivery starts before a first scan listed the conversations a
        // previous run may have left mid-send.
        let mut scanned = false;
        loop {
            while let Some(done) = dispatch.tasks.try_join_next() {
                log_task_end(done);
            }
            if !recovered {
                recovered = self.recover().await;
            }
            if recovered && (!scanned || self.now() >= *lock(&inner.scan_at)) {
                scanned |= self.full_scan(&mut dispatch, !scanned).await;
            }
            if inner.stop_deliveries.swap(false, Ordering::SeqCst) && !dispatch.tasks.is_empty() {
                tracing::error!(
                    deliveries = dispatch.tasks.len(),
                    "outbox: the leases could not be renewed in time; stopping the deliveries in flight so another bridge can take them over without sending twice"
                );
                dispatch.tasks.abort_all();
            }
            if scanned {
                for conversation in inner.wakeups.take() {
                    dispatch.enqueue(conversation);
                }
                for conversation in self.due_held() {
                    dispatch.enqueue(conversation);
                }
                self.start_tasks(&mut dispatch);
            }
            if self.now() - last_prune > 3_600_000 {
                last_prune = self.now();
                let before = last_prune - RECEIPT_RETENTION_MS;
                if let Err(error) = inner.store.receipts().prune(before).await {
                    tracing::warn!(error.cause_chain = %chain(&error), "pruning webhook receipts");
                }
            }
            // One lock at a time: `scan_at`'s guard must be gone before
            // anything else locks it (a std mutex does not re-enter).
            let next_held = lock(&inner.held).values().copied().min();
            let scan_at = *lock(&inner.scan_at);
            let wake_at = next_held.map_or(scan_at, |held| held.min(scan_at));
            let wait = inner.clock.until(wake_at);
            let tasks = &mut dispatch.tasks;
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = inner.wakeups.notified() => {}
                () = tokio::time::sleep(wait) => {}
                Some(done) = tasks.join_next(), if !tasks.is_empty() => log_task_end(done),
            }
        }
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
        Ok(())
    }

    /// Reads every conversation's head job: those due join the backlog;
    /// the next scan is set for the earliest one not yet due (at the
    /// latest, one sweep interval from now). The first scan (`at_start`)
    /// also marks every conversation with jobs as unsure. Whether it read.
    async fn full_scan(&self, dispatch: &mut Dispatch, at_start: bool) -> bool {
        let inner = &self.inner;
        let now = self.now();
        let mut next_scan = now + duration_ms(inner.config.sweep_interval);
        let stale_before = now - duration_ms(inner.config.resync_interval);
        match inner
            .store
            .outbox()
            .queue_sync_of_stale(now, stale_before)
            .await
        {
            Ok(0) => {}
            Ok(queued) => tracing::debug!(conversations = queued, "periodic re-sync with Flex"),
            Err(error) => {
                tracing::warn!(error.cause_chain = %chain(&error), "queueing the periodic re-sync")
            }
        }
        let read = match inner.store.outbox().heads().await {
            Ok(heads) => {
                if at_start {
                    let mut unsure = lock(&inner.unsure);
                    unsure.extend(heads.iter().map(|head| head.conversation_id.clone()));
                }
                let paused_until = *lock(&inner.paused_until);
                for head in heads {
                    let due = head
                        .next_attempt_at
                        .max(paused_until)
                        .max(head.held_until.unwrap_or(0));
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

    /// Works through one conversation's jobs until it is empty or waits,
    /// and until no new work was announced for it meanwhile. Each job's
    /// outcome is recorded together with taking the next job.
    async fn drain_conversation(&self, conversation: ConversationId) {
        let busy = BusyGuard {
            outbox: self,
            conversation: &conversation,
        };
        let mut step = self.take(&conversation).await;
        loop {
            step = match step {
                Ok(Step::Next(NextJob::Ready(job))) => {
                    let poison = (*job).clone();
                    match self.attempt(*job).await {
                        Err(error) if error.is_permanent() => self.poisoned(&poison, &error).await,
                        other => other,
                    }
                }
                Ok(Step::Next(NextJob::NotBefore(at))) => {
                    // Not due yet, paused by a 429, or shutting down.
                    let paused_until = *lock(&self.inner.paused_until);
                    self.scan_at(at.max(paused_until));
                    Ok(Step::Wait)
                }
                Ok(Step::Next(NextJob::Held(until))) => {
                    // Another bridge delivers it; try again soon (it may
                    // be letting go just now), and when its lease ends.
                    let again = until.min(self.now() + HELD_RECHECK_MS);
                    lock(&self.inner.held).insert(conversation.clone(), again);
                    self.inner.wakeups.nudge();
                    Ok(Step::Wait)
                }
                Ok(Step::Next(NextJob::Empty) | Step::Wait) if busy.look_again() => {
                    self.take(&conversation).await
                }
                Ok(Step::Next(NextJob::Empty) | Step::Wait) => return,
                Err(error) => {
                    tracing::error!(%conversation, error.cause_chain = %chain(&error), "outbox store error");
                    self.scan_at(self.now() + STORE_ERROR_PAUSE_MS);
                    return;
                }
            };
        }
    }

    /// The conversation's next job, ready if it may go now.
    async fn take(&self, conversation: &ConversationId) -> Result<Step, StorageError> {
        let next = self
            .inner
            .store
            .outbox()
            .take(conversation, self.begin())
            .await?;
        Ok(Step::Next(next))
    }

    /// Which jobs may begin now: those due, unless a 429 pause lasts or
    /// shutdown started.
    fn begin(&self) -> Begin {
        let now = self.now();
        let stopping = self
            .inner
            .stopping
            .get()
            .is_some_and(CancellationToken::is_cancelled);
        if stopping || now < *lock(&self.inner.paused_until) {
            Begin::Nothing
        } else {
            Begin::DueBy(now)
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

fn log_task_end(result: Result<(), tokio::task::JoinError>) {
    if let Err(error) = result
        && error.is_panic()
    {
        tracing::error!(?error, "an outbox task panicked");
    }
}

#[cfg(test)]
mod tests;
