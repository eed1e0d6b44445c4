//! Studio v2, as far as a studio-type Flex Flow needs it, as the emulator
//! stores it: the bootstrapped "Webchat Flow" whose only step is "Send to
//! Flex" (listed and fetched with a definition saying so), its executions,
//! and their Twilio JSON shapes. What a run does lives in `executions.rs`.

use serde_json::{Value, json};

use super::render::Render;
use super::table::{Keyed, Table};
use crate::clock::Instant;
use crate::config::Bootstrap;

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
/// to Flex" — workflow "Assign to Anyone", task channel `chat`. Its task
/// attributes are a new account's plus the line Twilio's pre-engagement
/// guide adds (`pre_engagement_data` from the channel's or conversation's
/// attributes), which `docs/embedding.md` asks operators to add: the
/// emulator's account comes with it, and Send to Flex copies that object.
fn webchat_flow_definition(bootstrap: &Bootstrap) -> Value {
    let attributes = concat!(
        r#"{"name": "{{trigger.message.ChannelAttributes.from}}", "#,
        r#""channelType": "{{trigger.message.ChannelAttributes.channel_type}}", "#,
        r#""channelSid": "{{trigger.message.ChannelSid}}", "#,
        r#""pre_engagement_data": {{trigger.message.ChannelAttributes.pre_engagement_data | to_json}}}"#,
    );
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
                    "attributes": attributes,
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
