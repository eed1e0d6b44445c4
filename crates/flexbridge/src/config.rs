//! Configuration, layered: defaults → TOML file (`--config` or
//! `FLEXBRIDGE_CONFIG`) → environment → flags; later layers win
//! (`layers`, by `figment`).
//!
//! Every setting is written once, in the table [`setting`]: its
//! environment variable (Twilio's usual names where Twilio has one), its
//! dotted key in the file, and, unless it is a secret, its flag. Secrets
//! (`TWILIO_AUTH_TOKEN`, `TWILIO_API_SECRET`) have no flag (a command line
//! is visible to other users) and are `SecretString`s from the start, so
//! neither logs nor `Debug` ever show them. Each command has one serde
//! struct ([`raw`]) its layers fill; the typed settings here are parsed
//! from it ([`Settings`] for `serve` and `doctor`, [`ProvisionSettings`],
//! [`DevSettings`]).
//!
//! A missing or malformed setting stops start-up with an error that names
//! it and says where it came from. The file must not contain unknown keys
//! (a typo would otherwise be silently ignored).
//!
//! Settings are data: `crate::startup` builds the clients and the
//! outbox's configuration from them.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use url::Url;

pub mod flex;
mod layers;
pub mod raw;
pub mod setting;
pub mod widget;

use crate::core::rate_limit::RateLimit;
use crate::flex::BackendKind;
use crate::flex::client::RestAuth;
use crate::flex::conversations::RoutingKind;
use crate::flex::sid::{AccountSid, ApiKeySid};

pub use self::flex::{FlexSettings, ProvisionTarget};
pub use self::layers::{Layers, Source, default_of};
pub use self::setting::Setting;
pub use self::widget::{AllowedOrigins, WidgetSettings};

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
    /// A value that is not where any setting is (the file's keys are
    /// checked first, so this is not expected).
    #[error("the configuration from {origin} cannot be read: {reason}")]
    Unreadable { origin: Source, reason: String },
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

/// Twilio account access.
#[derive(Debug, Clone)]
pub struct TwilioSettings {
    pub account_sid: AccountSid,
    pub rest_auth: RestAuth,
    /// Replaces every Twilio host (an emulator).
    pub api_base: Option<Url>,
}

impl TwilioSettings {
    /// The settings to check when Twilio refuses these credentials (401),
    /// by the names an operator sets.
    pub fn credential_settings(&self) -> &'static str {
        match self.rest_auth {
            RestAuth::AuthToken(_) => "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
            RestAuth::ApiKey { .. } => "TWILIO_ACCOUNT_SID, TWILIO_API_KEY and TWILIO_API_SECRET",
        }
    }
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
    /// How long a claim on a conversation's deliveries lasts unless
    /// renewed (`FLEXBRIDGE_OUTBOX_LEASE_MS`): a bridge that stops (a
    /// crash, a lost network) leaves its conversations to another after
    /// this; renewals come three times per lease.
    pub lease: Duration,
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
    /// How often an open conversation is re-synced with Flex at the latest.
    pub resync_interval: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        Self {
            concurrency: 64,
            lease: crate::store::DEFAULT_LEASE,
            base_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            give_up_after: Duration::from_secs(24 * 3600),
            sweep_interval: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            resync_interval: Duration::from_secs(300),
        }
    }
}

/// Everything `flexbridge serve` (and `doctor`) needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub public_base_url: PublicBaseUrl,
    pub database_url: String,
    /// Redis joining several bridges on one PostgreSQL database
    /// (`REDIS_URL`); without it a bridge on PostgreSQL holds the database
    /// alone (`store::lock`).
    pub redis_url: Option<Url>,
    pub twilio: TwilioSettings,
    /// Validates webhook signatures; Twilio signs with the auth token.
    pub auth_token: SecretString,
    /// Start even when Twilio refuses the credentials at start
    /// (`FLEXBRIDGE_SKIP_TWILIO_CHECK`); `/readyz` then says not ready.
    pub skip_twilio_check: bool,
    /// The backends and what they need.
    pub flex: FlexSettings,
    pub outbox: OutboxSettings,
    pub rate_limit: RateLimit,
    /// Sites besides the bridge's own that may embed the web chat.
    pub allowed_origins: AllowedOrigins,
    /// The web chat's look, language, form and hours.
    pub widget: WidgetSettings,
}

