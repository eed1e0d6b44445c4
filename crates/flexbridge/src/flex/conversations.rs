//! The Flex Conversations backend (docs/twilio-reference.md §2, §4), the
//! default: today's way
//! of bringing a custom chat into Flex.
//!
//! Every call goes through the service-scoped paths
//! `/v1/Services/{FLEX_CHAT_SERVICE}/Conversations/…`: they name the
//! service explicitly, so they mean the same whether or not the Flex Chat
//! Service is the account's default Conversations service.
//!
//! - open (`setup`): `POST …/Conversations` with `UniqueName` = our
//!   conversation id (a retry after a crash or an ambiguous failure gets
//!   409 and fetches it by that name), `FriendlyName`, `Attributes` (the
//!   customer's name, our ids) and the optional `Timers.*`; the customer as
//!   a participant (`Identity`; 409 "already there" is fine); one scoped
//!   webhook to the bridge (`Target=webhook`, `Configuration.Method=post`,
//!   `Configuration.Filters` `onMessageAdded`, `onConversationStateUpdated`,
//!   `onParticipantAdded`; listed first); then routing to Flex — by
//!   default `POST flex-api /v1/Interactions` (a 400 naming `Channel`
//!   because the conversation already has a live interaction is checked
//!   and taken as "already routed"), or a scoped `Target=studio` webhook
//!   to a flow with "Send to Flex". If a step after the create fails
//!   permanently, the conversation is deleted before the failure is
//!   reported: no orphan conversations.
//! - send: `POST …/Messages` with `Author` = the customer's identity,
//!   `Body`, `Attributes` carrying our client message id, and
//!   `X-Twilio-Webhook-Enabled: true` (Studio routing starts on it).
//! - find_sent: the latest messages, newest first, searched for that id.
//! - resync: the scoped webhook re-pointed (a webhook at an earlier
//!   address of this bridge is deleted and ours created: scoped webhooks
//!   cannot be updated), then the agents who joined, their recent messages
//!   and a `closed` state, as events.
//! - close: the interaction channel `Status=closed` when the interaction
//!   is known (Flex then wraps the task and closes the conversation), else
//!   the conversation's `State=closed`.
//! - webhooks (`parse`): `onMessageAdded` by anyone but a customer is an
//!   agent message, the customer's own is ignored; `onParticipantAdded` of
//!   an agent is "agent joined"; `onConversationStateUpdated` with
//!   `StateTo=closed` ends the chat. `StateTo=inactive` (Twilio's idle
//!   timer) tells the customer nothing: their next message makes the
//!   conversation active again. Flex closing the interaction channel
//!   (agent ends the chat, or the Interactions API) closes the
//!   conversation, so `onConversationStateUpdated` covers that end too.
//! - agent names: the conversation user's `friendly_name`
//!   (`GET …/Services/{IS}/Users/{identity}`), else the identity.

mod parse;
mod setup;

use url::Url;

pub use self::parse::parse_webhook;
use self::parse::{ended_key, message_key, participant_key};
use super::agents::{self, AgentNames};
use super::client::{Product, TwilioClient};
use super::form::header;
use super::sid::{
    ChannelSid, ChatServiceSid, FlexIdentity, InteractionChannelSid, InteractionSid, StudioFlowSid,
    TaskChannelName, WorkflowSid, WorkspaceSid,
};
use super::{BackendKind, FlexError, channel_sid, is_earlier_address, join_url, media, messages};
use crate::core::backend::{
    BackendError, BackendName, Disposition, FlexBackend, FlexEvent, FlexRef, MediaUpload,
    OpenRequest, Opened, OutboundMessage, Posted, ResyncRequest, Resynced, WebhookParseError,
};
use crate::core::ids::RemoteChannel;

/// Where Flex posts this backend's webhooks, under `PUBLIC_BASE_URL`.
pub const WEBHOOK_PATH: &str = "/webhooks/conversations";

/// The events the bridge's scoped webhook asks for.
const FILTERS: [&str; 3] = [
    "onMessageAdded",
    "onConversationStateUpdated",
    "onParticipantAdded",
];

