//! The bridge service: what the customer side and the Flex side call.
//!
//! Customer side: [`Bridge::register`], [`Bridge::authenticate`],
//! [`Bridge::session`], [`Bridge::history`], [`Bridge::send_message`],
//! [`Bridge::end_chat`].
//! Flex side: [`Bridge::apply_flex_event`]. Both end in the store first;
//! only what is committed is announced (through [`Fanout`], to the
//! customer's sockets) or acknowledged.

use std::sync::Arc;
use std::time::Instant;

use super::clock::now_ms;
use super::conversation::CloseReason;
use super::ids::{ClientMessageId, CustomerId, CustomerName, MessageBody, ResumeToken, Seq};
use super::rate_limit::{RateLimit, RateLimiter};
use crate::flex::{BackendKind, EventHeader, FlexEvent};
use crate::outbox::Wakeups;
use crate::store::customers::CustomerRecord;
use crate::store::inbound::{EventKey, Inbound};
use crate::store::messages::{Accepted, IncomingCustomerMessage};
use crate::store::{ConversationRecord, MessageRecord, Store, StoreError};

/// Something a customer's sockets should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A stored message (either direction).
    Message(MessageRecord),
    /// The conversation's state or agent changed.
    Conversation(ConversationRecord),
    AgentJoined {
        conversation: ConversationRecord,
        agent: String,
    },
    ChatEnded {
        conversation: ConversationRecord,
        reason: CloseReason,
    },
    /// The fate of a customer message in Flex.
    Delivery {
        seq: Seq,
        client_msg_id: String,
        outcome: DeliveryOutcome,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    Failed(String),
}

/// How the core reaches a customer's connected clients (all of them, and
/// only theirs). Implemented by the customer side.
#[async_trait::async_trait]
pub trait Fanout: Send + Sync + 'static {
    async fn notify(&self, customer: &CustomerId, notice: Notice);
}

/// What a (re)connecting client needs.
#[derive(Debug, Clone)]
pub struct Session {
    pub customer: CustomerRecord,
    /// The live conversation, else the latest closed one, else none.
    pub conversation: Option<ConversationRecord>,
    /// Messages after the client's cursor, oldest first.
    pub messages: Vec<MessageRecord>,
}

/// A customer message, accepted.
#[derive(Debug, Clone)]
pub struct SentMessage {
    pub message: MessageRecord,
    /// `false` when this client message id was already stored (a retry).
    pub new: bool,
    /// The conversation this message started, if it started one.
    pub opened: Option<ConversationRecord>,
}

/// Errors of the core's API.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("too many messages; slow down")]
    RateLimited,
    #[error("the customer no longer exists")]
    UnknownCustomer,
    #[error(transparent)]
    Store(#[from] StoreError),
}

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

/// Most messages a replay or history answer carries.
pub const MAX_REPLAY: u32 = 500;

/// The bridge service. Cheap to clone.
#[derive(Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    fanout: Arc<dyn Fanout>,
    /// Tells the outbox worker which conversation has new work.
    outbox: Arc<Wakeups>,
    backend: BackendKind,
    limiter: RateLimiter,
}

