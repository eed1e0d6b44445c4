//! TaskRouter v1 resources as the emulator stores them (one workspace with
//! its workflow, queue, task channels, activities, workers, tasks and
//! reservations) and their Twilio JSON shapes (`docs/twilio-reference.md`
//! §5). Routing — who gets which task — lives in `routing.rs`.

use serde_json::{Value, json};

use super::render::Render;
use super::table::{Keyed, Table};
use crate::clock::Instant;

#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    pub sid: String,
    pub friendly_name: String,
    pub default_activity_sid: String,
    pub created: Instant,
}

#[derive(Debug, Clone)]
pub(crate) struct Workflow {
    pub sid: String,
    pub friendly_name: String,
    /// The workflow document (JSON text); the emulator routes every task to
    /// its one queue whatever it says.
    pub configuration: String,
    pub created: Instant,
}

#[derive(Debug, Clone)]
pub(crate) struct TaskQueue {
    pub sid: String,
    pub friendly_name: String,
}

#[derive(Debug, Clone)]
pub(crate) struct TaskChannel {
    pub sid: String,
    /// What tasks name it by (`TaskChannel=chat`).
    pub unique_name: String,
    pub friendly_name: String,
    pub created: Instant,
}

#[derive(Debug, Clone)]
pub(crate) struct Activity {
    pub sid: String,
    pub friendly_name: String,
    pub available: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Worker {
    pub sid: String,
    pub name: String,
    /// The chat identity the agent speaks as.
    pub identity: String,
    pub attributes: String,
    pub activity_sid: String,
    pub available: bool,
    /// Chat tasks worked at once; every task counts against it.
    pub capacity: u32,
    pub created: Instant,
    pub status_changed: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TaskStatus {
    Pending,
    Reserved,
    Assigned,
    Wrapping,
    Completed,
    Canceled,
}

impl TaskStatus {
    pub const NAMES: [&'static str; 6] = [
        "pending",
        "reserved",
        "assigned",
        "canceled",
        "completed",
        "wrapping",
    ];

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "pending" => Self::Pending,
            "reserved" => Self::Reserved,
            "assigned" => Self::Assigned,
            "wrapping" => Self::Wrapping,
            "completed" => Self::Completed,
            "canceled" => Self::Canceled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Reserved => "reserved",
            Self::Assigned => "assigned",
            Self::Wrapping => "wrapping",
            Self::Completed => "completed",
            Self::Canceled => "canceled",
        }
    }
}

/// What a task is about: the place the customer and the agent talk. Flex
/// with Programmable Chat points a task at a Chat channel (attributes
/// `channelSid`); Flex Conversations at a conversation (`conversationSid`),
/// routed through an interaction channel (`flexInteractionSid`,
/// `flexInteractionChannelSid`) when the task came from one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChannelRef {
    Chat {
        service_sid: String,
        channel_sid: String,
    },
    Conversation {
        conversation_sid: String,
        /// `(KD…, UO…)` of the interaction channel that made the task.
        interaction: Option<(String, String)>,
    },
}

impl ChannelRef {
    /// `chat` or `conversations`, as the control API reports it.
    pub fn backend(&self) -> &'static str {
        match self {
            ChannelRef::Chat { .. } => "chat",
            ChannelRef::Conversation { .. } => "conversations",
        }
    }

    /// The CH SID: the chat channel or the conversation.
    pub fn channel_sid(&self) -> &str {
        match self {
            ChannelRef::Chat { channel_sid, .. } => channel_sid,
            ChannelRef::Conversation {
                conversation_sid, ..
            } => conversation_sid,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub sid: String,
    /// JSON text.
    pub attributes: String,
    pub status: TaskStatus,
    pub priority: i64,
    pub timeout: u64,
    pub reason: Option<String>,
    pub workflow_sid: String,
    pub queue_sid: String,
    pub task_channel_sid: String,
    pub task_channel_name: String,
    pub routing_target: Option<String>,
    pub target: Option<ChannelRef>,
    /// Workers who rejected this task: it is not offered to them again.
    pub declined_by: Vec<String>,
    /// Who ended its chat, once it ended (the agent console says so; not a
    /// TaskRouter field).
    pub ended_by: Option<EndedBy>,
    pub created: Instant,
    pub updated: Instant,
    pub virtual_start: Instant,
}

/// Who ended a task's chat: its agent, or the integration over REST (a
/// Chat channel set `INACTIVE`, an interaction channel closed, a
/// conversation's `State=closed`): the customer's side, as a web chat
/// bridge ends a chat its customer left. A timer or Flex closing a
/// conversation on its own is neither, and leaves it unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndedBy {
    Agent,
    Customer,
}

impl EndedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Customer => "customer",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReservationStatus {
    Pending,
    Accepted,
    Rejected,
    Timeout,
    Canceled,
    Rescinded,
    Wrapping,
    Completed,
}

