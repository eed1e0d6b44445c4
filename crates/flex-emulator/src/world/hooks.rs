//! Channel events (ENDPOINTS.md §7.1) and where they go: each of the
//! channel's webhooks whose filters name the event gets a signed delivery
//! (queued for the dispatcher, never sent from here); a `trigger` webhook
//! gets `onMessageSent` when the body holds one of its words; a `studio`
//! webhook runs its flow's "Send to Flex" on `onMessageSent`; a Flex channel
//! of a task-integration flow waiting for its first message gets its task.
//!
//! Nothing fires unless the actor allows it: REST calls need
//! `X-Twilio-Webhook-Enabled: true`; agent actions always fire.
//!
//! [`Fired`] (an event and its parameters), [`HookSettings`] (what a webhook
//! does) and [`World::fan_out`] (queueing the deliveries, running the flows)
//! also serve the Conversations events (`conversations/events.rs`): both
//! backends' webhooks are the same settings and react to events the same way.

use serde_json::{Value, json};

use super::World;
use super::actor::Actor;
use super::chat::{Channel, Member, Message, WebhookKind};
use crate::webhooks::{HookMethod, Job};

/// The Chat events a channel webhook may filter on (pre- and post-events of
/// ENDPOINTS.md §7.1). The emulator fires the post-events it knows.
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

/// An event about to fire: its type and its event-specific parameters.
#[derive(Debug, Clone)]
pub(crate) struct Fired {
    pub event_type: &'static str,
    params: Vec<(&'static str, String)>,
    /// For messages: the body (trigger words) and the author (Studio).
    message: Option<(Option<String>, String)>,
}

impl Fired {
    pub fn new(event_type: &'static str) -> Self {
        Self {
            event_type,
            params: Vec::new(),
            message: None,
        }
    }

    /// Adds a parameter.
    pub fn push(&mut self, name: &'static str, value: String) {
        self.params.push((name, value));
    }

    /// Adds a parameter when it has a value.
    pub fn push_some(&mut self, name: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            self.push(name, value.to_owned());
        }
    }

    /// Marks a message event: its body (trigger words) and author (Studio).
    pub fn with_message(mut self, body: Option<String>, author: String) -> Self {
        self.message = Some((body, author));
        self
    }

    /// The message's body, for a message event.
    pub fn body(&self) -> Option<&str> {
        self.message.as_ref().and_then(|(body, _)| body.as_deref())
    }

    /// The message's author, for a message event.
    pub fn author(&self) -> Option<&str> {
        self.message.as_ref().map(|(_, author)| author.as_str())
    }

    /// `onMessageSent` (Chat) or `onMessageAdded` (Conversations).
    pub fn is_message(&self) -> bool {
        self.message.is_some()
    }

