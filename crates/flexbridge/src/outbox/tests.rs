//! The outbox against a fake Flex (`fake`) that can fail, rate-limit and
//! "land" a request while answering an error, over a real SQLite store.
//! Time is tokio's, paused once the store is open: backoffs, `Retry-After`
//! pauses and sweeps pass without the tests sleeping for them.

mod fake;
mod files;
mod restarts;

use std::sync::atomic::Ordering;

use self::fake::{FakeFlex, Fault, Recorder, sid};
use super::*;
use crate::core::BridgeParts;
use crate::core::backend::{BackendName, EventHeader, FlexEvent};
use crate::core::conversation::{CloseReason, ConversationState};
use crate::core::fanout::{DeliveryOutcome, Notice};
use crate::core::ids::{
    ClientMessageId, CustomerName, MessageBody, RemoteChannel, RemoteMessage, Seq,
};
use crate::core::model::{ConversationRecord, CustomerRecord};
use crate::core::rate_limit::RateLimit;
use crate::store::test_support::{DbGuard, TestDb, temp_store};

/// The fake's backend name.
const FAKE: BackendName = BackendName::from_static("fake");

struct Harness {
    store: Store,
    flex: Arc<FakeFlex>,
    fanout: Arc<Recorder>,
    wakeups: Arc<Wakeups>,
    clock: Clock,
    bridge: Bridge,
    customer: CustomerRecord,
    _dir: DbGuard,
}

fn quick() -> OutboxConfig {
    OutboxConfig {
        concurrency: 4,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        give_up_after: Duration::from_secs(3600),
        sweep_interval: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(60),
        alone: true,
        resync_interval: Duration::from_secs(3600),
    }
}

/// Like [`quick`], but the sweep does not come during a test: only
/// wake-ups and due retries can start a delivery.
fn without_sweep() -> OutboxConfig {
    OutboxConfig {
        sweep_interval: Duration::from_secs(3600),
        ..quick()
    }
}

async fn harness() -> Harness {
    // SQLite only: these tests run on tokio's paused clock, which a
    // network database's connects and timeouts would race (the store's
    // statements run on PostgreSQL in `store`'s tests and tests/it).
    let (store, dir) = temp_store(TestDb::Sqlite).await;
    let flex = Arc::new(FakeFlex::default());
    let fanout = Arc::new(Recorder::default());
    let wakeups = Arc::new(Wakeups::default());
    let clock = Clock::system();
    let bridge = Bridge::new(BridgeParts {
        storage: Arc::new(store.clone()),
        fanout: fanout.clone(),
        backends: Backends::single(flex.clone()),
        wakeups: wakeups.clone(),
        rate_limit: RateLimit {
            burst: 1000.0,
            per_second: 1000.0,
        },
        limits_in_storage: false,
        clock,
        form: crate::core::pre_engagement::FormSpec::default(),
        attachments: crate::core::attachment::AttachmentPolicy::default(),
    });
    let (customer, _) = bridge
        .register(&CustomerName::parse("Ada").expect("valid"))
        .await
        .expect("registered");
    // From here on, time passes only when every task waits (the store was
    // opened first: its connections are made with real-time timeouts).
    tokio::time::pause();
    tick_while_the_store_works();
    Harness {
        store,
        flex,
        fanout,
        wakeups,
        clock,
        bridge,
        customer,
        _dir: dir,
    }
}

impl Harness {
    /// The customer's current (else latest) conversation.
    async fn conversation(&self) -> ConversationRecord {
        self.store
            .conversations()
            .latest_of(&self.customer.id)
            .await
            .expect("the store answers")
            .expect("a conversation")
    }

    fn outbox(&self, config: OutboxConfig) -> Outbox {
        Outbox::new(OutboxParts {
            bridge: self.bridge.clone(),
            store: self.store.clone(),
            backends: Backends::single(self.flex.clone()),
            wakeups: self.wakeups.clone(),
            clock: self.clock,
            config,
        })
    }

    /// Queues a sync of the open conversations (as a start does) and runs
    /// a worker until it happened.
    async fn sync_once(&self) {
        let queued = self.store.outbox().queue_sync_of_open(0).await;
        assert_eq!(queued.expect("queued"), 1);
        let before = self.flex.resyncs.load(Ordering::SeqCst);
        self.run_until("the sync ran", || {
            self.flex.resyncs.load(Ordering::SeqCst) > before
        })
        .await;
    }

