//! Conversations v1 handlers: services (list, fetch: the Flex Chat Service
//! is the one), conversations (create, list with `State`,
//! `StartDate`, `EndDate`; fetch, update, delete — by CH SID or unique
//! name), participants (create, list, fetch, delete — by MB SID or
//! identity), messages (create, list with `Order`, fetch) and scoped
//! webhooks (create, list, fetch, delete; at most 5). The same handlers
//! serve `/v1/Conversations/…` (the default service: the bootstrapped Flex
//! Chat Service) and `/v1/Services/{ChatServiceSid}/Conversations/…`.
//! Behaviour lives in `world/conversations/`.
//!
//! The emulator emulates chat conversations: a message needs a `Body`
//! (media and content templates are not emulated), and a participant an
//! `Identity` or an SMS-style `MessagingBinding.Address` +
//! `MessagingBinding.ProxyAddress`.

use serde_json::Value;

use super::error::ApiError;
use super::page::{self, CHAT, WEBHOOKS};
use super::params::Params;
use super::webhook_config::{ConfigParams, Dialect};
use super::{Call, Reply};
use crate::clock::Instant;
use crate::sid::Prefix;
use crate::world::World;
use crate::world::conversations::changes::{
    ConversationChange, NewConversationMessage, NewParticipant, TimerSettings,
};
use crate::world::conversations::events::CONVERSATION_EVENTS;
use crate::world::conversations::model::MessagingBinding;
use crate::world::conversations::timers::TimerDuration;
use crate::world::conversations::{Conversation, ConversationState, Scope};

/// Conversations' flavour of the webhook settings.
const DIALECT: Dialect = Dialect {
    events: &CONVERSATION_EVENTS,
    product: "a Conversations post-event",
    lowercase_method: true,
    too_many_triggers: 50362,
    bad_trigger: 50366,
};

pub(super) fn list_services(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let render = call.render(world);
    let items = world
        .chat
        .services
        .iter()
        .map(|service| service.to_conversations_json(&render))
        .collect();
    page::page(call, CHAT, "services", items).map(Reply::Ok)
}

pub(super) fn fetch_service(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let service = world
        .service(call.path_param("Sid"))
        .map_err(|e| call.fail(e))?;
    Ok(Reply::Ok(
        service.to_conversations_json(&call.render(world)),
    ))
}

impl Call {
    /// The URL family and the service the path names (the default service
    /// on `/v1/Conversations/…`).
    fn conversation_scope(&self, world: &World) -> (Scope, String) {
        if self.route.path_params().any(|p| p == "ChatServiceSid") {
            (Scope::Service, self.path_param("ChatServiceSid").to_owned())
        } else {
            (Scope::Default, world.bootstrap.chat_service_sid.clone())
        }
    }

    /// The conversation the path names in `param` (`Sid` or `ConversationSid`).
    fn conversation<'w>(
        &self,
        world: &'w World,
        param: &str,
    ) -> Result<(Scope, &'w Conversation), ApiError> {
        let (scope, service_sid) = self.conversation_scope(world);
        let conversation = world
            .find_conversation(&service_sid, self.path_param(param))
            .map_err(|e| self.fail(e))?;
        Ok((scope, conversation))
    }
}

fn timer(params: &Params, name: &str) -> Result<Option<Option<TimerDuration>>, ApiError> {
    params
        .get(name)
        .map(|value| match value {
            "" => Ok(None),
            text => TimerDuration::parse(text)
                .map(Some)
                .map_err(|why| ApiError::invalid_param(name, why)),
        })
        .transpose()
}

impl ConversationChange {
    fn parse(params: &Params) -> Result<Self, ApiError> {
        let state = params
            .choice("State", &ConversationState::NAMES)?
            .and_then(|state| ConversationState::parse(&state));
        Ok(Self {
            friendly_name: params.text("FriendlyName"),
            unique_name: params.text("UniqueName").filter(|name| !name.is_empty()),
            attributes: params.json("Attributes")?,
            messaging_service_sid: params.sid("MessagingServiceSid", Prefix::MessagingService)?,
            state,
            timers: TimerSettings {
                inactive: timer(params, "Timers.Inactive")?,
                closed: timer(params, "Timers.Closed")?,
            },
            email_address: params.text("Bindings.Email.Address"),
            email_name: params.text("Bindings.Email.Name"),
            dates: params.dates()?,
        })
    }
}

