//! What Flex tells the bridge, from a webhook or found by a re-attachment:
//! one path for both, so an event seen twice is applied once. Agents are
//! named for display here, whichever way their event came.
//!
//! Flex's order is the customer's: an agent message from a webhook whose
//! position in the channel comes after one the bridge never saw (a
//! webhook Twilio dropped, or one that failed all its retries) waits while
//! the conversation is re-synced from Flex, whose missed messages are
//! stored first (oldest first); then it is. If Flex cannot be asked, it is
//! stored as it came (never lost; the periodic re-sync still brings the
//! missed one).

use std::time::Duration;

use super::{Bridge, BridgeError};
use crate::core::attachment::safe_filename;
use crate::core::backend::{
    BackendName, EventHeader, FlexBackend, FlexEvent, ResyncRequest, Resynced,
};
use crate::core::chain;
use crate::core::conversation::CloseReason;
use crate::core::fanout::Notice;
use crate::core::model::ConversationRecord;
use crate::core::storage::{AgentMessage, EventKey, Inbound};

/// What applying a webhook event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    Applied,
    Duplicate,
    /// For a channel no conversation has.
    UnknownChannel,
    Ignored,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::UnknownChannel => "unknown_channel",
            Self::Ignored => "ignored",
        }
    }
}

/// How long naming an agent may delay an event.
const AGENT_NAME_TIMEOUT: Duration = Duration::from_secs(2);

impl Bridge {
    /// Applies an event from the backend `from`; returns once its effect
    /// is committed (and the customer told).
    pub async fn apply_flex_event(
        &self,
        from: &BackendName,
        event: FlexEvent,
    ) -> Result<EventOutcome, BridgeError> {
        self.apply(from, event, true).await
    }

    /// Applies `event`; with `check_gap`, an agent message after an unseen
    /// position first has its conversation re-synced (the module doc).
    async fn apply(
        &self,
        from: &BackendName,
        event: FlexEvent,
        check_gap: bool,
    ) -> Result<EventOutcome, BridgeError> {
        let storage = &self.inner.storage;
        let now = self.now();
        let key = |header: EventHeader| EventKey {
            idempotency_key: header.idempotency_key,
            event_type: header.event_type,
            channel: header.channel,
            now,
        };
        match event {
            FlexEvent::Ignored { .. } => Ok(EventOutcome::Ignored),
            FlexEvent::AgentMessage {
                header,
                message,
                index,
                author,
                body,
                media,
            } => {
                let author = self.agent_name(from, author).await;
                // A file without text reads as its name (as a customer's does).
                let body = match &media {
                    Some(media) if body.trim().is_empty() => {
                        safe_filename(media.filename.as_deref().unwrap_or_default(), "attachment")
                    }
                    _ => body,
                };
                let message = AgentMessage {
                    message,
                    index,
                    author,
                    body,
                    check_gap,
                    media,
                };
                let mut stored = storage
                    .record_agent_message(key(header.clone()), message.clone())
                    .await?;
                if let Inbound::Gap(conversation) = stored {
                    self.fill_gap(from, &conversation).await;
                    let message = AgentMessage {
                        check_gap: false,
                        ..message
                    };
                    stored = storage.record_agent_message(key(header), message).await?;
                }
                Ok(match stored {
                    Inbound::Applied(stored) => {
                        metrics::counter!("flexbridge_messages_in_total", "from" => "agent")
                            .increment(1);
                        self.tell(&stored.customer, Notice::Message(stored.message))
                            .await;
                        metrics::histogram!("flexbridge_agent_message_latency_seconds")
                            .record((self.now() - now).max(0) as f64 / 1000.0);
                        EventOutcome::Applied
                    }
                    other => other_outcome(&other),
                })
            }
            FlexEvent::AgentJoined { header, agent } => {
                let agent = self.agent_name(from, agent).await;
                let changed = storage.record_agent_joined(key(header), &agent).await?;
                Ok(self
                    .changed(changed, |conversation| Notice::AgentJoined {
                        conversation,
                        agent,
                    })
                    .await)
            }
            FlexEvent::ChatEnded { header } => {
                let reason = CloseReason::AgentEnded;
                let changed = storage.close_by_channel(key(header), reason).await?;
                if let Inbound::Applied(conversation) = &changed {
                    tracing::info!(customer = %conversation.customer_id, conversation = %conversation.id, "chat ended by the agent");
                }
                Ok(self
                    .changed(changed, |conversation| Notice::ChatEnded {
                        conversation,
                        reason,
                    })
                    .await)
            }
        }
    }

