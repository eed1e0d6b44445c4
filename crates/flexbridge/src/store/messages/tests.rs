//! Messages over a real SQLite store: the first message opens a
//! conversation, retries are stored once and take no `seq`, concurrent
//! first messages share one conversation, replay follows the cursor, and
//! an agent's message is stored once per Flex message; a rate limit kept
//! with the customer holds across two stores on one database (a retry of
//! a stored message takes no token).

use super::*;
use crate::core::backend::Opened;
use crate::core::conversation::{CloseReason, ConversationState};
use crate::core::ids::RemoteMessage;
use crate::core::model::ConversationRecord;
use crate::core::work::{Begin, NextJob};
use crate::store::test_support::{
    CHAT, TestDb, customer, incoming, on_both_databases, opening, temp_store,
};

on_both_databases!(
    the_first_message_opens_a_conversation_and_the_next_reuses_it,
    a_retried_client_message_id_is_stored_once_and_returns_the_original,
    a_retried_message_takes_no_seq_and_the_next_one_follows_the_original,
    a_retry_whose_original_is_in_a_closed_conversation_returns_it_and_opens_nothing,
    concurrent_first_messages_share_one_conversation,
    replay_returns_only_messages_after_the_cursor,
    an_agent_message_is_stored_once_per_message_sid_and_queues_nothing_for_flex,
    an_agent_message_for_a_channel_no_conversation_has_is_stored_nowhere,
    a_rate_limit_kept_with_the_customer_holds_across_stores_and_refills,
);

async fn accept(store: &Store, customer: &CustomerId, client_id: &str) -> Accepted {
    store
        .messages()
        .accept(incoming(customer, client_id, "hello", CHAT, 10))
        .await
        .expect("accepted")
}

async fn the_first_message_opens_a_conversation_and_the_next_reuses_it(db: TestDb) {
    let (store, _dir) = temp_store(db).await;
    let cus = customer(&store).await;

    let first = accept(&store, &cus, "a").await;
    let second = accept(&store, &cus, "b").await;

    let (
        Accepted::New {
            message: m1,
            opened: Some(c1),
        },
        Accepted::New {
            message: m2,
            opened: None,
        },
    ) = (first, second)
    else {
        panic!("expected a new conversation, then the same one");
    };
    assert_eq!((&m1.conversation_id, &m2.conversation_id), (&c1.id, &c1.id));
    assert_eq!((m1.seq, m2.seq), (Seq(1), Seq(2)));
    assert_eq!(store.outbox().depth().await.unwrap(), 3, "open + two sends");
}

async fn a_retried_client_message_id_is_stored_once_and_returns_the_original(db: TestDb) {
    let (store, _dir) = temp_store(db).await;
    let cus = customer(&store).await;

    let first = accept(&store, &cus, "retry-me").await;
    let again = accept(&store, &cus, "retry-me").await;

    let Accepted::New { message, .. } = first else {
        panic!("first is new")
    };
    assert_eq!(again, Accepted::Duplicate { message });
    assert_eq!(
        store
            .messages()
            .since(&cus, Seq(0), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.outbox().depth().await.unwrap(), 2, "open + one send");
}

async fn a_retried_message_takes_no_seq_and_the_next_one_follows_the_original(db: TestDb) {
    let (store, _dir) = temp_store(db).await;
    let cus = customer(&store).await;

    accept(&store, &cus, "a").await;
    let again = accept(&store, &cus, "a").await;
    let next = accept(&store, &cus, "b").await;

    assert!(matches!(again, Accepted::Duplicate { .. }));
    let Accepted::New { message, .. } = next else {
        panic!("b is new");
    };
    assert_eq!(message.seq, Seq(2));
}

async fn a_retry_whose_original_is_in_a_closed_conversation_returns_it_and_opens_nothing(
    db: TestDb,
) {
    let (store, _dir) = temp_store(db).await;
    let cus = customer(&store).await;
    let Accepted::New {
        message,
        opened: Some(conversation),
    } = accept(&store, &cus, "before-the-end").await
    else {
        panic!("the first is new");
    };
    store
        .outbox()
        .abandon(&conversation.id, CloseReason::AgentEnded, "ended", 20)
        .await
        .unwrap();

    let retried = accept(&store, &cus, "before-the-end").await;

    assert_eq!(retried, Accepted::Duplicate { message });
    let latest = store
        .conversations()
        .latest_of(&cus)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.id, conversation.id, "no conversation was opened");
    assert_eq!(latest.state, ConversationState::Closed);
}

async fn concurrent_first_messages_share_one_conversation(db: TestDb) {
    let (store, _dir) = temp_store(db).await;
    let cus = customer(&store).await;

    let results = futures::future::join_all((0..5).map(|i| {
        store
            .messages()
            .accept(incoming(&cus, &format!("m{i}"), "hi", CHAT, 10))
    }))
    .await;

    let mut conversations: Vec<_> = results
        .into_iter()
        .map(|r| match r.unwrap() {
            Accepted::New { message, .. } => message.conversation_id,
            other => panic!("no duplicates or limits here: {other:?}"),
        })
        .collect();
    conversations.dedup();
    assert_eq!(conversations.len(), 1);
    let seqs: Vec<i64> = store
        .messages()
        .since(&cus, Seq(0), 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq.0)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
}