fn conversation_reply(
    world: &World,
    call: &Call,
    scope: Scope,
    sid: &str,
) -> Result<Value, ApiError> {
    let conversation = world
        .conversations
        .get(sid)
        .ok_or_else(|| ApiError::not_found(&call.path))?;
    Ok(conversation.to_json(scope, &call.render(world)))
}

pub(super) fn create_conversation(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let change = ConversationChange::parse(&call.params)?;
    let (scope, service_sid) = call.conversation_scope(world);
    let sid = world
        .create_conversation(&service_sid, change)
        .map_err(|e| call.fail(e))?;
    conversation_reply(world, call, scope, &sid).map(Reply::Created)
}

/// `StartDate` / `EndDate`: a day (`2024-01-31`, its start or its end) or
/// an instant.
fn date_bound(params: &Params, name: &str, end_of_day: bool) -> Result<Option<Instant>, ApiError> {
    params
        .get(name)
        .filter(|value| !value.is_empty())
        .map(|value| {
            let instant = if value.len() == 10 {
                let time = if end_of_day {
                    "T23:59:59.999Z"
                } else {
                    "T00:00:00Z"
                };
                Instant::parse(&format!("{value}{time}"))
            } else {
                Instant::parse(value)
            };
            instant.ok_or_else(|| {
                ApiError::invalid_param(name, "must be an ISO-8601 date (YYYY-MM-DD)")
            })
        })
        .transpose()
}

pub(super) fn list_conversations(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let params = &call.params;
    let state = params
        .choice("State", &ConversationState::NAMES)?
        .and_then(|state| ConversationState::parse(&state));
    let start = date_bound(params, "StartDate", false)?;
    let end = date_bound(params, "EndDate", true)?;
    let (scope, service_sid) = call.conversation_scope(world);
    world.service(&service_sid).map_err(|e| call.fail(e))?;
    let render = call.render(world);
    let items = world
        .conversations
        .iter()
        .filter(|c| c.service_sid == service_sid)
        .filter(|c| state.is_none_or(|state| c.state == state))
        .filter(|c| start.is_none_or(|start| c.created >= start))
        .filter(|c| end.is_none_or(|end| c.created <= end))
        .map(|c| c.to_json(scope, &render))
        .collect();
    page::page(call, CHAT, "conversations", items).map(Reply::Ok)
}

pub(super) fn fetch_conversation(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let (scope, conversation) = call.conversation(world, "Sid")?;
    Ok(Reply::Ok(conversation.to_json(scope, &call.render(world))))
}

pub(super) fn update_conversation(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let change = ConversationChange::parse(&call.params)?;
    let (scope, service_sid) = call.conversation_scope(world);
    let sid = world
        .update_conversation(&service_sid, call.path_param("Sid"), change, &call.actor())
        .map_err(|e| call.fail(e))?;
    conversation_reply(world, call, scope, &sid).map(Reply::Ok)
}

pub(super) fn delete_conversation(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let (_, service_sid) = call.conversation_scope(world);
    world
        .delete_conversation(&service_sid, call.path_param("Sid"), &call.actor())
        .map_err(|e| call.fail(e))?;
    Ok(Reply::NoContent)
}

fn participant_reply(world: &World, call: &Call, sid: &str) -> Result<Value, ApiError> {
    let (scope, conversation) = call.conversation(world, "ConversationSid")?;
    let participant = conversation
        .participant(sid)
        .ok_or_else(|| ApiError::not_found(&call.path))?;
    Ok(participant.to_json(conversation, scope, &call.render(world)))
}

pub(super) fn create_participant(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let params = &call.params;
    let identity = params
        .text("Identity")
        .filter(|identity| !identity.is_empty());
    let address = params
        .text("MessagingBinding.Address")
        .filter(|a| !a.is_empty());
    let binding = match (&identity, address) {
        (None, None) => return Err(ApiError::missing_param("Identity")),
        (_, None) => None,
        (_, Some(address)) => Some(MessagingBinding {
            address: Some(address),
            proxy_address: Some(params.required("MessagingBinding.ProxyAddress")?),
            projected_address: params.text("MessagingBinding.ProjectedAddress"),
        }),
    };
    let new = NewParticipant {
        identity,
        binding,
        attributes: params.json("Attributes")?,
        role_sid: params.sid("RoleSid", Prefix::Role)?,
        dates: params.dates()?,
    };
    let conversation_sid = call.conversation(world, "ConversationSid")?.1.sid.clone();
    let sid = world
        .add_participant(&conversation_sid, new, &call.actor())
        .map_err(|e| call.fail(e))?;
    participant_reply(world, call, &sid).map(Reply::Created)
}

