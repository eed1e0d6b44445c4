//! The emulated account: every resource, in memory, and everything Flex does
//! to them. One `World` lives behind one `Mutex` (see `app.rs`); every method
//! here is synchronous and short, so no lock is ever held across an `.await`.
//!
//! A change is reported twice, from inside the critical section so the order
//! is the order of the changes: as an [`Event`] on the broadcast bus (the
//! SSE stream `/_emulator/events`) and, for Chat and Conversations events,
//! as webhook jobs on the dispatcher's queue (`webhooks/`). Timed changes
//! (wrap-up, conversation timers) ask the alarm clock (`alarms.rs`) to wake
//! the world when due.
//!
//! # Layout
//! Data modules hold resources and their Twilio JSON and know no `World`;
//! `mod.rs` holds them all in `World`; behaviour modules add `impl World`
//! blocks: what REST calls, agents, timers and Flex do.
//!
//! - `error.rs`         `WorldError`: why a change was refused
//! - `render.rs`        `Render`: the base URL and account of Twilio JSON
//! - `actor.rs`         `Actor`: who acts, as webhooks report it, and whether they fire
//! - `table.rs`         `Table<T>`: insertion-ordered, SID-indexed collections
//! - `hooks.rs`         webhook settings, events about to fire and who hears them (both backends)
//! - `media.rs`         MCS media: a file, its JSON and what a message says of it
//! - `uploads.rs`       what MCS does: uploads, temporary links, attaching to a message
//! - `chat.rs`          Chat service, users, channels, members, messages, webhooks; their events
//! - `taskrouter.rs`    workspace, workers, tasks, reservations
//! - `flex.rs`          Flex Flows and the `flex.v1.channel` shape
//! - `studio.rs`        the "Webchat Flow" and its executions
//! - `interactions/`    Flex Interactions: a conversation routed to an agent (`mod.rs`
//!   the resources, `orchestration.rs` what Flex does with them)
//! - `conversations/`   Conversations v1: conversations, participants, messages, scoped
//!   webhooks (`state.rs`, `timers.rs`, `model.rs`), what changes them (`changes.rs`,
//!   `lifecycle.rs`) and their events (`events.rs`)
//! - `mod.rs`           `World`, its bus, SIDs, alarms and webhook queue
//! - `fan_out.rs`       events → webhook jobs and Studio runs; Chat channel events
//! - `channels.rs`      what REST and agents do to chat channels
//! - `routing.rs`       tasks → reservations → agents; accept, reject, wrap, complete
//! - `flex_channels.rs` `POST /v1/Channels`: a customer's chat channel and its flow's integration
//! - `executions.rs`    Studio's "Send to Flex"
//! - `agents.rs`        what an agent does: write, type, end the chat
//!
//! `mod.rs` re-exports `Actor`, `Render` and `WorldError` for `api/` and
//! `control/`; inside `world/` a type is imported from the module that owns it.
//!
//! # Layers
//! Who may import whom, lowest first: a module imports only the modules its
//! line names, all on lines above it (`../` is outside `world/`; `clock`,
//! `sid`, `config` and `control::faults`, which import none of these, are
//! left out). So there is no import circle between the files of `world/`,
//! `alarms.rs` and `webhooks/`; `tests/world_layers.rs` checks the sources
//! against this list. Calls between `impl World` blocks are not imports and
//! go both ways (a message fans out to Studio, which routes a task, whose
//! acceptance adds a member, which fires an event).
//!
//! - `error` → nothing
//! - `render` → nothing
//! - `actor` → nothing
//! - `table` → `error`
//! - `media` → `render`, `table`
//! - `hooks` → `../webhooks/mod`
//! - `chat` → `hooks`, `media`, `render`, `table`
//! - `taskrouter` → `render`, `table`
//! - `flex` → `chat`, `render`, `table`
//! - `studio` → `render`, `table`
//! - `interactions/mod` → `render`, `table`, `taskrouter`
//! - `conversations/state` → nothing
//! - `conversations/timers` → `conversations/state`
//! - `conversations/model` → `hooks`, `media`, `render`, `table`, `conversations/{state, timers}`
//! - `conversations/mod` → `conversations/{model, state}`
//! - `mod` → `../alarms`, `../webhooks/mod`, `actor`, `chat`, `conversations/model`, `error`,
//!   `flex`, `interactions/mod`, `media`, `render`, `studio`, `table`, `taskrouter`
//! - `uploads` → `error`, `media`, `mod`
//! - `fan_out` → `../webhooks/mod`, `actor`, `hooks`, `mod`
//! - `conversations/events` → `actor`, `hooks`, `mod`, `conversations/{model, state}`
//! - `conversations/lifecycle` → `../alarms`, `actor`, `error`, `mod`, `taskrouter`,
//!   `conversations/{events, model, state}`
//! - `conversations/changes` → `actor`, `error`, `hooks`, `mod`, `table`,
//!   `conversations/{events, lifecycle, model, state, timers}`
//! - `channels` → `actor`, `chat`, `error`, `hooks`, `mod`, `table`, `taskrouter`
//! - `routing` → `actor`, `channels`, `conversations/{changes, state}`, `error`, `mod`,
//!   `taskrouter`
//! - `flex_channels` → `actor`, `channels`, `chat`, `error`, `flex`, `hooks`, `mod`, `routing`
//! - `executions` → `hooks`, `mod`, `routing`, `studio`
//! - `interactions/orchestration` → `actor`, `conversations/state`, `error`,
//!   `interactions/mod`, `mod`, `routing`, `table`, `taskrouter`
//! - `agents` → `actor`, `channels`, `conversations/{changes, state}`, `error`,
//!   `interactions/mod`, `mod`, `taskrouter`, `uploads`

