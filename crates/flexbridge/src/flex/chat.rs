//! The Programmable Chat backend: the blog post's flow
//! (docs/twilio-reference.md §2–§3), with
//! its defects fixed.
//!
//! - open: `POST flex-api /v1/Channels` (`FlexFlowSid`, `Identity`,
//!   `ChatUserFriendlyName`, `ChatFriendlyName`, `Target` = the identity, so
//!   Flex hands back the customer's active channel instead of a second one;
//!   the pre-engagement form's answers as `PreEngagementData` and in
//!   `TaskAttributes`),
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
//!   ones created; the channel's agent members become "agent joined"
//!   events, its latest messages by anyone but the customer agent-message
//!   events, and `status: INACTIVE` a chat end.
//! - close: the channel's attributes with `"status":"INACTIVE"`, as Flex
//!   itself marks an ended chat.
//! - webhooks: `onMessageSent` from an agent (`Source=SDK`) is a message;
//!   `Source=API` is our own post coming back and is ignored; an
//!   `onChannelUpdated` whose `Attributes.status` is `INACTIVE` ends the chat.
//! - agent names: customers see the agent's chat user `friendly_name`
//!   (`GET chat /v2/Services/{IS}/Users/{identity}`, remembered), not the
//!   identity Flex derives from an e-mail address.

mod parse;

use url::Url;

pub use self::parse::parse_webhook;
use self::parse::{ended_key, member_key, message_key};
use super::agents::{self, AgentNames};
use super::client::{Product, TwilioClient};
use super::form::header;
use super::sid::{ChannelSid, ChatServiceSid, FlexFlowSid, FlexIdentity};
use super::{
    BackendKind, FlexError, channel_sid, is_earlier_address, join_url, media, messages, parse_sid,
};
use crate::core::backend::{
    BackendError, BackendName, FlexBackend, FlexEvent, FlexRef, MediaUpload, OpenRequest, Opened,
    OutboundMessage, Posted, ResyncRequest, Resynced, WebhookParseError,
};
use crate::core::ids::RemoteChannel;

/// Where Flex posts this backend's webhooks, under `PUBLIC_BASE_URL`.
pub const WEBHOOK_PATH: &str = "/webhooks/chat";

/// The channel webhooks the bridge needs, one filter list per webhook.
const WEBHOOKS: &[&[&str]] = &[
    &["onMessageSent", "onMediaMessageSent"],
    &["onChannelUpdated", "onMemberAdded"],
];

/// How many times Twilio retries a channel webhook we answer with an error
/// (`Configuration.RetryCount`, 0–3).
const WEBHOOK_RETRY_COUNT: &str = "3";

/// The Chat backend for one Flex Flow and Chat Service.
#[derive(Debug, Clone)]
pub struct ChatBackend {
    client: TwilioClient,
    /// The Flex Flow new channels are created with; without one this
    /// backend only serves the channels it opened earlier (the bridge
    /// moved to the Conversations backend).
    flex_flow: Option<FlexFlowSid>,
    chat_service: ChatServiceSid,
    /// `PUBLIC_BASE_URL` + [`WEBHOOK_PATH`].
    webhook_url: Url,
    /// Agent identity → display name, so each agent is looked up once.
    agent_names: AgentNames,
}

