//! Chat v2 handlers for messages (create, list with `Order`, fetch),
//! members (create, list with `Identity`, delete by MB SID or identity) and
//! users (create, fetch by US SID or identity).

use super::chat::{channel_item, path_channel};
use super::error::ApiError;
use super::page::{self, CHAT};
use super::{Call, Reply};
use crate::sid::Prefix;
use crate::world::World;
use crate::world::channels::{NewMember, NewMessage, NewUser};
use crate::world::chat::{Member, Message};

pub(super) fn create_message(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let params = &call.params;
    let new = NewMessage {
        from: params.text("From").filter(|from| !from.is_empty()),
        body: params.text("Body"),
        attributes: params.json("Attributes")?,
        dates: params.dates()?,
        media_sid: params.sid("MediaSid", Prefix::Media)?,
    };
    let channel_sid = path_channel(world, call, "ChannelSid")?.sid.clone();
    let sid = world
        .post_message(&channel_sid, new, &call.actor())
        .map_err(|e| call.fail(e))?;
    message_reply(world, call, &channel_sid, &sid).map(Reply::Created)
}

fn message_reply(
    world: &World,
    call: &Call,
    channel_sid: &str,
    sid: &str,
) -> Result<serde_json::Value, ApiError> {
    channel_item(
        world,
        call,
        channel_sid,
        |channel| channel.messages.iter().find(|m| m.sid == sid),
        Message::to_json,
    )
}

pub(super) fn list_messages(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let descending = call.params.choice("Order", &["asc", "desc"])?.as_deref() == Some("desc");
    let channel = path_channel(world, call, "ChannelSid")?;
    let render = call.render(world);
    let json = |message: &Message| message.to_json(channel, &render);
    let items = if descending {
        channel.messages.iter().rev().map(json).collect()
    } else {
        channel.messages.iter().map(json).collect()
    };
    page::page(call, CHAT, "messages", items).map(Reply::Ok)
}

pub(super) fn fetch_message(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let channel_sid = path_channel(world, call, "ChannelSid")?.sid.clone();
    message_reply(world, call, &channel_sid, call.path_param("Sid")).map(Reply::Ok)
}

pub(super) fn create_member(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let params = &call.params;
    let new = NewMember {
        identity: params.required("Identity")?,
        role_sid: params.sid("RoleSid", Prefix::Role)?,
        attributes: params.json("Attributes")?,
        last_consumed_message_index: params.number("LastConsumedMessageIndex")?,
        last_consumption: params.timestamp("LastConsumptionTimestamp")?,
        dates: params.dates()?,
    };
    let channel_sid = path_channel(world, call, "ChannelSid")?.sid.clone();
    let sid = world
        .add_member(&channel_sid, new, &call.actor())
        .map_err(|e| call.fail(e))?;
    channel_item(
        world,
        call,
        &channel_sid,
        |channel| channel.members.get(&sid),
        Member::to_json,
    )
    .map(Reply::Created)
}

pub(super) fn list_members(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let identities = call.params.all("Identity");
    let channel = path_channel(world, call, "ChannelSid")?;
    let render = call.render(world);
    let items = channel
        .members
        .iter()
        .filter(|m| identities.is_empty() || identities.contains(&m.identity))
        .map(|m| m.to_json(channel, &render))
        .collect();
    page::page(call, CHAT, "members", items).map(Reply::Ok)
}

pub(super) fn delete_member(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let channel_sid = path_channel(world, call, "ChannelSid")?.sid.clone();
    world
        .remove_member(&channel_sid, call.path_param("Sid"), &call.actor())
        .map_err(|e| call.fail(e))?;
    Ok(Reply::NoContent)
}

pub(super) fn create_user(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let params = &call.params;
    let new = NewUser {
        identity: params.required("Identity")?,
        role_sid: params.sid("RoleSid", Prefix::Role)?,
        attributes: params.json("Attributes")?,
        friendly_name: params.text("FriendlyName"),
    };
    let service_sid = call.path_param("ServiceSid");
    let sid = world
        .create_user(service_sid, new)
        .map_err(|e| call.fail(e))?;
    user_reply(world, call, &sid).map(Reply::Created)
}

fn user_reply(world: &World, call: &Call, id: &str) -> Result<serde_json::Value, ApiError> {
    let user = world
        .find_user(call.path_param("ServiceSid"), id)
        .map_err(|e| call.fail(e))?;
    let joined = world.joined_channels(&user.service_sid, &user.identity);
    Ok(user.to_json(joined, &call.render(world)))
}

pub(super) fn fetch_user(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    user_reply(world, call, call.path_param("Sid")).map(Reply::Ok)
}
