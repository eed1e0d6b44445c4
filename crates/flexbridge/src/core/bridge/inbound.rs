//! What Flex tells the bridge, from a webhook or found by a re-attachment:
//! one path for both, so an event seen twice is applied once. Agents are
//! named for display here, whichever way their event came.

use std::time::Duration;

use super::{Bridge, BridgeError};
use crate::core::attachment::safe_filename;
use crate::core::backend::{BackendName, EventHeader, FlexBackend, FlexEvent};
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
                let stored = storage
                    .record_agent_message(
                        key(header),
                        AgentMessage {
                            message,
                            author,
                            body,
                            media,
                        },
                    )
                    .await?;
                Ok(match stored {
                    Inbound::Applied(stored) => {
                        metrics::counter!("flexbridge_messages_in_total", "from" => "agent")
                            .increment(1);
                        self.tell(&stored.customer, Notice::Message(stored.message))
                            .await;
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
        Inbound::UnknownChannel => EventOutcome::UnknownChannel,
    }
}
