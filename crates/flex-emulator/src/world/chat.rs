//! Programmable Chat v2 resources as the emulator stores them (service,
//! users, channels with their members, messages and webhooks) and their
//! Twilio JSON shapes (`docs/twilio-reference.md` §3), and the parameters
//! of their webhook events (§7.1 there). Behaviour lives in `channels.rs`.

use super::media::MediaRef;
use serde_json::{Value, json};

use super::hooks::{Fired, HookSettings};
use super::render::{Render, with_received_at};
use super::table::{Keyed, Table};
use crate::clock::Instant;

/// The most webhooks one channel may hold (Twilio error 50321 beyond).
pub(crate) const MAX_CHANNEL_WEBHOOKS: usize = 5;

#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub sid: String,
    pub friendly_name: String,
    pub created: Instant,
}

impl Keyed for Service {
    fn key(&self) -> &str {
        &self.sid
    }
}

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub sid: String,
    pub service_sid: String,
    pub identity: String,
    pub friendly_name: Option<String>,
    pub attributes: String,
    pub role_sid: String,
    pub created: Instant,
    pub updated: Instant,
}

impl Keyed for User {
    fn key(&self) -> &str {
        &self.sid
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelType {
    Public,
    Private,
}

impl ChannelType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelType::Public => "public",
            ChannelType::Private => "private",
        }
    }
}

