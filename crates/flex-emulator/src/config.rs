//! What an emulator is made from: the seed, the credentials it accepts, how
//! many agents it staffs, and the SIDs of the account it bootstraps
//! (docs/architecture.md §3.3).
//!
//! Everything derives from the seed through one [`SidGenerator`] drawn in a
//! fixed order (credentials first, then the bootstrap resources, agents last),
//! so the same seed gives the same account and the same SIDs, and `--agents`
//! does not shift the SIDs of anything bootstrapped before the agents.

use std::time::Duration;

use serde::Serialize;

use crate::sid::{Prefix, SidGenerator, has_shape};

/// Names of the bootstrapped agents, in order; beyond the list agents are
/// called `agent21`, `agent22`, …
const AGENT_NAMES: [&str; 20] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "quentin", "rupert", "sybil", "trent", "victor", "walter",
];

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("account SID {0:?} is not AC followed by 32 hex digits")]
    AccountSid(String),
    #[error("the auth token must not be empty")]
    EmptyAuthToken,
    #[error("public URL {0:?} must be an absolute http(s) URL without query or fragment")]
    PublicUrl(String),
    #[error("the event buffer must hold from 1 to {MAX_EVENT_BUFFER} events, not {0}")]
    EventBuffer(usize),
}

/// How many SSE events a subscriber may fall behind by default before it
/// misses some (a busy benchmark emits thousands a second).
pub const DEFAULT_EVENT_BUFFER: usize = 16_384;

/// The largest event buffer: every slot is allocated up front.
pub const MAX_EVENT_BUFFER: usize = 1 << 20;

/// How to build an emulator. Start from [`EmulatorConfig::from_seed`] (the
/// same SIDs every time) or [`EmulatorConfig::random`] (a new account).
#[derive(Clone)]
pub struct EmulatorConfig {
    seed: u64,
    account_sid: Option<String>,
    auth_token: Option<String>,
    agents: usize,
    chat_capacity: u32,
    wrapup: Duration,
    public_url: Option<String>,
    /// Capacity of the broadcast channel behind `/_emulator/events`.
    event_buffer: usize,
}

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("seed", &self.seed)
            .field("account_sid", &self.account_sid)
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "<redacted>"),
            )
            .field("agents", &self.agents)
            .field("chat_capacity", &self.chat_capacity)
            .field("wrapup", &self.wrapup)
            .field("public_url", &self.public_url)
            .field("event_buffer", &self.event_buffer)
            .finish()
    }
}

impl EmulatorConfig {
    /// Two agents, chat capacity 1, no wrap-up delay, credentials and SIDs
    /// derived from `seed`, URLs built from each request's `Host` header,
    /// an event buffer of [`DEFAULT_EVENT_BUFFER`].
    pub fn from_seed(seed: u64) -> Self {
        Self {
            seed,
            account_sid: None,
            auth_token: None,
            agents: 2,
            chat_capacity: 1,
            wrapup: Duration::ZERO,
            public_url: None,
            event_buffer: DEFAULT_EVENT_BUFFER,
        }
    }

    /// [`EmulatorConfig::from_seed`] with a seed of its own: a new account
    /// whose SIDs (bootstrap and runtime) are those of no earlier run, as
    /// Twilio's never repeat — so a bridge restarted against a new
    /// emulator with its old database finds no SID of the old account
    /// handed out again. Tests and demos that want the same SIDs give a
    /// seed.
    pub fn random() -> Self {
        Self::from_seed(rand::random())
    }

    /// Uses this account SID instead of the derived one.
    pub fn with_account_sid(mut self, account_sid: &str) -> Result<Self, ConfigError> {
        if !has_shape(account_sid, Prefix::Account) {
            return Err(ConfigError::AccountSid(account_sid.to_owned()));
        }
        self.account_sid = Some(account_sid.to_owned());
        Ok(self)
    }

    /// Uses this auth token instead of the derived one.
    pub fn with_auth_token(mut self, auth_token: &str) -> Result<Self, ConfigError> {
        if auth_token.is_empty() {
            return Err(ConfigError::EmptyAuthToken);
        }
        self.auth_token = Some(auth_token.to_owned());
        Ok(self)
    }

    /// How many agents (TaskRouter workers) to staff.
    pub fn with_agents(mut self, agents: usize) -> Self {
        self.agents = agents;
        self
    }

