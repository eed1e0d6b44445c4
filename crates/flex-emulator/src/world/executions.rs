//! What a Studio flow run (an execution, `studio.rs`) does: "Send to Flex".
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
use super::routing::NewTask;
use super::studio::{Execution, ExecutionStatus};
use crate::clock::Instant;
use crate::sid::Prefix;

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
            let mut attributes = self.flex_task_attributes(channel_sid, author);
            // The flow's `pre_engagement_data` line (studio.rs).
            let pre_engagement = self
                .chat
                .channels
                .get(channel_sid)
                .and_then(|c| c.attributes_object().get("pre_engagement_data").cloned());
            if let Some(data) = pre_engagement {
                attributes.insert("pre_engagement_data".into(), data);
            }
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
