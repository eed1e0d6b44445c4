//! What a webhook is and does, the same for both backends: its settings
//! ([`HookSettings`]: a Chat channel webhook's or a Conversations scoped
//! webhook's `Type` / `Target` and `Configuration.*`, of a [`WebhookKind`]),
//! an event about to fire ([`Fired`]: its type and parameters), and who
//! hears it ([`Audience`], [`Listener`], [`Reaction`]). Plain data:
//! `fan_out.rs` queues the deliveries and runs the flows; `chat.rs` and
//! `conversations/events.rs` build each backend's events.

use serde_json::{Value, json};

use crate::webhooks::HookMethod;

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

    /// The event-specific parameters, in order.
    pub fn params(&self) -> &[(&'static str, String)] {
        &self.params
    }

    /// `onMessageSent` (Chat) or `onMessageAdded` (Conversations).
    pub fn is_message(&self) -> bool {
        self.message.is_some()
    }
}

/// True when the body holds one of the trigger words (whole word, any case).
pub(crate) fn triggers_match(triggers: &[String], body: Option<&str>) -> bool {
    let Some(body) = body else { return false };
    body.split(|c: char| !c.is_alphanumeric())
        .any(|word| triggers.iter().any(|t| t.eq_ignore_ascii_case(word)))
}

/// Where a channel webhook or a scoped webhook delivers: a URL, a URL on
/// trigger words, or a Studio flow (Chat's `Type`, `channel_webhook_enum_type`
/// in `spec/twilio-oai/twilio_chat_v2.json`; Conversations' `Target`,
/// `conversation_scoped_webhook_enum_target` in
/// `spec/twilio-oai/twilio_conversations_v1.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WebhookKind {
    Webhook,
    Trigger,
    Studio,
}

impl WebhookKind {
    pub const NAMES: [&'static str; 3] = ["webhook", "trigger", "studio"];

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "webhook" => Some(Self::Webhook),
            "trigger" => Some(Self::Trigger),
            "studio" => Some(Self::Studio),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::Webhook => "webhook",
            WebhookKind::Trigger => "trigger",
            WebhookKind::Studio => "studio",
        }
    }
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
