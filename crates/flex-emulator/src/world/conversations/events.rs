//! Conversation events (`docs/twilio-reference.md` §7.2) and where they go: a
//! `webhook` scoped webhook gets the events its `Configuration.Filters` name;
//! a `trigger` webhook gets `onMessageAdded` when the body holds one of its
//! words; a `studio` webhook runs its flow ("Send to Flex", `executions.rs`) on
//! `onMessageAdded`. Deliveries are queued per conversation (FIFO), signed
//! and retried by the shared dispatcher.
//!
//! Every delivery carries `AccountSid`, `ChatServiceSid`, `EventType`,
//! `Source`, `ClientIdentity` (agents), `WebhookSid`, `RetryCount` (added per
//! attempt), then the event's own parameters. Nothing fires unless the actor
//! allows it: REST calls need `X-Twilio-Webhook-Enabled: true`; agents,
//! timers and Flex itself always fire. Conversation-scoped webhooks get no
//! retries (the Conversations API has no `RetryCount` setting for them).

use serde_json::json;

use super::model::{Conversation, ConversationMessage, Participant};
use super::state::{ConversationState, StateReason};
use crate::clock::Instant;
use crate::world::World;
use crate::world::actor::Actor;
use crate::world::hooks::{Audience, Fired, Listener};

/// The post-events of `docs/twilio-reference.md` §7.2, which scoped webhooks
/// may filter on (scoped webhooks carry post-events only). The emulator fires
/// `onMessageAdded`, `onConversationUpdated`, `onConversationRemoved`,
/// `onConversationStateUpdated`, `onParticipantAdded` and
/// `onParticipantRemoved`.
pub(crate) const CONVERSATION_EVENTS: [&str; 13] = [
    "onMessageAdded",
    "onMessageUpdated",
    "onMessageRemoved",
    "onConversationAdded",
    "onConversationUpdated",
    "onConversationRemoved",
    "onConversationStateUpdated",
    "onParticipantAdded",
    "onParticipantUpdated",
    "onParticipantRemoved",
    "onDeliveryUpdated",
    "onUserAdded",
    "onUserUpdated",
];

/// `onConversationUpdated` / `onConversationRemoved` parameters.
pub(crate) fn conversation_event(event_type: &'static str, conversation: &Conversation) -> Fired {
    let mut fired = Fired::new(event_type);
    fired.push("ConversationSid", conversation.sid.clone());
    fired.push("DateCreated", conversation.created.webhook());
    fired.push("DateUpdated", conversation.updated.webhook());
    fired.push_some("FriendlyName", conversation.friendly_name.as_deref());
    fired.push_some("UniqueName", conversation.unique_name.as_deref());
    fired.push("Attributes", conversation.attributes.clone());
    fired.push_some(
        "MessagingServiceSid",
        conversation.messaging_service_sid.as_deref(),
    );
    fired.push("State", conversation.state.as_str().to_owned());
    fired
}

/// `onConversationStateUpdated` parameters.
pub(crate) fn state_event(
    conversation: &Conversation,
    from: ConversationState,
    reason: StateReason,
    at: Instant,
) -> Fired {
    let mut fired = Fired::new("onConversationStateUpdated");
    fired.push("ConversationSid", conversation.sid.clone());
    fired.push("StateUpdated", at.webhook());
    fired.push("StateFrom", from.as_str().to_owned());
    fired.push("StateTo", conversation.state.as_str().to_owned());
    fired.push("Reason", reason.as_str().to_owned());
    fired.push_some(
        "MessagingServiceSid",
        conversation.messaging_service_sid.as_deref(),
    );
    fired
}

/// `onParticipantAdded` / `onParticipantRemoved` parameters.
pub(crate) fn participant_event(
    event_type: &'static str,
    conversation_sid: &str,
    participant: &Participant,
) -> Fired {
    let mut fired = Fired::new(event_type);
    fired.push("ConversationSid", conversation_sid.to_owned());
    fired.push("ParticipantSid", participant.sid.clone());
    fired.push("DateCreated", participant.created.webhook());
    fired.push_some("Identity", participant.identity.as_deref());
    fired.push("RoleSid", participant.role_sid.clone());
    fired.push("Attributes", participant.attributes.clone());
    if let Some(binding) = &participant.binding {
        fired.push_some("MessagingBinding.Address", binding.address.as_deref());
        fired.push_some(
            "MessagingBinding.ProxyAddress",
            binding.proxy_address.as_deref(),
        );
        fired.push_some(
            "MessagingBinding.ProjectedAddress",
            binding.projected_address.as_deref(),
        );
        fired.push("MessagingBinding.Type", "SMS".to_owned());
    }
    fired
}

/// `onMessageAdded` parameters.
pub(crate) fn message_event(conversation: &Conversation, message: &ConversationMessage) -> Fired {
    let mut fired = Fired::new("onMessageAdded");
    fired.push("ConversationSid", conversation.sid.clone());
    fired.push("MessageSid", message.sid.clone());
    fired.push_some(
        "MessagingServiceSid",
        conversation.messaging_service_sid.as_deref(),
    );
    fired.push("Index", message.index.to_string());
    fired.push("DateCreated", message.created.webhook());
    fired.push_some("Body", message.body.as_deref());
    fired.push("Author", message.author.clone());
    fired.push_some("ParticipantSid", message.participant_sid.as_deref());
    fired.push("Attributes", message.attributes.clone());
    if let Some(media) = &message.media {
        fired.push("Media", json!([media.to_webhook_json()]).to_string());
    }
    fired.with_message(message.body.clone(), message.author.clone())
}

impl World {
    /// Fires a conversation event (see the module docs).
    pub(crate) fn fire_conversation(
        &mut self,
        conversation_sid: &str,
        fired: Fired,
        actor: &Actor,
    ) {
        if !actor.fires_webhooks {
            return;
        }
        let Some(conversation) = self.conversations.get(conversation_sid) else {
            return;
        };
        let listeners = conversation.webhooks.iter().filter_map(|webhook| {
            Some(Listener {
                reaction: webhook.settings.reaction(&fired)?,
                sid: webhook.sid.clone(),
                extra: Vec::new(),
                retries: 0,
            })
        });
        let audience = Audience {
            queue: conversation_sid.to_owned(),
            service: ("ChatServiceSid", conversation.service_sid.clone()),
            listeners: listeners.collect(),
        };
        self.fan_out(audience, &fired, actor);
    }
}
