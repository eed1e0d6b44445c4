//! The outbox jobs over a real SQLite store: adoption of unopened
//! conversations at start, taking jobs (ready only when they may go), and
//! a customer's end (closed at once, its close job last).

use super::*;
use crate::core::backend::Posted;
use crate::core::ids::RemoteMessage;
use crate::store::test_support::{
    CHAT, CONVERSATIONS, TestDb, on_both_databases, opening, temp_store, writes,
};

on_both_databases!(
    conversations_not_yet_tried_in_flex_move_to_the_configured_backend_and_tried_ones_stay,
    finishing_a_job_takes_the_next_one_ready_only_if_it_may_go,
    a_customer_end_closes_at_once_queues_the_close_last_and_holds_the_next_opening_back,
);

async fn backend_now(store: &Store, conversation: &ConversationRecord) -> BackendName {
    store
        .conversations()
        .latest_of(&conversation.customer_id)
        .await
        .expect("read")
        .expect("a conversation")
        .backend
}

/// The job, which must be ready.
fn ready(next: NextJob) -> OutboxJob {
    match next {
        NextJob::Ready(job) => *job,
        other => panic!("expected a ready job, got {other:?}"),
    }
}

fn opened() -> Opened {
    Opened {
        channel: RemoteChannel::new("CH00000000000000000000000000000001"),
        flex_ref: None,
    }
}

fn delivered() -> SendOutcome {
    SendOutcome::Delivered(Posted {
        message: RemoteMessage::new("IM00000000000000000000000000000001"),
        index: Some(0),
    })
}

async fn conversations_not_yet_tried_in_flex_move_to_the_configured_backend_and_tried_ones_stay(
    db: TestDb,
) {
    let (store, _dir) = temp_store(db).await;
    let untried = opening(&store, CHAT).await;
    let tried = opening(&store, CHAT).await;
    let taken = store
        .outbox()
        .take(&tried.id, Begin::DueBy(i64::MAX))
        .await
        .expect("taken");
    assert!(
        matches!(taken, NextJob::Ready(_)),
        "its opening is attempted"
    );
    let already = opening(&store, CONVERSATIONS).await;

    let moved = store
        .conversations()
        .adopt_unopened(&CONVERSATIONS, 0)
        .await
        .expect("adopted");

    assert_eq!(moved, 1);
    assert_eq!(backend_now(&store, &untried).await, CONVERSATIONS);
    assert_eq!(backend_now(&store, &tried).await, CHAT);
    assert_eq!(backend_now(&store, &already).await, CONVERSATIONS);
    let taken = store
        .outbox()
        .take(&untried.id, Begin::Nothing)
        .await
        .expect("read");
    assert_eq!(
        taken,
        NextJob::NotBefore(0),
        "only read, with when it may go"
    );
    let job = ready(
        store
            .outbox()
            .take(&untried.id, Begin::DueBy(0))
            .await
            .expect("taken"),
    );
    assert_eq!(job.backend, CONVERSATIONS);
}

async fn finishing_a_job_takes_the_next_one_ready_only_if_it_may_go(db: TestDb) {
    let (store, _dir) = temp_store(db).await;
    let conversation = opening(&store, CHAT).await;
    writes(&store, &conversation.customer_id, "m2", "again", CHAT, 0).await;
    let open = ready(
        store
            .outbox()
            .take(&conversation.id, Begin::DueBy(0))
            .await
            .unwrap(),
    );
    assert_eq!(open.kind, JobKind::Open);

    // Not to go now (e.g. a 429 pause): the next job is only read.
    let (_, next) = store
        .outbox()
        .finish_open(&open, &opened(), 1, Begin::Nothing)
        .await
        .unwrap();
    assert_eq!(next, NextJob::NotBefore(0), "m1's job, only read");
    let m1 = ready(
        store
            .outbox()
            .take(&conversation.id, Begin::DueBy(1))
            .await
            .unwrap(),
    );
    assert!(m1.attempts == 0 && !m1.maybe_landed, "no earlier attempt");

    // Settling m1 takes m2, ready.
    let JobKind::Send(message) = &m1.kind else {
        panic!("m1 is a send");
    };
    let m2 = ready(
        store
            .outbox()
            .settle_send(&m1, message, &delivered(), 2, Begin::DueBy(2))
            .await
            .unwrap(),
    );

    // A failed attempt that may have landed is counted and remembered.
    store
        .outbox()
        .retry_later(m2.id, 10, "timed out", true)
        .await
        .unwrap();
    assert_eq!(
        store
            .outbox()
            .take(&conversation.id, Begin::DueBy(9))
            .await
            .unwrap(),
        NextJob::NotBefore(10)
    );
    let m2 = ready(
        store
            .outbox()
            .take(&conversation.id, Begin::DueBy(10))
            .await
            .unwrap(),
    );
    assert!(m2.attempts == 1 && m2.maybe_landed);
}

async fn a_customer_end_closes_at_once_queues_the_close_last_and_holds_the_next_opening_back(
    db: TestDb,
) {
    let (store, _dir) = temp_store(db).await;
    let ended = opening(&store, CHAT).await;
    let customer = ended.customer_id.clone();

    let closed = store
        .conversations()
        .end_by_customer(&customer, 1)
        .await
        .unwrap();

    let closed = closed.expect("the live conversation closed");
    assert_eq!(
        (closed.id.clone(), closed.state),
        (ended.id.clone(), ConversationState::Closed)
    );
    assert_eq!(
        store
            .conversations()
            .end_by_customer(&customer, 2)
            .await
            .unwrap(),
        None
    );
    // The customer writes again: a new conversation, whose opening waits
    // for the old one's close.
    writes(&store, &customer, "m2", "again", CHAT, 3).await;
    let next = store
        .conversations()
        .latest_of(&customer)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(next.id, ended.id);
    let everything = Begin::DueBy(i64::MAX);
    assert_eq!(
        store.outbox().take(&next.id, everything).await.unwrap(),
        NextJob::Empty
    );

    // The ended one still opens (its channel recorded, still closed), sends
    // m1, then closes.
    let open = ready(store.outbox().take(&ended.id, everything).await.unwrap());
    let (announced, m1) = store
        .outbox()
        .finish_open(&open, &opened(), 4, everything)
        .await
        .unwrap();
    assert_eq!(announced, None, "never announced as open");
    let m1 = ready(m1);
    assert_eq!(m1.channel, Some(opened().channel));
    assert_eq!(m1.conversation_state, ConversationState::Closed);
    let JobKind::Send(message) = &m1.kind else {
        panic!("m1 is a send");
    };
    let close = ready(
        store
            .outbox()
            .settle_send(&m1, message, &delivered(), 5, everything)
            .await
            .unwrap(),
    );
    assert_eq!(close.kind, JobKind::Close);
    assert_eq!(close.channel, Some(opened().channel));
    assert_eq!(
        store.outbox().finish(&close, everything).await.unwrap(),
        NextJob::Empty
    );

    let open_next = store.outbox().take(&next.id, everything).await.unwrap();
    assert!(matches!(open_next, NextJob::Ready(job) if job.kind == JobKind::Open));
}
