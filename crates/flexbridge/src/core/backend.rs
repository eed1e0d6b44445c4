//! The Flex port: what a Flex backend implements ([`FlexBackend`]) and
//! the values that cross it. The core (through the outbox) asks a backend
//! to `open`, `send`, `find_sent`, `resync` and `close`, and receives typed
//! [`FlexEvent`]s from its webhooks; it never knows which backend runs.
//! Everything Twilio-specific (SIDs, HTTP, form parameters) stays on the
//! backend's side of this file (`crate::flex`).
//!
//! Each conversation remembers the [`BackendName`] of the backend that
//! opened it; [`Backends`] holds one of each, so switching which backend
//! opens new conversations needs no drain.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::attachment::RemoteMedia;
use super::ids::{ConversationId, CustomerId, RemoteChannel, RemoteMessage, Seq};
use super::pre_engagement::PreEngagement;

/// Which backend: a short lower-case name (`conversations`, `chat`), as
/// stored with each conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackendName(Cow<'static, str>);

impl BackendName {
    /// A backend's own name (`crate::flex` names its backends).
    pub const fn from_static(name: &'static str) -> Self {
        Self(Cow::Borrowed(name))
    }

    /// A name read back (from the store).
    pub fn new(name: impl Into<String>) -> Self {
        Self(Cow::Owned(name.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BackendName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a backend recorded about a conversation when it opened it (e.g.
/// the Flex interaction), for its own later use (`resync`, `close`). The
/// core and the store keep it as JSON text without looking inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlexRef(serde_json::Value);

impl FlexRef {
    pub fn new(value: serde_json::Value) -> Self {
        Self(value)
    }

    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text).map(Self)
    }

    pub fn value(&self) -> &serde_json::Value {
        &self.0
    }

    pub fn to_text(&self) -> String {
        self.0.to_string()
    }
}

/// What opening a conversation needs.
#[derive(Debug, Clone)]
pub struct OpenRequest<'a> {
    pub conversation: &'a ConversationId,
    pub customer: &'a CustomerId,
    /// The customer's display name (shown to the agent).
    pub customer_name: &'a str,
    /// What they told in the pre-engagement form; the backend puts it
    /// where Flex's own web chat does (`core::pre_engagement`).
    pub pre_engagement: &'a PreEngagement,
}

/// The Flex side of an opened conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub channel: RemoteChannel,
    /// What the backend wants back in `resync` and `close`.
    pub flex_ref: Option<FlexRef>,
}

/// One customer message for Flex.
#[derive(Debug, Clone)]
pub struct OutboundMessage<'a> {
    /// Whose message (the backend posts it as that customer's identity).
    pub customer: &'a CustomerId,
    /// Stored in the message attributes, so a retry can tell whether an
    /// earlier attempt landed.
    pub client_msg_id: &'a str,
    pub seq: Seq,
    /// The text; not sent when the message carries a file (Flex shows a
    /// media message without text: "You cannot send both text and an
    /// image in the same message", docs/twilio-reference.md §10).
    pub body: &'a str,
    /// The file, as [`FlexBackend::upload_media`] answered.
    pub media: Option<&'a str>,
}

/// A customer's file for Flex.
#[derive(Debug, Clone)]
pub struct MediaUpload<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

/// What re-attaching to an open conversation needs.
#[derive(Debug, Clone)]
pub struct ResyncRequest<'a> {
    pub channel: &'a RemoteChannel,
    /// Whose conversation (to tell the customer's own messages apart).
    pub customer: &'a CustomerId,
    /// What `open` recorded.
    pub flex_ref: Option<&'a FlexRef>,
    /// When the conversation began (ms): a message Flex dated before it
    /// belongs to an earlier conversation of the same channel (Chat hands
    /// a still-active channel to a customer's next conversation) and is
    /// not reported.
    pub since: i64,
}

/// A message the bridge posted, as Flex took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub message: RemoteMessage,
    /// Its position in the channel (Twilio's `Index`), if Flex said.
    pub index: Option<i64>,
}

