//! Configuration, layered: defaults → TOML file (`--config` or
//! `FLEXBRIDGE_CONFIG`) → environment → flags; later layers win.
//!
//! Every setting has one canonical name, its environment variable (Twilio's
//! usual names where Twilio has one), a dotted key in the file, and, unless
//! it is a secret, a flag. Secrets (`TWILIO_AUTH_TOKEN`, `TWILIO_API_SECRET`)
//! have no flag (a command line is visible to other users) and become
//! `SecretString`s, so neither logs nor `Debug` ever show them.
//!
//! A missing or malformed setting stops start-up with an error that names
//! it and says where it came from. The file must not contain unknown keys
//! (a typo would otherwise be silently ignored).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

pub mod flex;

use crate::core::ids::{AccountSid, ApiKeySid};
use crate::core::rate_limit::RateLimit;
use crate::flex::client::RestAuth;

pub use self::flex::{FlexSettings, ProvisionTarget};

/// One setting: its names in each layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Setting {
    /// The environment variable, also the setting's name in messages.
    pub env: &'static str,
    /// The dotted key in the TOML file.
    pub file: &'static str,
    /// The command-line flag (none for secrets).
    pub flag: Option<&'static str>,
}

macro_rules! settings {
    ($($ident:ident = $env:literal, $file:literal, $flag:expr;)*) => {
        $(pub const $ident: Setting = Setting { env: $env, file: $file, flag: $flag };)*
        /// Every setting.
        pub const ALL: &[Setting] = &[$($ident),*];
    };
}

/// The settings.
pub mod setting {
    use super::Setting;
    settings! {
        HOST = "HOST", "server.host", Some("--host");
        PORT = "PORT", "server.port", Some("--port");
        PUBLIC_BASE_URL = "PUBLIC_BASE_URL", "server.public_base_url", Some("--public-base-url");
        DATABASE_URL = "DATABASE_URL", "database.url", Some("--database-url");
        ACCOUNT_SID = "TWILIO_ACCOUNT_SID", "twilio.account_sid", Some("--twilio-account-sid");
        AUTH_TOKEN = "TWILIO_AUTH_TOKEN", "twilio.auth_token", None;
        API_KEY = "TWILIO_API_KEY", "twilio.api_key", Some("--twilio-api-key");
        API_SECRET = "TWILIO_API_SECRET", "twilio.api_secret", None;
        API_BASE = "TWILIO_API_BASE", "twilio.api_base", Some("--twilio-api-base");
        BACKEND = "FLEX_BACKEND", "flex.backend", Some("--backend");
        FLEX_FLOW_SID = "FLEX_FLOW_SID", "flex.flow_sid", Some("--flex-flow-sid");
        CHAT_SERVICE = "FLEX_CHAT_SERVICE", "flex.chat_service_sid", Some("--flex-chat-service");
        STUDIO_FLOW_SID = "STUDIO_FLOW_SID", "flex.studio_flow_sid", Some("--studio-flow-sid");
        FLOW_NAME = "FLEX_FLOW_NAME", "flex.flow_name", Some("--flow-name");
        ROUTING = "FLEX_ROUTING", "flex.routing", Some("--routing");
        WORKSPACE = "TASKROUTER_WORKSPACE_SID", "flex.workspace_sid", Some("--workspace-sid");
        WORKFLOW = "TASKROUTER_WORKFLOW_SID", "flex.workflow_sid", Some("--workflow-sid");
        TASK_CHANNEL = "FLEX_TASK_CHANNEL", "flex.task_channel", Some("--task-channel");
        TIMER_INACTIVE = "CONVERSATIONS_TIMER_INACTIVE", "flex.timers_inactive", Some("--timers-inactive");
        TIMER_CLOSED = "CONVERSATIONS_TIMER_CLOSED", "flex.timers_closed", Some("--timers-closed");
        OUTBOX_CONCURRENCY = "FLEXBRIDGE_OUTBOX_CONCURRENCY", "outbox.concurrency", Some("--outbox-concurrency");
        RATE_BURST = "FLEXBRIDGE_RATE_BURST", "limits.messages_burst", Some("--rate-burst");
        RATE_PER_SECOND = "FLEXBRIDGE_RATE_PER_SECOND", "limits.messages_per_second", Some("--rate-per-second");
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Env,
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "the config file {}", path.display()),
            Self::Env => f.write_str("the environment"),
            Self::Flag => f.write_str("the command line"),
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("missing setting {}: set the environment variable {}{}{}", .setting.env, .setting.env, flag_hint(.setting), .why)]
    Missing { setting: Setting, why: String },
    #[error("setting {} (from {origin}) is malformed: {reason}", .setting.env)]
    Malformed {
        setting: Setting,
        origin: Source,
        reason: String,
    },
    #[error("the config file {path} cannot be read: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("the config file {path} has an unknown setting `{key}`")]
    UnknownKey { path: PathBuf, key: String },
}

