//! The group commit over a real SQLite file: callers hear only after the
//! commit, writes that wait share one transaction, a failing write fails
//! alone, and a commit whose answer was lost is found again, not repeated.

use std::sync::Mutex;

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use tokio::sync::oneshot;

use crate::core::ids::{CustomerId, Seq};
use crate::core::storage::Accepted;
use crate::store::test_support::{
    CHAT, TestDb, customer, incoming, on_both_databases, reopen, temp_store,
};
use crate::store::{Store, StoreResult};

on_both_databases!(
    writes_that_wait_for_the_writer_share_one_commit_and_each_caller_hears_after_it,
    a_write_that_fails_in_a_batch_fails_alone_and_the_others_commit,
    a_message_committed_whose_answer_was_lost_is_found_after_a_restart_not_stored_again,
);

async fn accept(store: &Store, customer: CustomerId, client_id: &str) -> StoreResult<Accepted> {
    store
        .messages()
        .accept(incoming(&customer, client_id, "hello", CHAT, 0))
        .await
}

/// Keeps the writer task busy (inside a write of its own) until the
/// returned sender fires or is dropped, so every write meanwhile queues.
async fn hold_writer(store: &Store) -> oneshot::Sender<()> {
    let (release, released) = oneshot::channel::<()>();
    let (started, has_started) = oneshot::channel::<()>();
    let holding = Mutex::new(Some((started, released)));
    let store = store.clone();
    tokio::spawn(async move {
        store
            .write(holding, |holding, _conn| {
                Box::pin(async move {
                    let taken = crate::core::lock(holding).take();
                    if let Some((started, released)) = taken {
                        let _ = started.send(());
                        let _ = released.await;
                    }
                    Ok(())
                })
            })
            .await
    });
    has_started
        .await
        .expect("the writer took the holding write");
    release
}

fn seq_of(accepted: &Accepted) -> Seq {
    match accepted {
        Accepted::New { message, .. } | Accepted::Duplicate { message } => message.seq,
        Accepted::AttachmentCarried => panic!("no attachments here"),
        Accepted::RateLimited => panic!("no rate limit here"),
    }
}

async fn writes_that_wait_for_the_writer_share_one_commit_and_each_caller_hears_after_it(
    db: TestDb,
) {
    let (store, _dir) = temp_store(db).await;
    let mut customers = Vec::new();
    for _ in 0..20 {
        customers.push(customer(&store).await);
    }
    let commits = store.commits();
    // The writer is busy (held here), so every write queues.
    let held = hold_writer(&store).await;
    let mut acks: FuturesUnordered<_> = customers
        .iter()
        .map(|c| {
            let c = c.clone();
            let store = &store;
            async move { (c.clone(), accept(store, c, "m1").await) }
        })
        .collect();
    assert!(
        futures::poll!(acks.next()).is_pending(),
        "nothing is answered while the writer cannot commit"
    );

    drop(held);
    let mut answered = 0;
    while let Some((customer, accepted)) = acks.next().await {
        let accepted = accepted.expect("accepted");
        // The reader pool (other connections) sees only committed data.
        let stored = store.messages().since(&customer, Seq(0), 10).await.unwrap();
        assert_eq!(stored.len(), 1, "answered before its commit");
        assert_eq!(stored[0].seq, seq_of(&accepted));
        answered += 1;
    }

    assert_eq!(answered, 20);
    let transactions = store.commits() - commits;
    assert!(
        transactions <= 2,
        "20 waiting writes took {transactions} transactions"
    );
}

async fn a_write_that_fails_in_a_batch_fails_alone_and_the_others_commit(db: TestDb) {
    let (store, _dir) = temp_store(db).await;
    let mut customers = Vec::new();
    for _ in 0..5 {
        customers.push(customer(&store).await);
    }
    // Never registered: its conversation breaks a foreign key.
    let ghost = CustomerId::generate();
    let held = hold_writer(&store).await;
    let mut acks: FuturesUnordered<_> = customers
        .iter()
        .chain([&ghost])
        .map(|c| {
            let c = c.clone();
            let store = &store;
            async move { (c.clone(), accept(store, c, "m1").await) }
        })
        .collect();
    assert!(futures::poll!(acks.next()).is_pending());

    drop(held);
    let mut outcomes = Vec::new();
    while let Some(outcome) = acks.next().await {
        outcomes.push(outcome);
    }

    for (customer, accepted) in outcomes {
        let stored = store.messages().since(&customer, Seq(0), 10).await.unwrap();
        if customer == ghost {
            assert!(accepted.is_err(), "the ghost's message was accepted");
            assert!(stored.is_empty());
        } else {
            assert!(matches!(accepted, Ok(Accepted::New { .. })));
            assert_eq!(stored.len(), 1);
        }
    }
    assert_eq!(
        store.outbox().depth().await.unwrap(),
        10,
        "5 opens + 5 sends"
    );
}

async fn a_message_committed_whose_answer_was_lost_is_found_after_a_restart_not_stored_again(
    db: TestDb,
) {
    let (store, dir) = temp_store(db).await;
    let ada = customer(&store).await;
    let first = accept(&store, ada.clone(), "m1").await.expect("accepted");
    // The process dies after the commit, before the ack reached the client.
    store.close().await;
    drop(store);

    let store = reopen(&dir).await;
    let retried = accept(&store, ada.clone(), "m1").await.expect("answered");

    let Accepted::New { message, .. } = first else {
        panic!("the first accept stores the message");
    };
    assert_eq!(retried, Accepted::Duplicate { message });
    assert_eq!(
        store
            .messages()
            .since(&ada, Seq(0), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.outbox().depth().await.unwrap(), 2, "open + one send");
}