impl Bridge {
    pub fn new(
        store: Store,
        fanout: Arc<dyn Fanout>,
        outbox: Arc<Wakeups>,
        backend: BackendKind,
        rate_limit: RateLimit,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                fanout,
                outbox,
                backend,
                limiter: RateLimiter::new(rate_limit),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn fanout(&self) -> &Arc<dyn Fanout> {
        &self.inner.fanout
    }

    /// What wakes the outbox worker.
    pub fn outbox_wakeups(&self) -> &Arc<Wakeups> {
        &self.inner.outbox
    }

    /// Issues a new customer identity; the token is returned once.
    pub async fn register(
        &self,
        name: &CustomerName,
    ) -> Result<(CustomerRecord, ResumeToken), BridgeError> {
        let id = CustomerId::generate();
        let token = ResumeToken::generate();
        let customer = self
            .inner
            .store
            .create_customer(&id, name, &token.hash(), now_ms())
            .await?;
        tracing::info!(customer = %customer.id, "customer registered");
        Ok((customer, token))
    }

    /// The customer a resume token belongs to.
    pub async fn authenticate(
        &self,
        token: &ResumeToken,
    ) -> Result<Option<CustomerRecord>, BridgeError> {
        Ok(self.inner.store.customer_by_token(&token.hash()).await?)
    }

    /// Everything a client connecting with cursor `since` needs.
    pub async fn session(&self, customer: &CustomerId, since: Seq) -> Result<Session, BridgeError> {
        let store = &self.inner.store;
        let record = store
            .customer(customer)
            .await?
            .ok_or(BridgeError::UnknownCustomer)?;
        let conversation = store.latest_conversation(customer).await?;
        let messages = store.messages_since(customer, since, MAX_REPLAY).await?;
        Ok(Session {
            customer: record,
            conversation,
            messages,
        })
    }

    /// A customer's messages after `since`, oldest first.
    pub async fn history(
        &self,
        customer: &CustomerId,
        since: Seq,
        limit: u32,
    ) -> Result<Vec<MessageRecord>, BridgeError> {
        Ok(self
            .inner
            .store
            .messages_since(customer, since, limit.clamp(1, MAX_REPLAY))
            .await?)
    }

    /// Accepts a customer message: committed (with its delivery queued)
    /// before this returns, so the caller may acknowledge it. Then call
    /// [`Bridge::announce`] (after the ack, so the client hears of its
    /// message's fate after its acceptance).
    pub async fn send_message(
        &self,
        customer: &CustomerRecord,
        client_msg_id: &ClientMessageId,
        body: &MessageBody,
    ) -> Result<SentMessage, BridgeError> {
        if !self.inner.limiter.try_acquire(&customer.id, Instant::now()) {
            return Err(BridgeError::RateLimited);
        }
        let accepted = self
            .inner
            .store
            .accept_customer_message(IncomingCustomerMessage {
                customer: &customer.id,
                author: &customer.name,
                client_msg_id,
                body,
                backend: self.inner.backend,
                now: now_ms(),
            })
            .await?;
        Ok(match accepted {
            Accepted::Duplicate { message } => SentMessage {
                message,
                new: false,
                opened: None,
            },
            Accepted::New { message, opened } => {
                metrics::counter!("flexbridge_messages_in_total", "from" => "customer")
                    .increment(1);
                if let Some(conversation) = &opened {
                    tracing::info!(customer = %customer.id, conversation = %conversation.id, "conversation opening");
                }
                SentMessage {
                    message,
                    new: true,
                    opened,
                }
            }
        })
    }

    /// Starts the delivery of an accepted message and tells the customer's
    /// sockets (every tab) about it. Nothing to do for a retried one. (If
    /// this never runs, e.g. a crash right after the commit, the outbox's
    /// sweep still delivers the message.)
    pub async fn announce(&self, customer: &CustomerId, sent: &SentMessage) {
        if !sent.new {
            return;
        }
        self.inner.outbox.wake(&sent.message.conversation_id);
        let fanout = &self.inner.fanout;
        if let Some(conversation) = &sent.opened {
            fanout
                .notify(customer, Notice::Conversation(conversation.clone()))
                .await;
        }
        fanout
            .notify(customer, Notice::Message(sent.message.clone()))
            .await;
    }

    /// The customer ends their live conversation: closed (committed)
    /// before this returns, its Flex side closed by the outbox after the
    /// messages queued before. `None` when there was none to end. Then call
    /// [`Bridge::announce_end`] (after the ack, as for a message).
    pub async fn end_chat(
        &self,
        customer: &CustomerId,
    ) -> Result<Option<ConversationRecord>, BridgeError> {
        let closed = self
            .inner
            .store
            .close_by_customer(customer, now_ms())
            .await?;
        if let Some(conversation) = &closed {
            tracing::info!(%customer, conversation = %conversation.id, "chat ended by the customer");
        }
        Ok(closed)
    }

    /// Starts closing the ended conversation in Flex and tells every tab of
    /// the customer (`chat:ended`, `customer_ended`). Flex's own end, when
    /// it comes back as a webhook, finds it closed and tells no one again.
    pub async fn announce_end(&self, conversation: &ConversationRecord) {
        self.inner.outbox.wake(&conversation.id);
        self.tell_changed(conversation.clone(), |conversation| Notice::ChatEnded {
            conversation,
            reason: CloseReason::CustomerEnded,
        })
        .await;
    }

    /// Applies a webhook event; returns once its effect is committed.
    pub async fn apply_flex_event(&self, event: &FlexEvent) -> Result<EventOutcome, BridgeError> {
        let store = &self.inner.store;
        let now = now_ms();
        let key = |header| event_key(header, now);
        let fanout = &self.inner.fanout;
        match event {
            FlexEvent::Ignored { .. } => Ok(EventOutcome::Ignored),
            FlexEvent::AgentMessage {
                header,
                message_sid,
                author,
                body,
            } => {
                let stored = store
                    .record_agent_message(key(header), message_sid, author, body)
                    .await?;
                Ok(match stored {
                    Inbound::Applied(stored) => {
                        metrics::counter!("flexbridge_messages_in_total", "from" => "agent")
                            .increment(1);
                        fanout
                            .notify(&stored.customer, Notice::Message(stored.message))
                            .await;
                        EventOutcome::Applied
                    }
                    other => other_outcome(&other),
                })
            }
            FlexEvent::AgentJoined { header, agent } => {
                let changed = store.record_agent_joined(key(header), agent).await?;
                Ok(self
                    .changed(changed, |conversation| Notice::AgentJoined {
                        conversation,
                        agent: agent.clone(),
                    })
                    .await)
            }
            FlexEvent::ChatEnded { header } => {
                let reason = CloseReason::AgentEnded;
                let changed = store.close_by_channel(key(header), reason).await?;
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

    /// A webhook's change to a conversation: when applied, the customer
    /// is told ([`Bridge::tell_changed`]).
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

    /// Tells the customer about a conversation that changed: its new state,
    /// then the specific event.
    async fn tell_changed(
        &self,
        conversation: ConversationRecord,
        event: impl FnOnce(ConversationRecord) -> Notice,
    ) {
        let customer = conversation.customer_id.clone();
        let fanout = &self.inner.fanout;
        fanout
            .notify(&customer, Notice::Conversation(conversation.clone()))
            .await;
        fanout.notify(&customer, event(conversation)).await;
    }
}

fn event_key(header: &EventHeader, now: i64) -> EventKey<'_> {
    EventKey {
        idempotency_key: &header.idempotency_key,
        event_type: &header.event_type,
        channel: &header.channel,
        now,
    }
}

fn other_outcome<T>(inbound: &Inbound<T>) -> EventOutcome {
    match inbound {
        Inbound::Applied(_) => EventOutcome::Applied,
        Inbound::Duplicate => EventOutcome::Duplicate,
        Inbound::UnknownChannel => EventOutcome::UnknownChannel,
    }
}
