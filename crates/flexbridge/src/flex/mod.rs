//! The Twilio side: everything that knows how Flex works lives under here,
//! behind one small trait, [`FlexBackend`]. The core calls `open`, `send`,
//! `find_sent`, `resync` and `close` (through the outbox) and receives typed
//! [`FlexEvent`]s (through the webhook routes); it never knows which
//! backend runs.
//!
//! - [`client`]: the REST client (reqwest + rustls, Basic auth, timeouts,
//!   error classification incl. 429 `Retry-After`).
//! - [`chat`]: the Programmable Chat backend, the blog post's flow
//!   (DESIGN §2a).
//! - [`conversations`]: the Flex Conversations backend (DESIGN §2b), the
//!   default.
//! - [`messages`], [`form`], [`agents`]: what both backends do alike — our
//!   mark in message attributes and finding it again, reading a webhook
//!   form, telling agents from customers and naming them.
//! - [`webhooks`]: the signed inbound routes (`/webhooks/{backend}`), one
//!   code path for every backend.
//! - [`provision`]: finding or creating what a backend needs in Twilio.
//!
//! Every conversation remembers the backend that opened it, and [`Backends`]
//! holds one of each: the configured one opens new conversations, and any
//! backend still serves the conversations it opened (sends, webhooks,
//! re-attachment), so switching `FLEX_BACKEND` needs no drain.

pub mod agents;
pub mod chat;
pub mod client;
pub mod conversations;
pub mod form;
pub mod messages;
pub mod provision;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::core::ids::{
    ChannelSid, ConversationId, CustomerId, FlexIdentity, IdError, MessageSid, Seq, TaskSid,
};

/// Which Flex integration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Programmable Chat channels created through the Flex Channel API.
    Chat,
    /// Conversations routed to Flex with the Interactions API (or Studio).
    Conversations,
}

impl BackendKind {
    /// Every backend, the default first.
    pub const ALL: [Self; 2] = [Self::Conversations, Self::Chat];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Conversations => "conversations",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
    /// The customer's identity in Flex (channel `Identity` and `Target`,
    /// or the conversation participant's `Identity`).
    pub identity: &'a FlexIdentity,
    /// The customer's display name (shown to the agent).
    pub customer_name: &'a str,
}

/// The Flex side of an opened conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub channel: ChannelSid,
    /// The task, when Flex says it at creation.
    pub task: Option<TaskSid>,
    /// What the backend wants back in `resync` and `close`.
    pub flex_ref: Option<FlexRef>,
}

/// One customer message for Flex.
#[derive(Debug, Clone)]
pub struct OutboundMessage<'a> {
    /// The same identity the channel was opened with (`From` / `Author`).
    pub identity: &'a FlexIdentity,
    /// Stored in the message attributes, so a retry can tell whether an
    /// earlier attempt landed.
    pub client_msg_id: &'a str,
    pub seq: Seq,
    pub body: &'a str,
}

/// What re-attaching to an open conversation needs.
#[derive(Debug, Clone)]
pub struct ResyncRequest<'a> {
    pub channel: &'a ChannelSid,
    /// The customer's identity in Flex.
    pub identity: &'a FlexIdentity,
    /// What `open` recorded.
    pub flex_ref: Option<&'a FlexRef>,
}

