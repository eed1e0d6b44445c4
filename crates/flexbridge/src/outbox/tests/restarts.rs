//! Shutdown and restarts: the delivery in flight finishes and nothing
//! new begins; a sync job applies what Flex said meanwhile, once; a
//! channel Flex no longer has ends its conversation.

use super::*;

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
    assert_eq!(h.store.outbox().depth().await.unwrap(), 0);
}

#[tokio::test]
async fn at_shutdown_the_delivery_in_flight_finishes_and_the_next_waits_for_the_next_start() {
    let h = harness().await;
    lock(&h.flex.send_faults).push_back(Fault::Held);
    h.send("slow").await;
    h.send("next").await;
    let (shutdown, worker) = h.worker(quick());
    eventually("the first send is in flight", || {
        h.flex.send_calls.load(Ordering::SeqCst) == 1
    })
    .await;

    // Shutdown begins before Flex answers the send in flight.
    shutdown.cancel();
    h.flex.open_gate();
    worker
        .await
        .expect("the worker task ends")
        .expect("the worker ends cleanly");

    assert_eq!(ids(&h.flex.posted()), ["slow"]);
    let conversation = h.conversation().await;
    let next = h
        .store
        .outbox()
        .take(&conversation.id, Begin::DueBy(i64::MAX))
        .await;
    let NextJob::Ready(next) = next.unwrap() else {
        panic!("the next job stays queued");
    };
    assert_eq!(next.attempts, 0, "no attempt began after shutdown started");
}

#[tokio::test]
async fn a_sync_row_applies_what_flex_said_while_the_bridge_was_away_once() {
    let h = harness().await;
    h.send("m0").await;
    h.run_until("the conversation is open", || h.flex.posted().len() == 1)
        .await;
    let conversation = h.conversation().await;
    let channel = conversation.flex_channel.clone().unwrap();
    let header = |key: &str, event_type: &str| EventHeader {
        event_type: event_type.into(),
        idempotency_key: key.into(),
        channel: channel.clone(),
    };
    let missed_reply = FlexEvent::AgentMessage {
        header: header("chat:message:IM1", "onMessageSent"),
        message: RemoteMessage::new(sid("IM")),
        index: None,
        author: "alice".into(),
        body: "sorry for the wait".into(),
        media: None,
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
    assert_eq!(h.store.outbox().depth().await.unwrap(), 0);
    assert_eq!(
        h.store.outbox().queue_sync_of_open(0).await.unwrap(),
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
