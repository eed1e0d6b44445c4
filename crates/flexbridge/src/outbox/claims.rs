//! What the worker claims in the database, beside its jobs: start-up
//! recovery, per conversation (so bridges starting together do it once),
//! and the leases of its running deliveries, renewed while they run
//! (`crate::store::leases` has the statements and why leases are rows).

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Outbox, STORE_ERROR_PAUSE_MS, lock};
use crate::core::chain;
use crate::core::ids::ConversationId;

impl Outbox {
    /// The worker's first step: a bridge alone on its database takes over
    /// the leases an earlier run left (their conversations are unsure);
    /// conversations not yet in Flex move to the configured backend
    /// (FLEX_BACKEND may have changed); open conversations get a "sync"
    /// job (re-attach after a start), each claimed once by bridges
    /// starting together. Whether it is done (a store error is retried
    /// soon).
    pub(super) async fn recover(&self) -> bool {
        let inner = &self.inner;
        let current = inner.backends.current().name();
        let recovered = async {
            if inner.config.alone {
                let taken = inner.store.leases().take_over_stale().await?;
                if !taken.is_empty() {
                    tracing::info!(
                        conversations = taken.len(),
                        "taking over the deliveries an earlier run left in flight"
                    );
                    metrics::counter!(crate::telemetry::families::TAKEOVERS)
                        .increment(taken.len() as u64);
                    lock(&inner.unsure).extend(taken);
                }
            }
            let now = self.now();
            let adopted = inner
                .store
                .conversations()
                .adopt_unopened(&current, now)
                .await?;
            if adopted > 0 {
                tracing::info!(
                    conversations = adopted,
                    backend = %current,
                    "conversations not yet in Flex will open with the configured backend"
                );
            }
            // Alone, every start re-attaches everything; with other
            // bridges, what none re-attached within a lease (they started
            // together, or one re-attached everything just now).
            let since = if inner.config.alone {
                i64::MAX
            } else {
                now - inner.store.holder().lease_ms
            };
            let resyncs = inner.store.outbox().reattach(now, since).await?;
            if resyncs > 0 {
                tracing::info!(
                    conversations = resyncs,
                    "re-attaching to open conversations"
                );
            }
            Ok::<_, crate::store::StoreError>(())
        }
        .await;
        match recovered {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(error.cause_chain = %chain(&error), "recovering the outbox at start; retrying");
                *lock(&inner.scan_at) = self.now() + STORE_ERROR_PAUSE_MS;
                false
            }
        }
    }

    /// Renews the leases of the running deliveries, three times per lease,
    /// until `shutdown`. A bridge sharing its database that could not
    /// renew for two thirds of a lease has its deliveries in flight
    /// stopped (the worker loop does it), before another bridge may take
    /// them over.
    pub(super) async fn keep_leases(self, shutdown: CancellationToken) {
        let inner = &self.inner;
        let lease_ms = inner.store.holder().lease_ms;
        let every = Duration::from_millis(u64::try_from(lease_ms / 3).unwrap_or(1).max(1));
        let mut renewed_at = self.now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            let running: Vec<ConversationId> = lock(&inner.busy).keys().cloned().collect();
            metrics::gauge!(crate::telemetry::families::LEASES_HELD).set(running.len() as f64);
            let now = self.now();
            if running.is_empty() {
                renewed_at = now;
                continue;
            }
            match tokio::time::timeout(every, inner.store.leases().renew(running, now)).await {
                Ok(Ok(lost)) => {
                    renewed_at = now;
                    for conversation in lost {
                        tracing::error!(%conversation, "outbox: another bridge took over a conversation this one was delivering");
                    }
                }
                Ok(Err(error)) => {
                    tracing::warn!(error.cause_chain = %chain(&error), "outbox: renewing leases");
                }
                Err(_) => tracing::warn!("outbox: renewing leases timed out"),
            }
            if !inner.config.alone && self.now() - renewed_at >= 2 * lease_ms / 3 {
                inner.stop_deliveries.store(true, Ordering::SeqCst);
                inner.wakeups.nudge();
            }
        }
    }

    /// The conversations another bridge held that are due to be tried again.
    pub(super) fn due_held(&self) -> Vec<ConversationId> {
        let now = self.now();
        let mut held = lock(&self.inner.held);
        let due: Vec<ConversationId> = held
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(conversation, _)| conversation.clone())
            .collect();
        for conversation in &due {
            held.remove(conversation);
        }
        due
    }
}