/// What a re-attachment found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resynced {
    /// What Flex said that the bridge may have missed, oldest first.
    pub events: Vec<FlexEvent>,
    /// The highest position of the channel looked at: every message up to
    /// it was listed (within the backend's window), so a later message
    /// counts a gap from here.
    pub through_index: Option<i64>,
}

/// One Flex integration.
#[async_trait::async_trait]
pub trait FlexBackend: Send + Sync + 'static {
    fn name(&self) -> BackendName;

    /// The path (under `PUBLIC_BASE_URL`) Flex posts this backend's
    /// webhooks to.
    fn webhook_path(&self) -> &'static str;

    /// Creates (or finds, after an earlier attempt) the channel or
    /// conversation, with the webhooks that bring agent activity back, and
    /// has Flex route it to an agent. Safe to repeat.
    async fn open(&self, request: &OpenRequest<'_>) -> Result<Opened, BackendError>;

    /// Posts a customer message; answers the message's id. Not idempotent:
    /// after an ambiguous failure, call [`FlexBackend::find_sent`] first.
    async fn send(
        &self,
        channel: &RemoteChannel,
        message: &OutboundMessage<'_>,
    ) -> Result<Posted, BackendError>;

    /// Uploads a customer's file; answers its id at Flex (for
    /// [`OutboundMessage::media`]). Repeating it after a lost answer leaves
    /// an unused upload, never a second message.
    async fn upload_media(&self, upload: &MediaUpload<'_>) -> Result<String, BackendError>;

    /// The bytes of a file Flex announced (an agent's [`RemoteMedia`]).
    async fn fetch_media(&self, media: &str) -> Result<Vec<u8>, BackendError>;

    /// Looks for a message this bridge sent with `client_msg_id` among the
    /// channel's recent messages.
    async fn find_sent(
        &self,
        channel: &RemoteChannel,
        client_msg_id: &str,
    ) -> Result<Option<Posted>, BackendError>;

    /// Re-attaches to an open conversation after a restart: points its
    /// webhooks at this bridge again (`PUBLIC_BASE_URL` may have changed)
    /// and returns what Flex said that the bridge may have missed (recent
    /// agent messages, the chat's end). The events go through the same
    /// idempotent path as webhooks, so what was already applied is not
    /// applied twice.
    async fn resync(&self, request: &ResyncRequest<'_>) -> Result<Resynced, BackendError>;

    /// The name customers see for an agent identity (Flex identities are
    /// often encoded e-mail addresses). Best effort: the identity itself
    /// when nothing better is known. The core calls it (bounded in time)
    /// for every agent event, whichever way the event arrived.
    async fn agent_name(&self, identity: &str) -> String {
        identity.to_owned()
    }

    /// Ends the conversation on the Flex side (its end comes back as a
    /// webhook, like an agent's). Ending an ended one is not an error.
    async fn close(
        &self,
        channel: &RemoteChannel,
        flex_ref: Option<&FlexRef>,
    ) -> Result<(), BackendError>;

    /// Turns a verified webhook's form parameters into an event.
    fn parse_webhook(&self, params: &[(String, String)]) -> Result<FlexEvent, WebhookParseError>;
}

/// The backends of one bridge: one opens new conversations, every one
/// serves the conversations it opened.
#[derive(Clone)]
pub struct Backends {
    current: Arc<dyn FlexBackend>,
    others: Vec<Arc<dyn FlexBackend>>,
}

impl Backends {
    /// `current` opens new conversations; `others` serve what they opened.
    pub fn new(current: Arc<dyn FlexBackend>, others: Vec<Arc<dyn FlexBackend>>) -> Self {
        let others = others
            .into_iter()
            .filter(|other| other.name() != current.name())
            .collect();
        Self { current, others }
    }

    /// Only `backend`.
    pub fn single(backend: Arc<dyn FlexBackend>) -> Self {
        Self::new(backend, Vec::new())
    }

    /// The backend new conversations open with.
    pub fn current(&self) -> &Arc<dyn FlexBackend> {
        &self.current
    }

    /// The backend named `name`, if this bridge has one.
    pub fn get(&self, name: &BackendName) -> Option<&Arc<dyn FlexBackend>> {
        self.all().find(|backend| backend.name() == *name)
    }

    /// Every backend, the current one first.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn FlexBackend>> {
        std::iter::once(&self.current).chain(&self.others)
    }
}

/// What every relevant event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHeader {
    pub event_type: String,
    /// Stable across Twilio's retries of the same event; a repeated key is
    /// not applied again.
    pub idempotency_key: String,
    pub channel: RemoteChannel,
}

