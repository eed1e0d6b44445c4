//! Flex v1 handlers: Flex Flows (create, list with `FriendlyName`, fetch,
//! update, delete) and Flex chat channels (create, list, fetch, delete).
//! The behaviour of `POST /v1/Channels` lives in `world/flex.rs`.

use super::chat::stored_channel;
use super::error::ApiError;
use super::page::{self, WIDE};
use super::params::Params;
use super::{Call, Reply};
use crate::clock::Instant;
use crate::sid::Prefix;
use crate::world::flex::{FlexFlow, Integration, IntegrationType, flex_channel_json};
use crate::world::flex_channels::NewFlexChannel;
use crate::world::{Actor, World};

/// The Flex Flow parameters of a create or update; `None` = not sent.
struct FlowParams {
    friendly_name: Option<String>,
    chat_service_sid: Option<String>,
    channel_type: Option<String>,
    contact_identity: Option<String>,
    enabled: Option<bool>,
    integration_type: Option<IntegrationType>,
    integration: Integration,
    long_lived: Option<bool>,
    janitor_enabled: Option<bool>,
}

impl FlowParams {
    fn parse(params: &Params) -> Result<Self, ApiError> {
        let integration_type = params
            .choice("IntegrationType", &IntegrationType::NAMES)?
            .and_then(|value| IntegrationType::parse(&value));
        let retry_count: Option<u8> = params.number("Integration.RetryCount")?;
        if retry_count.is_some_and(|count| count > 3) {
            return Err(ApiError::invalid_param(
                "Integration.RetryCount",
                "must be between 0 and 3",
            ));
        }
        Ok(Self {
            friendly_name: params.text("FriendlyName"),
            chat_service_sid: params.sid("ChatServiceSid", Prefix::ChatService)?,
            channel_type: params.choice("ChannelType", &FlexFlow::CHANNEL_TYPES)?,
            contact_identity: params.text("ContactIdentity"),
            enabled: params.bool("Enabled")?,
            integration_type,
            integration: Integration {
                flow_sid: params.sid("Integration.FlowSid", Prefix::StudioFlow)?,
                url: params.text("Integration.Url"),
                workspace_sid: params.sid("Integration.WorkspaceSid", Prefix::Workspace)?,
                workflow_sid: params.sid("Integration.WorkflowSid", Prefix::Workflow)?,
                channel: params.text("Integration.Channel"),
                timeout: params.number("Integration.Timeout")?,
                priority: params.number("Integration.Priority")?,
                creation_on_message: params.bool("Integration.CreationOnMessage")?,
                retry_count,
            },
            long_lived: params.bool("LongLived")?,
            janitor_enabled: params.bool("JanitorEnabled")?,
        })
    }

    /// Applies the sent values over `flow`.
    fn apply(self, flow: &mut FlexFlow) {
        let Self {
            friendly_name,
            chat_service_sid,
            channel_type,
            contact_identity,
            enabled,
            integration_type,
            integration,
            long_lived,
            janitor_enabled,
        } = self;
        macro_rules! set {
            ($target:expr, $value:expr) => {
                if let Some(value) = $value {
                    $target = value;
                }
            };
        }
        set!(flow.friendly_name, friendly_name);
        set!(flow.chat_service_sid, chat_service_sid);
        set!(flow.channel_type, channel_type);
        if contact_identity.is_some() {
            flow.contact_identity = contact_identity;
        }
        set!(flow.enabled, enabled);
        set!(flow.integration_type, integration_type);
        set!(flow.long_lived, long_lived);
        set!(flow.janitor_enabled, janitor_enabled);
        let target = &mut flow.integration;
        macro_rules! merge {
            ($($field:ident),*) => {$(
                if integration.$field.is_some() {
                    target.$field = integration.$field;
                }
            )*};
        }
        merge!(
            flow_sid,
            url,
            workspace_sid,
            workflow_sid,
            channel,
            timeout,
            priority,
            creation_on_message,
            retry_count
        );
    }
}

/// Checks that a flow's references exist and its integration is complete.
fn check_flow(world: &World, flow: &FlexFlow) -> Result<(), ApiError> {
    if !world.chat.services.contains(&flow.chat_service_sid) {
        return Err(ApiError::invalid_param(
            "ChatServiceSid",
            "no Chat Service has this SID",
        ));
    }
    let integration = &flow.integration;
    match flow.integration_type {
        IntegrationType::Studio => match &integration.flow_sid {
            None => return Err(ApiError::missing_param("Integration.FlowSid")),
            Some(sid) if !world.studio.flows.contains(sid) => {
                return Err(ApiError::invalid_param(
                    "Integration.FlowSid",
                    "no Studio Flow has this SID",
                ));
            }
            Some(_) => {}
        },
        IntegrationType::External if integration.url.is_none() => {
            return Err(ApiError::missing_param("Integration.Url"));
        }
        IntegrationType::External | IntegrationType::Task => {}
    }
    let tr = &world.taskrouter;
    if integration
        .workspace_sid
        .as_ref()
        .is_some_and(|sid| *sid != tr.workspace.sid)
    {
        return Err(ApiError::invalid_param(
            "Integration.WorkspaceSid",
            "no Workspace has this SID",
        ));
    }
    if integration
        .workflow_sid
        .as_ref()
        .is_some_and(|sid| !tr.workflows.contains(sid))
    {
        return Err(ApiError::invalid_param(
            "Integration.WorkflowSid",
            "no Workflow has this SID",
        ));
    }
    if integration
        .channel
        .as_ref()
        .is_some_and(|c| tr.task_channel(c).is_none())
    {
        return Err(ApiError::invalid_param(
            "Integration.Channel",
            "no Task Channel has this SID or unique name",
        ));
    }
    Ok(())
}