pub(crate) mod actor;
pub(crate) mod agents;
pub(crate) mod channels;
pub(crate) mod chat;
pub(crate) mod conversations;
pub(crate) mod error;
pub(crate) mod executions;
pub(crate) mod fan_out;
pub(crate) mod flex;
pub(crate) mod flex_channels;
pub(crate) mod hooks;
pub(crate) mod interactions;
pub(crate) mod media;
pub(crate) mod render;
pub(crate) mod routing;
pub(crate) mod studio;
pub(crate) mod table;
pub(crate) mod taskrouter;
pub(crate) mod uploads;

pub(crate) use actor::Actor;
pub(crate) use error::WorldError;
pub(crate) use render::Render;

use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use self::chat::{Channel, Service, User};
use self::conversations::model::Conversation;
use self::flex::FlexFlow;
use self::interactions::Interaction;
use self::media::Media;
use self::studio::Studio;
use self::table::Table;
use self::taskrouter::{Activity, TaskChannel, TaskQueue, TaskRouter, Worker, Workflow, Workspace};
use crate::alarms::{Alarm, AlarmRequest, Wake};
use crate::clock::Instant;
use crate::config::{Bootstrap, Credentials, EmulatorConfig};
use crate::control::faults::{Faults, WebhookFaultAction};
use crate::sid::{Prefix, SidGenerator};
use crate::webhooks::{DeliveryLog, DeliveryRecord, Job, Ledger};

/// One change, as the SSE stream carries it.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// Increases by one per event; the SSE `id:`.
    pub seq: u64,
    /// The SSE `event:` name, e.g. `message.added`.
    pub kind: &'static str,
    pub data: Value,
}

/// Where the world reports changes.
#[derive(Debug, Clone)]
pub(crate) struct Bus {
    pub events: broadcast::Sender<Event>,
    pub webhooks: mpsc::UnboundedSender<Job>,
    pub alarms: mpsc::UnboundedSender<AlarmRequest>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ChatStore {
    pub services: Table<Service>,
    pub users: Table<User>,
    pub channels: Table<Channel>,
}

pub(crate) struct World {
    pub credentials: Credentials,
    pub bootstrap: Bootstrap,
    /// Chat tasks per agent (`--chat-capacity`), for resets.
    chat_capacity: u32,
    /// How long an ended task stays wrapping (`--wrapup-seconds`).
    wrapup: std::time::Duration,
    /// Where runtime SIDs come from; reset rewinds it to just after bootstrap.
    sids: SidGenerator,
    sids_after_bootstrap: SidGenerator,
    /// Bumped by every reset: timers and queued webhooks of an older
    /// generation belong to a world that no longer exists.
    pub generation: u64,
    /// Base of the absolute URLs inside SSE events (`--public-url`, or the
    /// address the emulator listens on).
    pub event_base_url: String,
    pub chat: ChatStore,
    /// Conversations of the Flex Chat Service (Flex Conversations' media).
    pub conversations: Table<Conversation>,
    pub interactions: Table<Interaction>,
    /// Files of the Media Content Service (both backends' messages).
    pub media: Table<Media>,
    pub flex_flows: Table<FlexFlow>,
    pub taskrouter: TaskRouter,
    pub studio: Studio,
    pub faults: Faults,
    pub deliveries: DeliveryLog,
    bus: Bus,
    event_seq: u64,
}

impl World {
    pub fn new(config: &EmulatorConfig, bus: Bus) -> Self {
        let (credentials, bootstrap, sids) = config.derive();
        let chat_capacity = config.chat_capacity();
        let wrapup = config.wrapup();
        let event_base_url = config.public_url().unwrap_or("http://localhost").to_owned();
        let now = Instant::now();
        let mut world = Self {
            chat: ChatStore::default(),
            conversations: Table::default(),
            interactions: Table::default(),
            media: Table::default(),
            flex_flows: Table::default(),
            taskrouter: bootstrap_taskrouter(&bootstrap, chat_capacity, now),
            studio: Studio::bootstrap(&bootstrap, now),
            faults: Faults::default(),
            deliveries: DeliveryLog::default(),
            sids_after_bootstrap: sids.clone(),
            sids,
            credentials,
            bootstrap,
            chat_capacity,
            wrapup,
            generation: 0,
            event_base_url,
            bus,
            event_seq: 0,
        };
        world.bootstrap_chat(now);
        world
    }

