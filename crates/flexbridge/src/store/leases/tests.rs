//! Leases over a real database (both): a claim holds other bridges off
//! until it expires, a takeover marks the head job unsure, the write that
//! ends a delivery releases the lease, a lost lease stops the delivery
//! that held it, and a start claims each re-attachment once.

use std::time::Duration;

use super::*;
use crate::core::backend::Opened;
use crate::core::ids::RemoteChannel;
use crate::core::work::{Begin, JobKind, NextJob, OutboxJob};
use crate::store::test_support::{
    CHAT, DbGuard, TestDb, on_both_databases, opening, temp_store, writes,
};

on_both_databases!(
    a_claim_holds_other_bridges_off_until_it_expires_and_a_takeover_looks_first,
    the_write_that_ends_a_delivery_releases_its_lease,
    a_delivery_whose_lease_was_taken_over_stops_at_its_next_take,
    a_bridge_alone_takes_over_what_an_earlier_run_left,
    bridges_starting_together_claim_each_re_attachment_once,
);

const LEASE_MS: i64 = 1_000;

/// Another bridge's store on the same database.
async fn another_bridge(guard: &DbGuard) -> Store {
    Store::connect_with(
        &guard.url(),
        LeaseHolder::new(Duration::from_millis(LEASE_MS as u64)),
    )
    .await
    .expect("store")
}

async fn first(db: TestDb) -> (Store, DbGuard) {
    let (_, guard) = temp_store(db).await;
    (another_bridge(&guard).await, guard)
}

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

async fn a_claim_holds_other_bridges_off_until_it_expires_and_a_takeover_looks_first(db: TestDb) {
    let (a, guard) = first(db).await;
    let b = another_bridge(&guard).await;
    let conversation = opening(&a, CHAT).await;

    let taken = ready(
        a.outbox()
            .take(&conversation.id, Begin::DueBy(0))
            .await
            .unwrap(),
    );
    assert!(!taken.maybe_landed);
    let holder = a.leases().holder_of(&conversation.id).await.unwrap();
    assert_eq!(holder, Some((a.holder().owner.to_string(), LEASE_MS)));

    assert_eq!(
        b.outbox()
            .take(&conversation.id, Begin::DueBy(999))
            .await
            .unwrap(),
        NextJob::Held(LEASE_MS),
        "A's lease still runs"
    );
    let renewed = a
        .leases()
        .renew(vec![conversation.id.clone()], 500)
        .await
        .unwrap();
    assert!(renewed.is_empty(), "nothing lost");
    assert_eq!(
        b.outbox()
            .take(&conversation.id, Begin::DueBy(1_000))
            .await
            .unwrap(),
        NextJob::Held(500 + LEASE_MS),
        "renewed"
    );

    let taken_over = ready(
        b.outbox()
            .take(&conversation.id, Begin::DueBy(500 + LEASE_MS))
            .await
            .unwrap(),
    );
    assert_eq!(taken_over.id, taken.id, "the same head job");
    assert!(taken_over.maybe_landed, "A may have sent it: look first");
    let holder = b.leases().holder_of(&conversation.id).await.unwrap();
    assert_eq!(
        holder.map(|(owner, _)| owner),
        Some(b.holder().owner.to_string())
    );
}

async fn the_write_that_ends_a_delivery_releases_its_lease(db: TestDb) {
    let (a, guard) = first(db).await;
    let b = another_bridge(&guard).await;
    let conversation = opening(&a, CHAT).await;
    let open = ready(
        a.outbox()
            .take(&conversation.id, Begin::DueBy(0))
            .await
            .unwrap(),
    );

    // The open is done; the message's send is next, not due yet: the
    // delivery ends there, and its lease with it.
    let (_, next) = a
        .outbox()
        .finish_open(&open, &opened(), 1, Begin::Nothing)
        .await
        .unwrap();
    assert_eq!(next, NextJob::NotBefore(0));
    assert_eq!(a.leases().holder_of(&conversation.id).await.unwrap(), None);

    // B delivers it at once; a retry scheduled ends B's delivery too.
    let send = ready(
        b.outbox()
            .take(&conversation.id, Begin::DueBy(2))
            .await
            .unwrap(),
    );
    assert!(matches!(send.kind, JobKind::Send(_)));
    b.outbox()
        .retry_later(send.id, 50, "timed out", true)
        .await
        .unwrap();
    assert_eq!(b.leases().holder_of(&conversation.id).await.unwrap(), None);
    let again = ready(
        a.outbox()
            .take(&conversation.id, Begin::DueBy(50))
            .await
            .unwrap(),
    );
    assert!(again.maybe_landed && again.attempts == 1);
    assert_eq!(
        a.outbox().finish(&again, Begin::DueBy(51)).await.unwrap(),
        NextJob::Empty
    );
    assert_eq!(a.leases().holder_of(&conversation.id).await.unwrap(), None);
}

