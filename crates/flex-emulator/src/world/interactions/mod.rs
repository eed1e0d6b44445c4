//! Flex Interactions (`docs/twilio-reference.md` §2): how Flex Conversations
//! routes a conversation to an agent. An interaction (KD) has one interaction
//! channel (UO) bound to its media channel — a conversation — and that
//! channel has participants (UT): the customer, then each agent who accepts.
//! Routing makes a TaskRouter task for the channel.
//!
//! - `mod.rs`     the resources and their JSON shapes
//! - `orchestration.rs` what Flex does: create (REST or Studio), agents joining,
//!   closing or parking the channel and what that does to the conversation
//!   and the tasks

pub(crate) mod orchestration;

use serde_json::{Map, Value, json};

use super::render::Render;
use super::table::{Keyed, Table};
use super::taskrouter::{Task, TaskRouter};
use crate::clock::Instant;

/// An interaction channel's `status` (the spec enum also has `setup`,
/// `failed`, `pause` and `transfer`, which the emulator never reaches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelStatus {
    Active,
    Inactive,
    Closed,
}

impl ChannelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Closed => "closed",
        }
    }
}

/// The `type` of an interaction-channel participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParticipantType {
    Supervisor,
    Customer,
    External,
    Agent,
    Unknown,
}

impl ParticipantType {
    pub const NAMES: [&'static str; 5] = ["supervisor", "customer", "external", "agent", "unknown"];

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "supervisor" => Self::Supervisor,
            "customer" => Self::Customer,
            "external" => Self::External,
            "agent" => Self::Agent,
            "unknown" => Self::Unknown,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Supervisor => "supervisor",
            Self::Customer => "customer",
            Self::External => "external",
            Self::Agent => "agent",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Interaction {
    pub sid: String,
    /// The `Channel` object as the client sent it.
    pub channel: Map<String, Value>,
    pub context_sid: Option<String>,
    pub webhook_ttid: Option<String>,
    /// The task routing made for it.
    pub task_sid: Option<String>,
    pub channels: Table<InteractionChannel>,
}

impl Keyed for Interaction {
    fn key(&self) -> &str {
        &self.sid
    }
}

#[derive(Debug, Clone)]
pub(crate) struct InteractionChannel {
    pub sid: String,
    /// `chat`, `sms`, `web`… (the `Channel` type).
    pub kind: String,
    pub status: ChannelStatus,
    /// The conversation (CH) this channel carries.
    pub conversation_sid: String,
    /// Tasks made for this channel, oldest first.
    pub tasks: Vec<String>,
    pub participants: Table<ChannelParticipant>,
}

impl Keyed for InteractionChannel {
    fn key(&self) -> &str {
        &self.sid
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ChannelParticipant {
    pub sid: String,
    pub kind: ParticipantType,
    pub media_properties: Value,
    /// `{task_sid, worker_sid, reservation_sid}` for agents; `null` for the customer.
    pub routing_properties: Value,
    /// The last `Status` set over REST (`closed` or `wrapup`); not in the JSON.
    pub status: Option<String>,
}

impl Keyed for ChannelParticipant {
    fn key(&self) -> &str {
        &self.sid
    }
}

impl Interaction {
    pub fn url(&self, render: &Render<'_>) -> String {
        format!("{}/v1/Interactions/{}", render.base, self.sid)
    }

    /// The interaction's JSON: `channel` is the `Channel` sent, with the
    /// interaction channel's `sid`; `routing.properties` shows the task as
    /// it is now.
    pub fn to_json(&self, tr: &TaskRouter, render: &Render<'_>) -> Value {
        let url = self.url(render);
        let mut channel = self.channel.clone();
        if let Some(first) = self.channels.iter().next() {
            channel.insert("sid".into(), json!(first.sid));
        }
        let task = self.task_sid.as_deref().and_then(|sid| tr.tasks.get(sid));
        json!({
            "sid": self.sid,
            "channel": channel,
            "routing": task.map(|task| routing_json(tr, task, render)),
            "url": url,
            "links": {"channels": format!("{url}/Channels")},
            "interaction_context_sid": self.context_sid,
            "webhook_ttid": self.webhook_ttid,
        })
    }

    /// An interaction with its channels (and their `conversation_sid`) and
    /// their participants (and their `media_properties` and REST `status`):
    /// the state dump and SSE shape.
    pub fn dump(&self, tr: &TaskRouter, render: &Render<'_>) -> Value {
        let mut json = self.to_json(tr, render);
        let channels: Vec<Value> = self
            .channels
            .iter()
            .map(|channel| {
                let mut item = channel.to_json(&self.sid, render);
                let participants: Vec<Value> = channel
                    .participants
                    .iter()
                    .map(|p| {
                        let mut json = p.to_json(&self.sid, channel, render);
                        if let Value::Object(map) = &mut json {
                            map.insert("media_properties".into(), p.media_properties.clone());
                            map.insert("status".into(), json!(p.status));
                        }
                        json
                    })
                    .collect();
                if let Value::Object(map) = &mut item {
                    map.insert("conversation_sid".into(), json!(channel.conversation_sid));
                    map.insert("participants".into(), Value::Array(participants));
                }
                item
            })
            .collect();
        if let Value::Object(map) = &mut json {
            map.insert("channels".into(), Value::Array(channels));
        }
        json
    }
}

impl InteractionChannel {
    pub fn url(&self, interaction_sid: &str, render: &Render<'_>) -> String {
        format!(
            "{}/v1/Interactions/{interaction_sid}/Channels/{}",
            render.base, self.sid
        )
    }

    pub fn to_json(&self, interaction_sid: &str, render: &Render<'_>) -> Value {
        let url = self.url(interaction_sid, render);
        json!({
            "sid": self.sid,
            "interaction_sid": interaction_sid,
            "type": self.kind,
            "status": self.status.as_str(),
            "error_code": null,
            "error_message": null,
            "url": url,
            "links": {
                "participants": format!("{url}/Participants"),
                "invites": format!("{url}/Invites"),
                "transfers": format!("{url}/Transfers"),
            },
        })
    }
}

impl ChannelParticipant {
    pub fn to_json(
        &self,
        interaction_sid: &str,
        channel: &InteractionChannel,
        render: &Render<'_>,
    ) -> Value {
        json!({
            "sid": self.sid,
            "type": self.kind.as_str(),
            "interaction_sid": interaction_sid,
            "channel_sid": channel.sid,
            "url": format!("{}/Participants/{}", channel.url(interaction_sid, render), self.sid),
            "routing_properties": self.routing_properties,
        })
    }
}

/// `routing` of an interaction: the live task in the shape of the spec's
/// example (dates as Unix seconds) and its live reservation, if any.
fn routing_json(tr: &TaskRouter, task: &Task, render: &Render<'_>) -> Value {
    let reservation = tr.live_reservation(&task.sid).map(|r| {
        json!({"sid": r.sid, "worker_sid": r.worker_sid, "reservation_status": r.status.as_str()})
    });
    json!({
        "reservation": reservation,
        "properties": {
            "sid": task.sid,
            "account_sid": render.account_sid,
            "workspace_sid": tr.workspace.sid,
            "workflow_sid": task.workflow_sid,
            "workflow_name": tr.workflows.get(&task.workflow_sid).map(|w| w.friendly_name.as_str()),
            "queue_sid": task.queue_sid,
            "queue_name": tr.queues.get(&task.queue_sid).map(|q| q.friendly_name.as_str()),
            "task_channel_sid": task.task_channel_sid,
            "task_channel_unique_name": task.task_channel_name,
            "attributes": task.attributes,
            "assignment_status": task.status.as_str(),
            "priority": task.priority,
            "timeout": task.timeout,
            "age": task.created.seconds_until(Instant::now()),
            "reason": task.reason.clone().unwrap_or_default(),
            "routing_target": task.routing_target,
            "addons": "{}",
            "date_created": task.created.unix(),
            "date_updated": task.updated.unix(),
            "task_queue_entered_date": task.created.unix(),
        },
    })
}