impl ReservationStatus {
    pub const NAMES: [&'static str; 8] = [
        "pending",
        "accepted",
        "rejected",
        "timeout",
        "canceled",
        "rescinded",
        "wrapping",
        "completed",
    ];

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "pending" => Self::Pending,
            "accepted" => Self::Accepted,
            "rejected" => Self::Rejected,
            "timeout" => Self::Timeout,
            "canceled" => Self::Canceled,
            "rescinded" => Self::Rescinded,
            "wrapping" => Self::Wrapping,
            "completed" => Self::Completed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::Timeout => "timeout",
            Self::Canceled => "canceled",
            Self::Rescinded => "rescinded",
            Self::Wrapping => "wrapping",
            Self::Completed => "completed",
        }
    }

    /// The reservation holds a unit of the worker's capacity.
    pub fn holds_capacity(self) -> bool {
        matches!(self, Self::Pending | Self::Accepted | Self::Wrapping)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Reservation {
    pub sid: String,
    pub task_sid: String,
    pub worker_sid: String,
    pub worker_name: String,
    pub status: ReservationStatus,
    pub created: Instant,
    pub updated: Instant,
}

macro_rules! keyed_by_sid {
    ($($ty:ty),*) => {$(
        impl Keyed for $ty {
            fn key(&self) -> &str {
                &self.sid
            }
        }
    )*};
}
keyed_by_sid!(
    Workflow,
    TaskQueue,
    TaskChannel,
    Activity,
    Worker,
    Task,
    Reservation
);

/// The one workspace and everything in it.
#[derive(Debug, Clone)]
pub(crate) struct TaskRouter {
    pub workspace: Workspace,
    pub workflows: Table<Workflow>,
    pub queues: Table<TaskQueue>,
    pub task_channels: Table<TaskChannel>,
    pub activities: Table<Activity>,
    pub workers: Table<Worker>,
    pub tasks: Table<Task>,
    pub reservations: Table<Reservation>,
}

impl TaskRouter {
    /// Units of capacity the worker's reservations hold.
    pub fn load(&self, worker_sid: &str) -> u32 {
        let held = self
            .reservations
            .iter()
            .filter(|r| r.worker_sid == worker_sid && r.status.holds_capacity())
            .count();
        u32::try_from(held).unwrap_or(u32::MAX)
    }

    /// The reservation of a task that currently holds a worker, if any.
    pub fn live_reservation(&self, task_sid: &str) -> Option<&Reservation> {
        self.reservations
            .iter()
            .rev()
            .find(|r| r.task_sid == task_sid && r.status.holds_capacity())
    }

    /// A task channel by SID or unique name.
    pub fn task_channel(&self, sid_or_name: &str) -> Option<&TaskChannel> {
        self.task_channels
            .get(sid_or_name)
            .or_else(|| self.task_channels.find(|c| c.unique_name == sid_or_name))
    }

    fn workspace_url(&self, render: &Render<'_>) -> String {
        format!("{}/v1/Workspaces/{}", render.base, self.workspace.sid)
    }

    pub fn workspace_json(&self, render: &Render<'_>) -> Value {
        let url = self.workspace_url(render);
        let ws = &self.workspace;
        let default_activity = self.activities.get(&ws.default_activity_sid);
        let links: serde_json::Map<String, Value> = [
            ("activities", "Activities"),
            ("statistics", "Statistics"),
            ("real_time_statistics", "RealTimeStatistics"),
            ("cumulative_statistics", "CumulativeStatistics"),
            ("task_queues", "TaskQueues"),
            ("tasks", "Tasks"),
            ("workers", "Workers"),
            ("workflows", "Workflows"),
            ("task_channels", "TaskChannels"),
            ("events", "Events"),
        ]
        .into_iter()
        .map(|(key, path)| (key.to_owned(), json!(format!("{url}/{path}"))))
        .collect();
        json!({
            "account_sid": render.account_sid,
            "date_created": ws.created.rest(),
            "date_updated": ws.created.rest(),
            "default_activity_name": default_activity.map(|a| a.friendly_name.as_str()),
            "default_activity_sid": ws.default_activity_sid,
            "event_callback_url": null,
            "events_filter": null,
            "friendly_name": ws.friendly_name,
            "multi_task_enabled": true,
            "sid": ws.sid,
            "timeout_activity_name": default_activity.map(|a| a.friendly_name.as_str()),
            "timeout_activity_sid": ws.default_activity_sid,
            "prioritize_queue_order": "FIFO",
            "url": url,
            "links": links,
        })
    }

    pub fn task_channel_json(&self, channel: &TaskChannel, render: &Render<'_>) -> Value {
        let workspace_url = self.workspace_url(render);
        json!({
            "account_sid": render.account_sid,
            "date_created": channel.created.rest(),
            "date_updated": channel.created.rest(),
            "friendly_name": channel.friendly_name,
            "sid": channel.sid,
            "unique_name": channel.unique_name,
            "workspace_sid": self.workspace.sid,
            // Routing here picks the least loaded agent, not the longest idle.
            "channel_optimized_routing": false,
            "url": format!("{workspace_url}/TaskChannels/{}", channel.sid),
            "links": {"workspace": workspace_url},
        })
    }

    pub fn workflow_json(&self, workflow: &Workflow, render: &Render<'_>) -> Value {
        let url = format!("{}/Workflows/{}", self.workspace_url(render), workflow.sid);
        json!({
            "account_sid": render.account_sid,
            "assignment_callback_url": null,
            "configuration": workflow.configuration,
            "date_created": workflow.created.rest(),
            "date_updated": workflow.created.rest(),
            "document_content_type": "application/json",
            "fallback_assignment_callback_url": null,
            "friendly_name": workflow.friendly_name,
            "sid": workflow.sid,
            "task_reservation_timeout": 120,
            "workspace_sid": self.workspace.sid,
            "url": url,
            "links": {
                "statistics": format!("{url}/Statistics"),
                "real_time_statistics": format!("{url}/RealTimeStatistics"),
                "cumulative_statistics": format!("{url}/CumulativeStatistics"),
            },
        })
    }

    pub fn worker_json(&self, worker: &Worker, render: &Render<'_>) -> Value {
        let workspace_url = self.workspace_url(render);
        let url = format!("{workspace_url}/Workers/{}", worker.sid);
        let activity = self.activities.get(&worker.activity_sid);
        json!({
            "account_sid": render.account_sid,
            "activity_name": activity.map(|a| a.friendly_name.as_str()),
            "activity_sid": worker.activity_sid,
            "attributes": worker.attributes,
            "available": worker.available,
            "date_created": worker.created.rest(),
            "date_status_changed": worker.status_changed.rest(),
            "date_updated": worker.status_changed.rest(),
            "friendly_name": worker.name,
            "sid": worker.sid,
            "workspace_sid": self.workspace.sid,
            "url": url,
            "links": {
                "channels": format!("{url}/Channels"),
                "reservations": format!("{url}/Reservations"),
                "activity": format!("{workspace_url}/Activities/{}", worker.activity_sid),
                "workspace": workspace_url,
            },
        })
    }

    pub fn task_json(&self, task: &Task, render: &Render<'_>) -> Value {
        let workspace_url = self.workspace_url(render);
        let url = format!("{workspace_url}/Tasks/{}", task.sid);
        let now = Instant::now();
        json!({
            "account_sid": render.account_sid,
            "age": task.created.seconds_until(now),
            "assignment_status": task.status.as_str(),
            "attributes": task.attributes,
            "addons": "{}",
            "date_created": task.created.rest(),
            "date_updated": task.updated.rest(),
            "task_queue_entered_date": task.created.rest(),
            "priority": task.priority,
            "reason": task.reason,
            "sid": task.sid,
            "task_queue_sid": task.queue_sid,
            "task_queue_friendly_name": self.queues.get(&task.queue_sid).map(|q| q.friendly_name.as_str()),
            "task_channel_sid": task.task_channel_sid,
            "task_channel_unique_name": task.task_channel_name,
            "timeout": task.timeout,
            "workflow_sid": task.workflow_sid,
            "workflow_friendly_name": self.workflows.get(&task.workflow_sid).map(|w| w.friendly_name.as_str()),
            "workspace_sid": self.workspace.sid,
            "url": url,
            "links": {
                "task_queue": format!("{workspace_url}/TaskQueues/{}", task.queue_sid),
                "workflow": format!("{workspace_url}/Workflows/{}", task.workflow_sid),
                "workspace": workspace_url,
                "reservations": format!("{url}/Reservations"),
            },
            "virtual_start_time": task.virtual_start.rest(),
            "ignore_capacity": false,
            "routing_target": task.routing_target,
        })
    }

    pub fn reservation_json(&self, reservation: &Reservation, render: &Render<'_>) -> Value {
        let workspace_url = self.workspace_url(render);
        let task_url = format!("{workspace_url}/Tasks/{}", reservation.task_sid);
        json!({
            "account_sid": render.account_sid,
            "date_created": reservation.created.rest(),
            "date_updated": reservation.updated.rest(),
            "reservation_status": reservation.status.as_str(),
            "sid": reservation.sid,
            "task_sid": reservation.task_sid,
            "worker_name": reservation.worker_name,
            "worker_sid": reservation.worker_sid,
            "workspace_sid": self.workspace.sid,
            "url": format!("{task_url}/Reservations/{}", reservation.sid),
            "links": {
                "task": task_url,
                "worker": format!("{workspace_url}/Workers/{}", reservation.worker_sid),
                "workspace": workspace_url,
            },
        })
    }
}
