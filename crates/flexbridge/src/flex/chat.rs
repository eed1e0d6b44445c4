//! The Programmable Chat backend: the blog post's flow (DESIGN §2a), with
//! its defects fixed.
//!
//! - open: `POST flex-api /v1/Channels` (`FlexFlowSid`, `Identity`,
//!   `ChatUserFriendlyName`, `ChatFriendlyName`, `Target` = the identity, so
//!   Flex hands back the customer's active channel instead of a second one),
//!   then the channel webhooks that bring the agent back: listed first, and
//!   only the missing ones created (`Type=webhook`, `Configuration.Url`,
//!   `Configuration.Method=POST`, `Configuration.Filters`).
//!   One webhook carries `onMessageSent`; the other `onChannelUpdated` (chat
//!   end) and `onMemberAdded` (an agent joined).
//! - send: `POST chat /v2/Services/{IS}/Channels/{CH}/Messages` with
//!   `From` = the same identity, `Body`, `Attributes` carrying our client
//!   message id, and `X-Twilio-Webhook-Enabled: true` (no task without it).
//! - find_sent: the channel's latest messages, newest first, searched for
//!   that client message id.
//! - resync (after a restart): webhooks of an earlier address of this bridge
//!   (same path, other base URL) are updated to the current one, missing
//!   ones created; the channel's latest messages by anyone but the customer
//!   become agent-message events, and `status: INACTIVE` a chat end.
//! - close: the channel's attributes with `"status":"INACTIVE"`, as Flex
//!   itself marks an ended chat.
//! - webhooks: `onMessageSent` from an agent (`Source=SDK`) is a message;
//!   `Source=API` is our own post coming back and is ignored; an
//!   `onChannelUpdated` whose `Attributes.status` is `INACTIVE` ends the chat.
//! - agent names: customers see the agent's chat user `friendly_name`
//!   (`GET chat /v2/Services/{IS}/Users/{identity}`, remembered), not the
//!   identity Flex derives from an e-mail address.

mod parse;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use url::Url;

pub use self::parse::parse_webhook;
use self::parse::{ended_key, message_key};
use super::client::{Product, TwilioClient};
use super::{
    BackendKind, EventHeader, FlexBackend, FlexError, FlexEvent, OpenRequest, Opened,
    OutboundMessage, ResyncRequest, WebhookParseError,
};
use crate::core::ids::{
    ChannelSid, ChatServiceSid, FlexFlowSid, FlexIdentity, MessageSid, TaskSid,
};

/// Where Flex posts this backend's webhooks, under `PUBLIC_BASE_URL`.
pub const WEBHOOK_PATH: &str = "/webhooks/chat";

/// The channel webhooks the bridge needs, one filter list per webhook.
const WEBHOOKS: &[&[&str]] = &[&["onMessageSent"], &["onChannelUpdated", "onMemberAdded"]];

/// How many times Twilio retries a channel webhook we answer with an error
/// (`Configuration.RetryCount`, 0–3).
const WEBHOOK_RETRY_COUNT: &str = "3";

/// The key under which our metadata sits in a message's `Attributes`.
const ATTRIBUTES_KEY: &str = "flexbridge";

/// How many recent messages `find_sent` searches (one page; Chat's maximum).
const FIND_SENT_WINDOW: &str = "100";

/// How many recent messages `resync` looks at for missed agent messages.
const RESYNC_WINDOW: &str = "100";

/// The Chat backend for one Flex Flow and Chat Service.
#[derive(Debug, Clone)]
pub struct ChatBackend {
    client: TwilioClient,
    flex_flow: FlexFlowSid,
    chat_service: ChatServiceSid,
    /// `PUBLIC_BASE_URL` + [`WEBHOOK_PATH`].
    webhook_url: Url,
    /// Agent identity → display name, so each agent is looked up once.
    agent_names: Arc<Mutex<HashMap<String, String>>>,
}