pub(super) fn list_participants(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let (scope, conversation) = call.conversation(world, "ConversationSid")?;
    let render = call.render(world);
    let items = conversation
        .participants
        .iter()
        .map(|p| p.to_json(conversation, scope, &render))
        .collect();
    page::page(call, CHAT, "participants", items).map(Reply::Ok)
}

pub(super) fn fetch_participant(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    participant_reply(world, call, call.path_param("Sid")).map(Reply::Ok)
}

pub(super) fn delete_participant(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let conversation_sid = call.conversation(world, "ConversationSid")?.1.sid.clone();
    world
        .remove_participant(&conversation_sid, call.path_param("Sid"), &call.actor())
        .map_err(|e| call.fail(e))?;
    Ok(Reply::NoContent)
}

fn message_reply(world: &World, call: &Call, sid: &str) -> Result<Value, ApiError> {
    let (scope, conversation) = call.conversation(world, "ConversationSid")?;
    let message = conversation
        .messages
        .iter()
        .find(|m| m.sid == sid)
        .ok_or_else(|| ApiError::not_found(&call.path))?;
    Ok(message.to_json(conversation, scope, &call.render(world)))
}

pub(super) fn create_message(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let params = &call.params;
    let media_sid = params.sid("MediaSid", Prefix::Media)?;
    // A message has a body, a file, or both.
    let body = match &media_sid {
        Some(_) => params.text("Body"),
        None => Some(params.required("Body")?),
    };
    let new = NewConversationMessage {
        author: params.text("Author").filter(|author| !author.is_empty()),
        body,
        attributes: params.json("Attributes")?,
        dates: params.dates()?,
        media_sid,
    };
    let conversation_sid = call.conversation(world, "ConversationSid")?.1.sid.clone();
    let sid = world
        .post_conversation_message(&conversation_sid, new, &call.actor())
        .map_err(|e| call.fail(e))?;
    message_reply(world, call, &sid).map(Reply::Created)
}

pub(super) fn list_messages(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let descending = call.params.choice("Order", &["asc", "desc"])?.as_deref() == Some("desc");
    let (scope, conversation) = call.conversation(world, "ConversationSid")?;
    let render = call.render(world);
    let json = |m: &crate::world::conversations::model::ConversationMessage| {
        m.to_json(conversation, scope, &render)
    };
    let items = if descending {
        conversation.messages.iter().rev().map(json).collect()
    } else {
        conversation.messages.iter().map(json).collect()
    };
    page::page(call, CHAT, "messages", items).map(Reply::Ok)
}

pub(super) fn fetch_message(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    message_reply(world, call, call.path_param("Sid")).map(Reply::Ok)
}

fn webhook_reply(world: &World, call: &Call, sid: &str) -> Result<Value, ApiError> {
    let (scope, conversation) = call.conversation(world, "ConversationSid")?;
    let webhook = conversation
        .webhooks
        .get(sid)
        .ok_or_else(|| ApiError::not_found(&call.path))?;
    Ok(webhook.to_json(conversation, scope, &call.render(world)))
}

pub(super) fn create_webhook(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let params = &call.params;
    let settings = ConfigParams::new_webhook(params, "Target", DIALECT)?;
    if let Some(flow_sid) = &settings.flow_sid
        && !world.studio.flows.contains(flow_sid)
    {
        return Err(ApiError::invalid_param(
            "Configuration.FlowSid",
            "no Studio Flow has this SID",
        ));
    }
    let replay_after = params.number("Configuration.ReplayAfter")?;
    let conversation_sid = call.conversation(world, "ConversationSid")?.1.sid.clone();
    let sid = world
        .add_conversation_webhook(&conversation_sid, settings, replay_after)
        .map_err(|e| call.fail(e))?;
    webhook_reply(world, call, &sid).map(Reply::Created)
}

pub(super) fn list_webhooks(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let (scope, conversation) = call.conversation(world, "ConversationSid")?;
    let render = call.render(world);
    let items = conversation
        .webhooks
        .iter()
        .map(|w| w.to_json(conversation, scope, &render))
        .collect();
    page::page(call, WEBHOOKS, "webhooks", items).map(Reply::Ok)
}

pub(super) fn fetch_webhook(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    webhook_reply(world, call, call.path_param("Sid")).map(Reply::Ok)
}

pub(super) fn delete_webhook(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let conversation_sid = call.conversation(world, "ConversationSid")?.1.sid.clone();
    world
        .delete_conversation_webhook(&conversation_sid, call.path_param("Sid"))
        .map_err(|e| call.fail(e))?;
    Ok(Reply::NoContent)
}