    /// Runs a worker until `done` holds, then shuts it down gracefully.
    async fn run_until(&self, what: &str, done: impl Fn() -> bool) {
        let (shutdown, worker) = self.worker(quick());
        eventually(what, done).await;
        shutdown.cancel();
        worker
            .await
            .expect("the worker task ends")
            .expect("the worker ends cleanly");
    }

    fn worker(
        &self,
        config: OutboxConfig,
    ) -> (
        CancellationToken,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    ) {
        let outbox = self.outbox(config);
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(outbox.run(shutdown.clone()));
        (shutdown, handle)
    }

    /// Sends a message as the customer side does: accepted, then announced.
    async fn send(&self, client_id: &str) {
        let sent = self.accept(client_id).await;
        self.bridge.announce(&self.customer.id, &sent).await;
    }

    /// Accepts a message (committed) without announcing it: no wake-up.
    async fn accept(&self, client_id: &str) -> crate::core::bridge::SentMessage {
        self.bridge
            .send_message(
                &self.customer,
                &ClientMessageId::parse(client_id).expect("valid"),
                &MessageBody::parse(&format!("body of {client_id}")).expect("valid"),
            )
            .await
            .expect("accepted")
    }
}

/// A paused clock jumps straight to the next timer whenever every task
/// waits — also while one waits for SQLite, whose work runs on a thread of
/// its own. So a timer the worker sets (its shutdown grace) could fire
/// during a commit that takes microseconds. This task keeps a timer a
/// millisecond away at all times, so time creeps rather than jumps while
/// the store works, and still flies through backoffs when nothing does.
fn tick_while_the_store_works() {
    tokio::spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
}

/// Waits until `done` holds; bounded in real time (not tokio's paused
/// clock, which races ahead while the store works), to fail instead of
/// hang.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn ids(posted: &[(RemoteChannel, String, String)]) -> Vec<String> {
    posted.iter().map(|(_, id, _)| id.clone()).collect()
}

