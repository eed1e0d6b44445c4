//! What `POST /v1/Channels` does: make (or reuse) the chat channel of a
//! customer and start its Flex Flow's integration (`docs/twilio-reference.md`
//! §2; `docs/architecture.md` §3.3a).
//!
//! Decisions, since Twilio documents only the request and the answer:
//! - The chat user is upserted (identity; friendly name = `ChatUserFriendlyName`).
//! - `Target` given and an ACTIVE channel of the same flow with that target
//!   exists → that channel is answered again and no task is made.
//! - Otherwise a private channel (`created_by` "system") is made with the
//!   identity as its member and the attributes Flex sets: `from`,
//!   `channel_type`, `status: "ACTIVE"`, `long_lived`, plus
//!   `pre_engagement_data` and `flex_flow_sid`.
//! - Integration `studio`: a channel webhook of type `studio` to the flow's
//!   `Integration.FlowSid` is added (it counts toward the 5); the task comes
//!   from the flow's "Send to Flex" step on the first message event.
//! - Integration `task`: the task is made now, or on the first message event
//!   when `Integration.CreationOnMessage` is true. Only then is `task_sid` set.
//! - Integration `external`: nothing is routed (the emulator calls no URL).

use serde_json::{Value, json};

use super::World;
use super::actor::Actor;
use super::channels::{ChannelChange, NewMember};
use super::chat::{ChannelType, FlexBinding};
use super::error::WorldError;
use super::flex::IntegrationType;
use super::hooks::{HookSettings, WebhookKind};
use super::routing::NewTask;
use crate::clock::SentDates;

/// The parameters of `POST /v1/Channels`, parsed.
#[derive(Debug, Clone)]
pub(crate) struct NewFlexChannel {
    pub flow_sid: String,
    pub identity: String,
    pub user_friendly_name: String,
    pub chat_friendly_name: String,
    pub target: Option<String>,
    pub unique_name: Option<String>,
    pub pre_engagement_data: Option<String>,
    pub task_sid: Option<String>,
    pub task_attributes: Option<serde_json::Map<String, Value>>,
    pub long_lived: Option<bool>,
}

impl World {
    /// `POST /v1/Channels`; returns the channel SID (new or reused).
    pub(crate) fn create_flex_channel(
        &mut self,
        new: NewFlexChannel,
    ) -> Result<String, WorldError> {
        let flow = self
            .flex_flows
            .get(&new.flow_sid)
            .cloned()
            .ok_or_else(|| WorldError::invalid("FlexFlowSid", "no Flex Flow has this SID"))?;
        if !flow.enabled {
            return Err(WorldError::invalid(
                "FlexFlowSid",
                "the Flex Flow is disabled",
            ));
        }
        if let Some(task_sid) = &new.task_sid
            && !self.taskrouter.tasks.contains(task_sid)
        {
            return Err(WorldError::invalid("TaskSid", "no task has this SID"));
        }
        if let Some(target) = &new.target {
            let reusable = self.chat.channels.find(|channel| {
                channel.is_active()
                    && channel.flex.as_ref().is_some_and(|binding| {
                        binding.flow_sid == flow.sid && binding.target.as_deref() == Some(target)
                    })
            });
            if let Some(channel) = reusable {
                return Ok(channel.sid.clone());
            }
        }
        let system = Actor::system();
        let user_sid = self.upsert_user(
            &flow.chat_service_sid,
            &new.identity,
            Some(&new.user_friendly_name),
        )?;
        let long_lived = new.long_lived.unwrap_or(flow.long_lived);
        let mut attributes = serde_json::Map::new();
        attributes.insert("from".into(), json!(new.user_friendly_name));
        attributes.insert("channel_type".into(), json!(flow.channel_type));
        attributes.insert("status".into(), json!("ACTIVE"));
        attributes.insert("long_lived".into(), json!(long_lived));
        attributes.insert("flex_flow_sid".into(), json!(flow.sid));
        if let Some(data) = &new.pre_engagement_data {
            let value = serde_json::from_str(data).unwrap_or_else(|_| json!(data));
            attributes.insert("pre_engagement_data".into(), value);
        }
        let channel_sid = self.create_channel(
            &flow.chat_service_sid,
            ChannelType::Private,
            ChannelChange {
                friendly_name: Some(new.chat_friendly_name.clone()),
                unique_name: new.unique_name.clone(),
                attributes: Some(Value::Object(attributes).to_string()),
                created_by: Some("system".into()),
                dates: SentDates::default(),
            },
        )?;
        let creates_task_now = flow.integration_type == IntegrationType::Task
            && !flow.integration.creation_on_message.unwrap_or(false);
        if let Some(channel) = self.chat.channels.get_mut(&channel_sid) {
            channel.flex = Some(FlexBinding {
                flow_sid: flow.sid.clone(),
                identity: new.identity.clone(),
                user_sid,
                target: new.target.clone(),
                task_sid: new.task_sid.clone(),
                task_on_message: flow.integration_type == IntegrationType::Task
                    && new.task_sid.is_none()
                    && !creates_task_now,
            });
        }
        self.add_member(&channel_sid, NewMember::identity(&new.identity), &system)?;
        match flow.integration_type {
            IntegrationType::Studio => {
                let flow_sid = flow.integration.flow_sid.clone();
                self.add_studio_webhook(&channel_sid, flow_sid);
            }
            IntegrationType::Task if creates_task_now && new.task_sid.is_none() => {
                self.create_flow_task(&channel_sid, new.task_attributes.as_ref());
            }
            IntegrationType::Task | IntegrationType::External => {}
        }
        Ok(channel_sid)
    }

