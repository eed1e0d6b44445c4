//! Flex v1 resources as the emulator stores them — Flex Flows with their
//! integration — and the `flex.v1.channel` shape that `POST /v1/Channels`
//! answers (`docs/twilio-reference.md` §2). What that call does lives in
//! `flex_channels.rs`.

use serde_json::{Value, json};

use super::chat::FlexBinding;
use super::render::Render;
use super::table::Keyed;
use crate::clock::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntegrationType {
    Studio,
    External,
    Task,
}

impl IntegrationType {
    pub const NAMES: [&'static str; 3] = ["studio", "external", "task"];

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "studio" => Some(Self::Studio),
            "external" => Some(Self::External),
            "task" => Some(Self::Task),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Studio => "studio",
            Self::External => "external",
            Self::Task => "task",
        }
    }
}

/// The `Integration.*` parameters; `None` = not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Integration {
    pub flow_sid: Option<String>,
    pub url: Option<String>,
    pub workspace_sid: Option<String>,
    pub workflow_sid: Option<String>,
    pub channel: Option<String>,
    pub timeout: Option<u64>,
    pub priority: Option<i64>,
    pub creation_on_message: Option<bool>,
    pub retry_count: Option<u8>,
}

impl Integration {
    /// The response's `integration` object: the given values, snake_case.
    fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        let mut put = |key: &str, value: Value| {
            if !value.is_null() {
                map.insert(key.to_owned(), value);
            }
        };
        put("flow_sid", json!(self.flow_sid));
        put("url", json!(self.url));
        put("workspace_sid", json!(self.workspace_sid));
        put("workflow_sid", json!(self.workflow_sid));
        put("channel", json!(self.channel));
        put("timeout", json!(self.timeout));
        put("priority", json!(self.priority));
        put("creation_on_message", json!(self.creation_on_message));
        put("retry_count", json!(self.retry_count));
        Value::Object(map)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FlexFlow {
    pub sid: String,
    pub friendly_name: String,
    pub chat_service_sid: String,
    pub channel_type: String,
    pub contact_identity: Option<String>,
    pub enabled: bool,
    pub integration_type: IntegrationType,
    pub integration: Integration,
    pub long_lived: bool,
    pub janitor_enabled: bool,
    pub created: Instant,
    pub updated: Instant,
}

impl Keyed for FlexFlow {
    fn key(&self) -> &str {
        &self.sid
    }
}

impl FlexFlow {
    pub const CHANNEL_TYPES: [&'static str; 6] =
        ["web", "sms", "facebook", "whatsapp", "line", "custom"];

    pub fn to_json(&self, render: &Render<'_>) -> Value {
        json!({
            "account_sid": render.account_sid,
            "date_created": self.created.rest(),
            "date_updated": self.updated.rest(),
            "sid": self.sid,
            "friendly_name": self.friendly_name,
            "chat_service_sid": self.chat_service_sid,
            "channel_type": self.channel_type,
            "contact_identity": self.contact_identity,
            "enabled": self.enabled,
            "integration_type": self.integration_type.as_str(),
            "integration": self.integration.to_json(),
            "long_lived": self.long_lived,
            "janitor_enabled": self.janitor_enabled,
            "url": format!("{}/v1/FlexFlows/{}", render.base, self.sid),
        })
    }
}

/// `flex.v1.channel`: the answer to `POST /v1/Channels`.
pub(crate) fn flex_channel_json(
    channel_sid: &str,
    binding: &FlexBinding,
    created: Instant,
    updated: Instant,
    render: &Render<'_>,
) -> Value {
    json!({
        "account_sid": render.account_sid,
        "flex_flow_sid": binding.flow_sid,
        "sid": channel_sid,
        "user_sid": binding.user_sid,
        "task_sid": binding.task_sid,
        "url": format!("{}/v1/Channels/{channel_sid}", render.base),
        "date_created": created.rest(),
        "date_updated": updated.rest(),
    })
}