/// A webhook, typed. Built at the edge; the core sees nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlexEvent {
    /// An agent wrote to the customer.
    AgentMessage {
        header: EventHeader,
        message: RemoteMessage,
        /// Its position in the channel (Twilio's `Index`), if known: a
        /// position beyond one the bridge never saw is a gap it fills
        /// from Flex first, so the customer sees Flex's order.
        index: Option<i64>,
        /// The agent's identity (the core names it for display).
        author: String,
        body: String,
        /// The file it carries, if any.
        media: Option<RemoteMedia>,
    },
    /// An agent joined the channel (accepted the task).
    AgentJoined {
        header: EventHeader,
        /// The agent's identity (the core names it for display).
        agent: String,
    },
    /// The agent ended the chat.
    ChatEnded { header: EventHeader },
    /// Nothing to do (our own message coming back, an event we do not use).
    Ignored { event_type: String, reason: String },
}

impl FlexEvent {
    /// The header of an event the core acts on (none for `Ignored`).
    pub fn header(&self) -> Option<&EventHeader> {
        match self {
            Self::AgentMessage { header, .. }
            | Self::AgentJoined { header, .. }
            | Self::ChatEnded { header } => Some(header),
            Self::Ignored { .. } => None,
        }
    }
}

/// A webhook whose parameters do not make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookParseError {
    #[error("the webhook has no {0} parameter")]
    Missing(&'static str),
    #[error("the webhook's {param} parameter is malformed: {reason}")]
    Malformed { param: &'static str, reason: String },
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Wait (at least the given time), then retry. Normally nothing
    /// landed (Twilio refuses before executing); the outbox still looks
    /// before re-sending a message (`crate::outbox` says why).
    RateLimited(Option<Duration>),
    /// Retry with backoff; `maybe_landed` when the request may have had its
    /// effect (look before re-sending a create).
    Transient { maybe_landed: bool },
    /// Flex refused the bridge's credentials (401/403): only an operator
    /// can fix it, so the work is kept and retried with backoff, with an
    /// alarm (ERROR log, metric) and the customer told of the delay.
    Unauthorized,
    /// Retrying cannot help.
    Permanent,
}

/// A failed call to Flex, as the core sees it: what to do next, whether
/// the resource is gone, and the backend's own error for the logs. The
/// backend decides all three once, at its edge.
#[derive(Debug)]
pub struct BackendError {
    disposition: Disposition,
    gone: bool,
    /// What kind of failure, for metrics (`401`, `404`, `429`, `5xx`,
    /// `timeout`, …; the backend names it).
    label: &'static str,
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl BackendError {
    pub fn new(
        disposition: Disposition,
        gone: bool,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            disposition,
            gone,
            label: "other",
            source: source.into(),
        }
    }

    /// Names the kind of failure for metrics.
    pub fn with_label(mut self, label: &'static str) -> Self {
        self.label = label;
        self
    }

    pub fn label(&self) -> &'static str {
        self.label
    }

    /// This bridge lacks what the call needs (e.g. no backend of a
    /// conversation's kind): permanent.
    pub fn not_configured(what: impl Into<String>) -> Self {
        Self::new(Disposition::Permanent, false, what.into())
    }

    pub fn disposition(&self) -> Disposition {
        self.disposition
    }

    /// The remote resource does not exist (a channel Flex no longer has).
    pub fn is_gone(&self) -> bool {
        self.gone
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.fmt(f)
    }
}

/// Transparent: the backend's error is this error (its own sources follow).
impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}
