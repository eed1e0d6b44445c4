//! Outbox leases: which bridge delivers a conversation's queue, and until
//! when — two columns of `conversations` (`lease_owner`,
//! `lease_expires_at`, ms), written by the statements here, inside the
//! group commits the outbox makes anyway.
//!
//! - **Claim** with the first take of a delivery ([`claim`]): free or
//!   already ours → ours until `now + lease`; another owner's that expired
//!   → taken over, and the head job is marked `maybe_landed` (its owner
//!   may have died mid-send: whoever sends it next looks in Flex first);
//!   another owner's still running → [`Claim::Held`], untouched.
//! - **Hold**: every later take of the same delivery checks the lease is
//!   still ours (a condition of its read, no statement of its own); the
//!   worker renews the leases of the deliveries it runs ([`renew`]).
//! - **Release** in the write that ends the delivery: the take that
//!   finds the queue empty or not yet due, a retry scheduled, a
//!   conversation abandoned ([`release`]). A lease left behind is a
//!   delivery cut short (a crash, a store error): it expires.
//! - **A bridge alone on its database** (SQLite's file; PostgreSQL held by
//!   one bridge, `super::lock`) knows every other owner is a run that died:
//!   at start it takes all their leases over at once
//!   ([`Leases::take_over_stale`]) instead of waiting for them to expire.
//!
//! Why rows with an expiry rather than PostgreSQL's `FOR UPDATE SKIP
//! LOCKED` or advisory locks: a delivery spans a Flex request, and a row
//! lock lasts a transaction (one connection and one open transaction per
//! conversation in flight, nothing batched); an advisory lock lasts a
//! session (a dropped connection frees every lock silently while the
//! bridge goes on delivering, and SQLite has neither). A lease row is the
//! same statement on both databases, costs two statements per delivery in
//! commits that happen anyway, and its expiry is a setting
//! (`FLEXBRIDGE_OUTBOX_LEASE_MS`): how long a dead bridge's conversations
//! wait for another. `docs/architecture.md` §4.7 has the rest.

use super::dialect::{Locking, SKIP_LOCKED};
use super::{Conn, LeaseHolder, Store, StoreResult, corrupt, sql};
use crate::core::ids::ConversationId;

/// What claiming a conversation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Claim {
    /// Ours now (it was free, or ours already).
    Mine,
    /// Ours now, taken from an owner whose lease had expired.
    TakenOver,
    /// Another bridge holds it until this time (ms).
    Held(i64),
}

/// Claims a free lease, or renews our own.
static CLAIM_FREE: Locking = Locking::new(
    "UPDATE conversations SET lease_owner = $1, lease_expires_at = $2
     WHERE id = (SELECT id FROM conversations
                 WHERE id = $3 AND (lease_owner IS NULL OR lease_owner = $1) {lock})",
    SKIP_LOCKED,
);
/// Takes over a lease that expired.
static CLAIM_EXPIRED: Locking = Locking::new(
    "UPDATE conversations SET lease_owner = $1, lease_expires_at = $2
     WHERE id = (SELECT id FROM conversations WHERE id = $3 AND lease_expires_at <= $4 {lock})",
    SKIP_LOCKED,
);

/// How soon a claim is tried again whose row another bridge's
/// transaction had locked (it is claiming or releasing it just now).
const LOCKED_RETRY_MS: i64 = 50;

