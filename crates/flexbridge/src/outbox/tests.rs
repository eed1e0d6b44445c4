//! The outbox against a fake Flex that can fail, rate-limit and "land"
//! a request while answering an error, over a real SQLite store.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::*;
use crate::core::bridge::Bridge;
use crate::core::conversation::ConversationState;
use crate::core::ids::{
    ChannelSid, ClientMessageId, CustomerId, CustomerName, MessageBody, MessageSid, hex,
};
use crate::core::rate_limit::RateLimit;
use crate::flex::{BackendKind, EventHeader, FlexEvent, FlexRef, Opened, WebhookParseError};
use crate::store::customers::CustomerRecord;
use crate::store::test_support::temp_store;

/// What the fake does to the next matching call.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Answer this HTTP status without doing anything.
    Status(u16),
    /// Do the work, then answer this status anyway ("timed out but landed").
    Lands(u16),
    /// 429 with `Retry-After`.
    RateLimited(Duration),
    /// Take this long, then succeed.
    Slow(Duration),
}

#[derive(Default)]
struct FakeFlex {
    /// Target → channel, as Flex dedupes channel creation.
    channels: Mutex<HashMap<String, ChannelSid>>,
    /// Everything posted: (channel, client message id, body).
    posted: Mutex<Vec<(ChannelSid, String, String)>>,
    open_faults: Mutex<VecDeque<Fault>>,
    send_faults: Mutex<VecDeque<Fault>>,
    opens: AtomicUsize,
    send_calls: AtomicUsize,
    /// When each send call arrived.
    send_times: Mutex<Vec<Instant>>,
    /// What `resync` reports as missed.
    missed: Mutex<Vec<FlexEvent>>,
    sync_faults: Mutex<VecDeque<Fault>>,
    resyncs: AtomicUsize,
}

fn sid(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill(&mut bytes);
    format!("{prefix}{}", hex(&bytes))
}

fn api_error(status: u16, retry_after: Option<Duration>) -> FlexError {
    FlexError::Api {
        status,
        code: None,
        message: format!("fake {status}"),
        retry_after,
    }
}

impl FakeFlex {
    fn posted(&self) -> Vec<(ChannelSid, String, String)> {
        lock(&self.posted).clone()
    }

    fn channel_count(&self) -> usize {
        lock(&self.channels).len()
    }

    async fn apply(fault: Option<Fault>) -> Result<bool, FlexError> {
        match fault {
            None => Ok(false),
            Some(Fault::Status(status)) => Err(api_error(status, None)),
            Some(Fault::RateLimited(after)) => Err(api_error(429, Some(after))),
            Some(Fault::Lands(_)) => Ok(true),
            Some(Fault::Slow(delay)) => {
                tokio::time::sleep(delay).await;
                Ok(false)
            }
        }
    }
}

#[async_trait::async_trait]
impl FlexBackend for FakeFlex {
    fn kind(&self) -> BackendKind {
        BackendKind::Chat
    }

    fn webhook_path(&self) -> &'static str {
        "/webhooks/fake"
    }

    async fn open(&self, request: &OpenRequest<'_>) -> Result<Opened, FlexError> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        let fault = lock(&self.open_faults).pop_front();
        let lands = Self::apply(fault).await?;
        let channel = lock(&self.channels)
            .entry(request.identity.as_str().to_owned())
            .or_insert_with(|| ChannelSid::parse(&sid("CH")).expect("valid"))
            .clone();
        if let (true, Some(Fault::Lands(status))) = (lands, fault) {
            return Err(api_error(status, None));
        }
        Ok(Opened {
            channel,
            task: None,
            flex_ref: None,
        })
    }

    async fn send(
        &self,
        channel: &ChannelSid,
        message: &OutboundMessage<'_>,
    ) -> Result<MessageSid, FlexError> {
        self.send_calls.fetch_add(1, Ordering::SeqCst);
        lock(&self.send_times).push(Instant::now());
        let fault = lock(&self.send_faults).pop_front();
        let lands = Self::apply(fault).await?;
        lock(&self.posted).push((
            channel.clone(),
            message.client_msg_id.to_owned(),
            message.body.to_owned(),
        ));
        if let (true, Some(Fault::Lands(status))) = (lands, fault) {
            return Err(api_error(status, None));
        }
        Ok(MessageSid::parse(&sid("IM")).expect("valid"))
    }

    async fn find_sent(
        &self,
        channel: &ChannelSid,
        client_msg_id: &str,
    ) -> Result<Option<MessageSid>, FlexError> {
        let found = lock(&self.posted)
            .iter()
            .any(|(ch, id, _)| ch == channel && id == client_msg_id);
        Ok(found.then(|| MessageSid::parse(&sid("IM")).expect("valid")))
    }

    async fn resync(&self, _request: &ResyncRequest<'_>) -> Result<Vec<FlexEvent>, FlexError> {
        self.resyncs.fetch_add(1, Ordering::SeqCst);
        let fault = lock(&self.sync_faults).pop_front();
        Self::apply(fault).await?;
        Ok(lock(&self.missed).clone())
    }

    async fn close(&self, _: &ChannelSid, _: Option<&FlexRef>) -> Result<(), FlexError> {
        Ok(())
    }

    fn parse_webhook(&self, _: &[(String, String)]) -> Result<FlexEvent, WebhookParseError> {
        Err(WebhookParseError::Missing("EventType"))
    }
}

