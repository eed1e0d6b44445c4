//! Chat webhook forms (docs/twilio-reference.md §7.1) as typed [`FlexEvent`]s: an
//! agent's message (`onMessageSent`, not `Source=API`, not from a
//! customer), an agent joining (`onMemberAdded`), the chat's end
//! (`onChannelUpdated` with `Attributes.status` `INACTIVE`). Everything else
//! is ignored; a form that names a malformed SID or JSON is an error.
//! The idempotency keys are shared with the catch-up after a restart.

use crate::core::attachment::RemoteMedia;
use crate::core::backend::{FlexEvent, WebhookParseError};
use crate::core::ids::RemoteMessage;
use crate::flex::form::{Form, header};
use crate::flex::sid::{ChannelSid, FlexIdentity, MessageSid};

/// The idempotency key of an agent message (webhook or catch-up alike).
pub(super) fn message_key(sid: &MessageSid) -> String {
    format!("chat:message:{sid}")
}

/// The idempotency key of a member (an agent) joining.
pub(super) fn member_key(channel: &ChannelSid, member: &str) -> String {
    format!("chat:member:{channel}:{member}")
}

/// The idempotency key of a chat's end.
pub(super) fn ended_key(channel: &ChannelSid) -> String {
    format!("chat:ended:{channel}")
}

/// A Chat webhook's parameters as a [`FlexEvent`] (docs/twilio-reference.md §7.1).
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
        // A file's message comes as `onMediaMessageSent` (whether Chat
        // also sends `onMessageSent` for it is not documented; both are
        // keyed by the message, so one is applied).
        "onMessageSent" | "onMediaMessageSent" => {
            let channel = form.sid("ChannelSid", ChannelSid::parse)?;
            let message_sid = form.sid("MessageSid", MessageSid::parse)?;
            let author = form.require("From")?;
            if form.get("Source") == Some("API") {
                return ignored("our own message (Source=API)");
            }
            if FlexIdentity::customer_of(author).is_some() {
                return ignored("a customer's message");
            }
            let body = form.get("Body").unwrap_or_default();
            let media = form
                .get("MediaSid")
                .filter(|sid| !sid.is_empty())
                .map(|sid| RemoteMedia {
                    sid: sid.to_owned(),
                    filename: form.get("MediaFilename").map(str::to_owned),
                    content_type: form
                        .get("MediaContentType")
                        .unwrap_or("application/octet-stream")
                        .to_ascii_lowercase(),
                    size: form
                        .get("MediaSize")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                });
            if body.trim().is_empty() && media.is_none() {
                return ignored("an empty message");
            }
            Ok(FlexEvent::AgentMessage {
                header: header(event_type, message_key(&message_sid), &channel),
                message: RemoteMessage::from(&message_sid),
                index: form.get("Index").and_then(|i| i.trim().parse().ok()),
                author: author.to_owned(),
                body: body.to_owned(),
                media,
            })
        }
        "onChannelUpdated" => {
            let channel = form.sid("ChannelSid", ChannelSid::parse)?;
            let Some(attributes) = form.json("Attributes")? else {
                return ignored("no attributes");
            };
            if attributes.get("status").and_then(serde_json::Value::as_str) != Some("INACTIVE") {
                return ignored("the channel is still active");
            }
            Ok(FlexEvent::ChatEnded {
                header: header(event_type, ended_key(&channel), &channel),
            })
        }
        "onMemberAdded" => {
            let channel = form.sid("ChannelSid", ChannelSid::parse)?;
            let identity = form.require_text("Identity")?;
            if FlexIdentity::customer_of(identity).is_some() {
                return ignored("the customer joined their own channel");
            }
            let member = form.get("MemberSid").unwrap_or(identity);
            Ok(FlexEvent::AgentJoined {
                header: header(event_type, member_key(&channel, member), &channel),
                agent: identity.to_owned(),
            })
        }
        _ => ignored("an event the bridge does not use"),
    }
}
