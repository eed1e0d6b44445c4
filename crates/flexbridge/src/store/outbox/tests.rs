//! The outbox rows over a real SQLite store: adoption of unopened
//! conversations at start, taking rows (ready only when they may go), and
//! a customer's end (closed at once, its close row last).

use super::*;
use crate::store::test_support::{opening, temp_store, writes};

async fn backend_now(store: &Store, conversation: &ConversationRecord) -> BackendKind {
    store
        .latest_conversation(&conversation.customer_id)
        .await
        .expect("read")
        .expect("a conversation")
        .backend
}

#[tokio::test]
async fn conversations_not_yet_tried_in_flex_move_to_the_configured_backend_and_tried_ones_stay() {
    let (store, _dir) = temp_store().await;
    let untried = opening(&store, BackendKind::Chat).await;
    let tried = opening(&store, BackendKind::Chat).await;
    let job = store
        .outbox_take(&tried.id, i64::MAX)
        .await
        .expect("taken")
        .expect("its open row");
    assert!(job.ready, "its opening is attempted");
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
        .outbox_take(&untried.id, BEGIN_NONE)
        .await
        .expect("read")
        .expect("its open row");
    assert_eq!(job.backend, BackendKind::Conversations);
    assert!(!job.ready);
}

#[tokio::test]
async fn finishing_a_row_takes_the_next_one_ready_only_if_it_may_go() {
    let (store, _dir) = temp_store().await;
    let conversation = opening(&store, BackendKind::Chat).await;
    writes(
        &store,
        &conversation.customer_id,
        "m2",
        "again",
        BackendKind::Chat,
        0,
    )
    .await;
    let open = store.outbox_take(&conversation.id, 0).await.unwrap();
    let open = open.expect("the open row");
    assert!(open.ready && open.kind == JobKind::Open);
    let opened = Opened {
        channel: ChannelSid::parse("CH00000000000000000000000000000001").unwrap(),
        task: None,
        flex_ref: None,
    };

    // Not to go now (e.g. a 429 pause): the next row is only read.
    let (_, next) = store
        .outbox_finish_open(&open, &opened, 1, BEGIN_NONE)
        .await
        .unwrap();
    let m1 = next.expect("m1's row");
    assert!(!m1.ready && m1.attempts == 0 && !m1.maybe_landed);
    let m1 = store.outbox_take(&conversation.id, 1).await.unwrap();
    let m1 = m1.expect("m1's row");
    assert!(m1.ready, "due, so ready");
    assert!(!m1.maybe_landed, "no earlier attempt may have landed");

    // Settling m1 takes m2, ready.
    let JobKind::Send(message) = &m1.kind else {
        panic!("m1 is a send");
    };
    let sid = MessageSid::parse("IM00000000000000000000000000000001").unwrap();
    let m2 = store
        .outbox_settle_send(&m1, message, Ok(&sid), 2, 2)
        .await
        .unwrap()
        .expect("m2's row");
    assert!(m2.ready);

    // A failed attempt that may have landed is counted and remembered.
    store
        .outbox_retry_later(m2.id, 10, "timed out", true)
        .await
        .unwrap();
    let m2 = store
        .outbox_take(&conversation.id, BEGIN_NONE)
        .await
        .unwrap();
    let m2 = m2.expect("m2's row, read again");
    assert!(!m2.ready && m2.attempts == 1 && m2.maybe_landed);
}

#[tokio::test]
async fn a_customer_end_closes_at_once_queues_the_close_last_and_holds_the_next_opening_back() {
    let (store, _dir) = temp_store().await;
    let ended = opening(&store, BackendKind::Chat).await;
    let customer = ended.customer_id.clone();

    let closed = store.close_by_customer(&customer, 1).await.unwrap();

    let closed = closed.expect("the live conversation closed");
    assert_eq!(
        (closed.id.clone(), closed.state),
        (ended.id.clone(), ConversationState::Closed)
    );
    assert_eq!(store.close_by_customer(&customer, 2).await.unwrap(), None);
    // The customer writes again: a new conversation, whose opening waits
    // for the old one's close.
    writes(&store, &customer, "m2", "again", BackendKind::Chat, 3).await;
    let next = store.latest_conversation(&customer).await.unwrap().unwrap();
    assert_ne!(next.id, ended.id);
    assert_eq!(store.outbox_take(&next.id, i64::MAX).await.unwrap(), None);

    // The ended one still opens (its channel recorded, still closed), sends
    // m1, then closes.
    let open = store.outbox_take(&ended.id, i64::MAX).await.unwrap();
    let open = open.expect("the open row");
    let opened = Opened {
        channel: ChannelSid::parse("CH00000000000000000000000000000001").unwrap(),
        task: None,
        flex_ref: None,
    };
    let (announced, m1) = store
        .outbox_finish_open(&open, &opened, 4, i64::MAX)
        .await
        .unwrap();
    assert_eq!(announced, None, "never announced as open");
    let m1 = m1.expect("m1's row");
    assert_eq!(m1.channel, Some(opened.channel.clone()));
    assert_eq!(m1.conversation_state, ConversationState::Closed);
    let JobKind::Send(message) = &m1.kind else {
        panic!("m1 is a send");
    };
    let sid = MessageSid::parse("IM00000000000000000000000000000001").unwrap();
    let close = store
        .outbox_settle_send(&m1, message, Ok(&sid), 5, i64::MAX)
        .await
        .unwrap()
        .expect("the close row");
    assert!(close.ready && close.kind == JobKind::Close);
    assert_eq!(close.channel, Some(opened.channel));
    assert_eq!(store.outbox_done(&close, i64::MAX).await.unwrap(), None);

    let open_next = store.outbox_take(&next.id, i64::MAX).await.unwrap();
    assert!(open_next.is_some_and(|job| job.ready && job.kind == JobKind::Open));
}
