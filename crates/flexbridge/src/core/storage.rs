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

use super::attachment::{Attachment, AttachmentId, RemoteMedia};
use super::backend::{BackendName, Opened, Posted};
use super::conversation::CloseReason;
use super::ids::{
    ClientMessageId, ConversationId, CustomerId, CustomerName, MessageBody, RemoteChannel,
    RemoteMessage, Seq, TokenHash,
};
use super::model::{ConversationRecord, CustomerRecord, MessageRecord};
use super::pre_engagement::PreEngagement;
use super::rate_limit::RateLimit;
use super::work::{Abandoned, Begin, FailedMessage, NextJob, OutboxJob, OutgoingMessage};

/// A failed store operation (the store's own error inside, for the logs).
/// Permanent when doing it again cannot succeed (a constraint the write
/// breaks, a row this version cannot read): the outbox then settles the
/// job for good rather than retry it forever (a poison job).
#[derive(Debug)]
pub struct StorageError {
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
    permanent: bool,
}

impl StorageError {
    /// A failure that may pass (the database busy or unreachable).
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self {
            source: error.into(),
            permanent: false,
        }
    }

    /// A failure that doing the same again repeats.
    pub fn permanent(error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self {
            source: error.into(),
            permanent: true,
        }
    }

    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

/// Transparent: the store's error is this error (its own sources follow).
impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
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
    /// The customer's uploaded file it carries (checked to be theirs and
    /// not carried yet).
    pub attachment: Option<Attachment>,
    /// Which backend a conversation this message opens is opened with.
    pub backend: BackendName,
    /// Bridges sharing the database: the customer's rate limit, whose
    /// token the write takes from the bucket kept with the customer
    /// (refused: [`Accepted::RateLimited`], nothing else written). `None`:
    /// the bridge limits in memory.
    pub rate_limit: Option<RateLimit>,
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
    /// The message names a file another message carries already: nothing
    /// was written.
    AttachmentCarried,
    /// The customer's bucket was empty (`rate_limit` given): nothing was
    /// stored.
    RateLimited,
}

/// What applying an inbound event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound<T> {
    Applied(T),
    /// Not applied: the message comes after a position of its channel the
    /// bridge has not seen (a webhook Flex never delivered); this
    /// conversation is to be re-synced first.
    Gap(Box<ConversationRecord>),
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
    /// Its position in the channel, if known.
    pub index: Option<i64>,
    /// Refuse it with [`Inbound::Gap`] when a position before it is
    /// unknown (a webhook); a re-sync's messages are stored as they come.
    pub check_gap: bool,
    /// The agent's display name.
    pub author: String,
    pub body: String,
    /// The file it carries.
    pub media: Option<RemoteMedia>,
}

/// A customer's file, checked, to store before its upload is answered.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub customer: CustomerId,
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub now: i64,
}

/// A stored file as its customer downloads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub attachment: Attachment,
    /// Whether a message carries it already.
    pub carried: bool,
    /// Its bytes (`None`: an agent's file not fetched from Flex yet).
    pub content: Option<Vec<u8>>,
    /// Its id at Flex, if it has one.
    pub media: Option<String>,
    /// The backend of the conversation of the message carrying it.
    pub backend: Option<BackendName>,
}

/// A send's outcome in Flex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// In Flex as this message.
    Delivered(Posted),
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

    /// The customer's stored message with this client message id, if any
    /// (a retry of it is answered with it, before any rate limit).
    async fn customer_message(
        &self,
        customer: &CustomerId,
        client_msg_id: &ClientMessageId,
    ) -> StorageResult<Option<MessageRecord>>;

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

    // ---- attachments ----
    /// Stores an uploaded file with its bytes (before the upload is answered).
    async fn store_upload(&self, upload: NewUpload) -> StorageResult<Attachment>;

    /// `customer`'s file `id`; `None` for a file of another customer, as
    /// for one that does not exist.
    async fn customer_file(
        &self,
        customer: &CustomerId,
        id: &AttachmentId,
    ) -> StorageResult<Option<StoredFile>>;

    /// Keeps the bytes of an agent's file fetched from Flex.
    async fn keep_fetched(&self, id: &AttachmentId, bytes: &[u8]) -> StorageResult<()>;

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

    /// The customer messages queued (a "send" job) for `conversation`,
    /// oldest first.
    async fn queued_messages(
        &self,
        conversation: &ConversationId,
    ) -> StorageResult<Vec<FailedMessage>>;

    /// A re-sync of `conversation` looked at its channel up to
    /// `through_index`: later gaps count from there; the periodic re-sync
    /// comes back to it after its interval.
    async fn resynced(
        &self,
        conversation: &ConversationId,
        through_index: Option<i64>,
        now: i64,
    ) -> StorageResult<()>;

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
