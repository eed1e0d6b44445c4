//! What Flex does with interactions.
//!
//! Create (`POST /v1/Interactions`, or Studio's "Send to Flex" on a
//! conversation): `Channel.properties.media_channel_sid` must name an open
//! conversation of the Flex Chat Service that has no live (active or
//! inactive) interaction channel — one interaction per media channel, as
//! Flex has it; a second one is refused with 400 naming `Channel`. It makes
//! the interaction (KD), one interaction channel (UO, `active`, the
//! `Channel` type), a `customer` participant (UT) and the task: attributes =
//! `Routing.properties.attributes` plus `conversationSid`,
//! `flexInteractionSid`, `flexInteractionChannelSid`, and, when absent,
//! `channelType` (the channel type) and `name` (the customer participant's
//! identity, else the conversation's friendly or unique name). Workspace,
//! workflow and task channel default to the bootstrapped ones; wrong ones
//! are a 400 naming `Routing`.
//!
//! Agents: accepting the reservation adds the agent to the conversation
//! (`onParticipantAdded`, `Source=SDK`) and to the interaction channel
//! (type `agent`, `routing_properties {task_sid, worker_sid, reservation_sid}`).
//!
//! Closing the channel (agent ends the chat, or REST `Status=closed`):
//! status `closed`, the conversation `closed` (`Reason=EVENT`), assigned
//! tasks `wrapping` (completed after the wrap-up time), or `completed` at
//! once with `Routing={"status":"closed"}`; tasks not yet accepted are
//! canceled. `Status=inactive` (parking) needs `Routing={"status":"closed"}`
//! (spec), completes the tasks and makes the conversation `inactive`.
//! A conversation closed by the API, a timer or deletion closes its live
//! interaction channels the same way (tasks wrap).

use serde_json::{Map, Value, json};

use super::{ChannelParticipant, ChannelStatus, Interaction, InteractionChannel, ParticipantType};
use crate::sid::Prefix;
use crate::world::World;
use crate::world::actor::Actor;
use crate::world::actor::Source;
use crate::world::conversations::state::{ConversationState, StateReason};
use crate::world::error::WorldError;
use crate::world::routing::NewTask;
use crate::world::table::Table;
use crate::world::taskrouter::{EndedBy, TaskStatus};

/// Media channel types the spec knows; all but `voice` ride on a conversation.
const CHANNEL_TYPES: [&str; 8] = [
    "voice",
    "sms",
    "email",
    "web",
    "whatsapp",
    "chat",
    "messenger",
    "gbm",
];
const INITIATORS: [&str; 3] = ["customer", "agent", "api"];

/// `POST /v1/Interactions` parameters; `Channel` and `Routing` as JSON objects.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewInteraction {
    pub channel: Map<String, Value>,
    pub routing: Option<Map<String, Value>>,
    pub context_sid: Option<String>,
    pub webhook_ttid: Option<String>,
}

/// What `Routing.properties` asks for, checked.
#[derive(Debug, Clone, Default)]
struct RoutingSpec {
    workflow_sid: Option<String>,
    task_channel: Option<String>,
    attributes: Map<String, Value>,
    priority: i64,
    timeout: u64,
}

fn bad_channel(why: impl std::fmt::Display) -> WorldError {
    WorldError::invalid("Channel", &why.to_string())
}

fn bad_routing(why: impl std::fmt::Display) -> WorldError {
    WorldError::invalid("Routing", &why.to_string())
}

/// An object, or a JSON string holding one (clients send both for `attributes`).
fn object_of(value: &Value) -> Option<Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map.clone()),
        Value::String(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        },
        _ => None,
    }
}