    /// `onChannelUpdated` / `onChannelDestroyed` parameters.
    pub fn channel(event_type: &'static str, channel: &Channel) -> Self {
        let mut fired = Self::new(event_type);
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
    pub fn member(
        event_type: &'static str,
        channel_sid: &str,
        member: &Member,
        reason: &str,
    ) -> Self {
        let mut fired = Self::new(event_type);
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
    pub fn message(channel_sid: &str, message: &Message) -> Self {
        let mut fired = Self::new("onMessageSent");
        fired.push("MessageSid", message.sid.clone());
        fired.push("Index", message.index.to_string());
        fired.push("ChannelSid", channel_sid.to_owned());
        fired.push_some("Body", message.body.as_deref());
        fired.push("Attributes", message.attributes.clone());
        fired.push("From", message.from.clone());
        fired.push("DateCreated", message.created.webhook());
        fired.with_message(message.body.clone(), message.from.clone())
    }
}

/// True when the body holds one of the trigger words (whole word, any case).
pub(crate) fn triggers_match(triggers: &[String], body: Option<&str>) -> bool {
    let Some(body) = body else { return false };
    body.split(|c: char| !c.is_alphanumeric())
        .any(|word| triggers.iter().any(|t| t.eq_ignore_ascii_case(word)))
}

/// What a Chat channel webhook or a Conversations scoped webhook does: the
/// settings both APIs share (`Type` / `Target` and `Configuration.*`).
#[derive(Debug, Clone)]
pub(crate) struct HookSettings {
    pub kind: WebhookKind,
    pub url: Option<String>,
    /// As the API answers it: `GET`/`POST` (Chat), `get`/`post` (Conversations).
    pub method: String,
    pub filters: Vec<String>,
    pub triggers: Vec<String>,
    pub flow_sid: Option<String>,
}

/// What one webhook does with one event.
pub(crate) enum Reaction {
    Deliver { url: String, method: HookMethod },
    RunFlow(String),
}

impl HookSettings {
    /// `configuration` as both APIs show it; each adds its own setting
    /// (`retry_count`, `replay_after`).
    pub fn configuration(&self) -> serde_json::Map<String, Value> {
        let mut configuration = serde_json::Map::new();
        if let Some(url) = &self.url {
            configuration.insert("url".into(), json!(url));
        }
        if self.kind != WebhookKind::Studio {
            configuration.insert("method".into(), json!(self.method));
        }
        if !self.filters.is_empty() {
            configuration.insert("filters".into(), json!(self.filters));
        }
        if !self.triggers.is_empty() {
            configuration.insert("triggers".into(), json!(self.triggers));
        }
        if let Some(flow_sid) = &self.flow_sid {
            configuration.insert("flow_sid".into(), json!(flow_sid));
        }
        configuration
    }

    /// A `webhook` gets the events its filters name; a `trigger` gets the
    /// messages holding one of its words; a `studio` webhook runs its flow on
    /// a message (when its filters, if any, name the event). `None`: the
    /// event passes it by.
    pub fn reaction(&self, fired: &Fired) -> Option<Reaction> {
        let named = self.filters.iter().any(|f| f == fired.event_type);
        let deliver = match self.kind {
            WebhookKind::Webhook => named,
            WebhookKind::Trigger => {
                fired.is_message() && triggers_match(&self.triggers, fired.body())
            }
            WebhookKind::Studio => {
                let runs = fired.is_message() && (named || self.filters.is_empty());
                let flow_sid = self.flow_sid.as_ref().filter(|_| runs)?;
                return Some(Reaction::RunFlow(flow_sid.clone()));
            }
        };
        let url = self.url.as_ref().filter(|_| deliver)?;
        Some(Reaction::Deliver {
            url: url.clone(),
            method: HookMethod::parse(&self.method).unwrap_or(HookMethod::Post),
        })
    }
}

/// One webhook of a channel or conversation that reacts to the event being
/// fanned out (the others are left out before anything is copied).
pub(crate) struct Listener {
    pub sid: String,
    /// What it does with the event.
    pub reaction: Reaction,
    /// Parameters that follow `WebhookSid` (Chat: `WebhookType`).
    pub extra: Vec<(&'static str, String)>,
    /// Extra attempts after a failed delivery.
    pub retries: u8,
}

/// Who hears a channel's or a conversation's events.
pub(crate) struct Audience {
    /// The channel or conversation: its deliveries keep their order.
    pub queue: String,
    /// `InstanceSid` (Chat) or `ChatServiceSid` (Conversations), and the service.
    pub service: (&'static str, String),
    pub listeners: Vec<Listener>,
}

impl World {
    /// Fires a channel event (see the module docs).
    pub(crate) fn fire(&mut self, channel_sid: &str, fired: Fired, actor: &Actor) {
        if !actor.fires_webhooks {
            return;
        }
        let Some(channel) = self.chat.channels.get(channel_sid) else {
            return;
        };
        let waiting_for_task = channel.flex.as_ref().is_some_and(|b| b.task_on_message);
        let listeners = channel.webhooks.iter().filter_map(|webhook| {
            Some(Listener {
                reaction: webhook.settings.reaction(&fired)?,
                sid: webhook.sid.clone(),
                extra: vec![("WebhookType", webhook.settings.kind.as_str().to_owned())],
                retries: webhook.retry_count,
            })
        });
        let audience = Audience {
            queue: channel_sid.to_owned(),
            service: ("InstanceSid", channel.service_sid.clone()),
            listeners: listeners.collect(),
        };
        self.fan_out(audience, &fired, actor);
        if waiting_for_task && fired.is_message() {
            self.create_flow_task(channel_sid, None);
        }
    }

    /// Queues one signed delivery of `fired` for each listener that wants
    /// it, in order, then runs the Studio flows it starts ("Send to Flex").
    pub(crate) fn fan_out(&mut self, audience: Audience, fired: &Fired, actor: &Actor) {
        let mut flows = Vec::new();
        for listener in &audience.listeners {
            match &listener.reaction {
                Reaction::Deliver { url, method } => {
                    self.deliver(&audience, listener, url, *method, fired, actor);
                }
                Reaction::RunFlow(flow_sid) => flows.push(flow_sid),
            }
        }
        let author = fired.author().unwrap_or_default();
        for flow_sid in flows {
            self.send_to_flex(&audience.queue, flow_sid, author);
        }
    }

    /// Queues one signed delivery: `AccountSid`, the service, `EventType`,
    /// `Source`, `ClientIdentity` (agents), `WebhookSid`, the listener's
    /// extra parameters, then the event's own.
    fn deliver(
        &mut self,
        audience: &Audience,
        listener: &Listener,
        url: &str,
        method: HookMethod,
        fired: &Fired,
        actor: &Actor,
    ) {
        let (service_name, service_sid) = &audience.service;
        let mut params: Vec<(String, String)> = vec![
            ("AccountSid".into(), self.credentials.account_sid.clone()),
            ((*service_name).into(), service_sid.clone()),
            ("EventType".into(), fired.event_type.to_owned()),
            ("Source".into(), actor.source.as_str().to_owned()),
        ];
        if let Some(identity) = &actor.identity {
            params.push(("ClientIdentity".into(), identity.clone()));
        }
        params.push(("WebhookSid".into(), listener.sid.clone()));
        let named = listener.extra.iter().chain(&fired.params);
        params.extend(named.map(|(name, value)| ((*name).to_owned(), value.clone())));
        let job = Job {
            generation: self.generation,
            channel_sid: audience.queue.clone(),
            queue: audience.queue.clone(),
            webhook_sid: listener.sid.clone(),
            url: url.to_owned(),
            method,
            event_type: fired.event_type.to_owned(),
            params,
            retries: listener.retries,
        };
        self.enqueue_webhook(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_words_match_whole_words_in_any_case() {
        let triggers = vec!["help".to_owned(), "agent".to_owned()];
        assert!(triggers_match(&triggers, Some("I need HELP, please")));
        assert!(!triggers_match(&triggers, Some("helpful people")));
        assert!(!triggers_match(&triggers, None));
    }
}
