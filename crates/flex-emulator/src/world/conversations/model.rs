//! Conversations v1 resources as the emulator stores them — conversations
//! with their participants, messages and conversation-scoped webhooks — and
//! their Twilio JSON shapes (`docs/twilio-reference.md` §4). The same
//! resource has two shapes: the default-service one (`/v1/Conversations/…`)
//! and the service-scoped one (`/v1/Services/{IS}/Conversations/…`, whose
//! participants, messages and webhooks also carry `chat_service_sid`).

use crate::world::media::MediaRef;
use serde_json::{Value, json};

use super::state::ConversationState;
use super::timers::Timers;
use crate::clock::Instant;
use crate::world::hooks::HookSettings;
use crate::world::render::{Render, with_received_at};
use crate::world::table::{Keyed, Table};

/// The most webhooks one conversation may hold (Twilio error 50361 beyond).
pub(crate) const MAX_CONVERSATION_WEBHOOKS: usize = 5;

/// Which URL family a resource is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `/v1/Conversations/…` (the default service, the bootstrapped one).
    Default,
    /// `/v1/Services/{ChatServiceSid}/Conversations/…`.
    Service,
}

#[derive(Debug, Clone)]
pub(crate) struct Conversation {
    pub sid: String,
    pub service_sid: String,
    pub friendly_name: Option<String>,
    pub unique_name: Option<String>,
    /// Raw JSON text, as Twilio stores it (`{}` when not given).
    pub attributes: String,
    pub messaging_service_sid: Option<String>,
    pub state: ConversationState,
    pub timers: Timers,
    /// `Bindings.Email.Address` / `Bindings.Email.Name`.
    pub email_binding: (Option<String>, Option<String>),
    pub created: Instant,
    pub updated: Instant,
    pub participants: Table<Participant>,
    pub messages: Vec<ConversationMessage>,
    pub webhooks: Table<ConversationWebhook>,
}

impl Keyed for Conversation {
    fn key(&self) -> &str {
        &self.sid
    }
}

impl Conversation {
    /// The conversation's own URL in a scope.
    pub fn url(&self, scope: Scope, render: &Render<'_>) -> String {
        match scope {
            Scope::Default => format!("{}/v1/Conversations/{}", render.base, self.sid),
            Scope::Service => format!(
                "{}/v1/Services/{}/Conversations/{}",
                render.base, self.service_sid, self.sid
            ),
        }
    }

    pub fn participant_by_identity(&self, identity: &str) -> Option<&Participant> {
        self.participants
            .find(|p| p.identity.as_deref() == Some(identity))
    }

    /// A participant by MB SID or identity.
    pub fn participant(&self, sid_or_identity: &str) -> Option<&Participant> {
        self.participants
            .get(sid_or_identity)
            .or_else(|| self.participant_by_identity(sid_or_identity))
    }

    pub fn to_json(&self, scope: Scope, render: &Render<'_>) -> Value {
        let url = self.url(scope, render);
        let mut bindings = serde_json::Map::new();
        let (address, name) = &self.email_binding;
        if address.is_some() || name.is_some() {
            bindings.insert("email".into(), json!({"address": address, "name": name}));
        }
        json!({
            "account_sid": render.account_sid,
            "chat_service_sid": self.service_sid,
            "messaging_service_sid": self.messaging_service_sid,
            "sid": self.sid,
            "friendly_name": self.friendly_name,
            "unique_name": self.unique_name,
            "attributes": self.attributes,
            "state": self.state.as_str(),
            "date_created": self.created.rest(),
            "date_updated": self.updated.rest(),
            "timers": self.timers.to_json(),
            "url": url,
            "links": {
                "participants": format!("{url}/Participants"),
                "messages": format!("{url}/Messages"),
                "webhooks": format!("{url}/Webhooks"),
                "export": format!("{url}/Export"),
            },
            "bindings": bindings,
        })
    }
}

/// `chat_service_sid` is part of the service-scoped shapes only.
fn scoped(mut json: Value, conversation: &Conversation, scope: Scope) -> Value {
    if scope == Scope::Service
        && let Value::Object(map) = &mut json
    {
        map.insert("chat_service_sid".into(), json!(conversation.service_sid));
    }
    json
}