/// Everything `flexbridge provision` needs.
#[derive(Debug, Clone)]
pub struct ProvisionSettings {
    pub twilio: TwilioSettings,
    pub target: ProvisionTarget,
}

/// What a dev bridge runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevFlex {
    pub backend: BackendKind,
    pub routing: RoutingKind,
}

impl Default for DevFlex {
    fn default() -> Self {
        Self {
            backend: BackendKind::Conversations,
            routing: RoutingKind::Interactions,
        }
    }
}

/// Everything `flexbridge dev` needs (the rest comes from the emulator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevSettings {
    /// The address both servers listen on.
    pub host: String,
    pub port: u16,
    pub emulator_port: u16,
    pub database_url: String,
    /// Seed of the emulator's SIDs and credentials; none: a new account
    /// each run (its SIDs never repeat against the dev database).
    pub seed: Option<u64>,
    /// Agents in the emulator.
    pub agents: usize,
    pub flex: DevFlex,
    pub allowed_origins: AllowedOrigins,
    pub widget: WidgetSettings,
}

pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 3000;
pub const DEFAULT_DATABASE_URL: &str = "sqlite://flexbridge.db";
/// The Flex Flow's friendly name `provision` looks for (and creates).
pub const DEFAULT_FLOW_NAME: &str = "flexbridge custom chat";

/// `true` or `false`.
fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(format!("{other:?} is not true or false")),
    }
}

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
    match crate::store::Dialect::of_url(raw) {
        Some(_) => Ok(raw.to_owned()),
        None => Err(
            "expected a SQLite URL such as sqlite://flexbridge.db or a PostgreSQL URL such as \
             postgres://flexbridge:secret@db.internal/flexbridge"
                .into(),
        ),
    }
}

/// `flexbridge dev` runs on SQLite (one process, nothing to set up).
fn parse_dev_database_url(raw: &str) -> Result<String, String> {
    if raw.starts_with("sqlite:") {
        Ok(raw.to_owned())
    } else {
        Err(
            "expected a SQLite URL such as sqlite://flexbridge-dev.db (`flexbridge dev` runs on \
             SQLite; `serve` takes PostgreSQL)"
                .into(),
        )
    }
}

fn parse_redis_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| e.to_string())?;
    match url.scheme() {
        "redis" | "rediss" if url.host_str().is_some() => Ok(url),
        "redis" | "rediss" => Err("has no host".into()),
        other => Err(format!(
            "expected redis://host:6379 or rediss://… (not {other}:)"
        )),
    }
}

/// Text that must not be empty.
fn parse_nonempty(raw: &str) -> Result<String, &'static str> {
    if raw.is_empty() {
        Err("empty")
    } else {
        Ok(raw.to_owned())
    }
}

/// `n`, which must be above zero.
fn positive<T: PartialOrd + Default + std::fmt::Display>(
    layers: &Layers,
    setting: Setting,
    n: T,
) -> Result<T, ConfigError> {
    if n > T::default() {
        Ok(n)
    } else {
        Err(layers.malformed(setting, format!("expected a positive number, got {n}")))
    }
}

/// A secret as given, without surrounding whitespace.
fn trimmed(secret: &Option<SecretString>) -> Option<SecretString> {
    secret
        .as_ref()
        .map(|s| SecretString::from(s.expose_secret().trim().to_owned()))
}

fn twilio(layers: &Layers, raw: &raw::Twilio) -> Result<TwilioSettings, ConfigError> {
    let account_sid = layers.require(
        setting::ACCOUNT_SID,
        raw.account_sid.as_deref(),
        AccountSid::parse,
        "",
    )?;
    let api_key = layers.optional(setting::API_KEY, raw.api_key.as_deref(), ApiKeySid::parse)?;
    let rest_auth =
        match (api_key, trimmed(&raw.api_secret)) {
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
            (None, None) => RestAuth::AuthToken(trimmed(&raw.auth_token).ok_or_else(|| {
                ConfigError::Missing {
                    setting: setting::AUTH_TOKEN,
                    why: " (or TWILIO_API_KEY and TWILIO_API_SECRET)".into(),
                }
            })?),
        };
    Ok(TwilioSettings {
        account_sid,
        rest_auth,
        api_base: layers.optional(setting::API_BASE, raw.api_base.as_deref(), parse_http_url)?,
    })
}

