//! The Flex side's settings: which backend opens new conversations
//! (`FLEX_BACKEND`, `conversations` by default) and what each backend
//! needs.
//!
//! - Both: `FLEX_CHAT_SERVICE` (the "Flex Chat Service", home of Chat
//!   channels and conversations alike).
//! - Chat: `FLEX_FLOW_SID`.
//! - Conversations: `FLEX_ROUTING` (`interactions`, the default, or
//!   `studio`); for interactions `TASKROUTER_WORKSPACE_SID`,
//!   `TASKROUTER_WORKFLOW_SID` and `FLEX_TASK_CHANNEL` (default `chat`); for
//!   studio `STUDIO_FLOW_SID`. Optional `CONVERSATIONS_TIMER_INACTIVE` and
//!   `CONVERSATIONS_TIMER_CLOSED` (ISO-8601 durations) become the new
//!   conversations' `Timers.*`.
//!
//! What the configured backend needs is required (a missing setting is
//! named); the other backend's settings are optional: with them it can
//! still open conversations it was asked to before a switch, without them
//! it only serves the conversations it opened.

use super::raw::{self, ProvisionFlex, ServeFlex};
use super::{ConfigError, Layers, Setting, setting};
use crate::flex::BackendKind;
use crate::flex::conversations::{InteractionRouting, Routing, RoutingKind, TimerDuration, Timers};
use crate::flex::sid::{
    ChatServiceSid, FlexFlowSid, StudioFlowSid, TaskChannelName, WorkflowSid, WorkspaceSid,
};

/// The Flex side of `flexbridge serve`.
#[derive(Debug, Clone)]
pub struct FlexSettings {
    /// The backend new conversations open with.
    pub backend: BackendKind,
    pub chat_service_sid: ChatServiceSid,
    /// The Chat backend's Flex Flow (required when it is the backend).
    pub flex_flow_sid: Option<FlexFlowSid>,
    /// How the Conversations backend routes (required when it is the
    /// backend).
    pub routing: Option<Routing>,
    pub timers: Timers,
}

pub(super) fn parse_backend(raw: &str) -> Result<BackendKind, String> {
    BackendKind::parse(raw)
        .ok_or_else(|| format!("unknown backend {raw:?} (available: conversations, chat)"))
}

/// A setting that is required when `required`, else optional.
fn needed<T, E: std::fmt::Display>(
    layers: &Layers,
    required: bool,
    setting: Setting,
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
    why: &str,
) -> Result<Option<T>, ConfigError> {
    if required {
        layers.require(setting, raw, parse, why).map(Some)
    } else {
        layers.optional(setting, raw, parse)
    }
}

const STUDIO_WHY: &str = " (FLEX_ROUTING=studio: the Studio flow whose \"Send to Flex\" routes \
                          the conversation, e.g. \"Webchat Flow\")";

/// The Conversations backend's routing; `None` when not `required` and
/// incomplete.
fn routing(
    layers: &Layers,
    flex: &ServeFlex,
    required: bool,
) -> Result<Option<Routing>, ConfigError> {
    Ok(
        match layers.parse(setting::ROUTING, &flex.routing, RoutingKind::parse)? {
            RoutingKind::Studio => needed(
                layers,
                required,
                setting::STUDIO_FLOW_SID,
                flex.studio_flow_sid.as_deref(),
                StudioFlowSid::parse,
                STUDIO_WHY,
            )?
            .map(|flow| Routing::Studio { flow }),
            RoutingKind::Interactions => {
                let workspace = needed(
                    layers,
                    required,
                    setting::WORKSPACE,
                    flex.workspace_sid.as_deref(),
                    WorkspaceSid::parse,
                    " (the TaskRouter workspace \"Flex Task Assignment\", which Flex \
                     Conversations routes to; `flexbridge provision` prints it, or set \
                     FLEX_BACKEND=chat to stay on Programmable Chat)",
                )?;
                let workflow = needed(
                    layers,
                    required,
                    setting::WORKFLOW,
                    flex.workflow_sid.as_deref(),
                    WorkflowSid::parse,
                    " (the TaskRouter workflow, e.g. \"Assign to Anyone\"; `flexbridge provision` \
                     prints it)",
                )?;
                let task_channel = layers.parse(
                    setting::TASK_CHANNEL,
                    &flex.task_channel,
                    TaskChannelName::parse,
                )?;
                workspace.zip(workflow).map(|(workspace, workflow)| {
                    Routing::Interactions(InteractionRouting {
                        workspace,
                        workflow,
                        task_channel,
                    })
                })
            }
        },
    )
}

