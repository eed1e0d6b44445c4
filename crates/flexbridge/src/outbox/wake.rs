//! How the outbox worker hears of new work: the ids of the conversations
//! whose rows were just committed. The worker starts a delivery for exactly
//! those (or lets a delivery already running pick the rows up) instead of
//! rescanning the whole queue for every message.
//!
//! A wake-up is a hint, never the only way work is found: a row whose
//! wake-up is lost (a crash right after the commit) is found by the
//! worker's full scan at its next start or sweep.

use std::sync::Mutex;

use tokio::sync::Notify;

use crate::core::ids::ConversationId;

/// Conversations with new work, waiting for the worker.
#[derive(Debug, Default)]
pub struct Wakeups {
    /// In arrival order; the worker removes duplicates.
    pending: Mutex<Vec<ConversationId>>,
    /// Wakes the worker; a wake-up while it is busy is kept for its next wait.
    notify: Notify,
}

impl Wakeups {
    /// `conversation` has committed work for Flex.
    pub fn wake(&self, conversation: &ConversationId) {
        super::lock(&self.pending).push(conversation.clone());
        self.notify.notify_one();
    }

    /// Wakes the worker without naming a conversation (it re-reads its
    /// schedule).
    pub(super) fn nudge(&self) {
        self.notify.notify_one();
    }

    /// Every conversation woken since the last call.
    pub(super) fn take(&self) -> Vec<ConversationId> {
        std::mem::take(&mut *super::lock(&self.pending))
    }

    /// Resolves once something was woken (or nudged) since the last wait.
    pub(super) async fn notified(&self) {
        self.notify.notified().await;
    }
}
