//! Studio, as far as a studio-type Flex Flow needs it: the bootstrapped
//! "Webchat Flow" whose only step is "Send to Flex" (listed and fetched
//! with a definition saying so), and its executions.
//!
//! On a channel's first `onMessageSent` that reaches a `studio` webhook
//! (REST with `X-Twilio-Webhook-Enabled: true`, or an agent), an execution
//! (FN) starts and sends the chat to Flex: a task on "Assign to Anyone",
//! task channel `chat`, attributes `{channelSid, name, channelType}`. Later
//! messages of the same active execution make nothing. Ending the chat ends
//! the execution; on a channel that is not long-lived the studio webhook is
//! removed too (Flex's janitor), so a dead channel makes no more tasks, while
//! a long-lived channel's next message starts a new execution and task.
//!
//! The same flow on a conversation (a `Target=studio` scoped webhook, on the
//! first `onMessageAdded`) makes an interaction instead, whose task has
//! `{conversationSid, name (the author), channelType: "chat"}` plus the
//! interaction SIDs (`interactions/orchestration.rs`); a conversation that
//! already has a live interaction starts no execution. The execution ends
//! when the interaction channel or the conversation closes.

use serde_json::{Value, json};

use super::World;
use super::hooks::WebhookKind;
use super::render::Render;
use super::routing::NewTask;
use super::table::{Keyed, Table};
use crate::clock::Instant;
use crate::config::Bootstrap;
use crate::sid::Prefix;

#[derive(Debug, Clone)]
pub(crate) struct StudioFlow {
    pub sid: String,
    pub friendly_name: String,
    /// The flow document (Studio's JSON): what the emulator does when the
    /// flow runs, written down for `FetchFlow`; nothing reads it back.
    pub definition: Value,
    pub created: Instant,
}

/// How much of a flow an answer shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlowView {
    /// A list item: no definition and no check results (as the spec's
    /// `ListFlow` example).
    Summary,
    /// `FetchFlow`: everything.
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExecutionStatus {
    Active,
    Ended,
}

#[derive(Debug, Clone)]
pub(crate) struct Execution {
    pub sid: String,
    pub flow_sid: String,
    pub contact_sid: String,
    /// Who wrote the message that started it.
    pub contact_channel_address: String,
    pub channel_sid: String,
    pub task_sid: Option<String>,
    pub status: ExecutionStatus,
    pub created: Instant,
    pub updated: Instant,
}

impl Keyed for StudioFlow {
    fn key(&self) -> &str {
        &self.sid
    }
}

