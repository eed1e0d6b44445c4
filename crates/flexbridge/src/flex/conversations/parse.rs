//! Conversations webhook forms (docs/twilio-reference.md §7.2) as typed
//! [`FlexEvent`]s:
//!
//! - `onMessageAdded` by anyone but a customer of this bridge (or Flex's
//!   `system`) is an agent message, keyed by its `MessageSid`; the
//!   customer's own message coming back (`Author` = their identity) and a
//!   message without a body (media) are ignored.
//! - `onParticipantAdded` of an agent is "agent joined", keyed by the
//!   participant; a participant without an identity (SMS, WhatsApp) or the
//!   customer is ignored.
//! - `onConversationStateUpdated` with `StateTo=closed` ends the chat, once
//!   per conversation; `active` and `inactive` are ignored.
//!
//! Everything else is ignored; a form naming a malformed SID is an error.
//! The idempotency keys are shared with the catch-up after a restart.

use crate::core::backend::{FlexEvent, WebhookParseError};
use crate::core::ids::RemoteMessage;
use crate::flex::form::{Form, header};
use crate::flex::sid::{ChannelSid, MemberSid, MessageSid};
use crate::flex::{agents, messages};

/// The idempotency key of an agent message (webhook or catch-up alike).
pub(super) fn message_key(sid: &MessageSid) -> String {
    format!("conversations:message:{sid}")
}

/// The idempotency key of a conversation's end.
pub(super) fn ended_key(conversation: &ChannelSid) -> String {
    format!("conversations:ended:{conversation}")
}

/// The idempotency key of a participant joining.
pub(super) fn participant_key(conversation: &ChannelSid, participant: &str) -> String {
    format!("conversations:participant:{conversation}:{participant}")
}

/// A Conversations webhook's parameters as a [`FlexEvent`].
pub fn parse_webhook(params: &[(String, String)]) -> Result<FlexEvent, WebhookParseError> {
    let form = Form(params);
    let event_type = form.require("EventType")?;
    let ignored = |reason: &str| {
        Ok(FlexEvent::Ignored {
            event_type: event_type.to_owned(),
            reason: reason.to_owned(),
        })
    };
    match event_type {
        "onMessageAdded" => {
            let conversation = form.sid("ConversationSid", ChannelSid::parse)?;
            let message_sid = form.sid("MessageSid", MessageSid::parse)?;
            let author = form.require_text("Author")?;
            if !agents::is_agent_identity(author) {
                return ignored("the customer's own message (or Flex's)");
            }
            let body = form.get("Body").unwrap_or_default();
            // `Media`: a JSON array of `{Sid, Filename, ContentType, Size}`.
            let media = messages::media_of(form.json("Media")?.as_ref());
            if body.trim().is_empty() && media.is_none() {
                return ignored("an empty message");
            }
            Ok(FlexEvent::AgentMessage {
                header: header(event_type, message_key(&message_sid), &conversation),
                message: RemoteMessage::from(&message_sid),
                index: form.get("Index").and_then(|i| i.trim().parse().ok()),
                author: author.to_owned(),
                body: body.to_owned(),
                media,
            })
        }
        "onParticipantAdded" => {
            let conversation = form.sid("ConversationSid", ChannelSid::parse)?;
            let participant = form.sid("ParticipantSid", MemberSid::parse)?;
            let Some(identity) = form.get("Identity").filter(|i| !i.trim().is_empty()) else {
                return ignored("a participant without an identity (SMS, WhatsApp)");
            };
            if !agents::is_agent_identity(identity) {
                return ignored("the customer joined their own conversation");
            }
            Ok(FlexEvent::AgentJoined {
                header: header(
                    event_type,
                    participant_key(&conversation, participant.as_str()),
                    &conversation,
                ),
                agent: identity.to_owned(),
            })
        }
        "onConversationStateUpdated" => {
            let conversation = form.sid("ConversationSid", ChannelSid::parse)?;
            match form.require("StateTo")? {
                "closed" => Ok(FlexEvent::ChatEnded {
                    header: header(event_type, ended_key(&conversation), &conversation),
                }),
                "inactive" => {
                    ignored("inactive (idle): the customer's next message reactivates it")
                }
                _ => ignored("the conversation is not closed"),
            }
        }
        _ => ignored("an event the bridge does not use"),
    }
}
