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
//! [`Fired`] (an event and its parameters) and [`Delivery`] (where it goes)
//! also serve the Conversations events (`conversations/events.rs`), so both
//! backends queue signed jobs the same way.

use super::chat::{Channel, ChannelWebhook, Member, Message, WebhookKind};
use super::{Actor, World};
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

const MESSAGE_SENT: &str = "onMessageSent";

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
        let mut fired = Self::new(MESSAGE_SENT);
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

impl World {
    /// Fires a channel event (see the module docs).
    pub(crate) fn fire(&mut self, channel_sid: &str, fired: Fired, actor: &Actor) {
        if !actor.fires_webhooks {
            return;
        }
        let Some(channel) = self.chat.channels.get(channel_sid) else {
            return;
        };
        let service_sid = channel.service_sid.clone();
        let waiting_for_task = channel.flex.as_ref().is_some_and(|b| b.task_on_message);
        let webhooks: Vec<ChannelWebhook> = channel.webhooks.iter().cloned().collect();
        let is_message = fired.event_type == MESSAGE_SENT;
        let body = fired.body();
        let mut studio_flows = Vec::new();
        for webhook in webhooks {
            let named = webhook.filters.iter().any(|f| f == fired.event_type);
            let deliver = match webhook.kind {
                WebhookKind::Webhook => named,
                WebhookKind::Trigger => is_message && triggers_match(&webhook.triggers, body),
                WebhookKind::Studio => {
                    if is_message
                        && (named || webhook.filters.is_empty())
                        && let Some(flow_sid) = &webhook.flow_sid
                    {
                        studio_flows.push(flow_sid.clone());
                    }
                    false
                }
            };
            if deliver && let Some(url) = webhook.url.clone() {
                let delivery = Delivery {
                    queue: channel_sid.to_owned(),
                    service: ("InstanceSid", service_sid.clone()),
                    webhook_sid: webhook.sid.clone(),
                    extra: vec![
                        ("WebhookSid", webhook.sid.clone()),
                        ("WebhookType", webhook.kind.as_str().to_owned()),
                    ],
                    url,
                    method: HookMethod::parse(&webhook.method).unwrap_or(HookMethod::Post),
                    retries: webhook.retry_count,
                };
                self.deliver(delivery, &fired, actor);
            }
        }
        if is_message {
            let author = fired.author().unwrap_or_default().to_owned();
            for flow_sid in studio_flows {
                self.send_to_flex(channel_sid, &flow_sid, &author);
            }
            if waiting_for_task {
                self.create_flow_task(channel_sid, None);
            }
        }
    }
}

/// Where one webhook delivery goes, and the parameters that head it after
/// `AccountSid`, `EventType`, `Source` and `ClientIdentity`.
pub(crate) struct Delivery {
    /// Deliveries with the same queue key keep their order (the channel or conversation).
    pub queue: String,
    /// The service parameter: `InstanceSid` (Chat) or `ChatServiceSid` (Conversations).
    pub service: (&'static str, String),
    pub webhook_sid: String,
    /// `WebhookSid`, `WebhookType`, …
    pub extra: Vec<(&'static str, String)>,
    pub url: String,
    pub method: HookMethod,
    pub retries: u8,
}

impl World {
    /// Queues one signed delivery of `fired` for the dispatcher.
    pub(crate) fn deliver(&mut self, delivery: Delivery, fired: &Fired, actor: &Actor) {
        let (service_name, service_sid) = delivery.service;
        let mut params: Vec<(String, String)> = vec![
            ("AccountSid".into(), self.credentials.account_sid.clone()),
            (service_name.into(), service_sid),
            ("EventType".into(), fired.event_type.to_owned()),
            ("Source".into(), actor.source.as_str().to_owned()),
        ];
        if let Some(identity) = &actor.identity {
            params.push(("ClientIdentity".into(), identity.clone()));
        }
        let named = delivery
            .extra
            .into_iter()
            .chain(fired.params.iter().cloned());
        params.extend(named.map(|(name, value)| (name.to_owned(), value)));
        let job = Job {
            generation: self.generation,
            channel_sid: delivery.queue.clone(),
            queue: delivery.queue,
            webhook_sid: delivery.webhook_sid,
            url: delivery.url,
            method: delivery.method,
            event_type: fired.event_type.to_owned(),
            params,
            retries: delivery.retries,
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
