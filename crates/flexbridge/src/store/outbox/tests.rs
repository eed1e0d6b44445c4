//! The outbox rows over a real SQLite store: adoption of unopened
//! conversations at start, and taking rows (ready only when they may go).

use super::*;
use crate::core::ids::{ClientMessageId, MessageBody};
use crate::store::messages::IncomingCustomerMessage;
use crate::store::test_support::{opening, temp_store};

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
    store
        .accept_customer_message(IncomingCustomerMessage {
            customer: &conversation.customer_id,
            author: "Ada",
            client_msg_id: &ClientMessageId::parse("m2").expect("an id"),
            body: &MessageBody::parse("again").expect("a body"),
            backend: BackendKind::Chat,
            now: 0,
        })
        .await
        .expect("accepted");
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
