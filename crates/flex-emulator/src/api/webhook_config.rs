//! The `Configuration.*` parameters shared by Chat channel webhooks and
//! Conversations scoped webhooks, checked once for both. The two APIs
//! differ in details, which a [`Dialect`] names: Chat writes the method
//! `GET|POST`, Conversations `get|post` (either is accepted in any case and
//! answered in the API's own case); each has its own events and error codes.
//! [`ConfigParams::new_webhook`] turns a create call into the
//! [`HookSettings`] both backends store.

use axum::http::StatusCode;

use super::error::ApiError;
use super::params::Params;
use crate::sid::Prefix;
use crate::webhooks::HookMethod;
use crate::world::hooks::{HookSettings, WebhookKind};

/// The most trigger words one webhook may hold.
const MAX_TRIGGERS: usize = 5;

/// What differs between the Chat and the Conversations webhook settings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Dialect {
    /// The events `Configuration.Filters` may name.
    pub events: &'static [&'static str],
    /// What a filter must be, for the error: "a Chat event".
    pub product: &'static str,
    pub lowercase_method: bool,
    /// Twilio's code for more than five trigger words.
    pub too_many_triggers: u32,
    /// Twilio's code for an empty trigger word.
    pub bad_trigger: u32,
}

/// The `Configuration.*` parameters, checked; `None` = not sent.
#[derive(Debug, Clone, Default)]
pub(super) struct ConfigParams {
    pub url: Option<String>,
    pub method: Option<String>,
    pub filters: Option<Vec<String>>,
    pub triggers: Option<Vec<String>>,
    pub flow_sid: Option<String>,
}

impl ConfigParams {
    pub fn parse(params: &Params, dialect: Dialect) -> Result<Self, ApiError> {
        let url = params.text("Configuration.Url");
        if let Some(url) = &url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ApiError::invalid_param(
                "Configuration.Url",
                "must be an absolute http(s) URL",
            ));
        }
        let method = params
            .get("Configuration.Method")
            .map(|value| {
                let method = HookMethod::parse(value).ok_or_else(|| {
                    let names = HookMethod::NAMES.map(|name| dialect.case(name));
                    ApiError::invalid_param(
                        "Configuration.Method",
                        format!("must be one of {}", names.join(", ")),
                    )
                })?;
                Ok(dialect.case(method.as_str()))
            })
            .transpose()?;
        let filters = params.all("Configuration.Filters");
        if let Some(unknown) = filters
            .iter()
            .find(|f| !dialect.events.contains(&f.as_str()))
        {
            return Err(ApiError::invalid_param(
                "Configuration.Filters",
                format!("{unknown} is not {}", dialect.product),
            ));
        }
        let triggers = params.all("Configuration.Triggers");
        if triggers.len() > MAX_TRIGGERS {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                dialect.too_many_triggers,
                format!(
                    "Too many webhook triggers: at most {MAX_TRIGGERS} (Configuration.Triggers)"
                ),
            ));
        }
        if triggers.iter().any(|t| t.trim().is_empty()) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                dialect.bad_trigger,
                "Invalid parameter Configuration.Triggers: a trigger word is empty",
            ));
        }
        Ok(Self {
            url,
            method,
            filters: (!filters.is_empty()).then_some(filters),
            triggers: (!triggers.is_empty()).then_some(triggers),
            flow_sid: params.sid("Configuration.FlowSid", Prefix::StudioFlow)?,
        })
    }

    /// A new webhook's settings: its kind from `kind_param` (`Type` in
    /// Chat, `Target` in Conversations), the `Configuration.*` that kind
    /// cannot do without, and the method `POST` in the dialect's case when
    /// none is given.
    pub fn new_webhook(
        params: &Params,
        kind_param: &'static str,
        dialect: Dialect,
    ) -> Result<HookSettings, ApiError> {
        let kind_name = params.required(kind_param)?;
        let kind = WebhookKind::parse(&kind_name).ok_or_else(|| {
            ApiError::invalid_param(
                kind_param,
                format!("must be one of {}", WebhookKind::NAMES.join(", ")),
            )
        })?;
        let config = Self::parse(params, dialect)?;
        match kind {
            WebhookKind::Webhook | WebhookKind::Trigger if config.url.is_none() => {
                return Err(ApiError::missing_param("Configuration.Url"));
            }
            WebhookKind::Trigger if config.triggers.is_none() => {
                return Err(ApiError::missing_param("Configuration.Triggers"));
            }
            WebhookKind::Studio if config.flow_sid.is_none() => {
                return Err(ApiError::missing_param("Configuration.FlowSid"));
            }
            _ => {}
        }
        Ok(HookSettings {
            kind,
            url: config.url,
            method: config.method.unwrap_or_else(|| dialect.case("POST")),
            filters: config.filters.unwrap_or_default(),
            triggers: config.triggers.unwrap_or_default(),
            flow_sid: config.flow_sid,
        })
    }
}

impl Dialect {
    fn case(self, name: &str) -> String {
        if self.lowercase_method {
            name.to_ascii_lowercase()
        } else {
            name.to_ascii_uppercase()
        }
    }
}
