//! Read-only views: the whole state (`GET /_emulator/state`), the agents,
//! and one agent's work — what the agent console shows.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::Target;
use crate::api::base_url;
use crate::api::error::ApiError;
use crate::app::App;
use crate::world::conversations::Scope;
use crate::world::flex::flex_channel_json;
use crate::world::taskrouter::{ChannelRef, Reservation, ReservationStatus};
use crate::world::{Render, World};

pub(super) async fn state(State(app): State<Arc<App>>, headers: HeaderMap) -> Json<Value> {
    let base = base_url(&app, &headers);
    let world = app.lock();
    Json(dump(&world, &world.render(&base)))
}

/// Everything, resources in their Twilio JSON shape.
fn dump(world: &World, render: &Render<'_>) -> Value {
    let credentials = &world.credentials;
    let tr = &world.taskrouter;
    let chat = &world.chat;
    let bootstrap = &world.bootstrap;
    let channels: Vec<Value> = chat
        .channels
        .iter()
        .map(|channel| {
            let mut json = channel.to_json(render);
            if let Value::Object(map) = &mut json {
                let members = channel.members.iter().map(|m| m.to_json(channel, render));
                let webhooks = channel.webhooks.iter().map(|w| w.to_json(channel, render));
                let messages = channel.messages.iter();
                let messages = messages.map(|m| m.to_control_json(channel, render));
                map.insert("members".into(), Value::Array(members.collect()));
                map.insert("webhooks".into(), Value::Array(webhooks.collect()));
                map.insert("messages".into(), Value::Array(messages.collect()));
            }
            json
        })
        .collect();
    let flex_channels: Vec<Value> = chat
        .channels
        .iter()
        .filter_map(|c| {
            let binding = c.flex.as_ref()?;
            Some(flex_channel_json(
                &c.sid, binding, c.created, c.updated, render,
            ))
        })
        .collect();
    let conversations: Vec<Value> = world
        .conversations
        .iter()
        .map(|conversation| {
            let mut json = conversation.to_json(Scope::Default, render);
            if let Value::Object(map) = &mut json {
                let scope = Scope::Default;
                let participants = conversation.participants.iter();
                let webhooks = conversation.webhooks.iter();
                let messages = conversation.messages.iter();
                let participants = participants.map(|p| p.to_json(conversation, scope, render));
                let webhooks = webhooks.map(|w| w.to_json(conversation, scope, render));
                let messages = messages.map(|m| m.to_control_json(conversation, render));
                map.insert("participants".into(), Value::Array(participants.collect()));
                map.insert("webhooks".into(), Value::Array(webhooks.collect()));
                map.insert("messages".into(), Value::Array(messages.collect()));
            }
            json
        })
        .collect();
    let services: Vec<Value> = chat
        .services
        .iter()
        .map(|service| {
            json!({"sid": service.sid, "friendly_name": service.friendly_name, "date_created": service.created.rest()})
        })
        .collect();
    let users: Vec<Value> = chat
        .users
        .iter()
        .map(|u| u.to_json(world.joined_channels(&u.service_sid, &u.identity), render))
        .collect();
    json!({
        "generation": world.generation,
        "account": {
            "sid": credentials.account_sid,
            "auth_token": credentials.auth_token,
            "api_key_sid": credentials.api_key_sid,
            "api_key_secret": credentials.api_key_secret,
        },
        "bootstrap": bootstrap,
        "agents": tr.workers.iter().map(|w| world.agent_json(w)).collect::<Vec<_>>(),
        "workspace": tr.workspace_json(render),
        "workers": tr.workers.iter().map(|w| tr.worker_json(w, render)).collect::<Vec<_>>(),
        "flex_flows": world.flex_flows.iter().map(|f| f.to_json(render)).collect::<Vec<_>>(),
        "flex_chat_channels": flex_channels,
        "chat": {"services": services, "users": users, "channels": channels},
        "conversations": conversations,
        "interactions": world.interactions.iter().map(|i| i.dump(&world.taskrouter, render)).collect::<Vec<_>>(),
        "tasks": tr.tasks.iter().map(|t| tr.task_json(t, render)).collect::<Vec<_>>(),
        "reservations": tr.reservations.iter().map(|r| tr.reservation_json(r, render)).collect::<Vec<_>>(),
        "studio_flows": world.studio.flows.iter().map(|f| json!({"sid": f.sid, "friendly_name": f.friendly_name})).collect::<Vec<_>>(),
        "studio_executions": world.studio.executions.iter().map(|e| e.to_json(render)).collect::<Vec<_>>(),
    })
}