    /// Re-syncs `conversation` from Flex because a message revealed a gap:
    /// what Flex has that the bridge missed is applied, oldest first.
    async fn fill_gap(&self, from: &BackendName, conversation: &ConversationRecord) {
        let (Some(backend), Some(channel)) =
            (self.inner.backends.get(from), &conversation.flex_channel)
        else {
            return;
        };
        tracing::info!(conversation = %conversation.id, customer = %conversation.customer_id, "an agent message came after one the bridge never got; re-syncing from Flex first");
        let request = ResyncRequest {
            channel,
            customer: &conversation.customer_id,
            flex_ref: conversation.flex_ref.as_ref(),
            since: conversation.created_at,
        };
        let filled = match backend.resync(&request).await {
            Ok(resynced) => self
                .caught_up(from, &conversation.id, resynced)
                .await
                .map_err(|error| chain(&error)),
            Err(error) => Err(chain(&error)),
        };
        if let Err(error) = filled {
            tracing::warn!(conversation = %conversation.id, %error, "could not fill the gap from Flex; storing the message as it came (the periodic re-sync looks again)");
        }
    }

    /// What a re-sync found in Flex, applied as webhooks are (no gap
    /// check: the listing is Flex's order), then recorded as the
    /// conversation's last re-sync; how many events changed something.
    pub async fn caught_up(
        &self,
        from: &BackendName,
        conversation: &crate::core::ids::ConversationId,
        resynced: Resynced,
    ) -> crate::core::storage::StorageResult<usize> {
        let mut applied = 0;
        for event in resynced.events {
            match Box::pin(self.apply(from, event, false)).await {
                Ok(EventOutcome::Applied) => applied += 1,
                Ok(_) => {}
                Err(BridgeError::Storage(error)) => return Err(error),
                Err(error) => {
                    tracing::warn!(error.cause_chain = %chain(&error), "applying a missed event")
                }
            }
        }
        self.inner
            .storage
            .resynced(conversation, resynced.through_index, self.now())
            .await?;
        Ok(applied)
    }

    /// The name customers see for the agent `identity` of backend `from`
    /// (best effort, bounded in time: the identity itself otherwise).
    async fn agent_name(&self, from: &BackendName, identity: String) -> String {
        let Some(backend) = self.inner.backends.get(from) else {
            return identity;
        };
        let backend: &dyn FlexBackend = backend.as_ref();
        tokio::time::timeout(AGENT_NAME_TIMEOUT, backend.agent_name(&identity))
            .await
            .unwrap_or(identity)
    }

    /// A webhook's change to a conversation: when applied, the customer
    /// is told.
    async fn changed(
        &self,
        inbound: Inbound<ConversationRecord>,
        event: impl FnOnce(ConversationRecord) -> Notice,
    ) -> EventOutcome {
        let Inbound::Applied(conversation) = inbound else {
            return other_outcome(&inbound);
        };
        self.tell_changed(conversation, event).await;
        EventOutcome::Applied
    }
}

fn other_outcome<T>(inbound: &Inbound<T>) -> EventOutcome {
    match inbound {
        Inbound::Applied(_) => EventOutcome::Applied,
        Inbound::Duplicate => EventOutcome::Duplicate,
        // Only a gap-checked message is refused so, and is stored after.
        Inbound::Gap(_) => EventOutcome::Ignored,
        Inbound::UnknownChannel => EventOutcome::UnknownChannel,
    }
}