fn find_flow<'w>(world: &'w World, call: &Call) -> Result<&'w FlexFlow, ApiError> {
    world
        .flex_flows
        .get(call.path_param("Sid"))
        .ok_or_else(|| ApiError::not_found(&call.path))
}

pub(super) fn create_flow(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let params = &call.params;
    let friendly_name = params.required("FriendlyName")?;
    params.required("ChatServiceSid")?;
    params.required("ChannelType")?;
    let parsed = FlowParams::parse(params)?;
    let now = Instant::now();
    let mut flow = FlexFlow {
        sid: String::new(),
        friendly_name,
        chat_service_sid: String::new(),
        channel_type: String::new(),
        contact_identity: None,
        enabled: false,
        integration_type: IntegrationType::Studio,
        integration: Integration::default(),
        long_lived: false,
        janitor_enabled: false,
        created: now,
        updated: now,
    };
    parsed.apply(&mut flow);
    check_flow(world, &flow)?;
    flow.sid = world.sid(Prefix::FlexFlow);
    let body = flow.to_json(&call.render(world));
    world.flex_flows.insert(flow);
    Ok(Reply::Created(body))
}

pub(super) fn list_flows(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let name = call.params.get("FriendlyName");
    let render = call.render(world);
    let items = world
        .flex_flows
        .iter()
        .filter(|flow| name.is_none_or(|name| flow.friendly_name == name))
        .map(|flow| flow.to_json(&render))
        .collect();
    page::page(call, WIDE, "flex_flows", items).map(Reply::Ok)
}

pub(super) fn fetch_flow(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let flow = find_flow(world, call)?;
    Ok(Reply::Ok(flow.to_json(&call.render(world))))
}

pub(super) fn update_flow(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let mut flow = find_flow(world, call)?.clone();
    FlowParams::parse(&call.params)?.apply(&mut flow);
    check_flow(world, &flow)?;
    flow.updated = Instant::now();
    let body = flow.to_json(&call.render(world));
    world.flex_flows.insert(flow);
    Ok(Reply::Ok(body))
}

pub(super) fn delete_flow(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let sid = find_flow(world, call)?.sid.clone();
    world.flex_flows.remove(&sid);
    Ok(Reply::NoContent)
}

pub(super) fn create_channel(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let params = &call.params;
    let flow_sid = params.required("FlexFlowSid")?;
    let identity = params.required("Identity")?;
    let user_friendly_name = params.required("ChatUserFriendlyName")?;
    let chat_friendly_name = params.required("ChatFriendlyName")?;
    let new = NewFlexChannel {
        flow_sid: params
            .sid("FlexFlowSid", Prefix::FlexFlow)?
            .unwrap_or(flow_sid),
        identity,
        user_friendly_name,
        chat_friendly_name,
        target: params.text("Target").filter(|target| !target.is_empty()),
        unique_name: params
            .text("ChatUniqueName")
            .filter(|name| !name.is_empty()),
        pre_engagement_data: params.text("PreEngagementData"),
        task_sid: params.sid("TaskSid", Prefix::Task)?,
        task_attributes: params.json_object("TaskAttributes")?,
        long_lived: params.bool("LongLived")?,
    };
    let sid = world.create_flex_channel(new).map_err(|e| call.fail(e))?;
    flex_channel_reply(world, call, &sid).map(Reply::Created)
}

fn flex_channel_reply(
    world: &World,
    call: &Call,
    sid: &str,
) -> Result<serde_json::Value, ApiError> {
    let channel = stored_channel(world, call, sid)?;
    let binding = channel
        .flex
        .as_ref()
        .ok_or_else(|| ApiError::not_found(&call.path))?;
    Ok(flex_channel_json(
        &channel.sid,
        binding,
        channel.created,
        channel.updated,
        &call.render(world),
    ))
}

pub(super) fn list_channels(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    let render = call.render(world);
    let items = world
        .chat
        .channels
        .iter()
        .filter_map(|channel| {
            let binding = channel.flex.as_ref()?;
            Some(flex_channel_json(
                &channel.sid,
                binding,
                channel.created,
                channel.updated,
                &render,
            ))
        })
        .collect();
    page::page(call, WIDE, "flex_chat_channels", items).map(Reply::Ok)
}

pub(super) fn fetch_channel(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    flex_channel_reply(world, call, call.path_param("Sid")).map(Reply::Ok)
}

pub(super) fn delete_channel(world: &mut World, call: &Call) -> Result<Reply, ApiError> {
    flex_channel_reply(world, call, call.path_param("Sid"))?;
    let channel = world
        .chat
        .channels
        .get(call.path_param("Sid"))
        .ok_or_else(|| ApiError::not_found(&call.path))?;
    let service_sid = channel.service_sid.clone();
    world
        .delete_channel(&service_sid, call.path_param("Sid"), &Actor::system())
        .map_err(|e| call.fail(e))?;
    Ok(Reply::NoContent)
}