    /// The `studio` webhook Flex puts on a channel of a studio-type flow.
    fn add_studio_webhook(&mut self, channel_sid: &str, flow_sid: Option<String>) {
        let settings = HookSettings {
            kind: WebhookKind::Studio,
            url: None,
            method: "POST".into(),
            filters: Vec::new(),
            triggers: Vec::new(),
            flow_sid,
        };
        // The channel was just made: it has room for a webhook.
        if let Err(error) = self.add_webhook(channel_sid, settings, 0) {
            tracing::warn!(%error, channel_sid, "Flex could not add its studio webhook");
        }
    }

    /// Makes the task a task-integration flow asks for, with Flex's
    /// attributes `{channelSid, name, channelType}` (plus `TaskAttributes`).
    pub(crate) fn create_flow_task(
        &mut self,
        channel_sid: &str,
        extra: Option<&serde_json::Map<String, Value>>,
    ) -> Option<String> {
        let channel = self.chat.channels.get(channel_sid)?;
        let binding = channel.flex.clone()?;
        let flow = self.flex_flows.get(&binding.flow_sid)?.clone();
        let mut attributes = self.flex_task_attributes(channel_sid, &binding.identity);
        if let Some(extra) = extra {
            for (key, value) in extra {
                attributes.insert(key.clone(), value.clone());
            }
        }
        let integration = &flow.integration;
        let task_channel = integration
            .channel
            .clone()
            .unwrap_or_else(|| "chat".to_owned());
        let task_sid = self.create_task(NewTask {
            attributes: Value::Object(attributes).to_string(),
            workflow_sid: integration.workflow_sid.clone(),
            task_channel: Some(task_channel),
            priority: integration.priority.unwrap_or(0),
            timeout: integration.timeout.unwrap_or(86_400),
            routing_target: None,
        });
        self.link_task_to_channel(channel_sid, &task_sid);
        if let Some(binding) = self
            .chat
            .channels
            .get_mut(channel_sid)
            .and_then(|channel| channel.flex.as_mut())
        {
            binding.task_sid = Some(task_sid.clone());
        }
        Some(task_sid)
    }

    /// `{channelSid, name, channelType}`: what Flex puts on a chat task.
    pub(crate) fn flex_task_attributes(
        &self,
        channel_sid: &str,
        fallback_name: &str,
    ) -> serde_json::Map<String, Value> {
        let channel_attributes = self
            .chat
            .channels
            .get(channel_sid)
            .map(|channel| channel.attributes_object())
            .unwrap_or_default();
        let name = channel_attributes
            .get("from")
            .and_then(Value::as_str)
            .unwrap_or(fallback_name);
        let channel_type = channel_attributes
            .get("channel_type")
            .and_then(Value::as_str)
            .unwrap_or("custom");
        let mut attributes = serde_json::Map::new();
        attributes.insert("channelSid".into(), json!(channel_sid));
        attributes.insert("name".into(), json!(name));
        attributes.insert("channelType".into(), json!(channel_type));
        attributes
    }

    /// Records the task in the channel's attributes (`task_sid`, as Flex
    /// does; no webhook fires for this bookkeeping) and stops waiting for a
    /// message to make one. The Flex channel's own `task_sid` is only set by
    /// the task integration (`create_flow_task`).
    pub(crate) fn link_task_to_channel(&mut self, channel_sid: &str, task_sid: &str) {
        if let Some(channel) = self.chat.channels.get_mut(channel_sid) {
            let mut attributes = channel.attributes_object();
            attributes.insert("task_sid".into(), json!(task_sid));
            channel.attributes = Value::Object(attributes).to_string();
            if let Some(binding) = channel.flex.as_mut() {
                binding.task_on_message = false;
            }
        }
    }
}