impl Keyed for Execution {
    fn key(&self) -> &str {
        &self.sid
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Studio {
    pub flows: Table<StudioFlow>,
    pub executions: Table<Execution>,
}

impl Studio {
    pub fn bootstrap(bootstrap: &Bootstrap, now: Instant) -> Self {
        let mut studio = Self::default();
        studio.flows.insert(StudioFlow {
            sid: bootstrap.studio_flow_sid.clone(),
            friendly_name: "Webchat Flow".into(),
            definition: webchat_flow_definition(bootstrap),
            created: now,
        });
        studio
    }
}

/// "Webchat Flow": a message (chat or conversation) goes straight to "Send
/// to Flex" — workflow "Assign to Anyone", task channel `chat`.
fn webchat_flow_definition(bootstrap: &Bootstrap) -> Value {
    let attributes = json!({
        "name": "{{trigger.message.ChannelAttributes.from}}",
        "channelType": "{{trigger.message.ChannelAttributes.channel_type}}",
        "channelSid": "{{trigger.message.ChannelSid}}",
    });
    json!({
        "description": "Webchat Flow",
        "initial_state": "Trigger",
        "flags": {"allow_concurrent_calls": true},
        "states": [
            {
                "name": "Trigger",
                "type": "trigger",
                "properties": {},
                "transitions": [
                    {"event": "incomingMessage", "next": "SendToFlex"},
                    {"event": "incomingConversationMessage", "next": "SendToFlex"},
                    {"event": "incomingCall"},
                    {"event": "incomingRequest"},
                ],
            },
            {
                "name": "SendToFlex",
                "type": "send-to-flex",
                "properties": {
                    "workflow": bootstrap.workflow_sid,
                    "channel": bootstrap.chat_task_channel_sid,
                    "attributes": attributes.to_string(),
                },
                "transitions": [
                    {"event": "callComplete"},
                    {"event": "failedToEnqueue"},
                    {"event": "callFailure"},
                ],
            },
        ],
    })
}

impl StudioFlow {
    pub fn to_json(&self, view: FlowView, render: &Render<'_>) -> Value {
        let url = format!("{}/v2/Flows/{}", render.base, self.sid);
        let full = view == FlowView::Full;
        json!({
            "sid": self.sid,
            "account_sid": render.account_sid,
            "author_sid": null,
            "friendly_name": self.friendly_name,
            "definition": full.then_some(&self.definition),
            "status": "published",
            "revision": 1,
            "commit_message": null,
            "valid": full.then_some(true),
            "errors": full.then(Vec::<Value>::new),
            "warnings": full.then(Vec::<Value>::new),
            // Twilio's is on webhooks.twilio.com, which the emulator is not.
            "webhook_url": null,
            "date_created": self.created.rest(),
            "date_updated": self.created.rest(),
            "url": url,
            "links": {
                "test_users": format!("{url}/TestUsers"),
                "revisions": format!("{url}/Revisions"),
                "executions": format!("{url}/Executions"),
            },
        })
    }
}

impl Execution {
    pub fn to_json(&self, render: &Render<'_>) -> Value {
        let url = format!(
            "{}/v2/Flows/{}/Executions/{}",
            render.base, self.flow_sid, self.sid
        );
        json!({
            "sid": self.sid,
            "account_sid": render.account_sid,
            "flow_sid": self.flow_sid,
            "contact_channel_address": self.contact_channel_address,
            "contact_sid": self.contact_sid,
            "flow_version": 1,
            "context": {
                "trigger": {"message": {"ChannelSid": self.channel_sid, "From": self.contact_channel_address}},
                "widgets": {"SendToFlex": {"TaskSid": self.task_sid}},
            },
            "status": match self.status {
                ExecutionStatus::Active => "active",
                ExecutionStatus::Ended => "ended",
            },
            "date_created": self.created.rest(),
            "date_updated": self.updated.rest(),
            "initiated_by": self.channel_sid,
            "url": url,
            "links": {
                "steps": format!("{url}/Steps"),
                "execution_context": format!("{url}/Context"),
            },
        })
    }
}

impl World {
    /// Runs the flow's "Send to Flex" for a message in `channel_sid`, unless
    /// an execution of this flow is already active there.
    pub(crate) fn send_to_flex(&mut self, channel_sid: &str, flow_sid: &str, author: &str) {
        if !self.studio.flows.contains(flow_sid) {
            tracing::warn!(
                flow_sid,
                channel_sid,
                "a studio webhook names an unknown flow"
            );
            return;
        }
        let running = self.studio.executions.find(|execution| {
            execution.flow_sid == flow_sid
                && execution.channel_sid == channel_sid
                && execution.status == ExecutionStatus::Active
        });
        if running.is_some() {
            return;
        }
        let sid = self.sid(Prefix::Execution);
        let contact_sid = self.sid(Prefix::StudioContact);
        let task_sid = if self.conversations.contains(channel_sid) {
            match self.route_from_studio(channel_sid, author) {
                Ok(task_sid) => task_sid,
                Err(error) => {
                    tracing::warn!(%error, flow_sid, channel_sid, "Send to Flex routed nothing");
                    return;
                }
            }
        } else {
            let attributes = self.flex_task_attributes(channel_sid, author);
            let task_sid = self.create_task(NewTask {
                attributes: Value::Object(attributes).to_string(),
                workflow_sid: None,
                task_channel: Some("chat".into()),
                priority: 0,
                timeout: 86_400,
                routing_target: None,
            });
            self.link_task_to_channel(channel_sid, &task_sid);
            task_sid
        };
        let now = Instant::now();
        self.studio.executions.insert(Execution {
            sid: sid.clone(),
            flow_sid: flow_sid.to_owned(),
            contact_sid,
            contact_channel_address: author.to_owned(),
            channel_sid: channel_sid.to_owned(),
            task_sid: Some(task_sid),
            status: ExecutionStatus::Active,
            created: now,
            updated: now,
        });
        self.emit_execution("studio_execution.created", &sid);
    }

    /// Ends the active executions of a channel; on a channel that is not
    /// long-lived also removes its studio webhooks.
    pub(crate) fn end_executions(&mut self, channel_sid: &str) {
        let active: Vec<String> = self
            .studio
            .executions
            .iter()
            .filter(|e| e.channel_sid == channel_sid && e.status == ExecutionStatus::Active)
            .map(|e| e.sid.clone())
            .collect();
        for sid in active {
            if let Some(execution) = self.studio.executions.get_mut(&sid) {
                execution.status = ExecutionStatus::Ended;
                execution.updated = Instant::now();
            }
            self.emit_execution("studio_execution.updated", &sid);
        }
        if let Some(channel) = self.chat.channels.get_mut(channel_sid) {
            let long_lived = channel
                .attributes_object()
                .get("long_lived")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if !long_lived {
                let studio: Vec<String> = channel
                    .webhooks
                    .iter()
                    .filter(|w| w.settings.kind == WebhookKind::Studio)
                    .map(|w| w.sid.clone())
                    .collect();
                for sid in studio {
                    channel.webhooks.remove(&sid);
                }
            }
        }
    }

    fn emit_execution(&mut self, kind: &'static str, sid: &str) {
        let data = self.studio.executions.get(sid).map(|execution| {
            let render = self.event_render();
            execution.to_json(&render)
        });
        self.emit(kind, json!({ "execution": data }));
    }
}