    /// Back to the bootstrap state: same SIDs, no faults, empty logs.
    pub fn reset(&mut self) {
        let now = Instant::now();
        self.sids = self.sids_after_bootstrap.clone();
        self.generation += 1;
        self.chat = ChatStore::default();
        self.conversations = Table::default();
        self.interactions = Table::default();
        self.media = Table::default();
        self.flex_flows = Table::default();
        self.taskrouter = bootstrap_taskrouter(&self.bootstrap, self.chat_capacity, now);
        self.studio = Studio::bootstrap(&self.bootstrap, now);
        self.faults = Faults::default();
        self.deliveries = DeliveryLog::default();
        self.bootstrap_chat(now);
        self.emit("reset", json!({ "generation": self.generation }));
    }

    fn bootstrap_chat(&mut self, now: Instant) {
        let service_sid = self.bootstrap.chat_service_sid.clone();
        self.chat.services.insert(Service {
            sid: service_sid.clone(),
            friendly_name: "Flex Chat Service".into(),
            created: now,
        });
        for agent in &self.bootstrap.agents {
            self.chat.users.insert(User {
                sid: agent.user_sid.clone(),
                service_sid: service_sid.clone(),
                identity: agent.identity.clone(),
                friendly_name: Some(agent.name.clone()),
                attributes: "{}".into(),
                role_sid: self.bootstrap.service_user_role_sid.clone(),
                created: now,
                updated: now,
            });
        }
    }

    /// A fresh SID for a resource made at runtime.
    pub fn sid(&mut self, prefix: Prefix) -> String {
        self.sids.sid(prefix)
    }

    pub fn render<'a>(&'a self, base: &'a str) -> Render<'a> {
        Render {
            base,
            account_sid: &self.credentials.account_sid,
        }
    }

    /// The rendering used inside SSE events.
    pub fn event_render(&self) -> Render<'_> {
        self.render(&self.event_base_url)
    }

    /// Publishes a change on the SSE bus. Nobody listening is fine.
    pub fn emit(&mut self, kind: &'static str, data: Value) {
        self.event_seq += 1;
        let _no_subscribers_is_fine = self.bus.events.send(Event {
            seq: self.event_seq,
            kind,
            data,
        });
    }

    /// Queues a webhook delivery for the dispatcher.
    pub fn enqueue_webhook(&mut self, mut job: Job) {
        job.generation = self.generation;
        if self.bus.webhooks.send(job).is_err() {
            tracing::warn!("the webhook dispatcher is not running; a webhook was not queued");
        }
    }

    /// Asks the alarm clock to wake the world about `alarm` at `at`
    /// (replacing the alarm's earlier instant, if any).
    pub fn set_alarm(&mut self, alarm: Alarm, at: Instant) {
        let request = AlarmRequest {
            generation: self.generation,
            alarm,
            delay: Instant::now().until(at),
        };
        if self.bus.alarms.send(request).is_err() {
            tracing::warn!("the alarm clock is not running; an alarm was not set");
        }
    }

    /// The task completes after the wrap-up time if it is still wrapping then.
    pub fn schedule_wrapup(&mut self, task_sid: &str) {
        let at = Instant::now().after(self.wrapup);
        let task_sid = task_sid.to_owned();
        self.set_alarm(Alarm::Wrapup { task_sid }, at);
    }

    /// Looks a chat service up by SID.
    pub fn service(&self, service_sid: &str) -> Result<&Service, WorldError> {
        self.chat.services.require("Service", service_sid)
    }

