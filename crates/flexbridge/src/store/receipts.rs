//! `webhook_receipts`: the idempotency keys of the webhooks applied, so a
//! repeated delivery has no second effect. An agent message needs none
//! (its Flex message id is unique in `messages`); every other event claims
//! its key in the same transaction as its effect.

use super::{Conn, Store, StoreResult, sql};
use crate::core::ids::ConversationId;
use crate::core::storage::EventKey;

/// The `webhook_receipts` table.
#[derive(Clone, Copy)]
pub struct Receipts<'a> {
    pub(super) store: &'a Store,
}

/// Claims `key`'s idempotency key for `conversation`: `false` (and nothing
/// written) when an earlier delivery of the event claimed it. The key is
/// kept per conversation (`{conversation}:{key}`), as a Flex message is:
/// an event whose SIDs repeat another conversation's (a Flex account that
/// repeats SIDs) is not that conversation's event.
pub(super) async fn claim(
    conn: &mut Conn<'_>,
    conversation: &ConversationId,
    key: &EventKey,
) -> StoreResult<bool> {
    let claimed = sql::query(
        "INSERT INTO webhook_receipts (idempotency_key, event_type, received_at)
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(format!("{conversation}:{}", key.idempotency_key))
    .bind(&key.event_type)
    .bind(key.now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(claimed == 1)
}

impl Receipts<'_> {
    /// Forgets receipts older than `before` (a retry that late is not one).
    pub async fn prune(self, before: i64) -> StoreResult<u64> {
        self.store
            .write(before, |before, conn| {
                Box::pin(async move {
                    Ok(
                        sql::query("DELETE FROM webhook_receipts WHERE received_at < $1")
                            .bind(before)
                            .execute(conn)
                            .await?
                            .rows_affected(),
                    )
                })
            })
            .await
    }
}