/// Claims `conversation` for `holder` at `now` (see the module doc).
pub(super) async fn claim(
    conn: &mut Conn<'_>,
    conversation: &ConversationId,
    holder: &LeaseHolder,
    now: i64,
) -> StoreResult<Claim> {
    let until = holder.until(now);
    let free = sql::query(CLAIM_FREE.on(conn))
        .bind(&*holder.owner)
        .bind(until)
        .bind(conversation.as_str())
        .execute(&mut *conn)
        .await?;
    if free.rows_affected() == 1 {
        return Ok(Claim::Mine);
    }
    let expired = sql::query(CLAIM_EXPIRED.on(conn))
        .bind(&*holder.owner)
        .bind(until)
        .bind(conversation.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    if expired.rows_affected() == 1 {
        mark_head_unsure(conn, conversation).await?;
        metrics::counter!(crate::telemetry::families::TAKEOVERS).increment(1);
        tracing::warn!(%conversation, "took over a conversation whose bridge stopped renewing its lease; its next send looks in Flex first");
        return Ok(Claim::TakenOver);
    }
    let until: Option<Option<i64>> =
        sql::query_scalar("SELECT lease_expires_at FROM conversations WHERE id = $1")
            .bind(conversation.as_str())
            .fetch_optional(conn)
            .await?;
    Ok(match until {
        // No such conversation: nothing to deliver; `Held(0)` lets the
        // caller look again at once and find its queue empty.
        None => Claim::Held(0),
        Some(Some(until)) if until > now => Claim::Held(until),
        // Free or expired, yet not claimed: another bridge's transaction
        // has the row locked (PostgreSQL), deciding just now.
        Some(_) => Claim::Held(now + LOCKED_RETRY_MS),
    })
}

/// The head job of `conversation` may have been sent by an owner that is
/// gone: its next attempt looks in Flex first.
async fn mark_head_unsure(conn: &mut Conn<'_>, conversation: &ConversationId) -> StoreResult<()> {
    sql::query(
        "UPDATE outbox SET maybe_landed = 1
         WHERE id = (SELECT MIN(id) FROM outbox WHERE conversation_id = $1)",
    )
    .bind(conversation.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Releases `conversation`'s lease if `owner` holds it.
pub(super) async fn release(
    conn: &mut Conn<'_>,
    conversation: &ConversationId,
    owner: &str,
) -> StoreResult<()> {
    sql::query(
        "UPDATE conversations SET lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(conversation.as_str())
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(())
}

/// The `conversations` lease columns, for the worker.
#[derive(Clone, Copy)]
pub struct Leases<'a> {
    pub(super) store: &'a Store,
}

impl Leases<'_> {
    /// Extends this store's leases on `conversations` to `now + lease`;
    /// returns those it no longer holds (another bridge took them over).
    pub async fn renew(
        self,
        conversations: Vec<ConversationId>,
        now: i64,
    ) -> StoreResult<Vec<ConversationId>> {
        let renewal = (conversations, self.store.holder.clone(), now);
        self.store
            .write(renewal, |(conversations, holder, now), conn| {
                Box::pin(async move {
                    let mut lost = Vec::new();
                    for conversation in conversations {
                        let renewed = sql::query(
                            "UPDATE conversations SET lease_expires_at = $1
                             WHERE id = $2 AND lease_owner = $3",
                        )
                        .bind(holder.until(*now))
                        .bind(conversation.as_str())
                        .bind(&*holder.owner)
                        .execute(&mut *conn)
                        .await?;
                        if renewed.rows_affected() == 0 {
                            lost.push(conversation.clone());
                        }
                    }
                    Ok(lost)
                })
            })
            .await
    }

    /// Gives up this store's lease on `conversation` (a delivery that
    /// stops without a write of its own, e.g. paused by a 429).
    pub async fn release(self, conversation: &ConversationId) -> StoreResult<()> {
        let released = (conversation.clone(), self.store.holder.clone());
        self.store
            .write(released, |(conversation, holder), conn| {
                Box::pin(release(conn, conversation, &holder.owner))
            })
            .await
    }

    /// Takes over every lease another owner holds (a bridge alone on its
    /// database, at start: those owners are runs that died). Their head
    /// jobs are marked unsure; the leases are left free. Returns the
    /// conversations taken over.
    pub async fn take_over_stale(self) -> StoreResult<Vec<ConversationId>> {
        let owner = self.store.holder.owner.clone();
        self.store
            .write(owner, |owner, conn| {
                Box::pin(async move {
                    let ids: Vec<String> = sql::query_scalar(
                        "UPDATE conversations SET lease_owner = NULL, lease_expires_at = NULL
                         WHERE lease_owner IS NOT NULL AND lease_owner <> $1
                         RETURNING id",
                    )
                    .bind(&**owner)
                    .fetch_all(&mut *conn)
                    .await?;
                    let mut taken = Vec::with_capacity(ids.len());
                    for id in ids {
                        let conversation = ConversationId::parse(&id)
                            .map_err(|e| corrupt("conversations.id", e))?;
                        mark_head_unsure(conn, &conversation).await?;
                        taken.push(conversation);
                    }
                    Ok(taken)
                })
            })
            .await
    }

    /// Who holds `conversation`'s lease and until when (tests, `doctor`).
    pub async fn holder_of(
        self,
        conversation: &ConversationId,
    ) -> StoreResult<Option<(String, i64)>> {
        #[derive(sqlx::FromRow)]
        struct LeaseRow {
            lease_owner: Option<String>,
            lease_expires_at: Option<i64>,
        }
        let row: Option<LeaseRow> =
            sql::query_as("SELECT lease_owner, lease_expires_at FROM conversations WHERE id = $1")
                .bind(conversation.as_str())
                .fetch_optional(self.store.reader())
                .await?;
        Ok(row.and_then(|row| row.lease_owner.zip(row.lease_expires_at)))
    }
}

#[cfg(test)]
mod tests;