impl World {
    fn routing_spec(
        &self,
        routing: Option<&Map<String, Value>>,
    ) -> Result<RoutingSpec, WorldError> {
        let Some(routing) = routing else {
            return Ok(RoutingSpec {
                timeout: 86_400,
                ..RoutingSpec::default()
            });
        };
        let properties = match routing.get("properties") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map.clone(),
            Some(_) => return Err(bad_routing("properties must be an object")),
        };
        let text = |key: &str| -> Result<Option<String>, WorldError> {
            match properties.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(value)) => Ok(Some(value.clone())),
                Some(_) => Err(bad_routing(format!("properties.{key} must be a string"))),
            }
        };
        let tr = &self.taskrouter;
        if let Some(sid) = text("workspace_sid")?
            && sid != tr.workspace.sid
        {
            return Err(bad_routing(format!(
                "properties.workspace_sid {sid} is not a workspace"
            )));
        }
        let workflow_sid = text("workflow_sid")?;
        if let Some(sid) = &workflow_sid
            && !tr.workflows.contains(sid)
        {
            return Err(bad_routing(format!(
                "properties.workflow_sid {sid} is not a workflow"
            )));
        }
        let task_channel = match (text("task_channel_sid")?, text("task_channel_unique_name")?) {
            (Some(sid), _) => Some(sid),
            (None, name) => name,
        };
        if let Some(channel) = &task_channel
            && tr.task_channel(channel).is_none()
        {
            return Err(bad_routing(format!("{channel} is not a task channel")));
        }
        let attributes = match properties.get("attributes") {
            None | Some(Value::Null) => Map::new(),
            Some(value) => object_of(value)
                .ok_or_else(|| bad_routing("properties.attributes must be a JSON object"))?,
        };
        let number = |key: &str| match properties.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_i64()
                .map(Some)
                .ok_or_else(|| bad_routing(format!("properties.{key} must be an integer"))),
        };
        let timeout = number("timeout")?.unwrap_or(86_400);
        Ok(RoutingSpec {
            workflow_sid,
            task_channel,
            attributes,
            priority: number("priority")?.unwrap_or(0),
            timeout: u64::try_from(timeout)
                .map_err(|_| bad_routing("properties.timeout must not be negative"))?,
        })
    }

    /// The conversation the `Channel` names, with the channel type.
    fn media_channel(&self, channel: &Map<String, Value>) -> Result<(String, String), WorldError> {
        let kind = channel
            .get("type")
            .and_then(Value::as_str)
            .filter(|kind| CHANNEL_TYPES.contains(kind))
            .ok_or_else(|| {
                bad_channel(format!("type must be one of {}", CHANNEL_TYPES.join(", ")))
            })?;
        if kind == "voice" {
            return Err(bad_channel(
                "the emulator routes conversation channels only, not voice",
            ));
        }
        channel
            .get("initiated_by")
            .and_then(Value::as_str)
            .filter(|by| INITIATORS.contains(by))
            .ok_or_else(|| {
                bad_channel(format!(
                    "initiated_by must be one of {}",
                    INITIATORS.join(", ")
                ))
            })?;
        let sid = channel
            .get("properties")
            .and_then(|p| p.get("media_channel_sid"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                bad_channel(
                    "properties.media_channel_sid must name the conversation (CH…) to route",
                )
            })?;
        let conversation = self
            .conversations
            .get(sid)
            .filter(|c| c.service_sid == self.bootstrap.chat_service_sid)
            .ok_or_else(|| {
                bad_channel(format!(
                    "properties.media_channel_sid {sid} is not a conversation"
                ))
            })?;
        if conversation.state == ConversationState::Closed {
            return Err(WorldError::refused(
                45354,
                format!("Cannot create a Channel for a closed Conversation {sid}"),
            ));
        }
        if let Some((interaction, live)) = self.live_channel_of(sid) {
            return Err(bad_channel(format!(
                "conversation {sid} already has a live interaction channel {live} (interaction {interaction})"
            )));
        }
        Ok((sid.to_owned(), kind.to_owned()))
    }

    /// The interaction and channel SIDs of a conversation's live channel.
    fn live_channel_of(&self, conversation_sid: &str) -> Option<(String, String)> {
        self.interactions.iter().find_map(|interaction| {
            interaction
                .channels
                .find(|c| {
                    c.conversation_sid == conversation_sid && c.status != ChannelStatus::Closed
                })
                .map(|c| (interaction.sid.clone(), c.sid.clone()))
        })
    }

    /// `POST /v1/Interactions`; returns the interaction SID.
    pub(crate) fn create_interaction(&mut self, new: NewInteraction) -> Result<String, WorldError> {
        let (conversation_sid, kind) = self.media_channel(&new.channel)?;
        let routing = self.routing_spec(new.routing.as_ref())?;
        self.route_conversation(&conversation_sid, &kind, new, routing)
    }

    /// Studio's "Send to Flex" for a conversation: an interaction with the
    /// default routing and attributes `{conversationSid, name, channelType}`
    /// (+ interaction SIDs). Returns the task, or why nothing was routed.
    pub(crate) fn route_from_studio(
        &mut self,
        conversation_sid: &str,
        author: &str,
    ) -> Result<String, WorldError> {
        let mut channel = Map::new();
        channel.insert("type".into(), json!("chat"));
        channel.insert("initiated_by".into(), json!("customer"));
        channel.insert(
            "properties".into(),
            json!({"media_channel_sid": conversation_sid}),
        );
        let (conversation_sid, kind) = self.media_channel(&channel)?;
        let mut routing = self.routing_spec(None)?;
        routing.task_channel = Some("chat".into());
        routing.attributes.insert("name".into(), json!(author));
        // The flow's `pre_engagement_data` line (studio.rs), from the
        // conversation's attributes.
        let pre_engagement = self
            .conversations
            .get(&conversation_sid)
            .and_then(|c| serde_json::from_str::<Value>(&c.attributes).ok())
            .and_then(|a| a.get("pre_engagement_data").cloned());
        if let Some(data) = pre_engagement {
            routing
                .attributes
                .insert("pre_engagement_data".into(), data);
        }
        let new = NewInteraction {
            channel,
            ..NewInteraction::default()
        };
        let sid = self.route_conversation(&conversation_sid, &kind, new, routing)?;
        self.interactions
            .get(&sid)
            .and_then(|i| i.task_sid.clone())
            .ok_or_else(|| WorldError::not_found("Task", &sid))
    }

    fn route_conversation(
        &mut self,
        conversation_sid: &str,
        kind: &str,
        new: NewInteraction,
        routing: RoutingSpec,
    ) -> Result<String, WorldError> {
        let interaction_sid = self.sid(Prefix::Interaction);
        let channel_sid = self.sid(Prefix::InteractionChannel);
        let customer_sid = self.sid(Prefix::InteractionParticipant);
        let customer = self.customer_of(conversation_sid);
        let mut attributes = routing.attributes;
        attributes.insert("conversationSid".into(), json!(conversation_sid));
        attributes.insert("flexInteractionSid".into(), json!(interaction_sid));
        attributes.insert("flexInteractionChannelSid".into(), json!(channel_sid));
        attributes
            .entry("channelType")
            .or_insert_with(|| json!(kind));
        if !attributes.contains_key("name") {
            let name = customer.clone().or_else(|| {
                self.conversations
                    .get(conversation_sid)
                    .and_then(|c| c.friendly_name.clone().or_else(|| c.unique_name.clone()))
            });
            attributes.insert(
                "name".into(),
                json!(name.unwrap_or_else(|| conversation_sid.to_owned())),
            );
        }
        let mut participants = Table::default();
        participants.insert(ChannelParticipant {
            sid: customer_sid,
            kind: ParticipantType::Customer,
            media_properties: json!({"identity": customer}),
            routing_properties: Value::Null,
            status: None,
        });
        let mut channels = Table::default();
        channels.insert(InteractionChannel {
            sid: channel_sid.clone(),
            kind: kind.to_owned(),
            status: ChannelStatus::Active,
            conversation_sid: conversation_sid.to_owned(),
            tasks: Vec::new(),
            participants,
        });
        self.interactions.insert(Interaction {
            sid: interaction_sid.clone(),
            channel: new.channel,
            context_sid: new.context_sid,
            webhook_ttid: new.webhook_ttid,
            task_sid: None,
            channels,
        });
        let task_sid = self.create_task(NewTask {
            attributes: Value::Object(attributes).to_string(),
            workflow_sid: routing.workflow_sid,
            task_channel: Some(routing.task_channel.unwrap_or_else(|| "chat".into())),
            priority: routing.priority,
            timeout: routing.timeout,
            routing_target: None,
        });
        if let Some(interaction) = self.interactions.get_mut(&interaction_sid) {
            interaction.task_sid = Some(task_sid.clone());
            if let Some(channel) = interaction.channels.get_mut(&channel_sid) {
                channel.tasks.push(task_sid);
            }
        }
        self.emit_interaction("interaction.created", &interaction_sid);
        Ok(interaction_sid)
    }

    /// The customer of a conversation: its first participant who is no agent.
    pub(crate) fn customer_of(&self, conversation_sid: &str) -> Option<String> {
        let agents: Vec<&str> = self
            .taskrouter
            .workers
            .iter()
            .map(|w| w.identity.as_str())
            .collect();
        self.conversations
            .get(conversation_sid)?
            .participants
            .iter()
            .filter_map(|p| p.identity.as_deref())
            .find(|identity| !agents.contains(identity))
            .map(str::to_owned)
    }

    fn interaction_channel_mut(
        &mut self,
        interaction_sid: &str,
        channel_sid: &str,
    ) -> Result<&mut InteractionChannel, WorldError> {
        self.interactions
            .require_mut("Interaction", interaction_sid)?
            .channels
            .require_mut("Interaction channel", channel_sid)
    }

    /// An agent accepted a task of this channel: an `agent` participant.
    pub(crate) fn agent_joined_interaction(
        &mut self,
        interaction_sid: &str,
        channel_sid: &str,
        routing_properties: Value,
    ) -> Result<(), WorldError> {
        self.add_interaction_participant(
            interaction_sid,
            channel_sid,
            ParticipantType::Agent,
            json!({}),
            routing_properties,
        )
        .map(drop)
    }

    /// `CreateInteractionChannelParticipant`: records the participant.
    pub(crate) fn add_interaction_participant(
        &mut self,
        interaction_sid: &str,
        channel_sid: &str,
        kind: ParticipantType,
        media_properties: Value,
        routing_properties: Value,
    ) -> Result<String, WorldError> {
        let status = self
            .interaction_channel_mut(interaction_sid, channel_sid)?
            .status;
        if status == ChannelStatus::Closed {
            return Err(WorldError::state(
                "ChannelSid",
                &format!("interaction channel {channel_sid} is closed"),
            ));
        }
        let sid = self.sid(Prefix::InteractionParticipant);
        self.interaction_channel_mut(interaction_sid, channel_sid)?
            .participants
            .insert(ChannelParticipant {
                sid: sid.clone(),
                kind,
                media_properties,
                routing_properties,
                status: None,
            });
        self.emit_interaction("interaction.updated", interaction_sid);
        Ok(sid)
    }

    /// `UpdateInteractionChannelParticipant`: `wrapup` wraps the agent's
    /// task, `closed` completes it.
    pub(crate) fn update_interaction_participant(
        &mut self,
        interaction_sid: &str,
        channel_sid: &str,
        participant_sid: &str,
        status: &str,
    ) -> Result<(), WorldError> {
        let participant = self
            .interaction_channel_mut(interaction_sid, channel_sid)?
            .participants
            .require_mut("Participant", participant_sid)?;
        participant.status = Some(status.to_owned());
        let task_sid = participant
            .routing_properties
            .get("task_sid")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(task_sid) = task_sid
            && let Some(task) = self.taskrouter.tasks.get(&task_sid)
        {
            match (status, task.status) {
                ("wrapup", TaskStatus::Assigned) => {
                    self.wrap_task(&task_sid)?;
                    self.schedule_wrapup(&task_sid);
                }
                ("closed", TaskStatus::Assigned | TaskStatus::Wrapping) => {
                    self.complete_task(&task_sid, "the agent left the interaction")?;
                }
                _ => {}
            }
        }
        self.emit_interaction("interaction.updated", interaction_sid);
        Ok(())
    }

    /// Closes (`Closed`) or parks (`Inactive`) an interaction channel; see
    /// the module docs. `complete_tasks` is `Routing={"status":"closed"}`.
    pub(crate) fn close_interaction_channel(
        &mut self,
        interaction_sid: &str,
        channel_sid: &str,
        to: ChannelStatus,
        complete_tasks: bool,
        actor: &Actor,
    ) -> Result<(), WorldError> {
        let channel = self.interaction_channel_mut(interaction_sid, channel_sid)?;
        if channel.status == ChannelStatus::Closed {
            return Err(WorldError::state(
                "Status",
                &format!("interaction channel {channel_sid} is closed"),
            ));
        }
        channel.status = to;
        let (tasks, conversation_sid) = (channel.tasks.clone(), channel.conversation_sid.clone());
        self.emit_interaction("interaction.updated", interaction_sid);
        if actor.source == Source::Api {
            self.mark_ended(&tasks, EndedBy::Customer);
        }
        self.settle_tasks(&tasks, complete_tasks)?;
        let state = self.conversations.get(&conversation_sid).map(|c| c.state);
        match (to, state) {
            (
                ChannelStatus::Closed,
                Some(ConversationState::Active | ConversationState::Inactive),
            ) => {
                self.set_conversation_state(
                    &conversation_sid,
                    ConversationState::Closed,
                    StateReason::Event,
                    actor,
                )?;
            }
            (ChannelStatus::Inactive, Some(ConversationState::Active)) => {
                self.set_conversation_state(
                    &conversation_sid,
                    ConversationState::Inactive,
                    StateReason::Event,
                    actor,
                )?;
            }
            _ => {}
        }
        self.end_executions(&conversation_sid);
        Ok(())
    }

    /// The conversation closed or is going away: its live interaction
    /// channels close and their tasks wrap.
    pub(crate) fn close_interactions_of(&mut self, conversation_sid: &str) {
        let live: Vec<(String, String, Vec<String>)> = self
            .interactions
            .iter()
            .flat_map(|i| {
                i.channels
                    .iter()
                    .filter(|c| {
                        c.conversation_sid == conversation_sid && c.status != ChannelStatus::Closed
                    })
                    .map(|c| (i.sid.clone(), c.sid.clone(), c.tasks.clone()))
            })
            .collect();
        for (interaction_sid, channel_sid, tasks) in live {
            if let Ok(channel) = self.interaction_channel_mut(&interaction_sid, &channel_sid) {
                channel.status = ChannelStatus::Closed;
            }
            self.emit_interaction("interaction.updated", &interaction_sid);
            if let Err(error) = self.settle_tasks(&tasks, false) {
                tracing::warn!(%error, conversation_sid, "could not wrap the tasks of a closed conversation");
            }
        }
        self.end_executions(conversation_sid);
    }

    /// The tasks of a channel that is done: accepted ones wrap (or complete),
    /// ones not yet accepted are canceled.
    pub(crate) fn settle_tasks(
        &mut self,
        tasks: &[String],
        complete: bool,
    ) -> Result<(), WorldError> {
        for task_sid in tasks {
            let Some(status) = self.taskrouter.tasks.get(task_sid).map(|t| t.status) else {
                continue;
            };
            match status {
                TaskStatus::Assigned | TaskStatus::Wrapping if complete => {
                    self.complete_task(task_sid, "the interaction channel was closed")?;
                }
                TaskStatus::Assigned => {
                    self.wrap_task(task_sid)?;
                    self.schedule_wrapup(task_sid);
                }
                TaskStatus::Pending | TaskStatus::Reserved => {
                    self.cancel_task(task_sid, "the interaction channel was closed")?;
                }
                TaskStatus::Wrapping | TaskStatus::Completed | TaskStatus::Canceled => {}
            }
        }
        Ok(())
    }

    /// Publishes an interaction on the SSE bus:
    /// `{interaction (with channels and participants), conversation_sid}`.
    pub(crate) fn emit_interaction(&mut self, kind: &'static str, sid: &str) {
        let Some(interaction) = self.interactions.get(sid) else {
            return;
        };
        let render = self.event_render();
        let conversation_sid = interaction
            .channels
            .iter()
            .next()
            .map(|c| c.conversation_sid.clone());
        let data = json!({
            "interaction": interaction.dump(&self.taskrouter, &render),
            "conversation_sid": conversation_sid,
        });
        self.emit(kind, data);
    }
}