async fn a_delivery_whose_lease_was_taken_over_stops_at_its_next_take(db: TestDb) {
    let (a, guard) = first(db).await;
    let b = another_bridge(&guard).await;
    let conversation = opening(&a, CHAT).await;
    writes(&a, &conversation.customer_id, "m2", "again", CHAT, 0).await;
    let open = ready(
        a.outbox()
            .take(&conversation.id, Begin::DueBy(0))
            .await
            .unwrap(),
    );
    // A stalls past its lease; B takes the conversation over.
    let taken = ready(
        b.outbox()
            .take(&conversation.id, Begin::DueBy(LEASE_MS))
            .await
            .unwrap(),
    );
    assert_eq!(taken.id, open.id);

    // A's open did land: recording it is right, but A goes no further.
    let (_, next) = a
        .outbox()
        .finish_open(&open, &opened(), LEASE_MS + 1, Begin::DueBy(LEASE_MS + 1))
        .await
        .unwrap();
    assert_eq!(next, NextJob::Held(2 * LEASE_MS));
    let lost = a
        .leases()
        .renew(vec![conversation.id.clone()], LEASE_MS + 2)
        .await
        .unwrap();
    assert_eq!(lost, std::slice::from_ref(&conversation.id));
}

async fn a_bridge_alone_takes_over_what_an_earlier_run_left(db: TestDb) {
    let (earlier, guard) = first(db).await;
    let conversation = opening(&earlier, CHAT).await;
    let idle = opening(&earlier, CHAT).await;
    ready(
        earlier
            .outbox()
            .take(&conversation.id, Begin::DueBy(0))
            .await
            .unwrap(),
    );
    // The earlier run dies holding the lease, which has not expired.
    drop(earlier);

    let next = another_bridge(&guard).await;
    let taken = next.leases().take_over_stale().await.unwrap();
    assert_eq!(taken, std::slice::from_ref(&conversation.id));
    assert_eq!(
        next.leases().holder_of(&conversation.id).await.unwrap(),
        None
    );
    let head = ready(
        next.outbox()
            .take(&conversation.id, Begin::DueBy(1))
            .await
            .unwrap(),
    );
    assert!(head.maybe_landed, "the earlier run may have done it");
    let other = ready(next.outbox().take(&idle.id, Begin::DueBy(1)).await.unwrap());
    assert!(!other.maybe_landed, "never taken: nothing to doubt");
}

async fn bridges_starting_together_claim_each_re_attachment_once(db: TestDb) {
    let (a, guard) = first(db).await;
    let b = another_bridge(&guard).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let conversation = opening(&a, CHAT).await;
        let job = ready(
            a.outbox()
                .take(&conversation.id, Begin::DueBy(0))
                .await
                .unwrap(),
        );
        a.outbox()
            .finish_open(&job, &opened(), 1, Begin::Nothing)
            .await
            .unwrap();
        open.push(conversation);
    }

    // A and B start together: whoever comes second finds each claimed.
    let (by_a, by_b) = tokio::join!(
        a.outbox().reattach(10, 10 - LEASE_MS),
        b.outbox().reattach(11, 11 - LEASE_MS),
    );
    assert_eq!(by_a.unwrap() + by_b.unwrap(), 3, "one sync each");
    // A start a lease later re-attaches again (once the syncs ran).
    for conversation in &open {
        let next = ready(
            a.outbox()
                .take(&conversation.id, Begin::DueBy(12))
                .await
                .unwrap(),
        );
        let next = match next.kind {
            JobKind::Sync => next,
            _ => {
                let NextJob::Ready(sync) =
                    a.outbox().finish(&next, Begin::DueBy(12)).await.unwrap()
                else {
                    panic!("a sync behind the message");
                };
                *sync
            }
        };
        assert_eq!(next.kind, JobKind::Sync);
        a.outbox().finish(&next, Begin::DueBy(12)).await.unwrap();
    }
    let later = 11 + LEASE_MS + 1;
    assert_eq!(
        b.outbox().reattach(later, later - LEASE_MS).await.unwrap(),
        3
    );
}