/// One Flex integration.
#[async_trait::async_trait]
pub trait FlexBackend: Send + Sync + 'static {
    fn kind(&self) -> BackendKind;

    /// The path (under `PUBLIC_BASE_URL`) Flex posts this backend's
    /// webhooks to.
    fn webhook_path(&self) -> &'static str;

    /// Creates (or finds, after an earlier attempt) the channel or
    /// conversation, with the webhooks that bring agent activity back, and
    /// has Flex route it to an agent. Safe to repeat.
    async fn open(&self, request: &OpenRequest<'_>) -> Result<Opened, FlexError>;

    /// Posts a customer message; answers the message SID. Not idempotent:
    /// after an ambiguous failure, call [`FlexBackend::find_sent`] first.
    async fn send(
        &self,
        channel: &ChannelSid,
        message: &OutboundMessage<'_>,
    ) -> Result<MessageSid, FlexError>;

    /// Looks for a message this bridge sent with `client_msg_id` among the
    /// channel's recent messages.
    async fn find_sent(
        &self,
        channel: &ChannelSid,
        client_msg_id: &str,
    ) -> Result<Option<MessageSid>, FlexError>;

    /// Re-attaches to an open conversation after a restart: points its
    /// webhooks at this bridge again (`PUBLIC_BASE_URL` may have changed)
    /// and returns what Flex said that the bridge may have missed (recent
    /// agent messages, the chat's end). The events go through the same
    /// idempotent path as webhooks, so what was already applied is not
    /// applied twice.
    async fn resync(&self, request: &ResyncRequest<'_>) -> Result<Vec<FlexEvent>, FlexError>;

    /// The name customers see for an agent identity (Flex identities are
    /// often encoded e-mail addresses). Best effort: the identity itself
    /// when nothing better is known.
    async fn agent_name(&self, identity: &str) -> String {
        identity.to_owned()
    }

    /// Ends the conversation on the Flex side (its end comes back as a
    /// webhook, like an agent's). Ending an ended one is not an error.
    async fn close(
        &self,
        channel: &ChannelSid,
        flex_ref: Option<&FlexRef>,
    ) -> Result<(), FlexError>;

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
            .filter(|other| other.kind() != current.kind())
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

    /// The backend of `kind`, if this bridge has one.
    pub fn get(&self, kind: BackendKind) -> Option<&Arc<dyn FlexBackend>> {
        self.all().find(|backend| backend.kind() == kind)
    }

    /// Every backend, the current one first.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn FlexBackend>> {
        std::iter::once(&self.current).chain(&self.others)
    }
}

/// How long naming an agent may delay a webhook.
const AGENT_NAME_TIMEOUT: Duration = Duration::from_secs(2);

/// `event` with the agent's display name in place of its identity.
pub async fn with_agent_name(backend: &dyn FlexBackend, event: FlexEvent) -> FlexEvent {
    let name = |identity: String| async move {
        tokio::time::timeout(AGENT_NAME_TIMEOUT, backend.agent_name(&identity))
            .await
            .unwrap_or(identity)
    };
    match event {
        FlexEvent::AgentMessage {
            header,
            message_sid,
            author,
            body,
        } => FlexEvent::AgentMessage {
            header,
            message_sid,
            author: name(author).await,
            body,
        },
        FlexEvent::AgentJoined { header, agent } => FlexEvent::AgentJoined {
            header,
            agent: name(agent).await,
        },
        other => other,
    }
}

/// What every relevant event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHeader {
    pub event_type: String,
    /// Stable across Twilio's retries of the same event; a repeated key is
    /// not applied again.
    pub idempotency_key: String,
    pub channel: ChannelSid,
}

/// A webhook, typed. Built at the edge; the core sees nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlexEvent {
    /// An agent wrote to the customer.
    AgentMessage {
        header: EventHeader,
        message_sid: MessageSid,
        author: String,
        body: String,
    },
    /// An agent joined the channel (accepted the task).
    AgentJoined { header: EventHeader, agent: String },
    /// The agent ended the chat.
    ChatEnded { header: EventHeader },
    /// Nothing to do (our own message coming back, an event we do not use).
    Ignored { event_type: String, reason: String },
}

