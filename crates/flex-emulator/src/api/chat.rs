//! Chat v2 handlers for the service, its channels (by CH SID or unique
//! name) and channel webhooks (at most 5 per channel). Messages, members
//! and users are in `messaging.rs`.

use super::error::ApiError;
use super::page::{self, CHAT, WEBHOOKS};
use super::params::Params;
use super::webhook_config::{ConfigParams, Dialect};
use super::{Call, Reply};
use crate::world::channels::{ChannelChange, WebhookUpdate};
use crate::world::chat::{CHAT_EVENTS, Channel, ChannelType, ChannelWebhook, ServiceRoles};
use crate::world::{Render, World};

pub(super) fn fetch_service(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let service = world
        .service(call.path_param("Sid"))
        .map_err(|e| call.fail(e))?;
    let bootstrap = &world.bootstrap;
    let roles = ServiceRoles {
        service_user: &bootstrap.service_user_role_sid,
        channel_user: &bootstrap.channel_user_role_sid,
        channel_admin: &bootstrap.channel_admin_role_sid,
    };
    Ok(Reply::Ok(service.to_json(roles, &call.render(world))))
}

/// The channel the path names (`{ServiceSid}` + `{Sid}` or `{ChannelSid}`).
pub(super) fn path_channel<'w>(
    world: &'w World,
    call: &Call,
    param: &str,
) -> Result<&'w Channel, ApiError> {
    world
        .find_channel(call.path_param("ServiceSid"), call.path_param(param))
        .map_err(|e| call.fail(e))
}

pub(super) fn create_channel(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let params = &call.params;
    let kind = match params.choice("Type", &["public", "private"])?.as_deref() {
        Some("private") => ChannelType::Private,
        _ => ChannelType::Public,
    };
    let mut new = channel_change(params)?;
    new.unique_name.take_if(|name| name.is_empty());
    new.created_by.get_or_insert_with(|| "system".into());
    let sid = world
        .create_channel(call.path_param("ServiceSid"), kind, new)
        .map_err(|e| call.fail(e))?;
    channel_reply(world, call, &sid).map(Reply::Created)
}

/// One item of a stored channel (a message, a member, a webhook) in its
/// REST JSON, or a 404 of the request path.
pub(super) fn channel_item<'w, T: 'w>(
    world: &'w World,
    call: &Call,
    channel_sid: &str,
    find: impl FnOnce(&'w Channel) -> Option<&'w T>,
    to_json: impl FnOnce(&T, &Channel, &Render<'_>) -> serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    let channel = stored_channel(world, call, channel_sid)?;
    let item = find(channel).ok_or_else(|| ApiError::not_found(&call.path))?;
    Ok(to_json(item, channel, &call.render(world)))
}

/// The fields `CreateChannel` and `UpdateChannel` share.
fn channel_change(params: &Params) -> Result<ChannelChange, ApiError> {
    Ok(ChannelChange {
        friendly_name: params.text("FriendlyName"),
        unique_name: params.text("UniqueName"),
        attributes: params.json("Attributes")?,
        created_by: params.text("CreatedBy"),
        dates: params.dates()?,
    })
}

/// A channel by its CH SID (one the call resolved, made or changed), or a
/// 404 of the request path. [`path_channel`] resolves the path itself.
pub(super) fn stored_channel<'w>(
    world: &'w World,
    call: &Call,
    sid: &str,
) -> Result<&'w Channel, ApiError> {
    world
        .chat
        .channels
        .get(sid)
        .ok_or_else(|| ApiError::not_found(&call.path))
}

fn channel_reply(world: &World, call: &Call, sid: &str) -> Result<serde_json::Value, ApiError> {
    let channel = stored_channel(world, call, sid)?;
    Ok(channel.to_json(&call.render(world)))
}

pub(super) fn list_channels(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let service_sid = call.path_param("ServiceSid");
    world.service(service_sid).map_err(|e| call.fail(e))?;
    let types = call.params.all("Type");
    for kind in &types {
        if !["public", "private"].contains(&kind.as_str()) {
            return Err(ApiError::invalid_param("Type", "must be public or private"));
        }
    }
    let render = call.render(world);
    let items = world
        .chat
        .channels
        .iter()
        .filter(|c| c.service_sid == service_sid)
        .filter(|c| types.is_empty() || types.iter().any(|t| t == c.kind.as_str()))
        .map(|c| c.to_json(&render))
        .collect();
    page::page(call, CHAT, "channels", items).map(Reply::Ok)
}

