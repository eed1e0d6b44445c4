//! Each command's settings as the layers give them, before typed parsing:
//! one serde struct per command, shaped like the TOML file. Its
//! `Default` is the bottom layer (so every default is written once, here,
//! from the typed defaults where the code has one); numbers are typed by
//! serde, SIDs and URLs stay text until [`super`] parses them (so their
//! errors say what is wrong with them). Secrets are `SecretString`s from
//! the start, and never serialized.

use secrecy::SecretString;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::setting::{self, Setting};
use super::{DEFAULT_DATABASE_URL, DEFAULT_FLOW_NAME, DEFAULT_HOST, DEFAULT_PORT, OutboxSettings};
use crate::core::rate_limit::RateLimit;
use crate::flex::BackendKind;
use crate::flex::conversations::RoutingKind;
use crate::flex::sid::TaskChannelName;

/// A command's settings struct.
pub trait CommandSettings: Default + Serialize + DeserializeOwned {
    /// The settings it reads: exactly its keys.
    const SETTINGS: &'static [Setting];
}

/// `flexbridge serve` (and `doctor`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Serve {
    pub server: Server,
    pub database: Database,
    pub redis: Redis,
    pub twilio: Twilio,
    pub flex: ServeFlex,
    pub outbox: Outbox,
    pub limits: Limits,
    pub widget: Widget,
}

impl CommandSettings for Serve {
    const SETTINGS: &'static [Setting] = setting::SERVE;
}

/// `flexbridge provision`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Provision {
    pub twilio: Twilio,
    pub flex: ProvisionFlex,
}

impl CommandSettings for Provision {
    const SETTINGS: &'static [Setting] = setting::PROVISION;
}

/// `flexbridge dev`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Dev {
    pub dev: DevSection,
    pub widget: Widget,
}

impl CommandSettings for Dev {
    const SETTINGS: &'static [Setting] = setting::DEV;
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub public_base_url: Option<String>,
    pub skip_twilio_check: String,
    pub allowed_origins: Option<String>,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
            public_base_url: None,
            skip_twilio_check: "false".to_owned(),
            allowed_origins: None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Database {
    pub url: String,
}

impl Default for Database {
    fn default() -> Self {
        Self {
            url: DEFAULT_DATABASE_URL.to_owned(),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Redis {
    pub url: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Twilio {
    pub account_sid: Option<String>,
    #[serde(serialize_with = "never")]
    pub auth_token: Option<SecretString>,
    pub api_key: Option<String>,
    #[serde(serialize_with = "never")]
    pub api_secret: Option<SecretString>,
    pub api_base: Option<String>,
}

/// A secret has no default, and is never written anywhere.
fn never<S: serde::Serializer>(_: &Option<SecretString>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_none()
}

/// What both Flex sections have, with their defaults.
fn default_backend() -> String {
    BackendKind::Conversations.as_str().to_owned()
}

fn default_routing() -> String {
    RoutingKind::Interactions.as_str().to_owned()
}

fn default_task_channel() -> String {
    TaskChannelName::chat().as_str().to_owned()
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ServeFlex {
    pub backend: String,
    pub chat_service_sid: Option<String>,
    pub routing: String,
    pub workspace_sid: Option<String>,
    pub workflow_sid: Option<String>,
    pub task_channel: String,
    pub timers_inactive: Option<String>,
    pub timers_closed: Option<String>,
    pub studio_flow_sid: Option<String>,
    pub flow_sid: Option<String>,
}

impl Default for ServeFlex {
    fn default() -> Self {
        Self {
            backend: default_backend(),
            chat_service_sid: None,
            routing: default_routing(),
            workspace_sid: None,
            workflow_sid: None,
            task_channel: default_task_channel(),
            timers_inactive: None,
            timers_closed: None,
            studio_flow_sid: None,
            flow_sid: None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ProvisionFlex {
    pub backend: String,
    pub chat_service_sid: Option<String>,
    pub routing: String,
    pub workspace_sid: Option<String>,
    pub workflow_sid: Option<String>,
    pub task_channel: String,
    pub studio_flow_sid: Option<String>,
    pub flow_name: String,
}

impl Default for ProvisionFlex {
    fn default() -> Self {
        Self {
            backend: default_backend(),
            chat_service_sid: None,
            routing: default_routing(),
            workspace_sid: None,
            workflow_sid: None,
            task_channel: default_task_channel(),
            studio_flow_sid: None,
            flow_name: DEFAULT_FLOW_NAME.to_owned(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Outbox {
    pub concurrency: usize,
    pub lease_ms: u64,
}

impl Default for Outbox {
    fn default() -> Self {
        let outbox = OutboxSettings::default();
        Self {
            concurrency: outbox.concurrency,
            lease_ms: u64::try_from(outbox.lease.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Limits {
    pub messages_burst: f64,
    pub messages_per_second: f64,
}

impl Default for Limits {
    fn default() -> Self {
        let limit = RateLimit::default();
        Self {
            messages_burst: limit.burst,
            messages_per_second: limit.per_second,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DevSection {
    pub host: String,
    pub port: u16,
    pub emulator_port: u16,
    pub database_url: String,
    pub seed: Option<u64>,
    pub agents: usize,
    pub backend: String,
    pub routing: String,
    pub allowed_origins: Option<String>,
}

impl Default for DevSection {
    fn default() -> Self {
        Self {
            host: DEFAULT_HOST.to_owned(),
            port: DEFAULT_PORT,
            emulator_port: 3001,
            database_url: "sqlite://flexbridge-dev.db".to_owned(),
            seed: None,
            agents: 2,
            backend: default_backend(),
            routing: default_routing(),
            allowed_origins: None,
        }
    }
}

/// The web chat's `[widget]` section (`serve` and `dev`). Texts left
/// unset are the chosen language's own.
#[derive(Debug, Serialize, Deserialize)]
pub struct Widget {
    pub title: Option<String>,
    pub greeting: Option<String>,
    pub color: Option<String>,
    pub color_text: Option<String>,
    pub logo_url: Option<String>,
    pub position: String,
    pub language: String,
    pub waiting_text: Option<String>,
    pub busy_text: Option<String>,
    pub busy_after_seconds: u32,
    pub ended_text: Option<String>,
    pub thank_you: Option<String>,
    pub sound: bool,
    pub form_email: String,
    pub form_question: String,
    pub form_topic: String,
    pub form_topics: Option<String>,
    pub form_topic_label: Option<String>,
    pub question_as_first_message: bool,
    pub hours: Option<String>,
    pub time_zone: String,
    pub closed_text: Option<String>,
    pub attachment_types: String,
    pub attachment_max_bytes: u64,
}

impl Default for Widget {
    fn default() -> Self {
        let defaults = super::widget::WidgetSettings::default();
        Self {
            title: None,
            greeting: None,
            color: None,
            color_text: None,
            logo_url: None,
            position: defaults.position.as_str().to_owned(),
            language: defaults.language.as_str().to_owned(),
            waiting_text: None,
            busy_text: None,
            busy_after_seconds: defaults.busy_after_seconds,
            ended_text: None,
            thank_you: None,
            sound: defaults.sound,
            form_email: defaults.form.email.as_str().to_owned(),
            form_question: defaults.form.question.as_str().to_owned(),
            form_topic: defaults.form.topic.as_str().to_owned(),
            form_topics: None,
            form_topic_label: None,
            question_as_first_message: defaults.form.question_first,
            hours: None,
            time_zone: defaults.time_zone.clone(),
            closed_text: None,
            attachment_types: defaults.attachments.types.join(","),
            attachment_max_bytes: defaults.attachments.max_bytes as u64,
        }
    }
}