/// A webhook whose parameters do not make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookParseError {
    #[error("the webhook has no {0} parameter")]
    Missing(&'static str),
    #[error("the webhook's {param} parameter is malformed: {reason}")]
    Malformed { param: &'static str, reason: String },
}

/// A failed call to Twilio.
#[derive(Debug, thiserror::Error)]
pub enum FlexError {
    #[error(
        "Twilio answered HTTP {status}{}: {message}",
        code.map(|code| format!(" (error {code})")).unwrap_or_default()
    )]
    Api {
        status: u16,
        code: Option<i64>,
        message: String,
        /// From `Retry-After` on 429 (and 503).
        retry_after: Option<Duration>,
    },
    /// The request never left (connection refused, DNS, TLS): it did not land.
    #[error("could not reach Twilio")]
    Unreachable(#[source] reqwest::Error),
    /// Sent, but no (complete) answer: it may have landed.
    #[error("no answer from Twilio")]
    NoAnswer(#[source] reqwest::Error),
    /// A 2xx answer that is not what the API documents.
    #[error("Twilio's answer could not be read: {0}")]
    BadResponse(String),
    /// This bridge lacks the settings for the call (e.g. opening a
    /// conversation with a backend that only serves what it opened).
    #[error("{0}")]
    NotConfigured(String),
}

impl FlexError {
    /// Twilio said the resource does not exist (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { status: 404, .. })
    }

    /// Twilio answered `status` with error `code` (e.g. 409 and 50353).
    pub fn is_api(&self, status: u16, code: i64) -> bool {
        matches!(self, Self::Api { status: s, code: Some(c), .. } if *s == status && *c == code)
    }
}

/// A SID in an answer from Twilio, parsed (malformed: a bad answer).
pub(crate) fn parse_sid<T>(
    raw: &str,
    parse: impl Fn(&str) -> Result<T, IdError>,
) -> Result<T, FlexError> {
    parse(raw).map_err(|e| FlexError::BadResponse(e.to_string()))
}

/// `base` + `path`, keeping any path prefix `base` has.
pub fn join_url(base: &Url, path: &str) -> anyhow::Result<Url> {
    use anyhow::Context as _;
    Url::parse(&format!("{}{path}", base.as_str().trim_end_matches('/')))
        .with_context(|| format!("joining {path} to {base}"))
}

/// Whether `url` is where an earlier address of this bridge took webhooks
/// of `path` (same path, another base URL: `PUBLIC_BASE_URL` changed).
pub(crate) fn is_earlier_address(url: &str, path: &str) -> bool {
    Url::parse(url).is_ok_and(|url| url.path().ends_with(path))
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Wait (at least the given time), then retry. Nothing landed.
    RateLimited(Option<Duration>),
    /// Retry with backoff; `maybe_landed` when the request may have had its
    /// effect (look before re-sending a create).
    Transient { maybe_landed: bool },
    /// Retrying cannot help.
    Permanent,
}

impl FlexError {
    pub fn disposition(&self) -> Disposition {
        match self {
            Self::Api {
                status: 429,
                retry_after,
                ..
            } => Disposition::RateLimited(*retry_after),
            // Server errors (and timeouts reported as 408) may have landed.
            Self::Api { status, .. } if *status >= 500 || *status == 408 => {
                Disposition::Transient { maybe_landed: true }
            }
            // Credentials are an operator's fix; keep the work until then.
            Self::Api {
                status: 401 | 403, ..
            } => Disposition::Transient {
                maybe_landed: false,
            },
            Self::Api { .. } | Self::NotConfigured(_) => Disposition::Permanent,
            Self::Unreachable(_) => Disposition::Transient {
                maybe_landed: false,
            },
            Self::NoAnswer(_) | Self::BadResponse(_) => {
                Disposition::Transient { maybe_landed: true }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> FlexError {
        FlexError::Api {
            status,
            code: None,
            message: String::new(),
            retry_after: Some(Duration::from_secs(2)),
        }
    }

    #[test]
    fn rate_limits_carry_retry_after_and_nothing_landed() {
        assert_eq!(
            api(429).disposition(),
            Disposition::RateLimited(Some(Duration::from_secs(2)))
        );
    }

    #[test]
    fn server_errors_may_have_landed_and_client_errors_are_permanent() {
        assert_eq!(
            api(500).disposition(),
            Disposition::Transient { maybe_landed: true }
        );
        assert_eq!(
            api(503).disposition(),
            Disposition::Transient { maybe_landed: true }
        );
        assert_eq!(api(400).disposition(), Disposition::Permanent);
        assert_eq!(api(404).disposition(), Disposition::Permanent);
        assert_eq!(
            api(401).disposition(),
            Disposition::Transient {
                maybe_landed: false
            }
        );
    }
}