pub(super) async fn agents(State(app): State<Arc<App>>) -> Json<Value> {
    let world = app.lock();
    let agents = world
        .taskrouter
        .workers
        .iter()
        .map(|worker| world.agent_json(worker))
        .collect();
    Json(Value::Array(agents))
}

pub(super) async fn agent(
    State(app): State<Arc<App>>,
    target: Target,
) -> Result<Json<Value>, ApiError> {
    let world = app.lock();
    let worker = world.agent(target.agent()).map_err(|e| target.fail(e))?;
    let render = world.render(&target.base_url);
    let shown = [
        ReservationStatus::Pending,
        ReservationStatus::Accepted,
        ReservationStatus::Wrapping,
        ReservationStatus::Completed,
    ];
    let work: Vec<Value> = world
        .taskrouter
        .reservations
        .iter()
        .rev()
        .filter(|r| r.worker_sid == worker.sid && shown.contains(&r.status))
        .map(|r| work_item(&world, r, &render))
        .collect();
    Ok(Json(
        json!({ "agent": world.agent_json(worker), "work": work }),
    ))
}

/// The messages of a chat channel (`from`) or conversation (`author`), in
/// index order, in their Twilio JSON.
pub(super) fn messages(world: &World, place: &ChannelRef, render: &Render<'_>) -> Vec<Value> {
    match place {
        ChannelRef::Chat { channel_sid, .. } => world
            .chat
            .channels
            .get(channel_sid)
            .map(|c| {
                let messages = c.messages.iter();
                messages.map(|m| m.to_control_json(c, render)).collect()
            })
            .unwrap_or_default(),
        ChannelRef::Conversation {
            conversation_sid, ..
        } => world
            .conversations
            .get(conversation_sid)
            .map(|c| {
                let messages = c.messages.iter();
                messages.map(|m| m.to_control_json(c, render)).collect()
            })
            .unwrap_or_default(),
    }
}

/// Who the customer of a chat channel or conversation is: `(identity, name)`.
fn customer(world: &World, place: &ChannelRef) -> (Option<String>, Option<String>) {
    match place {
        ChannelRef::Chat { channel_sid, .. } => {
            let Some(channel) = world.chat.channels.get(channel_sid) else {
                return (None, None);
            };
            let agents: Vec<&str> = world
                .taskrouter
                .workers
                .iter()
                .map(|w| w.identity.as_str())
                .collect();
            let identity = channel
                .flex
                .as_ref()
                .map(|b| b.identity.clone())
                .or_else(|| {
                    channel
                        .members
                        .iter()
                        .find(|m| !agents.contains(&m.identity.as_str()))
                        .map(|m| m.identity.clone())
                });
            let name = channel
                .attributes_object()
                .get("from")
                .and_then(Value::as_str)
                .map(str::to_owned);
            (identity, name)
        }
        ChannelRef::Conversation {
            conversation_sid, ..
        } => {
            let name = world
                .conversations
                .get(conversation_sid)
                .and_then(|c| c.friendly_name.clone());
            (world.customer_of(conversation_sid), name)
        }
    }
}

/// One reservation as the console shows it: the task, the channel or
/// conversation, who the customer is, and the messages so far.
fn work_item(world: &World, reservation: &Reservation, render: &Render<'_>) -> Value {
    let tr = &world.taskrouter;
    let task = tr.tasks.get(&reservation.task_sid);
    let task_attributes: Value = task
        .and_then(|t| serde_json::from_str(&t.attributes).ok())
        .unwrap_or(Value::Null);
    let target = task.and_then(|t| t.target.as_ref());
    let (identity, place_name) = target.map_or((None, None), |place| customer(world, place));
    let name = task_attributes
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or(place_name);
    let messages = target.map_or_else(Vec::new, |place| messages(world, place, render));
    json!({
        "reservation": tr.reservation_json(reservation, render),
        "task": task.map(|t| tr.task_json(t, render)),
        "channel_sid": target.map(ChannelRef::channel_sid),
        "backend": target.map(ChannelRef::backend),
        "customer": {"identity": identity, "name": name},
        "ended_by": task.and_then(|t| t.ended_by).map(|by| by.as_str()),
        "messages": messages,
    })
}