#[derive(Debug, serde::Deserialize)]
struct FlexChannel {
    sid: String,
    task_sid: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct ChannelWebhook {
    sid: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    configuration: Option<WebhookConfiguration>,
}

#[derive(Debug, serde::Deserialize)]
struct WebhookConfiguration {
    url: Option<String>,
    #[serde(default)]
    filters: Option<Vec<String>>,
}

#[derive(Debug, serde::Deserialize)]
struct ChatMessage {
    sid: String,
    attributes: Option<String>,
    from: Option<String>,
    body: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct ChatUser {
    friendly_name: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct ChatChannel {
    attributes: Option<String>,
}

impl ChatBackend {
    pub fn new(
        client: TwilioClient,
        flex_flow: FlexFlowSid,
        chat_service: ChatServiceSid,
        public_base_url: &Url,
    ) -> anyhow::Result<Self> {
        let webhook_url = join_url(public_base_url, WEBHOOK_PATH)?;
        Ok(Self {
            client,
            flex_flow,
            chat_service,
            webhook_url,
            agent_names: Arc::default(),
        })
    }

    fn channel_path(&self, channel: &ChannelSid, rest: &str) -> String {
        format!(
            "/v2/Services/{}/Channels/{}{rest}",
            self.chat_service, channel
        )
    }

    /// Creates the webhooks the channel lacks. A webhook of an earlier
    /// address of this bridge (same path, other base URL: the public URL
    /// changed) is pointed here instead of being left to fail.
    async fn ensure_webhooks(&self, channel: &ChannelSid) -> Result<(), FlexError> {
        let path = self.channel_path(channel, "/Webhooks");
        let existing: Vec<ChannelWebhook> = self
            .client
            .list(Product::Chat, &path, &[], "webhooks", 4)
            .await?;
        let mut ours: Vec<Vec<String>> = Vec::new();
        for webhook in existing
            .iter()
            .filter(|w| w.kind.as_deref() == Some("webhook"))
        {
            let Some(configuration) = &webhook.configuration else {
                continue;
            };
            let filters = configuration.filters.clone().unwrap_or_default();
            let url = configuration.url.as_deref().unwrap_or_default();
            if url == self.webhook_url.as_str() {
                ours.push(filters);
            } else if is_earlier_address(url) {
                let mut form = vec![
                    ("Configuration.Url", self.webhook_url.as_str()),
                    ("Configuration.Method", "POST"),
                ];
                form.extend(
                    filters
                        .iter()
                        .map(|f| ("Configuration.Filters", f.as_str())),
                );
                let _: serde_json::Value = self
                    .client
                    .post_form(
                        Product::Chat,
                        &format!("{path}/{}", webhook.sid),
                        &form,
                        false,
                    )
                    .await?;
                ours.push(filters);
            }
        }
        for filters in WEBHOOKS {
            let present = filters
                .iter()
                .all(|f| ours.iter().any(|have| have.iter().any(|h| h == f)));
            if present {
                continue;
            }
            let mut form = vec![
                ("Type", "webhook"),
                ("Configuration.Url", self.webhook_url.as_str()),
                ("Configuration.Method", "POST"),
                ("Configuration.RetryCount", WEBHOOK_RETRY_COUNT),
            ];
            form.extend(filters.iter().map(|f| ("Configuration.Filters", *f)));
            let _: serde_json::Value = self
                .client
                .post_form(Product::Chat, &path, &form, false)
                .await?;
        }
        Ok(())
    }

    /// The events a channel's current state implies: its recent agent
    /// messages, oldest first, and its end if it is INACTIVE.
    async fn events_of(
        &self,
        channel: &ChannelSid,
        identity: &FlexIdentity,
    ) -> Result<Vec<FlexEvent>, FlexError> {
        let recent: Vec<ChatMessage> = self
            .client
            .list(
                Product::Chat,
                &self.channel_path(channel, "/Messages"),
                &[("Order", "desc"), ("PageSize", RESYNC_WINDOW)],
                "messages",
                1,
            )
            .await?;
        let mut events: Vec<FlexEvent> = recent
            .iter()
            .rev()
            .filter_map(|m| {
                let author = m.from.as_deref()?;
                let body = m.body.as_deref().filter(|b| !b.trim().is_empty())?;
                let message_sid = MessageSid::parse(&m.sid).ok()?;
                let agent = author != identity.as_str()
                    && author != "system"
                    && FlexIdentity::customer_of(author).is_none();
                agent.then(|| FlexEvent::AgentMessage {
                    header: EventHeader {
                        event_type: "onMessageSent".to_owned(),
                        idempotency_key: message_key(&message_sid),
                        channel: channel.clone(),
                    },
                    message_sid,
                    author: author.to_owned(),
                    body: body.to_owned(),
                })
            })
            .collect();
        let current: ChatChannel = self
            .client
            .get(Product::Chat, &self.channel_path(channel, ""), &[])
            .await?;
        if status_of(current.attributes.as_deref()) == Some("INACTIVE".to_owned()) {
            events.push(FlexEvent::ChatEnded {
                header: EventHeader {
                    event_type: "onChannelUpdated".to_owned(),
                    idempotency_key: ended_key(channel),
                    channel: channel.clone(),
                },
            });
        }
        Ok(events)
    }
}

/// Whether `url` is where an earlier address of this bridge took this
/// backend's webhooks (same path).
fn is_earlier_address(url: &str) -> bool {
    Url::parse(url).is_ok_and(|url| url.path().ends_with(WEBHOOK_PATH))
}

/// `status` of a channel's attributes JSON, if it has one.
fn status_of(attributes: Option<&str>) -> Option<String> {
    let attributes: serde_json::Value = serde_json::from_str(attributes?).ok()?;
    attributes.get("status")?.as_str().map(str::to_owned)
}

/// `base` + `path`, keeping any path prefix `base` has.
pub fn join_url(base: &Url, path: &str) -> anyhow::Result<Url> {
    use anyhow::Context as _;
    Url::parse(&format!("{}{path}", base.as_str().trim_end_matches('/')))
        .with_context(|| format!("joining {path} to {base}"))
}

fn sid<T>(
    raw: &str,
    parse: impl Fn(&str) -> Result<T, crate::core::ids::IdError>,
) -> Result<T, FlexError> {
    parse(raw).map_err(|e| FlexError::BadResponse(e.to_string()))
}

#[async_trait::async_trait]
impl FlexBackend for ChatBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Chat
    }