pub(super) fn fetch_channel(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let channel = path_channel(world, call, "Sid")?;
    Ok(Reply::Ok(channel.to_json(&call.render(world))))
}

pub(super) fn update_channel(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let update = channel_change(&call.params)?;
    let sid = world
        .update_channel(
            call.path_param("ServiceSid"),
            call.path_param("Sid"),
            update,
            &call.actor(),
        )
        .map_err(|e| call.fail(e))?;
    channel_reply(world, call, &sid).map(Reply::Ok)
}

pub(super) fn delete_channel(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    world
        .delete_channel(
            call.path_param("ServiceSid"),
            call.path_param("Sid"),
            &call.actor(),
        )
        .map_err(|e| call.fail(e))?;
    Ok(Reply::NoContent)
}

/// Chat's flavour of the webhook settings.
const DIALECT: Dialect = Dialect {
    events: &CHAT_EVENTS,
    product: "a Chat event",
    lowercase_method: false,
    too_many_triggers: 50322,
    bad_trigger: 20001,
};

/// `Configuration.RetryCount`: 0–3.
fn retry_count(params: &Params) -> Result<Option<u8>, ApiError> {
    let retry_count: Option<u8> = params.number("Configuration.RetryCount")?;
    if retry_count.is_some_and(|count| count > 3) {
        return Err(ApiError::invalid_param(
            "Configuration.RetryCount",
            "must be between 0 and 3",
        ));
    }
    Ok(retry_count)
}

pub(super) fn create_webhook(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let settings = ConfigParams::new_webhook(&call.params, "Type", DIALECT)?;
    let retries = retry_count(&call.params)?;
    let channel_sid = path_channel(world, call, "ChannelSid")?.sid.clone();
    let sid = world
        .add_webhook(&channel_sid, settings, retries.unwrap_or(0))
        .map_err(|e| call.fail(e))?;
    webhook_reply(world, call, &channel_sid, &sid).map(Reply::Created)
}

fn webhook_reply(
    world: &World,
    call: &Call,
    channel_sid: &str,
    sid: &str,
) -> Result<serde_json::Value, ApiError> {
    channel_item(
        world,
        call,
        channel_sid,
        |channel| channel.webhooks.get(sid),
        ChannelWebhook::to_json,
    )
}

pub(super) fn list_webhooks(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let channel = path_channel(world, call, "ChannelSid")?;
    let render = call.render(world);
    let items = channel
        .webhooks
        .iter()
        .map(|webhook| webhook.to_json(channel, &render))
        .collect();
    page::page(call, WEBHOOKS, "webhooks", items).map(Reply::Ok)
}

pub(super) fn fetch_webhook(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let channel_sid = path_channel(world, call, "ChannelSid")?.sid.clone();
    webhook_reply(world, call, &channel_sid, call.path_param("Sid")).map(Reply::Ok)
}

pub(super) fn update_webhook(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let config = ConfigParams::parse(&call.params, DIALECT)?;
    let retry_count = retry_count(&call.params)?;
    let channel_sid = path_channel(world, call, "ChannelSid")?.sid.clone();
    let update = WebhookUpdate {
        url: config.url,
        method: config.method,
        filters: config.filters,
        triggers: config.triggers,
        flow_sid: config.flow_sid,
        retry_count,
    };
    world
        .update_webhook(&channel_sid, call.path_param("Sid"), update)
        .map_err(|e| call.fail(e))?;
    webhook_reply(world, call, &channel_sid, call.path_param("Sid")).map(Reply::Ok)
}

pub(super) fn delete_webhook(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let channel_sid = path_channel(world, call, "ChannelSid")?.sid.clone();
    world
        .delete_webhook(&channel_sid, call.path_param("Sid"))
        .map_err(|e| call.fail(e))?;
    Ok(Reply::NoContent)
}
