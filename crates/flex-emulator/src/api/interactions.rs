//! Flex v1 Interactions handlers: interactions (create — answering 200, as
//! the spec declares —, fetch, update), their channels (list, fetch, update
//! `Status` closed|inactive) and channel participants (create, list,
//! update). What Flex does lives in `world/interactions/`.

use serde_json::{Map, Value};

use super::error::ApiError;
use super::page::{self, WIDE};
use super::{Call, Reply};
use crate::sid::Prefix;
use crate::world::interactions::orchestration::NewInteraction;
use crate::world::interactions::{ChannelStatus, Interaction, InteractionChannel, ParticipantType};
use crate::world::{Actor, World};

fn interaction<'w>(
    world: &'w World,
    call: &Call,
    param: &str,
) -> Result<&'w Interaction, ApiError> {
    world
        .interactions
        .get(call.path_param(param))
        .ok_or_else(|| ApiError::not_found(&call.path))
}

fn channel<'w>(
    world: &'w World,
    call: &Call,
    param: &str,
) -> Result<(&'w Interaction, &'w InteractionChannel), ApiError> {
    let interaction = interaction(world, call, "InteractionSid")?;
    let channel = interaction
        .channels
        .get(call.path_param(param))
        .ok_or_else(|| ApiError::not_found(&call.path))?;
    Ok((interaction, channel))
}

fn interaction_reply(world: &World, call: &Call, sid: &str) -> Result<Value, ApiError> {
    let interaction = world
        .interactions
        .get(sid)
        .ok_or_else(|| ApiError::not_found(&call.path))?;
    Ok(interaction.to_json(&world.taskrouter, &call.render(world)))
}

pub(super) fn create_interaction(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let params = &call.params;
    params.required("Channel")?;
    let new = NewInteraction {
        channel: params.json_object("Channel")?.unwrap_or_default(),
        routing: params.json_object("Routing")?,
        context_sid: params.sid("InteractionContextSid", Prefix::InteractionContext)?,
        webhook_ttid: params.text("WebhookTtid"),
    };
    let sid = world.create_interaction(new).map_err(|e| call.fail(e))?;
    interaction_reply(world, call, &sid).map(Reply::Ok)
}

pub(super) fn fetch_interaction(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let sid = interaction(world, call, "Sid")?.sid.clone();
    interaction_reply(world, call, &sid).map(Reply::Ok)
}

pub(super) fn update_interaction(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let sid = interaction(world, call, "Sid")?.sid.clone();
    if let Some(ttid) = call.params.text("WebhookTtid")
        && let Some(interaction) = world.interactions.get_mut(&sid)
    {
        interaction.webhook_ttid = Some(ttid);
    }
    interaction_reply(world, call, &sid).map(Reply::Ok)
}

pub(super) fn list_channels(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let interaction = interaction(world, call, "InteractionSid")?;
    let render = call.render(world);
    let items = interaction
        .channels
        .iter()
        .map(|c| c.to_json(&interaction.sid, &render))
        .collect();
    page::page(call, WIDE, "channels", items).map(Reply::Ok)
}

pub(super) fn fetch_channel(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let (interaction, channel) = channel(world, call, "Sid")?;
    Ok(Reply::Ok(
        channel.to_json(&interaction.sid, &call.render(world)),
    ))
}

/// `Routing` of an update: only `{"status": "closed"}` means something
/// (the tasks complete instead of wrapping).
fn routing_closes_tasks(routing: Option<&Map<String, Value>>) -> Result<bool, ApiError> {
    match routing.map(|r| r.get("status")) {
        None | Some(None) => Ok(false),
        Some(Some(Value::String(status))) if status == "closed" => Ok(true),
        Some(Some(_)) => Err(ApiError::invalid_param("Routing", "status must be closed")),
    }
}

pub(super) fn update_channel(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let params = &call.params;
    params.required("Status")?;
    let status = match params.choice("Status", &["closed", "inactive"])?.as_deref() {
        Some("inactive") => ChannelStatus::Inactive,
        _ => ChannelStatus::Closed,
    };
    let routing = params.json_object("Routing")?;
    let complete = routing_closes_tasks(routing.as_ref())?;
    if status == ChannelStatus::Inactive && !complete {
        return Err(ApiError::invalid_param(
            "Routing",
            r#"is required with Status=inactive and must be {"status":"closed"}"#,
        ));
    }
    let (interaction_sid, channel_sid) = {
        let (interaction, channel) = channel(world, call, "Sid")?;
        (interaction.sid.clone(), channel.sid.clone())
    };
    world
        .close_interaction_channel(
            &interaction_sid,
            &channel_sid,
            status,
            complete,
            &Actor::service(),
        )
        .map_err(|e| call.fail(e))?;
    let (interaction, channel) = channel(world, call, "Sid")?;
    Ok(Reply::Ok(
        channel.to_json(&interaction.sid, &call.render(world)),
    ))
}

fn participant_reply(world: &World, call: &Call, sid: &str) -> Result<Value, ApiError> {
    let (interaction, channel) = channel(world, call, "ChannelSid")?;
    let participant = channel
        .participants
        .get(sid)
        .ok_or_else(|| ApiError::not_found(&call.path))?;
    Ok(participant.to_json(&interaction.sid, channel, &call.render(world)))
}

pub(super) fn create_participant(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let params = &call.params;
    params.required("Type")?;
    params.required("MediaProperties")?;
    let kind = params
        .choice("Type", &ParticipantType::NAMES)?
        .and_then(|kind| ParticipantType::parse(&kind))
        .ok_or_else(|| ApiError::missing_param("Type"))?;
    let media = params
        .json_object("MediaProperties")?
        .map_or(Value::Null, Value::Object);
    let routing = params
        .json_object("RoutingProperties")?
        .map_or(Value::Null, Value::Object);
    let (interaction_sid, channel_sid) = {
        let (interaction, channel) = channel(world, call, "ChannelSid")?;
        (interaction.sid.clone(), channel.sid.clone())
    };
    let sid = world
        .add_interaction_participant(&interaction_sid, &channel_sid, kind, media, routing)
        .map_err(|e| call.fail(e))?;
    participant_reply(world, call, &sid).map(Reply::Ok)
}

pub(super) fn list_participants(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let (interaction, channel) = channel(world, call, "ChannelSid")?;
    let render = call.render(world);
    let items = channel
        .participants
        .iter()
        .map(|p| p.to_json(&interaction.sid, channel, &render))
        .collect();
    page::page(call, WIDE, "participants", items).map(Reply::Ok)
}

pub(super) fn update_participant(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let params = &call.params;
    params.required("Status")?;
    let status = params
        .choice("Status", &["closed", "wrapup"])?
        .ok_or_else(|| ApiError::missing_param("Status"))?;
    let (interaction_sid, channel_sid) = {
        let (interaction, channel) = channel(world, call, "ChannelSid")?;
        (interaction.sid.clone(), channel.sid.clone())
    };
    world
        .update_interaction_participant(
            &interaction_sid,
            &channel_sid,
            call.path_param("Sid"),
            &status,
        )
        .map_err(|e| call.fail(e))?;
    participant_reply(world, call, call.path_param("Sid")).map(Reply::Ok)
}