fn timers(layers: &Layers, flex: &ServeFlex) -> Result<Timers, ConfigError> {
    Ok(Timers {
        inactive: layers.optional(
            setting::TIMER_INACTIVE,
            flex.timers_inactive.as_deref(),
            TimerDuration::parse,
        )?,
        closed: layers.optional(
            setting::TIMER_CLOSED,
            flex.timers_closed.as_deref(),
            TimerDuration::parse,
        )?,
    })
}

impl FlexSettings {
    /// The Flex side of `serve`'s settings alone.
    pub fn from_layers(layers: &Layers) -> Result<Self, ConfigError> {
        let raw: raw::Serve = layers.extract()?;
        Self::parse(layers, &raw.flex)
    }

    pub(super) fn parse(layers: &Layers, flex: &ServeFlex) -> Result<Self, ConfigError> {
        let backend = layers.parse(setting::BACKEND, &flex.backend, parse_backend)?;
        let chat_service_sid = layers.require(
            setting::CHAT_SERVICE,
            flex.chat_service_sid.as_deref(),
            ChatServiceSid::parse,
            " (the SID of the \"Flex Chat Service\"; `flexbridge provision` prints it)",
        )?;
        let flex_flow_sid = needed(
            layers,
            backend == BackendKind::Chat,
            setting::FLEX_FLOW_SID,
            flex.flow_sid.as_deref(),
            FlexFlowSid::parse,
            " (FLEX_BACKEND=chat: run `flexbridge provision --backend chat` to create the Flex \
             Flow)",
        )?;
        Ok(Self {
            backend,
            chat_service_sid,
            flex_flow_sid,
            routing: routing(layers, flex, backend == BackendKind::Conversations)?,
            timers: timers(layers, flex)?,
        })
    }
}

/// What `flexbridge provision` looks for (Conversations) or makes (Chat).
#[derive(Debug, Clone)]
pub enum ProvisionTarget {
    /// The Flex Flow of the Chat backend, found by name or created.
    Chat {
        chat_service_sid: ChatServiceSid,
        studio_flow_sid: StudioFlowSid,
        flow_name: String,
    },
    /// What the Conversations backend routes with, found (never created);
    /// given SIDs are checked, missing ones looked up by Flex's names (the
    /// Studio flow too, with `studio` routing: "Webchat Flow").
    Conversations {
        chat_service_sid: Option<ChatServiceSid>,
        workspace: Option<WorkspaceSid>,
        workflow: Option<WorkflowSid>,
        task_channel: TaskChannelName,
        routing: RoutingKind,
        studio_flow_sid: Option<StudioFlowSid>,
    },
}

impl ProvisionTarget {
    pub(super) fn parse(layers: &Layers, flex: &ProvisionFlex) -> Result<Self, ConfigError> {
        let flow_name = layers.parse(setting::FLOW_NAME, &flex.flow_name, super::parse_nonempty)?;
        Ok(
            match layers.parse(setting::BACKEND, &flex.backend, parse_backend)? {
                BackendKind::Chat => Self::Chat {
                    chat_service_sid: layers.require(
                        setting::CHAT_SERVICE,
                        flex.chat_service_sid.as_deref(),
                        ChatServiceSid::parse,
                        " (the SID of the \"Flex Chat Service\")",
                    )?,
                    studio_flow_sid: layers.require(
                        setting::STUDIO_FLOW_SID,
                        flex.studio_flow_sid.as_deref(),
                        StudioFlowSid::parse,
                        " (the Studio flow that sends chats to Flex, e.g. \"Webchat Flow\")",
                    )?,
                    flow_name,
                },
                BackendKind::Conversations => Self::Conversations {
                    chat_service_sid: layers.optional(
                        setting::CHAT_SERVICE,
                        flex.chat_service_sid.as_deref(),
                        ChatServiceSid::parse,
                    )?,
                    workspace: layers.optional(
                        setting::WORKSPACE,
                        flex.workspace_sid.as_deref(),
                        WorkspaceSid::parse,
                    )?,
                    workflow: layers.optional(
                        setting::WORKFLOW,
                        flex.workflow_sid.as_deref(),
                        WorkflowSid::parse,
                    )?,
                    task_channel: layers.parse(
                        setting::TASK_CHANNEL,
                        &flex.task_channel,
                        TaskChannelName::parse,
                    )?,
                    studio_flow_sid: layers.optional(
                        setting::STUDIO_FLOW_SID,
                        flex.studio_flow_sid.as_deref(),
                        StudioFlowSid::parse,
                    )?,
                    routing: layers.parse(setting::ROUTING, &flex.routing, RoutingKind::parse)?,
                },
            },
        )
    }
}
