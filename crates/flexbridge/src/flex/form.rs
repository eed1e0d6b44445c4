//! A verified webhook's form, read by name: what both backends' parsers
//! use to turn Twilio's parameters (docs/twilio-reference.md §7) into a
//! [`FlexEvent`](crate::core::backend::FlexEvent). Missing and malformed
//! parameters become [`WebhookParseError`]s naming the parameter.

use super::sid::ChannelSid;
use crate::core::backend::{EventHeader, WebhookParseError};
use crate::core::ids::{IdError, RemoteChannel};

/// The parameters of one webhook.
pub struct Form<'a>(pub &'a [(String, String)]);

impl<'a> Form<'a> {
    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of `name`, which must be present.
    pub fn require(&self, name: &'static str) -> Result<&'a str, WebhookParseError> {
        self.get(name).ok_or(WebhookParseError::Missing(name))
    }

    /// The value of `name`, present and not blank.
    pub fn require_text(&self, name: &'static str) -> Result<&'a str, WebhookParseError> {
        let value = self.require(name)?;
        if value.trim().is_empty() {
            return Err(WebhookParseError::Malformed {
                param: name,
                reason: "empty".into(),
            });
        }
        Ok(value)
    }

    /// The SID in `name`, parsed.
    pub fn sid<T>(
        &self,
        name: &'static str,
        parse: impl Fn(&str) -> Result<T, IdError>,
    ) -> Result<T, WebhookParseError> {
        parse(self.require(name)?).map_err(|e| WebhookParseError::Malformed {
            param: name,
            reason: e.to_string(),
        })
    }

    /// The JSON object in `name`, if present and not empty.
    pub fn json(&self, name: &'static str) -> Result<Option<serde_json::Value>, WebhookParseError> {
        let Some(raw) = self.get(name).filter(|raw| !raw.is_empty()) else {
            return Ok(None);
        };
        serde_json::from_str(raw)
            .map(Some)
            .map_err(|e| WebhookParseError::Malformed {
                param: name,
                reason: e.to_string(),
            })
    }
}

/// The header of an event about `channel`.
pub fn header(event_type: &str, idempotency_key: String, channel: &ChannelSid) -> EventHeader {
    EventHeader {
        event_type: event_type.to_owned(),
        idempotency_key,
        channel: RemoteChannel::from(channel),
    }
}