    /// A worker by SID or name (how the control API addresses agents).
    pub fn agent(&self, sid_or_name: &str) -> Result<&Worker, WorldError> {
        let workers = &self.taskrouter.workers;
        workers
            .get(sid_or_name)
            .or_else(|| workers.find(|worker| worker.name == sid_or_name))
            .ok_or_else(|| WorldError::not_found("Agent", sid_or_name))
    }
}

impl Wake for World {
    /// An alarm rang: do what is due now (see `alarms.rs`).
    fn wake(&mut self, alarm: &Alarm, generation: u64) {
        if generation != self.generation {
            return;
        }
        match alarm {
            Alarm::Wrapup { task_sid } => {
                let wrapping = self
                    .taskrouter
                    .tasks
                    .get(task_sid)
                    .is_some_and(|task| task.status == taskrouter::TaskStatus::Wrapping);
                if wrapping && let Err(error) = self.complete_task(task_sid, "wrap-up finished") {
                    tracing::warn!(%error, task_sid, "could not complete a task after wrap-up");
                }
            }
            Alarm::Conversation { sid } => self.apply_due_timers(sid),
        }
    }
}

impl Ledger for World {
    fn generation(&self) -> u64 {
        self.generation
    }

    fn take_webhook_fault(&mut self, event_type: &str) -> Option<WebhookFaultAction> {
        self.faults.take_webhook(event_type)
    }

    fn record_delivery(&mut self, record: DeliveryRecord) {
        let record = self.deliveries.push(record);
        self.emit("webhook.delivery", json!({ "delivery": record }));
    }
}

fn bootstrap_taskrouter(bootstrap: &Bootstrap, capacity: u32, now: Instant) -> TaskRouter {
    let mut router = TaskRouter {
        workspace: Workspace {
            sid: bootstrap.workspace_sid.clone(),
            friendly_name: "Flex Task Assignment".into(),
            default_activity_sid: bootstrap.offline_activity_sid.clone(),
            created: now,
        },
        workflows: Table::default(),
        queues: Table::default(),
        task_channels: Table::default(),
        activities: Table::default(),
        workers: Table::default(),
        tasks: Table::default(),
        reservations: Table::default(),
    };
    let configuration = json!({
        "task_routing": {
            "filters": [{
                "filter_friendly_name": "Everyone",
                "expression": "1==1",
                "targets": [{"queue": bootstrap.task_queue_sid}],
            }],
            "default_filter": {"queue": bootstrap.task_queue_sid},
        }
    });
    router.workflows.insert(Workflow {
        sid: bootstrap.workflow_sid.clone(),
        friendly_name: "Assign to Anyone".into(),
        configuration: configuration.to_string(),
        created: now,
    });
    router.queues.insert(TaskQueue {
        sid: bootstrap.task_queue_sid.clone(),
        friendly_name: "Everyone".into(),
    });
    for (sid, unique_name, friendly_name) in [
        (&bootstrap.default_task_channel_sid, "default", "Default"),
        (&bootstrap.voice_task_channel_sid, "voice", "Voice"),
        (
            &bootstrap.chat_task_channel_sid,
            "chat",
            "Programmable Chat",
        ),
        (&bootstrap.sms_task_channel_sid, "sms", "SMS"),
        (&bootstrap.video_task_channel_sid, "video", "Video"),
        (&bootstrap.email_task_channel_sid, "email", "Email"),
    ] {
        router.task_channels.insert(TaskChannel {
            sid: sid.clone(),
            unique_name: unique_name.into(),
            friendly_name: friendly_name.into(),
            created: now,
        });
    }
    for (sid, name, available) in [
        (&bootstrap.offline_activity_sid, "Offline", false),
        (&bootstrap.available_activity_sid, "Available", true),
        (&bootstrap.unavailable_activity_sid, "Unavailable", false),
        (&bootstrap.break_activity_sid, "Break", false),
    ] {
        router.activities.insert(Activity {
            sid: sid.clone(),
            friendly_name: name.into(),
            available,
        });
    }
    for agent in &bootstrap.agents {
        let full_name = capitalized(&agent.name);
        router.workers.insert(Worker {
            sid: agent.worker_sid.clone(),
            name: agent.name.clone(),
            identity: agent.identity.clone(),
            attributes: json!({
                "contact_uri": format!("client:{}", agent.identity),
                "full_name": full_name,
                "routing": {"skills": [], "levels": {}},
            })
            .to_string(),
            activity_sid: bootstrap.available_activity_sid.clone(),
            available: true,
            capacity,
            created: now,
            status_changed: now,
        });
    }
    router
}

fn capitalized(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
