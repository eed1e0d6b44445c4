//! Request parameters: a strict `application/x-www-form-urlencoded` parser
//! (also used for query strings) that keeps repeated keys
//! (`Configuration.Filters`), and typed getters that turn a bad value into a
//! 400 naming the parameter.
//!
//! A handler may only read the parameters its route declares (the route
//! table is checked against the OpenAPI specs); reading anything else is a
//! bug caught by a debug assertion. Parameters a client sends that the route
//! does not declare are ignored, as Twilio ignores unknown parameters.

use std::str::FromStr;

use serde_json::Value;

use super::error::ApiError;
use crate::clock::{Instant, SentDates};
use crate::sid::{Prefix, has_shape};

/// The parameters of one request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
    declared: &'static [&'static str],
}

/// Why a body or query string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("malformed percent-encoding")]
    Percent,
    #[error("the decoded text is not UTF-8")]
    Utf8,
}

/// Splits and decodes `a=1&b=2&b=3`, keeping order and repeated keys.
pub(crate) fn decode_pairs(raw: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    raw.split(|&b| b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = match piece.iter().position(|&b| b == b'=') {
                Some(at) => (&piece[..at], &piece[at + 1..]),
                None => (piece, &b""[..]),
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

fn decode(raw: &[u8]) -> Result<String, DecodeError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let high = bytes.next().and_then(|b| hex_value(*b));
                let low = bytes.next().and_then(|b| hex_value(*b));
                match (high, low) {
                    (Some(high), Some(low)) => out.push(high << 4 | low),
                    _ => return Err(DecodeError::Percent),
                }
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).map_err(|_| DecodeError::Utf8)
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

impl Params {
    pub fn new(pairs: Vec<(String, String)>, declared: &'static [&'static str]) -> Self {
        Self { pairs, declared }
    }

    fn check_declared(&self, name: &str) {
        debug_assert!(
            self.declared.contains(&name),
            "a handler read {name}, which its route does not declare"
        );
    }

    /// Every value of a parameter, bypassing the declared list (pagination).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The declared parameters that were sent, in order (for page URLs).
    pub fn declared_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs
            .iter()
            .filter(|(key, _)| self.declared.contains(&key.as_str()))
            .map(|(key, value)| (key.as_str(), value.as_str()))
    }

    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.check_declared(name);
        self.raw(name)
    }

    /// The first value, owned.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    /// Every value of a repeated parameter, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.check_declared(name);
        self.pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }

    /// A parameter that must be present and non-empty.
    pub fn required(&self, name: &str) -> Result<String, ApiError> {
        match self.get(name) {
            Some(value) if !value.is_empty() => Ok(value.to_owned()),
            _ => Err(ApiError::missing_param(name)),
        }
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|value| {
                if value.eq_ignore_ascii_case("true") {
                    Ok(true)
                } else if value.eq_ignore_ascii_case("false") {
                    Ok(false)
                } else {
                    Err(ApiError::invalid_param(name, "must be true or false"))
                }
            })
            .transpose()
    }

    pub fn number<T: FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| ApiError::invalid_param(name, "must be an integer in range"))
            })
            .transpose()
    }

    /// A JSON document serialized in the value; kept as the text sent.
    pub fn json(&self, name: &str) -> Result<Option<String>, ApiError> {
        self.get(name)
            .map(|value| match serde_json::from_str::<Value>(value) {
                Ok(_) => Ok(value.to_owned()),
                Err(error) => Err(ApiError::invalid_param(
                    name,
                    format!("must be valid JSON ({error})"),
                )),
            })
            .transpose()
    }

    /// A JSON object serialized in the value.
    pub fn json_object(
        &self,
        name: &str,
    ) -> Result<Option<serde_json::Map<String, Value>>, ApiError> {
        self.get(name)
            .map(|value| match serde_json::from_str::<Value>(value) {
                Ok(Value::Object(map)) => Ok(map),
                _ => Err(ApiError::invalid_param(name, "must be a JSON object")),
            })
            .transpose()
    }

    /// One of a fixed set of values (exact match).
    pub fn choice(&self, name: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
        self.get(name)
            .map(|value| {
                if allowed.contains(&value) {
                    Ok(value.to_owned())
                } else {
                    Err(ApiError::invalid_param(
                        name,
                        format!("must be one of {}", allowed.join(", ")),
                    ))
                }
            })
            .transpose()
    }

    pub fn timestamp(&self, name: &str) -> Result<Option<Instant>, ApiError> {
        self.get(name)
            .map(|value| {
                Instant::parse(value)
                    .ok_or_else(|| ApiError::invalid_param(name, "must be an ISO-8601 date-time"))
            })
            .transpose()
    }

    /// `DateCreated` / `DateUpdated`, which Chat and Conversations let a
    /// client set.
    pub fn dates(&self) -> Result<SentDates, ApiError> {
        Ok(SentDates {
            created: self.timestamp("DateCreated")?,
            updated: self.timestamp("DateUpdated")?,
        })
    }

    /// A SID with the given prefix.
    pub fn sid(&self, name: &str, prefix: Prefix) -> Result<Option<String>, ApiError> {
        self.get(name)
            .map(|value| {
                if has_shape(value, prefix) {
                    Ok(value.to_owned())
                } else {
                    Err(ApiError::invalid_param(
                        name,
                        format!("must be a {prefix} SID ({prefix} followed by 32 hex digits)"),
                    ))
                }
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECLARED: &[&str] = &["Configuration.Filters", "Body", "Enabled", "Attributes"];

    fn params(raw: &str) -> Params {
        Params::new(decode_pairs(raw.as_bytes()).unwrap(), DECLARED)
    }

    #[test]
    fn repeated_keys_are_all_kept_in_order() {
        let p =
            params("Configuration.Filters=onMessageSent&Configuration.Filters=onChannelUpdated");
        assert_eq!(
            p.all("Configuration.Filters"),
            ["onMessageSent", "onChannelUpdated"]
        );
    }

    #[test]
    fn plus_and_percent_escapes_are_decoded() {
        let p = params("Body=It%27s+amazing%20%F0%9F%8E%89");
        assert_eq!(p.get("Body"), Some("It's amazing 🎉"));
    }

    #[test]
    fn malformed_escapes_and_invalid_utf8_are_refused() {
        assert_eq!(decode_pairs(b"Body=%zz"), Err(DecodeError::Percent));
        assert_eq!(decode_pairs(b"Body=%4"), Err(DecodeError::Percent));
        assert_eq!(decode_pairs(b"Body=%ff%fe"), Err(DecodeError::Utf8));
        assert_eq!(decode_pairs(b"Body=\xff"), Err(DecodeError::Utf8));
    }

    #[test]
    fn typed_getters_name_the_bad_parameter() {
        let p = params("Enabled=yes&Attributes={oops");
        assert!(p.bool("Enabled").unwrap_err().message().contains("Enabled"));
        assert!(
            p.json("Attributes")
                .unwrap_err()
                .message()
                .contains("Attributes")
        );
        assert!(
            p.required("Body")
                .unwrap_err()
                .message()
                .contains("Missing required parameter Body")
        );
    }
}