/// What makes a chat channel a Flex channel (created by `POST /v1/Channels`).
#[derive(Debug, Clone)]
pub(crate) struct FlexBinding {
    pub flow_sid: String,
    /// The customer's chat identity (`Identity`).
    pub identity: String,
    pub user_sid: String,
    /// `Target`: an ACTIVE channel with the same flow and target is reused.
    pub target: Option<String>,
    /// The task made for this channel, when the integration made one.
    pub task_sid: Option<String>,
    /// Task integration with `Integration.CreationOnMessage`: the task is
    /// still to be made, on the first message event.
    pub task_on_message: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Channel {
    pub sid: String,
    pub service_sid: String,
    pub friendly_name: Option<String>,
    pub unique_name: Option<String>,
    /// Raw JSON text, as Twilio stores it.
    pub attributes: String,
    pub kind: ChannelType,
    pub created_by: Option<String>,
    pub created: Instant,
    pub updated: Instant,
    pub members: Table<Member>,
    pub messages: Vec<Message>,
    pub webhooks: Table<ChannelWebhook>,
    pub flex: Option<FlexBinding>,
}

impl Keyed for Channel {
    fn key(&self) -> &str {
        &self.sid
    }
}

impl Channel {
    /// The attributes as JSON (an empty object when they are not an object).
    pub fn attributes_object(&self) -> serde_json::Map<String, Value> {
        match serde_json::from_str::<Value>(&self.attributes) {
            Ok(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        }
    }

    /// Flex's view of the chat: attributes `status` is `ACTIVE`.
    pub fn is_active(&self) -> bool {
        self.attributes_object()
            .get("status")
            .and_then(Value::as_str)
            == Some("ACTIVE")
    }

    pub fn member_by_identity(&self, identity: &str) -> Option<&Member> {
        self.members.find(|member| member.identity == identity)
    }

    /// Finds a member by MB SID or identity, as the REST paths allow.
    pub fn member(&self, sid_or_identity: &str) -> Option<&Member> {
        self.members
            .get(sid_or_identity)
            .or_else(|| self.member_by_identity(sid_or_identity))
    }

    pub fn to_json(&self, render: &Render<'_>) -> Value {
        let url = format!(
            "{}/v2/Services/{}/Channels/{}",
            render.base, self.service_sid, self.sid
        );
        let last_message = self
            .messages
            .last()
            .map(|message| format!("{url}/Messages/{}", message.sid));
        json!({
            "sid": self.sid,
            "account_sid": render.account_sid,
            "service_sid": self.service_sid,
            "friendly_name": self.friendly_name,
            "unique_name": self.unique_name,
            "attributes": self.attributes,
            "type": self.kind.as_str(),
            "date_created": self.created.rest(),
            "date_updated": self.updated.rest(),
            "created_by": self.created_by,
            "members_count": self.members.len(),
            "messages_count": self.messages.len(),
            "url": url,
            "links": {
                "members": format!("{url}/Members"),
                "messages": format!("{url}/Messages"),
                "invites": format!("{url}/Invites"),
                "webhooks": format!("{url}/Webhooks"),
                "last_message": last_message,
            },
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub sid: String,
    pub identity: String,
    pub role_sid: String,
    pub attributes: String,
    pub last_consumed_message_index: Option<u64>,
    pub last_consumption: Option<Instant>,
    pub created: Instant,
    pub updated: Instant,
}

impl Keyed for Member {
    fn key(&self) -> &str {
        &self.sid
    }
}

impl Member {
    pub fn to_json(&self, channel: &Channel, render: &Render<'_>) -> Value {
        json!({
            "sid": self.sid,
            "account_sid": render.account_sid,
            "channel_sid": channel.sid,
            "service_sid": channel.service_sid,
            "identity": self.identity,
            "date_created": self.created.rest(),
            "date_updated": self.updated.rest(),
            "role_sid": self.role_sid,
            "last_consumed_message_index": self.last_consumed_message_index,
            "last_consumption_timestamp": self.last_consumption.map(Instant::rest),
            "url": format!(
                "{}/v2/Services/{}/Channels/{}/Members/{}",
                render.base, channel.service_sid, channel.sid, self.sid
            ),
            "attributes": self.attributes,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub sid: String,
    pub index: u64,
    pub from: String,
    pub body: Option<String>,
    pub attributes: String,
    pub created: Instant,
    pub updated: Instant,
    /// When the emulator stored it (µs since the Unix epoch), whatever
    /// `DateCreated` says: the benchmark's receive instant.
    pub received_at_us: u64,
    /// Its file (`MediaSid`): then `type` is `media`.
    pub media: Option<MediaRef>,
}

impl Message {
    /// The control-API and SSE shape: the REST JSON plus `received_at_us`.
    pub fn to_control_json(&self, channel: &Channel, render: &Render<'_>) -> Value {
        with_received_at(self.to_json(channel, render), self.received_at_us)
    }

    pub fn to_json(&self, channel: &Channel, render: &Render<'_>) -> Value {
        json!({
            "sid": self.sid,
            "account_sid": render.account_sid,
            "attributes": self.attributes,
            "service_sid": channel.service_sid,
            "to": channel.sid,
            "channel_sid": channel.sid,
            "date_created": self.created.rest(),
            "date_updated": self.updated.rest(),
            "last_updated_by": null,
            "was_edited": false,
            "from": self.from,
            "body": self.body,
            "index": self.index,
            "type": if self.media.is_some() { "media" } else { "text" },
            "media": self.media.as_ref().map(MediaRef::to_chat_json),
            "url": format!(
                "{}/v2/Services/{}/Channels/{}/Messages/{}",
                render.base, channel.service_sid, channel.sid, self.sid
            ),
        })
    }
}

/// The Chat events a channel webhook may filter on (pre- and post-events of
/// `docs/twilio-reference.md` §7.1). The emulator fires the post-events it
/// knows.
pub(crate) const CHAT_EVENTS: [&str; 21] = [
    "onMessageSend",
    "onMessageSent",
    "onMediaMessageSent",
    "onMessageUpdate",
    "onMessageUpdated",
    "onMessageRemove",
    "onMessageRemoved",
    "onChannelAdd",
    "onChannelAdded",
    "onChannelUpdate",
    "onChannelUpdated",
    "onChannelDestroy",
    "onChannelDestroyed",
    "onMemberAdd",
    "onMemberAdded",
    "onMemberUpdated",
    "onMemberRemove",
    "onMemberRemoved",
    "onUserAdded",
    "onUserUpdate",
    "onUserUpdated",
];

/// `onChannelUpdated` / `onChannelDestroyed` parameters.
pub(crate) fn channel_event(event_type: &'static str, channel: &Channel) -> Fired {
    let mut fired = Fired::new(event_type);
    fired.push("ChannelSid", channel.sid.clone());
    fired.push("Attributes", channel.attributes.clone());
    fired.push("DateCreated", channel.created.webhook());
    fired.push("DateUpdated", channel.updated.webhook());
    fired.push_some("CreatedBy", channel.created_by.as_deref());
    fired.push_some("FriendlyName", channel.friendly_name.as_deref());
    fired.push_some("UniqueName", channel.unique_name.as_deref());
    fired.push("ChannelType", channel.kind.as_str().to_owned());
    fired
}

/// `onMemberAdded` / `onMemberRemoved` parameters.
pub(crate) fn member_event(
    event_type: &'static str,
    channel_sid: &str,
    member: &Member,
    reason: &str,
) -> Fired {
    let mut fired = Fired::new(event_type);
    fired.push("MemberSid", member.sid.clone());
    fired.push("ChannelSid", channel_sid.to_owned());
    fired.push("Identity", member.identity.clone());
    fired.push("RoleSid", member.role_sid.clone());
    fired.push("Reason", reason.to_owned());
    fired.push("Attributes", member.attributes.clone());
    fired.push("DateCreated", member.created.webhook());
    fired
}

/// `onMessageSent` parameters.
pub(crate) fn message_event(channel_sid: &str, message: &Message) -> Fired {
    let mut fired = Fired::new("onMessageSent");
    fired.push("MessageSid", message.sid.clone());
    fired.push("Index", message.index.to_string());
    fired.push("ChannelSid", channel_sid.to_owned());
    fired.push_some("Body", message.body.as_deref());
    fired.push("Attributes", message.attributes.clone());
    fired.push("From", message.from.clone());
    fired.push("DateCreated", message.created.webhook());
    if let Some(media) = &message.media {
        // onMediaMessageSent's fields (docs/twilio-reference.md §7.1), on
        // the one event the emulator fires for every message (§10).
        fired.push("MediaSid", media.sid.clone());
        fired.push_some("MediaFilename", media.filename.as_deref());
        fired.push("MediaContentType", media.content_type.clone());
        fired.push("MediaSize", media.size.to_string());
    }
    fired.with_message(message.body.clone(), message.from.clone())
}

#[derive(Debug, Clone)]
pub(crate) struct ChannelWebhook {
    pub sid: String,
    /// `Type` and `Configuration.*` (method `GET` or `POST`).
    pub settings: HookSettings,
    /// Extra attempts after a failed delivery (0–3).
    pub retry_count: u8,
    pub created: Instant,
    pub updated: Instant,
}

impl Keyed for ChannelWebhook {
    fn key(&self) -> &str {
        &self.sid
    }
}

impl ChannelWebhook {
    pub fn to_json(&self, channel: &Channel, render: &Render<'_>) -> Value {
        let mut configuration = self.settings.configuration();
        configuration.insert("retry_count".into(), json!(self.retry_count));
        json!({
            "sid": self.sid,
            "account_sid": render.account_sid,
            "service_sid": channel.service_sid,
            "channel_sid": channel.sid,
            "type": self.settings.kind.as_str(),
            "url": format!(
                "{}/v2/Services/{}/Channels/{}/Webhooks/{}",
                render.base, channel.service_sid, channel.sid, self.sid
            ),
            "configuration": configuration,
            "date_created": self.created.rest(),
            "date_updated": self.updated.rest(),
        })
    }
}

impl Service {
    /// The service as Chat v2 shows it.
    pub fn to_json(&self, roles: ServiceRoles<'_>, render: &Render<'_>) -> Value {
        let url = format!("{}/v2/Services/{}", render.base, self.sid);
        json!({
            "sid": self.sid,
            "account_sid": render.account_sid,
            "friendly_name": self.friendly_name,
            "date_created": self.created.rest(),
            "date_updated": self.created.rest(),
            "default_service_role_sid": roles.service_user,
            "default_channel_role_sid": roles.channel_user,
            "default_channel_creator_role_sid": roles.channel_admin,
            "read_status_enabled": true,
            "reachability_enabled": false,
            "typing_indicator_timeout": 5,
            "consumption_report_interval": 10,
            "limits": {"channel_members": 100, "user_channels": 250},
            "pre_webhook_url": null,
            "post_webhook_url": null,
            "webhook_method": null,
            "webhook_filters": null,
            "pre_webhook_retry_count": 0,
            "post_webhook_retry_count": 0,
            "notifications": {},
            "media": {"size_limit_mb": 150, "compatibility_message": null},
            "url": url,
            "links": {
                "channels": format!("{url}/Channels"),
                "roles": format!("{url}/Roles"),
                "users": format!("{url}/Users"),
                "bindings": format!("{url}/Bindings"),
            },
        })
    }

    /// The same service as Conversations v1 shows it (one service since the
    /// unification of Chat and Conversations).
    pub fn to_conversations_json(&self, render: &Render<'_>) -> Value {
        let url = format!("{}/v1/Services/{}", render.base, self.sid);
        let links: serde_json::Map<String, Value> = [
            ("conversations", "Conversations"),
            ("users", "Users"),
            ("roles", "Roles"),
            ("bindings", "Bindings"),
            ("configuration", "Configuration"),
            ("participant_conversations", "ParticipantConversations"),
            (
                "conversation_with_participants",
                "ConversationWithParticipants",
            ),
        ]
        .into_iter()
        .map(|(key, path)| (key.to_owned(), json!(format!("{url}/{path}"))))
        .collect();
        json!({
            "sid": self.sid,
            "account_sid": render.account_sid,
            "friendly_name": self.friendly_name,
            "date_created": self.created.rest(),
            "date_updated": self.created.rest(),
            "url": url,
            "links": links,
        })
    }
}

/// The default roles a service names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServiceRoles<'a> {
    pub service_user: &'a str,
    pub channel_user: &'a str,
    pub channel_admin: &'a str,
}

impl User {
    pub fn to_json(&self, joined_channels: usize, render: &Render<'_>) -> Value {
        let url = format!(
            "{}/v2/Services/{}/Users/{}",
            render.base, self.service_sid, self.sid
        );
        json!({
            "sid": self.sid,
            "account_sid": render.account_sid,
            "service_sid": self.service_sid,
            "attributes": self.attributes,
            "friendly_name": self.friendly_name,
            "role_sid": self.role_sid,
            "identity": self.identity,
            "is_online": null,
            "is_notifiable": null,
            "date_created": self.created.rest(),
            "date_updated": self.updated.rest(),
            "joined_channels_count": joined_channels,
            "links": {
                "user_channels": format!("{url}/Channels"),
                "user_bindings": format!("{url}/Bindings"),
            },
            "url": url,
        })
    }
}
