//! The group commit over a real SQLite file: callers hear only after the
//! commit, writes that wait share one transaction, a failing write fails
//! alone, and a commit whose answer was lost is found again, not repeated.

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;

use crate::core::ids::{ClientMessageId, CustomerId, MessageBody, Seq};
use crate::flex::BackendKind;
use crate::store::messages::{Accepted, IncomingCustomerMessage};
use crate::store::test_support::{customer, reopen, temp_store};
use crate::store::{Store, StoreResult};

async fn accept(store: &Store, customer: CustomerId, client_id: &str) -> StoreResult<Accepted> {
    store
        .accept_customer_message(IncomingCustomerMessage {
            customer: &customer,
            author: "Ada",
            client_msg_id: &ClientMessageId::parse(client_id).expect("an id"),
            body: &MessageBody::parse("hello").expect("a body"),
            backend: BackendKind::Chat,
            now: 0,
        })
        .await
}

fn seq_of(accepted: &Accepted) -> Seq {
    match accepted {
        Accepted::New { message, .. } | Accepted::Duplicate { message } => message.seq,
    }
}

#[tokio::test]
async fn writes_that_wait_for_the_writer_share_one_commit_and_each_caller_hears_after_it() {
    let (store, _dir) = temp_store().await;
    let mut customers = Vec::new();
    for _ in 0..20 {
        customers.push(customer(&store).await);
    }
    let commits = store.commits();
    // The writer connection is busy (held here), so every write queues.
    let held = store.writer().acquire().await.expect("the writer");
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
        let stored = store.messages_since(&customer, Seq(0), 10).await.unwrap();
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

#[tokio::test]
async fn a_write_that_fails_in_a_batch_fails_alone_and_the_others_commit() {
    let (store, _dir) = temp_store().await;
    let mut customers = Vec::new();
    for _ in 0..5 {
        customers.push(customer(&store).await);
    }
    // Never registered: its conversation breaks a foreign key.
    let ghost = CustomerId::generate();
    let held = store.writer().acquire().await.expect("the writer");
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
        let stored = store.messages_since(&customer, Seq(0), 10).await.unwrap();
        if customer == ghost {
            assert!(accepted.is_err(), "the ghost's message was accepted");
            assert!(stored.is_empty());
        } else {
            assert!(matches!(accepted, Ok(Accepted::New { .. })));
            assert_eq!(stored.len(), 1);
        }
    }
    assert_eq!(store.outbox_depth().await.unwrap(), 10, "5 opens + 5 sends");
}

#[tokio::test]
async fn a_message_committed_whose_answer_was_lost_is_found_after_a_restart_not_stored_again() {
    let (store, dir) = temp_store().await;
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
        store.messages_since(&ada, Seq(0), 10).await.unwrap().len(),
        1
    );
    assert_eq!(store.outbox_depth().await.unwrap(), 2, "open + one send");
}