    /// How many chat tasks one agent works at once (0: the agent is never
    /// offered work).
    pub fn with_chat_capacity(mut self, capacity: u32) -> Self {
        self.chat_capacity = capacity;
        self
    }

    /// How long an ended task stays `wrapping` before it is `completed`.
    pub fn with_wrapup(mut self, wrapup: Duration) -> Self {
        self.wrapup = wrapup;
        self
    }

    /// The base of every absolute URL the emulator returns, e.g.
    /// `http://localhost:3001` (a trailing slash is dropped).
    pub fn with_public_url(mut self, url: &str) -> Result<Self, ConfigError> {
        let trimmed = url.trim_end_matches('/');
        let scheme_ok = trimmed.starts_with("http://") || trimmed.starts_with("https://");
        let host = trimmed.split_once("://").map_or("", |(_, rest)| rest);
        if !scheme_ok || host.is_empty() || trimmed.contains(['?', '#', ' ']) {
            return Err(ConfigError::PublicUrl(url.to_owned()));
        }
        self.public_url = Some(trimmed.to_owned());
        Ok(self)
    }

    /// How many SSE events a subscriber of `/_emulator/events` may fall
    /// behind before it misses some (and gets a `lagged` event); the channel
    /// rounds it up to a power of two.
    pub fn with_event_buffer(mut self, events: usize) -> Result<Self, ConfigError> {
        if !(1..=MAX_EVENT_BUFFER).contains(&events) {
            return Err(ConfigError::EventBuffer(events));
        }
        self.event_buffer = events;
        Ok(self)
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn agents(&self) -> usize {
        self.agents
    }

    pub fn chat_capacity(&self) -> u32 {
        self.chat_capacity
    }

    pub fn wrapup(&self) -> Duration {
        self.wrapup
    }

    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    pub fn event_buffer(&self) -> usize {
        self.event_buffer
    }

    /// Draws the credentials and the bootstrap SIDs, returning the generator
    /// positioned after them (where runtime SIDs start).
    pub(crate) fn derive(&self) -> (Credentials, Bootstrap, SidGenerator) {
        let mut generator = SidGenerator::new(self.seed);
        // Always draw, even when overridden, so overrides shift nothing else.
        let account_sid = generator.sid(Prefix::Account);
        let auth_token = generator.hex32();
        let credentials = Credentials {
            account_sid: self.account_sid.clone().unwrap_or(account_sid),
            auth_token: self.auth_token.clone().unwrap_or(auth_token),
            api_key_sid: generator.sid(Prefix::ApiKey),
            api_key_secret: generator.hex32(),
        };
        let mut sid = |prefix| generator.sid(prefix);
        let mut bootstrap = Bootstrap {
            chat_service_sid: sid(Prefix::ChatService),
            service_admin_role_sid: sid(Prefix::Role),
            service_user_role_sid: sid(Prefix::Role),
            channel_admin_role_sid: sid(Prefix::Role),
            channel_user_role_sid: sid(Prefix::Role),
            workspace_sid: sid(Prefix::Workspace),
            workflow_sid: sid(Prefix::Workflow),
            task_queue_sid: sid(Prefix::TaskQueue),
            default_task_channel_sid: sid(Prefix::TaskChannel),
            voice_task_channel_sid: sid(Prefix::TaskChannel),
            chat_task_channel_sid: sid(Prefix::TaskChannel),
            offline_activity_sid: sid(Prefix::Activity),
            available_activity_sid: sid(Prefix::Activity),
            unavailable_activity_sid: sid(Prefix::Activity),
            break_activity_sid: sid(Prefix::Activity),
            studio_flow_sid: sid(Prefix::StudioFlow),
            // Drawn after the SIDs above (added later), so those stay as they were.
            sms_task_channel_sid: sid(Prefix::TaskChannel),
            video_task_channel_sid: sid(Prefix::TaskChannel),
            email_task_channel_sid: sid(Prefix::TaskChannel),
            agents: Vec::with_capacity(self.agents),
        };
        for index in 0..self.agents {
            let name = AGENT_NAMES
                .get(index)
                .map_or_else(|| format!("agent{}", index + 1), |name| (*name).to_owned());
            bootstrap.agents.push(BootstrapAgent {
                worker_sid: generator.sid(Prefix::Worker),
                user_sid: generator.sid(Prefix::User),
                identity: name.clone(),
                name,
            });
        }
        (credentials, bootstrap, generator)
    }
}

/// The credentials the emulator accepts: the account SID + auth token, or the
/// API key SID + secret, as HTTP Basic. Webhooks are signed with the token.
#[derive(Clone, Serialize, PartialEq, Eq)]
pub struct Credentials {
    pub account_sid: String,
    pub auth_token: String,
    pub api_key_sid: String,
    pub api_key_secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("api_key_sid", &self.api_key_sid)
            .field("api_key_secret", &"<redacted>")
            .finish()
    }
}