#[derive(Debug, serde::Deserialize)]
struct FlexChannel {
    sid: String,
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
struct ChatChannel {
    attributes: Option<String>,
}

impl ChatBackend {
    /// The backend; without `flex_flow` it cannot open new channels.
    pub fn new(
        client: TwilioClient,
        flex_flow: Option<FlexFlowSid>,
        chat_service: ChatServiceSid,
        public_base_url: &Url,
    ) -> anyhow::Result<Self> {
        let webhook_url = join_url(public_base_url, WEBHOOK_PATH)?;
        Ok(Self {
            client,
            flex_flow,
            chat_service,
            webhook_url,
            agent_names: AgentNames::default(),
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
            } else if is_earlier_address(url, WEBHOOK_PATH) {
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
        since: i64,
    ) -> Result<Resynced, FlexError> {
        let members = self
            .client
            .list(
                Product::Chat,
                &self.channel_path(channel, "/Members"),
                &[("PageSize", "100")],
                "members",
                1,
            )
            .await?;
        let mut events = agents::joined(members, identity, channel, "onMemberAdded", |m| {
            member_key(channel, m)
        });
        let path = self.channel_path(channel, "/Messages");
        let recent = messages::recent(&self.client, Product::Chat, &path).await?;
        events.extend(messages::agent_messages(
            &recent,
            identity,
            channel,
            "onMessageSent",
            message_key,
            since,
        ));
        let current: ChatChannel = self
            .client
            .get(Product::Chat, &self.channel_path(channel, ""), &[])
            .await?;
        if status_of(current.attributes.as_deref()) == Some("INACTIVE".to_owned()) {
            events.push(FlexEvent::ChatEnded {
                header: header("onChannelUpdated", ended_key(channel), channel),
            });
        }
        Ok(Resynced {
            events,
            through_index: messages::through_index(&recent),
        })
    }
}

/// `status` of a channel's attributes JSON, if it has one.
fn status_of(attributes: Option<&str>) -> Option<String> {
    let attributes: serde_json::Value = serde_json::from_str(attributes?).ok()?;
    attributes.get("status")?.as_str().map(str::to_owned)
}

impl ChatBackend {
    /// `POST /v1/Channels` (Flex hands back the customer's active channel
    /// for the same `Target`), then the channel's webhooks.
    async fn open_channel(&self, request: &OpenRequest<'_>) -> Result<Opened, FlexError> {
        let Some(flex_flow) = &self.flex_flow else {
            return Err(FlexError::NotConfigured(
                "the Chat backend cannot open channels without FLEX_FLOW_SID".into(),
            ));
        };
        let identity = FlexIdentity::for_customer(request.customer);
        let chat_name = format!("Chat with {}", request.customer_name);
        let mut form = vec![
            ("FlexFlowSid", flex_flow.as_str().to_owned()),
            ("Identity", identity.as_str().to_owned()),
            ("ChatUserFriendlyName", request.customer_name.to_owned()),
            ("ChatFriendlyName", chat_name),
            ("Target", identity.as_str().to_owned()),
        ];
        // As Flex's web chat: the form's answers in the channel's
        // attributes (`pre_engagement_data`), and in the task's for a
        // `task` integration (a Studio flow's "Send to Flex" takes them
        // from the channel's attributes).
        let details = request.pre_engagement;
        if !details.is_empty() {
            let name = request.customer_name;
            form.push(("PreEngagementData", details.flex_data(name).to_string()));
            let attributes = serde_json::Value::Object(details.task_attributes(name));
            form.push(("TaskAttributes", attributes.to_string()));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let created: FlexChannel = self
            .client
            .post_form(Product::Flex, "/v1/Channels", &form, false)
            .await?;
        let channel = parse_sid(&created.sid, ChannelSid::parse)?;
        self.ensure_webhooks(&channel).await?;
        Ok(Opened {
            channel: RemoteChannel::from(&channel),
            flex_ref: None,
        })
    }

    /// The channel's attributes with `"status":"INACTIVE"`, as Flex itself
    /// marks an ended chat.
    async fn set_inactive(&self, channel: &ChannelSid) -> Result<(), FlexError> {
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
}

#[async_trait::async_trait]
impl FlexBackend for ChatBackend {
    fn name(&self) -> BackendName {
        BackendKind::Chat.name()
    }

    fn webhook_path(&self) -> &'static str {
        WEBHOOK_PATH
    }

    async fn open(&self, request: &OpenRequest<'_>) -> Result<Opened, BackendError> {
        Ok(self.open_channel(request).await?)
    }

    async fn send(
        &self,
        channel: &RemoteChannel,
        message: &OutboundMessage<'_>,
    ) -> Result<Posted, BackendError> {
        let path = self.channel_path(&channel_sid(channel)?, "/Messages");
        Ok(messages::create(&self.client, Product::Chat, &path, "From", message).await?)
    }

    async fn upload_media(&self, upload: &MediaUpload<'_>) -> Result<String, BackendError> {
        let sid = media::upload(&self.client, &self.chat_service, upload).await?;
        Ok(sid.as_str().to_owned())
    }

    async fn fetch_media(&self, media: &str) -> Result<Vec<u8>, BackendError> {
        Ok(media::fetch(&self.client, &self.chat_service, media).await?)
    }

    async fn find_sent(
        &self,
        channel: &RemoteChannel,
        client_msg_id: &str,
    ) -> Result<Option<Posted>, BackendError> {
        let path = self.channel_path(&channel_sid(channel)?, "/Messages");
        Ok(messages::find_sent(&self.client, Product::Chat, &path, client_msg_id).await?)
    }

    async fn resync(&self, request: &ResyncRequest<'_>) -> Result<Resynced, BackendError> {
        let channel = channel_sid(request.channel)?;
        self.ensure_webhooks(&channel).await?;
        let identity = FlexIdentity::for_customer(request.customer);
        Ok(self.events_of(&channel, &identity, request.since).await?)
    }

    async fn close(
        &self,
        channel: &RemoteChannel,
        _: Option<&FlexRef>,
    ) -> Result<(), BackendError> {
        Ok(self.set_inactive(&channel_sid(channel)?).await?)
    }

    fn parse_webhook(&self, params: &[(String, String)]) -> Result<FlexEvent, WebhookParseError> {
        parse_webhook(params)
    }

    /// The agent's chat user `friendly_name` (Flex sets it to the agent's
    /// full name), remembered per identity.
    async fn agent_name(&self, identity: &str) -> String {
        let users = format!("/v2/Services/{}/Users", self.chat_service);
        self.agent_names
            .lookup(&self.client, Product::Chat, &users, identity)
            .await
    }
}

#[cfg(test)]
mod tests;