    fn webhook_path(&self) -> &'static str {
        WEBHOOK_PATH
    }

    async fn open(&self, request: &OpenRequest<'_>) -> Result<Opened, FlexError> {
        let chat_name = format!("Chat with {}", request.customer_name);
        let created: FlexChannel = self
            .client
            .post_form(
                Product::Flex,
                "/v1/Channels",
                &[
                    ("FlexFlowSid", self.flex_flow.as_str()),
                    ("Identity", request.identity.as_str()),
                    ("ChatUserFriendlyName", request.customer_name),
                    ("ChatFriendlyName", &chat_name),
                    ("Target", request.identity.as_str()),
                ],
                false,
            )
            .await?;
        let channel = sid(&created.sid, ChannelSid::parse)?;
        let task = created
            .task_sid
            .as_deref()
            .map(|raw| sid(raw, TaskSid::parse))
            .transpose()?;
        self.ensure_webhooks(&channel).await?;
        Ok(Opened { channel, task })
    }

    async fn send(
        &self,
        channel: &ChannelSid,
        message: &OutboundMessage<'_>,
    ) -> Result<MessageSid, FlexError> {
        let attributes = serde_json::json!({
            ATTRIBUTES_KEY: { "clientMessageId": message.client_msg_id, "seq": message.seq.0 }
        })
        .to_string();
        let created: ChatMessage = self
            .client
            .post_form(
                Product::Chat,
                &self.channel_path(channel, "/Messages"),
                &[
                    ("From", message.identity.as_str()),
                    ("Body", message.body),
                    ("Attributes", &attributes),
                ],
                true,
            )
            .await?;
        sid(&created.sid, MessageSid::parse)
    }

    async fn find_sent(
        &self,
        channel: &ChannelSid,
        client_msg_id: &str,
    ) -> Result<Option<MessageSid>, FlexError> {
        let recent: Vec<ChatMessage> = self
            .client
            .list(
                Product::Chat,
                &self.channel_path(channel, "/Messages"),
                &[("Order", "desc"), ("PageSize", FIND_SENT_WINDOW)],
                "messages",
                1,
            )
            .await?;
        recent
            .iter()
            .find(|m| {
                let attributes = m.attributes.as_deref().unwrap_or("{}");
                serde_json::from_str::<serde_json::Value>(attributes)
                    .ok()
                    .and_then(|a| {
                        a.get(ATTRIBUTES_KEY)?
                            .get("clientMessageId")?
                            .as_str()
                            .map(|id| id == client_msg_id)
                    })
                    .unwrap_or(false)
            })
            .map(|m| sid(&m.sid, MessageSid::parse))
            .transpose()
    }

    async fn resync(&self, request: &ResyncRequest<'_>) -> Result<Vec<FlexEvent>, FlexError> {
        self.ensure_webhooks(request.channel).await?;
        self.events_of(request.channel, request.identity).await
    }

    async fn close(&self, channel: &ChannelSid) -> Result<(), FlexError> {
        let path = self.channel_path(channel, "");
        let current: ChatChannel = self.client.get(Product::Chat, &path, &[]).await?;
        let mut attributes = current
            .attributes
            .as_deref()
            .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::json!({}));
        attributes["status"] = serde_json::Value::from("INACTIVE");
        let attributes = attributes.to_string();
        let _: serde_json::Value = self
            .client
            .post_form(Product::Chat, &path, &[("Attributes", &attributes)], true)
            .await?;
        Ok(())
    }

    fn parse_webhook(&self, params: &[(String, String)]) -> Result<FlexEvent, WebhookParseError> {
        parse_webhook(params)
    }

    /// The agent's chat user `friendly_name` (Flex sets it to the agent's
    /// full name), remembered per identity.
    async fn agent_name(&self, identity: &str) -> String {
        if let Some(name) = lock(&self.agent_names).get(identity) {
            return name.clone();
        }
        let encoded =
            percent_encoding::utf8_percent_encode(identity, percent_encoding::NON_ALPHANUMERIC);
        let path = format!("/v2/Services/{}/Users/{encoded}", self.chat_service);
        let name = match self.client.get::<ChatUser>(Product::Chat, &path, &[]).await {
            Ok(user) => user
                .friendly_name
                .filter(|name| !name.trim().is_empty())
                .unwrap_or_else(|| identity.to_owned()),
            Err(error) => {
                tracing::debug!(identity, %error, "no display name for an agent");
                return identity.to_owned();
            }
        };
        let mut names = lock(&self.agent_names);
        if names.len() >= MAX_AGENT_NAMES {
            names.clear();
        }
        names.insert(identity.to_owned(), name.clone());
        name
    }
}

/// How many agent display names are remembered.
const MAX_AGENT_NAMES: usize = 10_000;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
mod tests;