/// How new conversations reach Flex (`FLEX_ROUTING`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    /// `POST /v1/Interactions` (the default).
    Interactions(InteractionRouting),
    /// A scoped `Target=studio` webhook to a flow whose "Send to Flex"
    /// makes the interaction on the customer's first message.
    Studio { flow: StudioFlowSid },
}

/// Which of the two ways [`Routing`] is (`FLEX_ROUTING`): what
/// provisioning looks for before the SIDs are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingKind {
    Interactions,
    Studio,
}

impl RoutingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interactions => "interactions",
            Self::Studio => "studio",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "interactions" => Ok(Self::Interactions),
            "studio" => Ok(Self::Studio),
            other => Err(format!(
                "unknown routing {other:?} (available: interactions, studio)"
            )),
        }
    }
}

/// Where the Interactions API routes a conversation: `Routing.properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionRouting {
    pub workspace: WorkspaceSid,
    pub workflow: WorkflowSid,
    /// `task_channel_unique_name`, `chat` unless configured.
    pub task_channel: TaskChannelName,
}

/// An ISO-8601 duration for a conversation timer (`PT10M`, `P1D`,
/// `PT0.5S`): weeks, days, hours, minutes and seconds; not zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerDuration(String);

impl TimerDuration {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let malformed =
            || format!("{raw:?} is not an ISO-8601 duration such as PT10M, PT1H or P1D");
        let rest = raw.strip_prefix('P').ok_or_else(malformed)?;
        let (date, time) = match rest.split_once('T') {
            Some((date, time)) => (date, time),
            None => (rest, ""),
        };
        if (date.is_empty() && time.is_empty()) || rest.ends_with('T') {
            return Err(malformed());
        }
        let date = duration_units(date, &['W', 'D']).ok_or_else(malformed)?;
        let time = duration_units(time, &['H', 'M', 'S']).ok_or_else(malformed)?;
        if !(date || time) {
            return Err(format!("{raw:?} is zero; leave the timer unset instead"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Reads `text` as numbers each followed by one of `units` (each at most
/// once, in that order; a fraction only for seconds). `Some(nonzero)`.
fn duration_units(text: &str, units: &[char]) -> Option<bool> {
    let (mut next, mut nonzero, mut number) = (0, false, String::new());
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let position = next + units.get(next..)?.iter().position(|u| *u == c)?;
        if number.is_empty() || (number.contains('.') && c != 'S') {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        nonzero |= value > 0.0;
        number.clear();
        next = position + 1;
    }
    number.is_empty().then_some(nonzero)
}

/// `Timers.Inactive` / `Timers.Closed` of new conversations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timers {
    pub inactive: Option<TimerDuration>,
    pub closed: Option<TimerDuration>,
}

/// The Conversations backend for one Flex Chat Service.
#[derive(Debug, Clone)]
pub struct ConversationsBackend {
    client: TwilioClient,
    service: ChatServiceSid,
    /// `PUBLIC_BASE_URL` + [`WEBHOOK_PATH`].
    webhook_url: Url,
    /// How new conversations reach Flex; without it this backend only
    /// serves the conversations it opened earlier (the bridge moved to the
    /// Chat backend).
    routing: Option<Routing>,
    timers: Timers,
    agent_names: AgentNames,
}

/// A conversation-scoped webhook as listed.
#[derive(Debug, serde::Deserialize)]
struct ScopedWebhook {
    sid: String,
    target: Option<String>,
    #[serde(default)]
    configuration: Option<ScopedWebhookConfiguration>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ScopedWebhookConfiguration {
    url: Option<String>,
    #[serde(default)]
    filters: Option<Vec<String>>,
    flow_sid: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct Conversation {
    state: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct Created {
    sid: String,
}

/// The interaction `open` made, kept as the conversation's [`FlexRef`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct InteractionRef {
    interaction: InteractionSid,
    channel: InteractionChannelSid,
}

impl InteractionRef {
    fn to_flex_ref(&self) -> FlexRef {
        FlexRef::new(serde_json::json!({
            "interaction_sid": self.interaction.as_str(),
            "interaction_channel_sid": self.channel.as_str(),
        }))
    }

    fn from_flex_ref(flex_ref: &FlexRef) -> Option<Self> {
        let text = |key: &str| flex_ref.value().get(key)?.as_str();
        Some(Self {
            interaction: InteractionSid::parse(text("interaction_sid")?).ok()?,
            channel: InteractionChannelSid::parse(text("interaction_channel_sid")?).ok()?,
        })
    }
}

impl ConversationsBackend {
    /// The backend; without `routing` it cannot open new conversations.
    pub fn new(
        client: TwilioClient,
        service: ChatServiceSid,
        public_base_url: &Url,
        routing: Option<Routing>,
        timers: Timers,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client,
            service,
            webhook_url: join_url(public_base_url, WEBHOOK_PATH)?,
            routing,
            timers,
            agent_names: AgentNames::default(),
        })
    }

    /// `/v1/Services/{IS}/Conversations` + `rest`.
    fn path(&self, rest: &str) -> String {
        format!("/v1/Services/{}/Conversations{rest}", self.service)
    }

    /// A path under one conversation.
    fn conversation_path(&self, conversation: &ChannelSid, rest: &str) -> String {
        self.path(&format!("/{conversation}{rest}"))
    }

    async fn webhooks(&self, conversation: &ChannelSid) -> Result<Vec<ScopedWebhook>, FlexError> {
        let path = self.conversation_path(conversation, "/Webhooks");
        self.client
            .list(Product::Conversations, &path, &[], "webhooks", 1)
            .await
    }

    /// Makes sure the conversation has the bridge's webhook at the current
    /// address with every filter: one of an earlier address (or missing a
    /// filter) is deleted, then ours is created unless it exists.
    async fn ensure_webhook(&self, conversation: &ChannelSid) -> Result<(), FlexError> {
        let path = self.conversation_path(conversation, "/Webhooks");
        let mut present = false;
        for webhook in self.webhooks(conversation).await? {
            if webhook.target.as_deref() != Some("webhook") {
                continue;
            }
            let configuration = webhook.configuration.unwrap_or_default();
            let url = configuration.url.unwrap_or_default();
            let filters = configuration.filters.unwrap_or_default();
            let here = url == self.webhook_url.as_str();
            if here && FILTERS.iter().all(|f| filters.iter().any(|have| have == f)) {
                present = true;
            } else if here || is_earlier_address(&url, WEBHOOK_PATH) {
                self.client
                    .delete(Product::Conversations, &format!("{path}/{}", webhook.sid))
                    .await?;
            }
        }
        if present {
            return Ok(());
        }
        let mut form = vec![
            ("Target", "webhook"),
            ("Configuration.Url", self.webhook_url.as_str()),
            ("Configuration.Method", "post"),
        ];
        form.extend(FILTERS.iter().map(|f| ("Configuration.Filters", *f)));
        let _: Created = self
            .client
            .post_form(Product::Conversations, &path, &form, false)
            .await?;
        Ok(())
    }

    /// The events a conversation's current state implies: the agents who
    /// joined, their recent messages (oldest first), and its end if it is
    /// closed.
    async fn events_of(
        &self,
        conversation: &ChannelSid,
        customer: &FlexIdentity,
        since: i64,
    ) -> Result<Resynced, FlexError> {
        let participants = self
            .client
            .list(
                Product::Conversations,
                &self.conversation_path(conversation, "/Participants"),
                &[("PageSize", "100")],
                "participants",
                1,
            )
            .await?;
        let mut events = agents::joined(
            participants,
            customer,
            conversation,
            "onParticipantAdded",
            |p| participant_key(conversation, p),
        );
        let path = self.conversation_path(conversation, "/Messages");
        let recent = messages::recent(&self.client, Product::Conversations, &path).await?;
        events.extend(messages::agent_messages(
            &recent,
            customer,
            conversation,
            "onMessageAdded",
            message_key,
            since,
        ));
        let current: Conversation = self
            .client
            .get(
                Product::Conversations,
                &self.conversation_path(conversation, ""),
                &[],
            )
            .await?;
        if current.state.as_deref() == Some("closed") {
            events.push(FlexEvent::ChatEnded {
                header: header(
                    "onConversationStateUpdated",
                    ended_key(conversation),
                    conversation,
                ),
            });
        }
        Ok(Resynced {
            events,
            through_index: messages::through_index(&recent),
        })
    }
}

impl ConversationsBackend {
    /// The interaction channel `Status=closed` when the interaction is
    /// known (Flex then wraps the task and closes the conversation), else
    /// the conversation's `State=closed`.
    async fn close_conversation(
        &self,
        conversation: &ChannelSid,
        flex_ref: Option<&FlexRef>,
    ) -> Result<(), FlexError> {
        if let Some(interaction) = flex_ref.and_then(InteractionRef::from_flex_ref) {
            let path = format!(
                "/v1/Interactions/{}/Channels/{}",
                interaction.interaction, interaction.channel
            );
            let closed = self
                .client
                .post_form::<serde_json::Value>(
                    Product::Flex,
                    &path,
                    &[("Status", "closed")],
                    false,
                )
                .await;
            match closed {
                Ok(_) => return Ok(()),
                Err(error) if error.disposition() != Disposition::Permanent => return Err(error),
                // Closed already, or gone: close the conversation itself.
                Err(error) => {
                    tracing::info!(%conversation, %error, "the interaction channel would not close; closing the conversation")
                }
            }
        }
        let updated = self
            .client
            .post_form::<serde_json::Value>(
                Product::Conversations,
                &self.conversation_path(conversation, ""),
                &[("State", "closed")],
                true,
            )
            .await;
        match updated {
            // 50377: the conversation is closed already.
            Err(error) if error.is_api(409, 50377) => Ok(()),
            other => other.map(drop),
        }
    }
}

#[async_trait::async_trait]
impl FlexBackend for ConversationsBackend {
    fn name(&self) -> BackendName {
        BackendKind::Conversations.name()
    }

    fn webhook_path(&self) -> &'static str {
        WEBHOOK_PATH
    }

    async fn open(&self, request: &OpenRequest<'_>) -> Result<Opened, BackendError> {
        Ok(self.open_conversation(request).await?)
    }

    async fn send(
        &self,
        channel: &RemoteChannel,
        message: &OutboundMessage<'_>,
    ) -> Result<Posted, BackendError> {
        let path = self.conversation_path(&channel_sid(channel)?, "/Messages");
        let sent = messages::create(
            &self.client,
            Product::Conversations,
            &path,
            "Author",
            message,
        )
        .await?;
        Ok(sent)
    }

    async fn upload_media(&self, upload: &MediaUpload<'_>) -> Result<String, BackendError> {
        let sid = media::upload(&self.client, &self.service, upload).await?;
        Ok(sid.as_str().to_owned())
    }

    async fn fetch_media(&self, media: &str) -> Result<Vec<u8>, BackendError> {
        Ok(media::fetch(&self.client, &self.service, media).await?)
    }

    async fn find_sent(
        &self,
        channel: &RemoteChannel,
        client_msg_id: &str,
    ) -> Result<Option<Posted>, BackendError> {
        let path = self.conversation_path(&channel_sid(channel)?, "/Messages");
        Ok(messages::find_sent(&self.client, Product::Conversations, &path, client_msg_id).await?)
    }

    async fn resync(&self, request: &ResyncRequest<'_>) -> Result<Resynced, BackendError> {
        let conversation = channel_sid(request.channel)?;
        self.ensure_webhook(&conversation).await?;
        let identity = FlexIdentity::for_customer(request.customer);
        Ok(self
            .events_of(&conversation, &identity, request.since)
            .await?)
    }

    async fn close(
        &self,
        channel: &RemoteChannel,
        flex_ref: Option<&FlexRef>,
    ) -> Result<(), BackendError> {
        Ok(self
            .close_conversation(&channel_sid(channel)?, flex_ref)
            .await?)
    }

    fn parse_webhook(&self, params: &[(String, String)]) -> Result<FlexEvent, WebhookParseError> {
        parse_webhook(params)
    }

    async fn agent_name(&self, identity: &str) -> String {
        let users = format!("/v1/Services/{}/Users", self.service);
        self.agent_names
            .lookup(&self.client, Product::Conversations, &users, identity)
            .await
    }
}

#[cfg(test)]
mod tests;
