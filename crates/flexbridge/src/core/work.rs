//! Work for Flex, as the core and the outbox share it: the outbox's jobs
//! (one row each, in order per conversation), which of them may begin,
//! and the wake-ups that tell the outbox which conversation has new work.
//!
//! A wake-up is a hint, never the only way work is found: a row whose
//! wake-up is lost (a crash right after the commit) is found by the
//! outbox's full scan at its next start or sweep.

use std::sync::Mutex;

use tokio::sync::Notify;

use super::attachment::Attachment;
use super::backend::{BackendName, FlexRef};
use super::conversation::ConversationState;
use super::ids::{ConversationId, CustomerId, RemoteChannel, Seq};
use super::lock;
use super::model::ConversationRecord;
use super::pre_engagement::PreEngagement;

/// What a job asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    /// Create the Flex channel and its webhooks.
    Open,
    /// Post one customer message to the channel.
    Send(OutgoingMessage),
    /// Re-point the channel's webhooks here and catch up on what Flex said
    /// while the bridge could not hear it (queued at start-up).
    Sync,
    /// End the chat in Flex: the customer ended it (queued with the
    /// conversation's close, after the messages they sent before). Safe to
    /// repeat.
    Close,
}

impl JobKind {
    pub const OPEN: &'static str = "open";
    pub const SEND: &'static str = "send";
    pub const SYNC: &'static str = "sync";
    pub const CLOSE: &'static str = "close";

    /// The name the store keeps (`open`, `send`, `sync`, `close`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Open => Self::OPEN,
            Self::Send(_) => Self::SEND,
            Self::Sync => Self::SYNC,
            Self::Close => Self::CLOSE,
        }
    }
}

/// A customer message waiting for Flex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub message_id: i64,
    pub seq: Seq,
    pub client_msg_id: String,
    pub body: String,
    /// When the customer's message was accepted (for the latency metric).
    pub accepted_at: i64,
    /// The file it carries, uploaded to Flex before the message is posted.
    pub attachment: Option<OutgoingAttachment>,
}

/// A customer's file on its way to Flex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingAttachment {
    pub attachment: Attachment,
    /// Its id at Flex once an attempt uploaded it (recorded, so a retry
    /// posts the message without uploading the file again).
    pub media: Option<String>,
}

/// The head row of a conversation, with what is needed to carry it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxJob {
    pub id: i64,
    pub conversation_id: ConversationId,
    pub customer_id: CustomerId,
    pub customer_name: String,
    /// What the customer told in the pre-engagement form (for "open").
    pub pre_engagement: PreEngagement,
    pub conversation_state: ConversationState,
    /// The backend that opens (opened) the conversation and serves it.
    pub backend: BackendName,
    pub channel: Option<RemoteChannel>,
    /// What that backend recorded when it opened the conversation.
    pub flex_ref: Option<FlexRef>,
    pub kind: JobKind,
    /// Attempts before this one.
    pub attempts: i64,
    /// An earlier attempt failed in a way that may have reached Flex: look
    /// before re-sending.
    pub maybe_landed: bool,
    pub next_attempt_at: i64,
    pub created_at: i64,
    /// When the conversation began (a re-sync leaves out what Flex dated
    /// before it).
    pub conversation_created_at: i64,
}

/// Which rows may begin when the next one is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// A row due by this time (ms) begins (an "open", "sync" or "close"
    /// row's attempt is recorded as it is taken).
    DueBy(i64),
    /// None does (a 429 pause, or shutting down): the next row is only
    /// read, to know when to come back.
    Nothing,
}

/// A conversation's next job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextJob {
    /// It may go now.
    Ready(Box<OutboxJob>),
    /// It exists and may not begin before this time (ms).
    NotBefore(i64),
    /// The conversation has nothing to do now.
    Empty,
    /// Another bridge delivers the conversation's queue; its lease lasts
    /// until this time (ms) unless renewed.
    Held(i64),
}

/// The head of one conversation's queue, for scheduling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueHead {
    pub conversation_id: ConversationId,
    pub next_attempt_at: i64,
    /// How many rows the conversation has queued (head included).
    pub rows: i64,
    /// Another bridge holds the conversation until this time (ms).
    pub held_until: Option<i64>,
}

/// What abandoning a conversation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abandoned {
    /// The conversation, if this closed it.
    pub closed: Option<ConversationRecord>,
    /// Its queued messages, which failed.
    pub failed: Vec<FailedMessage>,
}

/// A customer message queued for Flex that will not reach it (or, told
/// as delayed, not yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedMessage {
    pub customer_id: CustomerId,
    pub seq: Seq,
    pub client_msg_id: String,
}

/// Conversations with new work, waiting for the outbox.
#[derive(Debug, Default)]
pub struct Wakeups {
    /// In arrival order; the outbox removes duplicates.
    pending: Mutex<Vec<ConversationId>>,
    /// Wakes the outbox; a wake-up while it is busy is kept for its next
    /// wait.
    notify: Notify,
}

impl Wakeups {
    /// `conversation` has committed work for Flex.
    pub fn wake(&self, conversation: &ConversationId) {
        lock(&self.pending).push(conversation.clone());
        self.notify.notify_one();
    }

    /// Wakes the outbox without naming a conversation (it re-reads its
    /// schedule).
    pub fn nudge(&self) {
        self.notify.notify_one();
    }

    /// Every conversation woken since the last call.
    pub fn take(&self) -> Vec<ConversationId> {
        std::mem::take(&mut *lock(&self.pending))
    }

    /// Resolves once something was woken (or nudged) since the last wait.
    pub async fn notified(&self) {
        self.notify.notified().await;
    }
}