/// Collects what the core and the worker tell customers.
#[derive(Default)]
struct Recorder(Mutex<Vec<(CustomerId, Notice)>>);

#[async_trait::async_trait]
impl Fanout for Recorder {
    async fn notify(&self, customer: &CustomerId, notice: Notice) {
        lock(&self.0).push((customer.clone(), notice));
    }
}

impl Recorder {
    fn deliveries(&self) -> Vec<(String, DeliveryOutcome)> {
        lock(&self.0)
            .iter()
            .filter_map(|(_, n)| match n {
                Notice::Delivery {
                    client_msg_id,
                    outcome,
                    ..
                } => Some((client_msg_id.clone(), outcome.clone())),
                _ => None,
            })
            .collect()
    }
}

struct Harness {
    store: Store,
    flex: Arc<FakeFlex>,
    fanout: Arc<Recorder>,
    bridge: Bridge,
    customer: CustomerRecord,
    _dir: tempfile::TempDir,
}

fn quick() -> OutboxConfig {
    OutboxConfig {
        concurrency: 4,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        give_up_after: Duration::from_secs(3600),
        sweep_interval: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(5),
    }
}

async fn harness() -> Harness {
    let (store, dir) = temp_store().await;
    let flex = Arc::new(FakeFlex::default());
    let fanout = Arc::new(Recorder::default());
    let notify = Arc::new(Notify::new());
    let bridge = Bridge::new(
        store.clone(),
        fanout.clone(),
        notify.clone(),
        BackendKind::Chat,
        RateLimit {
            burst: 1000.0,
            per_second: 1000.0,
        },
    );
    let (customer, _) = bridge
        .register(&CustomerName::parse("Ada").expect("valid"))
        .await
        .expect("registered");
    Harness {
        store,
        flex,
        fanout,
        bridge,
        customer,
        _dir: dir,
    }
}

impl Harness {
    /// The customer's current (else latest) conversation.
    async fn conversation(&self) -> crate::store::ConversationRecord {
        self.store
            .latest_conversation(&self.customer.id)
            .await
            .expect("the store answers")
            .expect("a conversation")
    }

    /// Queues a sync of the open conversations (as a start does) and runs
    /// a worker until it happened.
    async fn sync_once(&self) {
        let queued = self.store.queue_sync_of_open_conversations(0).await;
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
        worker.await.expect("the worker ends cleanly");
    }

    fn worker(&self, config: OutboxConfig) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let outbox = Outbox::new(
            self.bridge.clone(),
            Backends::single(self.flex.clone()),
            config,
        );
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(outbox.run(shutdown.clone()));
        (shutdown, handle)
    }

    async fn send(&self, client_id: &str) {
        let sent = self
            .bridge
            .send_message(
                &self.customer,
                &ClientMessageId::parse(client_id).expect("valid"),
                &MessageBody::parse(&format!("body of {client_id}")).expect("valid"),
            )
            .await
            .expect("accepted");
        self.bridge.announce(&self.customer.id, &sent).await;
    }
}