impl Settings {
    pub fn from_layers(layers: &Layers) -> Result<Self, ConfigError> {
        let raw: raw::Serve = layers.extract()?;
        let twilio = twilio(layers, &raw.twilio)?;
        let auth_token = trimmed(&raw.twilio.auth_token).ok_or_else(|| ConfigError::Missing {
            setting: setting::AUTH_TOKEN,
            why: ": Twilio signs webhooks with the account's auth token, so it is needed \
                  even when REST calls use TWILIO_API_KEY/TWILIO_API_SECRET"
                .into(),
        })?;
        Ok(Self {
            host: layers.parse(setting::HOST, &raw.server.host, parse_nonempty)?,
            port: raw.server.port,
            public_base_url: layers.require(
                setting::PUBLIC_BASE_URL,
                raw.server.public_base_url.as_deref(),
                parse_public_base_url,
                " (the https URL Twilio reaches this bridge at; webhooks are registered \
                 and their signatures checked against it)",
            )?,
            database_url: layers.parse(
                setting::DATABASE_URL,
                &raw.database.url,
                parse_database_url,
            )?,
            redis_url: layers.optional(
                setting::REDIS_URL,
                raw.redis.url.as_deref(),
                parse_redis_url,
            )?,
            twilio,
            auth_token,
            skip_twilio_check: layers.parse(
                setting::SKIP_TWILIO_CHECK,
                &raw.server.skip_twilio_check,
                parse_bool,
            )?,
            flex: FlexSettings::parse(layers, &raw.flex)?,
            outbox: OutboxSettings {
                concurrency: positive(layers, setting::OUTBOX_CONCURRENCY, raw.outbox.concurrency)?,
                lease: Duration::from_millis(positive(
                    layers,
                    setting::OUTBOX_LEASE_MS,
                    raw.outbox.lease_ms,
                )?),
                ..OutboxSettings::default()
            },
            rate_limit: RateLimit {
                burst: positive(layers, setting::RATE_BURST, raw.limits.messages_burst)?,
                per_second: positive(
                    layers,
                    setting::RATE_PER_SECOND,
                    raw.limits.messages_per_second,
                )?,
            },
            allowed_origins: layers
                .optional(
                    setting::ALLOWED_ORIGINS,
                    raw.server.allowed_origins.as_deref(),
                    AllowedOrigins::parse,
                )?
                .unwrap_or_default(),
            widget: WidgetSettings::parse(layers, &raw.widget)?,
        })
    }
}

impl ProvisionSettings {
    pub fn from_layers(layers: &Layers) -> Result<Self, ConfigError> {
        let raw: raw::Provision = layers.extract()?;
        Ok(Self {
            twilio: twilio(layers, &raw.twilio)?,
            target: ProvisionTarget::parse(layers, &raw.flex)?,
        })
    }
}

impl DevSettings {
    pub fn from_layers(layers: &Layers) -> Result<Self, ConfigError> {
        let raw::Dev { dev, widget } = layers.extract()?;
        Ok(Self {
            host: layers.parse(setting::DEV_HOST, &dev.host, parse_nonempty)?,
            port: dev.port,
            emulator_port: dev.emulator_port,
            database_url: layers.parse(
                setting::DEV_DATABASE_URL,
                &dev.database_url,
                parse_dev_database_url,
            )?,
            seed: dev.seed,
            agents: dev.agents,
            flex: DevFlex {
                backend: layers.parse(setting::DEV_BACKEND, &dev.backend, flex::parse_backend)?,
                routing: layers.parse(setting::DEV_ROUTING, &dev.routing, RoutingKind::parse)?,
            },
            allowed_origins: layers
                .optional(
                    setting::DEV_ALLOWED_ORIGINS,
                    dev.allowed_origins.as_deref(),
                    AllowedOrigins::parse,
                )?
                .unwrap_or_default(),
            widget: WidgetSettings::parse(layers, &widget)?,
        })
    }
}

#[cfg(test)]
mod tests;