/// The SIDs of what a new Flex account starts with.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Bootstrap {
    /// "Flex Chat Service".
    pub chat_service_sid: String,
    pub service_admin_role_sid: String,
    pub service_user_role_sid: String,
    pub channel_admin_role_sid: String,
    /// The role every channel member gets.
    pub channel_user_role_sid: String,
    /// "Flex Task Assignment".
    pub workspace_sid: String,
    /// "Assign to Anyone".
    pub workflow_sid: String,
    /// "Everyone".
    pub task_queue_sid: String,
    /// The task channels a Flex workspace has: `default`, `voice`, `chat`
    /// ("Programmable Chat"), `sms`, `video`, `email`.
    pub default_task_channel_sid: String,
    pub voice_task_channel_sid: String,
    pub chat_task_channel_sid: String,
    pub sms_task_channel_sid: String,
    pub video_task_channel_sid: String,
    pub email_task_channel_sid: String,
    pub offline_activity_sid: String,
    pub available_activity_sid: String,
    pub unavailable_activity_sid: String,
    pub break_activity_sid: String,
    /// "Webchat Flow", whose only step is "Send to Flex".
    pub studio_flow_sid: String,
    pub agents: Vec<BootstrapAgent>,
}

/// One agent: a TaskRouter worker and the chat user it speaks as.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BootstrapAgent {
    pub worker_sid: String,
    pub user_sid: String,
    pub name: String,
    /// The agent's chat identity (its name, as in Flex).
    pub identity: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_derives_the_same_account() {
        let (c1, b1, _) = EmulatorConfig::from_seed(7).derive();
        let (c2, b2, _) = EmulatorConfig::from_seed(7).derive();
        assert_eq!(c1, c2);
        assert_eq!(b1, b2);
        let (c3, _, _) = EmulatorConfig::from_seed(8).derive();
        assert_ne!(c1.account_sid, c3.account_sid);
    }

    #[test]
    fn more_agents_do_not_shift_the_other_bootstrap_sids() {
        let (_, two, _) = EmulatorConfig::from_seed(1).derive();
        let (_, five, _) = EmulatorConfig::from_seed(1).with_agents(5).derive();
        assert_eq!(two.workspace_sid, five.workspace_sid);
        assert_eq!(two.agents[..], five.agents[..2]);
        assert_eq!(five.agents[4].name, "erin");
    }

    #[test]
    fn overriding_the_credentials_keeps_every_other_sid() {
        let (_, plain, _) = EmulatorConfig::from_seed(3).derive();
        let (credentials, overridden, _) = EmulatorConfig::from_seed(3)
            .with_account_sid("AC00000000000000000000000000000000")
            .unwrap()
            .with_auth_token("secret")
            .unwrap()
            .derive();
        assert_eq!(
            credentials.account_sid,
            "AC00000000000000000000000000000000"
        );
        assert_eq!(credentials.auth_token, "secret");
        assert_eq!(plain, overridden);
    }

    #[test]
    fn bad_configuration_values_are_refused() {
        let config = EmulatorConfig::from_seed(1);
        assert!(config.clone().with_account_sid("AC123").is_err());
        assert!(config.clone().with_auth_token("").is_err());
        assert!(config.clone().with_public_url("localhost:3000").is_err());
        assert!(config.clone().with_event_buffer(0).is_err());
        assert!(
            config
                .clone()
                .with_event_buffer(MAX_EVENT_BUFFER + 1)
                .is_err()
        );
        assert_eq!(
            config.clone().with_event_buffer(64).unwrap().event_buffer(),
            64
        );
        let ok = config.with_public_url("http://localhost:3000/").unwrap();
        assert_eq!(ok.public_url(), Some("http://localhost:3000"));
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let (credentials, _, _) = EmulatorConfig::from_seed(1).derive();
        let printed = format!("{credentials:?}");
        assert!(!printed.contains(&credentials.auth_token));
        assert!(!printed.contains(&credentials.api_key_secret));
    }
}