/// Waits (bounded, to fail instead of hang) until `done` holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn ids(posted: &[(ChannelSid, String, String)]) -> Vec<String> {
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
    assert_eq!(h.store.outbox_depth().await.unwrap(), 0);
    assert!(
        h.fanout
            .deliveries()
            .iter()
            .all(|(_, outcome)| *outcome == DeliveryOutcome::Delivered)
    );
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
async fn a_row_a_crash_left_mid_send_is_looked_up_before_sending() {
    let h = harness().await;
    h.send("m0").await;
    // A first worker opens the channel and marks the send as started, then
    // "crashes" after Flex stored the message but before the commit.
    h.run_until("the first message is in Flex", || {
        h.flex.posted().len() == 1
    })
    .await;
    let conversation = h.conversation().await;
    let channel = conversation.flex_channel_sid.clone().unwrap();
    h.send("m1").await;
    let job = h
        .store
        .outbox_next(&conversation.id)
        .await
        .unwrap()
        .unwrap();
    h.store.outbox_begin_attempt(job.id, true).await.unwrap();
    lock(&h.flex.posted).push((channel, "m1".into(), "body of m1".into()));

    h.run_until("the second message is recorded as delivered", || {
        h.fanout.deliveries().len() == 2
    })
    .await;

    assert_eq!(ids(&h.flex.posted()), ["m0", "m1"]);
    assert_eq!(h.flex.send_calls.load(Ordering::SeqCst), 1);
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
    assert_eq!(h.store.outbox_depth().await.unwrap(), 0);
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

#[tokio::test]
async fn shutdown_lets_an_in_flight_delivery_finish() {
    let h = harness().await;
    lock(&h.flex.send_faults).push_back(Fault::Slow(Duration::from_millis(500)));
    h.send("slow").await;

    h.run_until("the send is in flight", || {
        h.flex.send_calls.load(Ordering::SeqCst) == 1
    })
    .await;

    assert_eq!(ids(&h.flex.posted()), ["slow"]);
    assert_eq!(h.store.outbox_depth().await.unwrap(), 0);
}

#[test]
fn backoff_doubles_per_attempt_up_to_the_cap() {
    let config = quick();
    assert_eq!(backoff(&config, 1, 1.0), Duration::from_millis(20));
    assert_eq!(backoff(&config, 2, 1.0), Duration::from_millis(40));
    assert_eq!(backoff(&config, 3, 0.5), Duration::from_millis(40));
    assert_eq!(backoff(&config, 30, 1.0), Duration::from_millis(200));
}

#[tokio::test]
async fn a_sync_row_applies_what_flex_said_while_the_bridge_was_away_once() {
    let h = harness().await;
    h.send("m0").await;
    h.run_until("the conversation is open", || h.flex.posted().len() == 1)
        .await;
    let conversation = h.conversation().await;
    let channel = conversation.flex_channel_sid.clone().unwrap();
    let header = |key: &str, event_type: &str| EventHeader {
        event_type: event_type.into(),
        idempotency_key: key.into(),
        channel: channel.clone(),
    };
    let missed_reply = FlexEvent::AgentMessage {
        header: header("chat:message:IM1", "onMessageSent"),
        message_sid: MessageSid::parse(&sid("IM")).unwrap(),
        author: "alice".into(),
        body: "sorry for the wait".into(),
    };
    lock(&h.flex.missed).push(missed_reply);

    // Two starts: each queues a sync of the open conversations.
    for _ in 0..2 {
        h.sync_once().await;
    }
    let history = h.bridge.history(&h.customer.id, Seq(0), 10).await.unwrap();
    let replies: Vec<_> = history
        .iter()
        .filter(|m| m.body == "sorry for the wait")
        .collect();
    assert_eq!(replies.len(), 1);

    // The agent also ended the chat meanwhile.
    lock(&h.flex.missed).push(FlexEvent::ChatEnded {
        header: header("chat:ended:x", "onChannelUpdated"),
    });
    h.sync_once().await;
    assert_eq!(h.conversation().await.state, ConversationState::Closed);
    assert_eq!(h.store.outbox_depth().await.unwrap(), 0);
    assert_eq!(
        h.store.queue_sync_of_open_conversations(0).await.unwrap(),
        0,
        "a closed conversation is not re-attached"
    );
    let ended = lock(&h.fanout.0)
        .iter()
        .filter(|(_, n)| matches!(n, Notice::ChatEnded { .. }))
        .count();
    assert_eq!(ended, 1);
}

#[tokio::test]
async fn a_conversation_whose_channel_is_gone_closes_and_the_next_message_opens_a_new_one() {
    let h = harness().await;
    h.send("m0").await;
    h.run_until("the conversation is open", || h.flex.posted().len() == 1)
        .await;
    let first = h.conversation().await;
    lock(&h.flex.sync_faults).push_back(Fault::Status(404));

    h.sync_once().await;

    assert_eq!(h.conversation().await.state, ConversationState::Closed);
    let ended: Vec<_> = lock(&h.fanout.0)
        .iter()
        .filter_map(|(_, n)| match n {
            Notice::ChatEnded { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(ended, [CloseReason::ChannelGone]);
    h.send("m1").await;
    h.run_until("the next message is in Flex", || h.flex.posted().len() == 2)
        .await;
    let second = h.conversation().await;
    assert_ne!(second.id, first.id);
    assert_eq!(second.state, ConversationState::Open);
}
