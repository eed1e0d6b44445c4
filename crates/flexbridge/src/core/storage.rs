//! The storage port: what the core needs persisted, and what each write
//! answers. The store (`crate::store`) implements [`Storage`]; every
//! method is one transaction, answered only once it committed, so the
//! core tells customers and acknowledges nothing that is not durable.
//!
//! Uniqueness lives in the store's schema (one live conversation per
//! customer, a client message id once per customer, a Flex message once,
//! a webhook's idempotency key once): a write that finds its work done
//! writes nothing and says so ([`Accepted::Duplicate`],
//! [`Inbound::Duplicate`]).

use super::backend::{BackendName, Opened};
use super::conversation::CloseReason;
use super::ids::{
    ClientMessageId, ConversationId, CustomerId, CustomerName, MessageBody, RemoteChannel,
    RemoteMessage, Seq, TokenHash,
};
use super::model::{ConversationRecord, CustomerRecord, MessageRecord};
use super::pre_engagement::PreEngagement;
use super::work::{Abandoned, Begin, NextJob, OutboxJob, OutgoingMessage};

/// A failed store operation (the store's own error inside, for the logs).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StorageError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl StorageError {
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self(error.into())
    }
}

pub type StorageResult<T> = Result<T, StorageError>;

/// A customer message to accept.
#[derive(Debug, Clone)]
pub struct IncomingCustomerMessage {
    pub customer: CustomerId,
    /// The customer's display name, the message's author.
    pub author: String,
    pub client_msg_id: ClientMessageId,
    pub body: MessageBody,
    /// Which backend a conversation this message opens is opened with.
    pub backend: BackendName,
    pub now: i64,
}

/// What accepting a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now and queued for delivery (in the conversation
    /// `message.conversation_id`).
    New {
        message: MessageRecord,
        /// The conversation this message started, if it started one.
        opened: Option<ConversationRecord>,
    },
    /// A message with this client message id was already stored: nothing
    /// new was written; this is the original.
    Duplicate { message: MessageRecord },
}

/// What applying an inbound event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound<T> {
    Applied(T),
    /// Already applied (same idempotency key, or the state already says so).
    Duplicate,
    /// No conversation has this channel: not ours, or from before a reset.
    UnknownChannel,
}

/// The keys every inbound event carries.
#[derive(Debug, Clone)]
pub struct EventKey {
    pub idempotency_key: String,
    pub event_type: String,
    pub channel: RemoteChannel,
    pub now: i64,
}

/// A message an agent wrote, stored for the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAgentMessage {
    /// Whose conversation it went to (the room to tell).
    pub customer: CustomerId,
    pub message: MessageRecord,
}

/// An agent message to store.
#[derive(Debug, Clone)]
pub struct AgentMessage {
    pub message: RemoteMessage,
    /// The agent's display name.
    pub author: String,
    pub body: String,
}

/// A send's outcome in Flex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// In Flex as this message.
    Delivered(RemoteMessage),
    /// Refused for good, with the reason the customer is told.
    Failed(String),
}

/// Everything the core persists.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    // ---- customers ----
    async fn create_customer(
        &self,
        id: &CustomerId,
        name: &CustomerName,
        token_hash: &TokenHash,
        pre_engagement: &PreEngagement,
        now: i64,
    ) -> StorageResult<CustomerRecord>;

    /// The customer whose resume token hashes to `hash` (compared in
    /// constant time), if any.
    async fn customer_by_token(&self, hash: &TokenHash) -> StorageResult<Option<CustomerRecord>>;

    async fn customer(&self, id: &CustomerId) -> StorageResult<Option<CustomerRecord>>;

    // ---- conversations and messages, customer side ----
    async fn conversation(&self, id: &ConversationId) -> StorageResult<Option<ConversationRecord>>;

    /// The messages of one conversation, oldest first, at most `limit`.
    async fn conversation_messages(
        &self,
        conversation: &ConversationId,
        limit: u32,
    ) -> StorageResult<Vec<MessageRecord>>;

    /// The customer's live conversation, else the most recent closed one.
    async fn latest_conversation(
        &self,
        customer: &CustomerId,
    ) -> StorageResult<Option<ConversationRecord>>;

    /// A customer's messages with `seq > since`, oldest first, at most
    /// `limit`.
    async fn messages_since(
        &self,
        customer: &CustomerId,
        since: Seq,
        limit: u32,
    ) -> StorageResult<Vec<MessageRecord>>;

    /// Stores a customer message with its delivery queued, in the live
    /// conversation (opening one, its "open" step queued first, when there
    /// is none); a retried client message id finds the original.
    async fn accept_customer_message(&self, m: IncomingCustomerMessage) -> StorageResult<Accepted>;

    /// Closes the customer's live conversation (`customer_ended`) and
    /// queues its "close" step behind its other rows. `None`, and nothing
    /// written, when there is no live conversation.
    async fn close_by_customer(
        &self,
        customer: &CustomerId,
        now: i64,
    ) -> StorageResult<Option<ConversationRecord>>;

    // ---- Flex side ----
    /// Stores an agent's message (once per remote message id) in the
    /// newest conversation of its channel.
    async fn record_agent_message(
        &self,
        key: EventKey,
        message: AgentMessage,
    ) -> StorageResult<Inbound<StoredAgentMessage>>;

    /// Records that an agent joined the channel (the conversation's agent).
    async fn record_agent_joined(
        &self,
        key: EventKey,
        agent_name: &str,
    ) -> StorageResult<Inbound<ConversationRecord>>;

    /// Closes the channel's conversation (once).
    async fn close_by_channel(
        &self,
        key: EventKey,
        reason: CloseReason,
    ) -> StorageResult<Inbound<ConversationRecord>>;

    // ---- outcomes of the outbox's jobs (each takes the next job) ----
    /// The channel exists: the conversation is open (returned if this
    /// opened it), the job done.
    async fn finish_open(
        &self,
        job: &OutboxJob,
        opened: &Opened,
        now: i64,
        begin: Begin,
    ) -> StorageResult<(Option<ConversationRecord>, NextJob)>;

    /// Records a message's fate; its job is done.
    async fn settle_send(
        &self,
        job: &OutboxJob,
        message: &OutgoingMessage,
        outcome: &SendOutcome,
        now: i64,
        begin: Begin,
    ) -> StorageResult<NextJob>;

    /// A job that is done (or has nothing to do).
    async fn finish_job(&self, job: &OutboxJob, begin: Begin) -> StorageResult<NextJob>;

    /// The conversation cannot go on in Flex: it closes (if it was not
    /// closed yet), every message queued for it fails, its queue empties.
    async fn abandon(
        &self,
        conversation: &ConversationId,
        reason: CloseReason,
        error: &str,
        now: i64,
    ) -> StorageResult<Abandoned>;
}