/// An SMS-style participant's addresses (`MessagingBinding.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MessagingBinding {
    pub address: Option<String>,
    pub proxy_address: Option<String>,
    pub projected_address: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Participant {
    pub sid: String,
    /// The chat identity; `None` for an SMS-style participant.
    pub identity: Option<String>,
    pub binding: Option<MessagingBinding>,
    pub attributes: String,
    pub role_sid: String,
    pub created: Instant,
    pub updated: Instant,
}

impl Keyed for Participant {
    fn key(&self) -> &str {
        &self.sid
    }
}

impl Participant {
    pub fn binding_json(&self) -> Value {
        match &self.binding {
            None => Value::Null,
            Some(binding) => {
                let mut map = serde_json::Map::new();
                map.insert("type".into(), json!("sms"));
                map.insert("address".into(), json!(binding.address));
                map.insert("proxy_address".into(), json!(binding.proxy_address));
                if let Some(projected) = &binding.projected_address {
                    map.insert("projected_address".into(), json!(projected));
                }
                Value::Object(map)
            }
        }
    }

    pub fn to_json(&self, conversation: &Conversation, scope: Scope, render: &Render<'_>) -> Value {
        let json = json!({
            "account_sid": render.account_sid,
            "conversation_sid": conversation.sid,
            "sid": self.sid,
            "identity": self.identity,
            "attributes": self.attributes,
            "messaging_binding": self.binding_json(),
            "role_sid": self.role_sid,
            "date_created": self.created.rest(),
            "date_updated": self.updated.rest(),
            "url": format!("{}/Participants/{}", conversation.url(scope, render), self.sid),
            "last_read_message_index": null,
            "last_read_timestamp": null,
        });
        scoped(json, conversation, scope)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ConversationMessage {
    pub sid: String,
    pub index: u64,
    pub author: String,
    pub body: Option<String>,
    pub attributes: String,
    /// The participant whose identity is the author, if any.
    pub participant_sid: Option<String>,
    pub created: Instant,
    pub updated: Instant,
    /// When the emulator stored it (µs since the Unix epoch), whatever
    /// `DateCreated` says: the benchmark's receive instant.
    pub received_at_us: u64,
    /// Its file (`MediaSid`).
    pub media: Option<MediaRef>,
}

impl ConversationMessage {
    /// The control-API and SSE shape (default scope): the REST JSON plus
    /// `received_at_us`.
    pub fn to_control_json(&self, conversation: &Conversation, render: &Render<'_>) -> Value {
        let json = self.to_json(conversation, Scope::Default, render);
        with_received_at(json, self.received_at_us)
    }

    pub fn to_json(&self, conversation: &Conversation, scope: Scope, render: &Render<'_>) -> Value {
        let url = format!("{}/Messages/{}", conversation.url(scope, render), self.sid);
        let json = json!({
            "account_sid": render.account_sid,
            "conversation_sid": conversation.sid,
            "sid": self.sid,
            "index": self.index,
            "author": self.author,
            "body": self.body,
            "media": self.media.as_ref().map(|m| json!([m.to_conversations_json()])),
            "attributes": self.attributes,
            "participant_sid": self.participant_sid,
            "date_created": self.created.rest(),
            "date_updated": self.updated.rest(),
            "url": url,
            "delivery": null,
            "links": {
                "delivery_receipts": format!("{url}/Receipts"),
                "channel_metadata": format!("{url}/ChannelMetadata"),
            },
            "content_sid": null,
        });
        scoped(json, conversation, scope)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ConversationWebhook {
    pub sid: String,
    /// `Target` and `Configuration.*` (method `get` or `post`, lower case as
    /// the Conversations spec has it).
    pub settings: HookSettings,
    pub replay_after: Option<u64>,
    pub created: Instant,
    pub updated: Instant,
}

impl Keyed for ConversationWebhook {
    fn key(&self) -> &str {
        &self.sid
    }
}

impl ConversationWebhook {
    pub fn to_json(&self, conversation: &Conversation, scope: Scope, render: &Render<'_>) -> Value {
        let mut configuration = self.settings.configuration();
        if let Some(replay_after) = self.replay_after {
            configuration.insert("replay_after".into(), json!(replay_after));
        }
        let json = json!({
            "sid": self.sid,
            "account_sid": render.account_sid,
            "conversation_sid": conversation.sid,
            "target": self.settings.kind.as_str(),
            "url": format!("{}/Webhooks/{}", conversation.url(scope, render), self.sid),
            "configuration": configuration,
            "date_created": self.created.rest(),
            "date_updated": self.updated.rest(),
        });
        scoped(json, conversation, scope)
    }
}