async fn replay_returns_only_messages_after_the_cursor(db: TestDb) {
    let (store, _dir) = temp_store(db).await;
    let cus = customer(&store).await;
    for i in 0..4 {
        accept(&store, &cus, &format!("m{i}")).await;
    }
    let after_two = store.messages().since(&cus, Seq(2), 500).await.unwrap();
    assert_eq!(
        after_two.iter().map(|m| m.seq.0).collect::<Vec<_>>(),
        vec![3, 4]
    );
    assert_eq!(
        store.messages().since(&cus, Seq(0), 1).await.unwrap().len(),
        1
    );
    let other = customer(&store).await;
    assert!(
        store
            .messages()
            .since(&other, Seq(0), 500)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A customer whose first message opened a conversation on `channel`.
async fn open_conversation(store: &Store, channel: &RemoteChannel) -> ConversationRecord {
    let conversation = opening(store, CHAT).await;
    let NextJob::Ready(open) = store
        .outbox()
        .take(&conversation.id, Begin::DueBy(0))
        .await
        .unwrap()
    else {
        panic!("the open job is ready");
    };
    let opened = Opened {
        channel: channel.clone(),
        flex_ref: None,
    };
    let (open, _) = store
        .outbox()
        .finish_open(&open, &opened, 1, Begin::Nothing)
        .await
        .unwrap();
    open.expect("opened")
}

fn key(idempotency_key: &str, event_type: &str, channel: &RemoteChannel) -> EventKey {
    EventKey {
        idempotency_key: idempotency_key.to_owned(),
        event_type: event_type.to_owned(),
        channel: channel.clone(),
        now: 2,
    }
}

fn agent_says(message: &RemoteMessage, body: &str) -> AgentMessage {
    AgentMessage {
        message: message.clone(),
        index: None,
        check_gap: false,
        author: "alice".to_owned(),
        body: body.to_owned(),
        media: None,
    }
}

async fn an_agent_message_is_stored_once_per_message_sid_and_queues_nothing_for_flex(db: TestDb) {
    let (store, _dir) = temp_store(db).await;
    let channel = RemoteChannel::new("CH00000000000000000000000000000001");
    let conversation = open_conversation(&store, &channel).await;
    let sid = RemoteMessage::new("IM00000000000000000000000000000001");
    let queued = store.outbox().depth().await.unwrap();

    let first = store
        .messages()
        .record_agent(
            key("webhook", "onMessageSent", &channel),
            agent_says(&sid, "hi"),
        )
        .await
        .unwrap();
    let again = store
        .messages()
        .record_agent(
            key("resync", "onMessageSent", &channel),
            agent_says(&sid, "hi"),
        )
        .await
        .unwrap();

    let Inbound::Applied(stored) = first else {
        panic!("the first is stored");
    };
    assert_eq!(stored.message.seq.0, 2);
    assert_eq!(again, Inbound::Duplicate);
    assert_eq!(
        store.outbox().depth().await.unwrap(),
        queued,
        "nothing for Flex"
    );
    let messages = store
        .messages()
        .since(&conversation.customer_id, stored.message.seq, 10)
        .await
        .unwrap();
    assert!(
        messages.is_empty(),
        "stored once, no seq taken by the repeat"
    );
}

async fn an_agent_message_for_a_channel_no_conversation_has_is_stored_nowhere(db: TestDb) {
    let (store, _dir) = temp_store(db).await;
    let ours = RemoteChannel::new("CH00000000000000000000000000000001");
    let conversation = open_conversation(&store, &ours).await;
    let other = RemoteChannel::new("CH00000000000000000000000000000002");
    let sid = RemoteMessage::new("IM00000000000000000000000000000001");

    let outcome = store
        .messages()
        .record_agent(
            key("webhook", "onMessageAdded", &other),
            agent_says(&sid, "hi"),
        )
        .await
        .unwrap();

    assert_eq!(outcome, Inbound::UnknownChannel);
    let messages = store
        .messages()
        .since(&conversation.customer_id, Seq(0), 10)
        .await
        .unwrap();
    assert!(
        messages.iter().all(|m| m.direction != Direction::Agent),
        "nothing stored"
    );
}

async fn a_rate_limit_kept_with_the_customer_holds_across_stores_and_refills(db: TestDb) {
    let (a, guard) = temp_store(db).await;
    let b = crate::store::test_support::reopen(&guard).await;
    let cus = customer(&a).await;
    let limit = crate::core::rate_limit::RateLimit {
        burst: 2.0,
        per_second: 1.0,
    };
    let limited = |id: &str, now: i64| {
        let mut m = incoming(&cus, id, "hello", CHAT, now);
        m.rate_limit = Some(limit);
        m
    };

    // Two tokens: one taken through each store, then none left for either.
    assert!(matches!(
        a.messages().accept(limited("a", 1_000)).await.unwrap(),
        Accepted::New { .. }
    ));
    assert!(matches!(
        b.messages().accept(limited("b", 1_000)).await.unwrap(),
        Accepted::New { .. }
    ));
    assert_eq!(
        b.messages().accept(limited("c", 1_500)).await.unwrap(),
        Accepted::RateLimited
    );
    assert_eq!(
        a.messages().accept(limited("c", 1_900)).await.unwrap(),
        Accepted::RateLimited
    );
    assert_eq!(
        a.messages().since(&cus, Seq(0), 10).await.unwrap().len(),
        2,
        "a refused message is not stored"
    );
    // A retry of a stored message gets its original, empty bucket or not.
    assert!(matches!(
        b.messages().accept(limited("a", 1_900)).await.unwrap(),
        Accepted::Duplicate { .. }
    ));
    // Refilled at a token a second: 0.5 at 1.5 s, 0.9 at 1.9 s, one at 2 s.
    assert!(matches!(
        a.messages().accept(limited("c", 2_000)).await.unwrap(),
        Accepted::New { .. }
    ));
    // Without a limit (a bridge limiting in memory), the bucket is not read.
    assert!(matches!(
        b.messages()
            .accept(incoming(&cus, "d", "hi", CHAT, 2_000))
            .await
            .unwrap(),
        Accepted::New { .. }
    ));
}