fn flag_hint(setting: &Setting) -> String {
    match setting.flag {
        Some(flag) => format!(
            ", pass {flag}, or set `{}` in the config file",
            setting.file
        ),
        None => format!(" or set `{}` in the config file", setting.file),
    }
}

/// Raw values of every layer, merged (later layers replace earlier ones).
#[derive(Debug, Default, Clone)]
pub struct Layers {
    values: HashMap<&'static str, (String, Source)>,
}

impl Layers {
    /// Reads the file (if any), the environment (through `env`) and the
    /// flags, in that order of precedence (flags win).
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &[(Setting, String)],
    ) -> Result<Self, ConfigError> {
        let mut layers = Self::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
            layers.add_file(path, &text)?;
        }
        for setting in setting::ALL {
            if let Some(value) = env(setting.env).filter(|v| !v.is_empty()) {
                layers.values.insert(setting.env, (value, Source::Env));
            }
        }
        for (setting, value) in flags {
            layers
                .values
                .insert(setting.env, (value.clone(), Source::Flag));
        }
        Ok(layers)
    }

    fn add_file(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::File {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        let mut flat = Vec::new();
        flatten("", &toml::Value::Table(table), &mut flat);
        for (key, value) in flat {
            let Some(setting) = setting::ALL.iter().find(|s| s.file == key) else {
                return Err(ConfigError::UnknownKey {
                    path: path.to_owned(),
                    key,
                });
            };
            self.values
                .insert(setting.env, (value, Source::File(path.to_owned())));
        }
        Ok(())
    }

    fn raw(&self, setting: Setting) -> Option<&(String, Source)> {
        self.values.get(setting.env)
    }

    /// A setting parsed by `parse`, or `None` when no layer sets it.
    pub fn optional<T, E: fmt::Display>(
        &self,
        setting: Setting,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Result<Option<T>, ConfigError> {
        self.raw(setting)
            .map(|(value, source)| {
                parse(value.trim()).map_err(|e| ConfigError::Malformed {
                    setting,
                    origin: source.clone(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// A setting that must be present.
    pub fn require<T, E: fmt::Display>(
        &self,
        setting: Setting,
        parse: impl Fn(&str) -> Result<T, E>,
        why: &str,
    ) -> Result<T, ConfigError> {
        self.optional(setting, parse)?
            .ok_or_else(|| ConfigError::Missing {
                setting,
                why: why.to_owned(),
            })
    }

    /// A secret setting (never parsed into anything printable).
    pub fn secret(&self, setting: Setting) -> Option<SecretString> {
        self.raw(setting)
            .map(|(value, _)| SecretString::from(value.trim().to_owned()))
    }
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let key = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&key, value, out);
            }
        }
        toml::Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// Twilio account access.
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    pub account_sid: AccountSid,
    pub rest_auth: RestAuth,
    /// Replaces every Twilio host (an emulator).
    pub api_base: Option<Url>,
}

/// The public URL Twilio reaches the bridge at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicBaseUrl {
    Fixed(Url),
    /// `auto`: the bridge's own listening address (local testing only).
    FromListener,
}

/// How the outbox delivers (`crate::startup` makes the outbox's own
/// configuration of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxSettings {
    /// Conversations delivered at the same time: at most this many
    /// requests to Twilio in flight (`FLEXBRIDGE_OUTBOX_CONCURRENCY`).
    /// Twilio limits concurrent REST requests per account (error 20429;
    /// 100 is the commonly cited default, shared with everything else on
    /// the account), so the default takes about half.
    pub concurrency: usize,
    // The timings below are not settings an operator sets (no key,
    // variable or flag); tests shorten them.
    /// First retry delay; doubles per attempt.
    pub base_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Work queued longer than this fails instead of retrying.
    pub give_up_after: Duration,
    /// How often the queue is swept even without a wake-up.
    pub sweep_interval: Duration,
    /// How long shutdown waits for in-flight deliveries.
    pub shutdown_grace: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            concurrency: 64,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            give_up_after: Duration::from_secs(24 * 3600),
            sweep_interval: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Everything `flexbridge serve` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub public_base_url: PublicBaseUrl,
    pub database_url: String,
    pub twilio: TwilioSettings,
    /// Validates webhook signatures; Twilio signs with the auth token.
    pub auth_token: SecretString,
    /// The backends and what they need.
    pub flex: FlexSettings,
    pub outbox: OutboxSettings,
    pub rate_limit: RateLimit,
}

/// Everything `flexbridge provision` needs.
#[derive(Debug, Clone)]
pub struct ProvisionSettings {
    pub twilio: TwilioSettings,
    pub target: ProvisionTarget,
}

pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 3000;
pub const DEFAULT_DATABASE_URL: &str = "sqlite://flexbridge.db";
/// The Flex Flow's friendly name `provision` looks for (and creates).
pub const DEFAULT_FLOW_NAME: &str = "flexbridge custom chat";

/// `http(s)://…` without query or fragment.
pub fn parse_http_url(raw: &str) -> Result<Url, String> {
    let url =
        Url::parse(raw).map_err(|e| format!("{e} (expected e.g. https://chat.example.com)"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("expected an absolute http(s) URL".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    Ok(url)
}

fn parse_public_base_url(raw: &str) -> Result<PublicBaseUrl, String> {
    if raw == "auto" {
        return Ok(PublicBaseUrl::FromListener);
    }
    parse_http_url(raw).map(PublicBaseUrl::Fixed)
}

fn parse_database_url(raw: &str) -> Result<String, String> {
    if raw.starts_with("sqlite:") {
        Ok(raw.to_owned())
    } else {
        Err("expected a SQLite URL such as sqlite://flexbridge.db (PostgreSQL is not supported yet)".into())
    }
}

fn parse_positive<T: std::str::FromStr + PartialOrd + Default>(raw: &str) -> Result<T, String> {
    match raw.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err(format!("expected a positive number, got {raw:?}")),
    }
}

fn twilio(layers: &Layers) -> Result<TwilioSettings, ConfigError> {
    let account_sid = layers.require(setting::ACCOUNT_SID, AccountSid::parse, "")?;
    let api_key = layers.optional(setting::API_KEY, ApiKeySid::parse)?;
    let api_secret = layers.secret(setting::API_SECRET);
    let rest_auth = match (api_key, api_secret) {
        (Some(sid), Some(secret)) => RestAuth::ApiKey { sid, secret },
        (Some(_), None) => {
            return Err(ConfigError::Missing {
                setting: setting::API_SECRET,
                why: " (TWILIO_API_KEY is set, so its secret is needed)".into(),
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::Missing {
                setting: setting::API_KEY,
                why: " (TWILIO_API_SECRET is set, so the key's SID is needed)".into(),
            });
        }
        (None, None) => {
            RestAuth::AuthToken(layers.secret(setting::AUTH_TOKEN).ok_or_else(|| {
                ConfigError::Missing {
                    setting: setting::AUTH_TOKEN,
                    why: " (or TWILIO_API_KEY and TWILIO_API_SECRET)".into(),
                }
            })?)
        }
    };
    Ok(TwilioSettings {
        account_sid,
        rest_auth,
        api_base: layers.optional(setting::API_BASE, parse_http_url)?,
    })
}

impl Settings {
    pub fn from_layers(layers: &Layers) -> Result<Self, ConfigError> {
        let twilio = twilio(layers)?;
        let auth_token =
            layers
                .secret(setting::AUTH_TOKEN)
                .ok_or_else(|| ConfigError::Missing {
                    setting: setting::AUTH_TOKEN,
                    why: ": Twilio signs webhooks with the account's auth token, so it is needed \
                      even when REST calls use TWILIO_API_KEY/TWILIO_API_SECRET"
                        .into(),
                })?;
        let defaults = OutboxSettings::default();
        let default_rate = RateLimit::default();
        Ok(Self {
            host: layers
                .optional(setting::HOST, |h| {
                    if h.is_empty() {
                        Err("empty")
                    } else {
                        Ok(h.to_owned())
                    }
                })?
                .unwrap_or_else(|| DEFAULT_HOST.to_owned()),
            port: layers
                .optional(setting::PORT, |p| p.parse::<u16>())?
                .unwrap_or(DEFAULT_PORT),
            public_base_url: layers.require(
                setting::PUBLIC_BASE_URL,
                parse_public_base_url,
                " (the https URL Twilio reaches this bridge at; webhooks are registered \
                 and their signatures checked against it)",
            )?,
            database_url: layers
                .optional(setting::DATABASE_URL, parse_database_url)?
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            twilio,
            auth_token,
            flex: FlexSettings::from_layers(layers)?,
            outbox: OutboxSettings {
                concurrency: layers
                    .optional(setting::OUTBOX_CONCURRENCY, parse_positive::<usize>)?
                    .unwrap_or(defaults.concurrency),
                ..defaults
            },
            rate_limit: RateLimit {
                burst: layers
                    .optional(setting::RATE_BURST, parse_positive::<f64>)?
                    .unwrap_or(default_rate.burst),
                per_second: layers
                    .optional(setting::RATE_PER_SECOND, parse_positive::<f64>)?
                    .unwrap_or(default_rate.per_second),
            },
        })
    }
}

impl ProvisionSettings {
    pub fn from_layers(layers: &Layers) -> Result<Self, ConfigError> {
        let flow_name = layers
            .optional(setting::FLOW_NAME, |n| {
                if n.is_empty() {
                    Err("empty")
                } else {
                    Ok(n.to_owned())
                }
            })?
            .unwrap_or_else(|| DEFAULT_FLOW_NAME.to_owned());
        Ok(Self {
            twilio: twilio(layers)?,
            target: ProvisionTarget::from_layers(layers, flow_name)?,
        })
    }
}

#[cfg(test)]
mod tests;