#[tokio::test]
async fn messages_reach_flex_in_order_and_exactly_once_through_500s_and_a_429() {
    let h = harness().await;
    lock(&h.flex.send_faults).extend([
        Fault::Status(500),
        Fault::Lands(500),
        Fault::RateLimited(Duration::from_secs(1)),
        Fault::Status(503),
    ]);
    for i in 0..6 {
        h.send(&format!("m{i}")).await;
    }

    h.run_until("all six are in Flex and acknowledged as delivered", || {
        h.flex.posted().len() >= 6 && h.fanout.deliveries().len() >= 6
    })
    .await;

    let posted = h.flex.posted();
    assert_eq!(ids(&posted), ["m0", "m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(h.flex.channel_count(), 1);
    assert_eq!(h.store.outbox().depth().await.unwrap(), 0);
    assert!(
        h.fanout
            .deliveries()
            .iter()
            .all(|(_, outcome)| *outcome == DeliveryOutcome::Delivered)
    );
}

#[tokio::test]
async fn a_poison_job_fails_its_message_with_a_reason_and_the_queue_moves_on() {
    let h = harness().await;
    // Flex answers m1 with m0's SID: recording it breaks the uniqueness of
    // a Flex message in its conversation, however often it is retried.
    const REPEATED: &str = "IM000000000000000000000000000000aa";
    lock(&h.flex.send_faults).extend([Fault::AnswersSid(REPEATED), Fault::AnswersSid(REPEATED)]);
    for i in 0..3 {
        h.send(&format!("m{i}")).await;
    }

    h.run_until("the three messages are settled", || {
        h.fanout.deliveries().len() >= 3
    })
    .await;

    let deliveries = h.fanout.deliveries();
    assert_eq!(deliveries[0], ("m0".to_owned(), DeliveryOutcome::Delivered));
    assert_eq!(deliveries[1].0, "m1");
    let DeliveryOutcome::Failed(reason) = &deliveries[1].1 else {
        panic!("m1 is failed: {deliveries:?}");
    };
    assert!(reason.contains("could not record"), "{reason}");
    assert_eq!(deliveries[2], ("m2".to_owned(), DeliveryOutcome::Delivered));
    assert_eq!(h.store.outbox().depth().await.unwrap(), 0);
}

#[tokio::test]
async fn messages_queued_while_their_conversation_drains_go_without_waiting_for_the_sweep() {
    let h = harness().await;
    lock(&h.flex.send_faults).push_back(Fault::Slow(Duration::from_millis(300)));
    let (shutdown, worker) = h.worker(without_sweep());

    // m1..m5 are queued while m0 is in flight.
    h.send("m0").await;
    eventually("m0 is in flight", || {
        h.flex.send_calls.load(Ordering::SeqCst) == 1
    })
    .await;
    for i in 1..6 {
        h.send(&format!("m{i}")).await;
    }
    eventually("m0..m5 are delivered", || h.fanout.deliveries().len() == 6).await;
    // Each next message arrives as the previous one settles, when the
    // conversation's task finds its queue empty and ends.
    for i in 6..40 {
        h.send(&format!("m{i}")).await;
        eventually(&format!("m{i} is delivered"), || {
            h.fanout.deliveries().len() == i + 1
        })
        .await;
    }
    shutdown.cancel();
    worker
        .await
        .expect("the worker task ends")
        .expect("the worker ends cleanly");

    let expected: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    assert_eq!(ids(&h.flex.posted()), expected);
}

#[tokio::test]
async fn a_wake_up_for_a_conversation_whose_task_found_its_queue_empty_makes_the_task_look_again() {
    let h = harness().await;
    let outbox = h.outbox(without_sweep());
    let conversation = ConversationId::generate();
    // A task works on the conversation and has just found its queue empty.
    lock(&outbox.inner.busy).insert(conversation.clone(), false);
    let task = BusyGuard {
        outbox: &outbox,
        conversation: &conversation,
    };

    // Before it ends, a row is committed and announced.
    let mut dispatch = Dispatch::default();
    dispatch.enqueue(conversation.clone());
    outbox.start_tasks(&mut dispatch);

    assert!(
        dispatch.tasks.is_empty(),
        "no second task for the conversation"
    );
    assert!(task.look_again(), "the running task reads its queue again");
    assert!(!task.look_again(), "and ends when nothing new came");
    assert!(!lock(&outbox.inner.busy).contains_key(&conversation));
}

#[tokio::test]
async fn a_row_committed_without_a_wake_up_is_found_by_the_sweep() {
    let h = harness().await;
    let (shutdown, worker) = h.worker(quick());

    // Committed but never announced, as when the process dies between the
    // commit and the wake-up (the restart's first scan finds it the same way).
    h.accept("unannounced").await;

    eventually("the message is in Flex", || h.flex.posted().len() == 1).await;
    shutdown.cancel();
    worker
        .await
        .expect("the worker task ends")
        .expect("the worker ends cleanly");
    assert_eq!(ids(&h.flex.posted()), ["unannounced"]);
}

#[tokio::test]
async fn retries_and_the_end_of_a_429_pause_start_when_due_without_the_sweep() {
    let h = harness().await;
    lock(&h.flex.send_faults).extend([
        Fault::Status(503),
        Fault::RateLimited(Duration::from_millis(300)),
        Fault::Status(500),
    ]);
    h.send("a").await;
    h.send("b").await;

    let (shutdown, worker) = h.worker(without_sweep());
    eventually("both are in Flex", || h.flex.posted().len() == 2).await;
    shutdown.cancel();
    worker
        .await
        .expect("the worker task ends")
        .expect("the worker ends cleanly");
    assert_eq!(ids(&h.flex.posted()), ["a", "b"]);
}

#[tokio::test]
async fn retry_after_of_a_429_is_waited_before_the_next_attempt() {
    let h = harness().await;
    lock(&h.flex.send_faults).push_back(Fault::RateLimited(Duration::from_secs(1)));
    h.send("only").await;

    h.run_until("the message is in Flex", || h.flex.posted().len() == 1)
        .await;

    let times = lock(&h.flex.send_times).clone();
    assert_eq!(times.len(), 2, "one 429, one success");
    assert!(
        times[1] - times[0] >= Duration::from_millis(950),
        "retried after {:?}, before Retry-After",
        times[1] - times[0]
    );
}

#[tokio::test]
async fn a_create_that_landed_but_answered_500_is_not_sent_again() {
    let h = harness().await;
    lock(&h.flex.send_faults).push_back(Fault::Lands(500));
    h.send("landed").await;

    h.run_until("the message is delivered", || {
        !h.fanout.deliveries().is_empty()
    })
    .await;

    assert_eq!(ids(&h.flex.posted()), ["landed"]);
    assert_eq!(
        h.flex.send_calls.load(Ordering::SeqCst),
        1,
        "looked up, not re-sent"
    );
}

#[tokio::test]
async fn a_message_a_crashed_run_sent_without_recording_it_is_looked_up_not_sent_again() {
    let h = harness().await;
    h.send("m0").await;
    h.run_until("the first message is in Flex", || {
        h.flex.posted().len() == 1
    })
    .await;
    let conversation = h.conversation().await;
    let channel = conversation.flex_channel.clone().unwrap();
    // A run sends m1, Flex stores it, and the process dies before the
    // outcome is written: the store holds m1 as if it never left.
    h.accept("m1").await;
    lock(&h.flex.posted).push((channel, "m1".into(), "body of m1".into()));

    h.run_until("the second message is recorded as delivered", || {
        h.fanout.deliveries().len() == 2
    })
    .await;

    assert_eq!(ids(&h.flex.posted()), ["m0", "m1"]);
    assert_eq!(
        h.flex.send_calls.load(Ordering::SeqCst),
        1,
        "m1 was looked up, not sent again"
    );
}

#[tokio::test]
async fn a_task_that_dies_after_its_send_landed_is_followed_by_a_look_up_not_a_second_send() {
    let h = harness().await;
    // The worker starts with an empty queue: nothing is unsure at start.
    let (shutdown, worker) = h.worker(quick());
    lock(&h.flex.send_faults).push_back(Fault::LandsThenDies);

    h.send("m1").await;

    eventually("m1 is recorded as delivered", || {
        h.fanout.deliveries().len() == 1
    })
    .await;
    shutdown.cancel();
    worker
        .await
        .expect("the worker task ends")
        .expect("the worker ends cleanly");
    assert_eq!(ids(&h.flex.posted()), ["m1"]);
    assert_eq!(
        h.flex.send_calls.load(Ordering::SeqCst),
        1,
        "the sweep's retry looked m1 up instead of sending it again"
    );
    assert_eq!(
        h.fanout.deliveries(),
        [("m1".to_owned(), DeliveryOutcome::Delivered)]
    );
}

#[tokio::test]
async fn a_message_flex_refuses_fails_and_the_next_one_still_goes() {
    let h = harness().await;
    lock(&h.flex.send_faults).push_back(Fault::Status(400));
    h.send("refused").await;
    h.send("fine").await;

    h.run_until("both outcomes are known", || {
        h.fanout.deliveries().len() == 2
    })
    .await;

    let deliveries = h.fanout.deliveries();
    assert_eq!(deliveries[0].0, "refused");
    assert!(matches!(deliveries[0].1, DeliveryOutcome::Failed(_)));
    assert_eq!(
        deliveries[1],
        ("fine".to_owned(), DeliveryOutcome::Delivered)
    );
    assert_eq!(ids(&h.flex.posted()), ["fine"]);
}

#[tokio::test]
async fn an_open_flex_refuses_closes_the_conversation_and_fails_its_messages() {
    let h = harness().await;
    lock(&h.flex.open_faults).push_back(Fault::Status(400));
    h.send("a").await;
    h.send("b").await;

    h.run_until("both messages failed", || h.fanout.deliveries().len() == 2)
        .await;

    let conversation = h.conversation().await;
    assert_eq!(conversation.state, ConversationState::Closed);
    assert!(h.flex.posted().is_empty());
    assert_eq!(h.store.outbox().depth().await.unwrap(), 0);
}

#[tokio::test]
async fn a_transient_open_failure_is_retried_and_creates_one_channel() {
    let h = harness().await;
    lock(&h.flex.open_faults).extend([Fault::Status(500), Fault::Lands(502)]);
    h.send("a").await;

    h.run_until("the message is delivered", || h.flex.posted().len() == 1)
        .await;

    assert_eq!(h.flex.opens.load(Ordering::SeqCst), 3);
    assert_eq!(h.flex.channel_count(), 1);
    let conversation = h.conversation().await;
    assert_eq!(conversation.state, ConversationState::Open);
}

#[test]
fn backoff_doubles_per_attempt_up_to_the_cap() {
    let config = quick();
    assert_eq!(backoff(&config, 1, 1.0), Duration::from_millis(20));
    assert_eq!(backoff(&config, 2, 1.0), Duration::from_millis(40));
    assert_eq!(backoff(&config, 3, 0.5), Duration::from_millis(40));
    assert_eq!(backoff(&config, 30, 1.0), Duration::from_millis(200));
}
