//! Injected faults (docs/architecture.md §3.4): the next N REST calls that
//! match a method and path pattern fail, are rate-limited or are delayed;
//! the next N webhook deliveries are dropped or duplicated. Each fault counts
//! down as it fires and disappears when spent; the oldest matching fault
//! fires first.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The body of `POST /_emulator/faults/http`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpFaultSpec {
    pub method: Option<String>,
    pub path: String,
    pub kind: HttpFaultKind,
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub delay_ms: Option<u64>,
    pub lands: Option<bool>,
    pub count: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub(crate) enum HttpFaultKind {
    Error,
    RateLimit,
    Delay,
}

impl TryFrom<String> for HttpFaultKind {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "error" => Ok(Self::Error),
            "rate_limit" => Ok(Self::RateLimit),
            "delay" => Ok(Self::Delay),
            _ => Err(format!("kind: {value:?} is not error, rate_limit or delay")),
        }
    }
}

/// The body of `POST /_emulator/faults/webhooks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookFaultSpec {
    pub kind: WebhookFaultKind,
    pub count: Option<u32>,
    pub event_type: Option<String>,
    pub copies: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub(crate) enum WebhookFaultKind {
    Drop,
    Duplicate,
}

impl TryFrom<String> for WebhookFaultKind {
    type Error = String;

    fn try_from(value: String) -> Result<Self, String> {
        match value.as_str() {
            "drop" => Ok(Self::Drop),
            "duplicate" => Ok(Self::Duplicate),
            _ => Err(format!("kind: {value:?} is not drop or duplicate")),
        }
    }
}

/// What a matched HTTP fault does to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpFaultAction {
    /// Answer `status` with Twilio's error JSON; run the request first if `lands`.
    Error { status: u16, lands: bool },
    /// Answer 429 with `Retry-After`; run the request first if `lands`.
    RateLimit { retry_after: u64, lands: bool },
    /// Run the request, then wait before answering.
    Delay(Duration),
}

/// What a matched webhook fault does to the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WebhookFaultAction {
    Drop,
    Duplicate { copies: u32 },
}

/// A path pattern: `*` matches one segment, `**` any rest (even nothing).
#[derive(Debug, Clone)]
struct PathPattern(Vec<String>);

impl PathPattern {
    fn parse(pattern: &str) -> Result<Self, String> {
        if !pattern.starts_with('/') {
            return Err("path must start with /".into());
        }
        let segments: Vec<String> = pattern[1..].split('/').map(str::to_owned).collect();
        if let Some(at) = segments.iter().position(|s| s == "**")
            && at + 1 != segments.len()
        {
            return Err("** may only end a path pattern".into());
        }
        Ok(Self(segments))
    }

    fn matches(&self, path: &str) -> bool {
        let path = path.strip_prefix('/').unwrap_or(path);
        let mut segments = path.split('/');
        for pattern in &self.0 {
            if pattern == "**" {
                return true;
            }
            match segments.next() {
                Some(segment) if pattern == "*" || pattern == segment => {}
                _ => return false,
            }
        }
        segments.next().is_none()
    }
}

#[derive(Debug, Clone)]
struct HttpFault {
    id: u64,
    spec: HttpFaultSpec,
    method: Option<String>,
    pattern: PathPattern,
    action: HttpFaultAction,
    remaining: u32,
}

#[derive(Debug, Clone)]
struct WebhookFault {
    id: u64,
    spec: WebhookFaultSpec,
    action: WebhookFaultAction,
    remaining: u32,
}

/// The faults waiting to fire.
#[derive(Debug, Clone, Default)]
pub(crate) struct Faults {
    http: Vec<HttpFault>,
    webhooks: Vec<WebhookFault>,
    next_id: u64,
}

const MAX_DELAY_MS: u64 = 60_000;

impl Faults {
    /// Adds an HTTP fault; the error names the field that is wrong.
    pub fn add_http(&mut self, spec: HttpFaultSpec) -> Result<u64, String> {
        let pattern = PathPattern::parse(&spec.path).map_err(|e| format!("path: {e}"))?;
        let method = match &spec.method {
            Some(method)
                if ["GET", "POST", "DELETE"].contains(&method.to_ascii_uppercase().as_str()) =>
            {
                Some(method.to_ascii_uppercase())
            }
            Some(method) => return Err(format!("method: {method:?} is not GET, POST or DELETE")),
            None => None,
        };
        let lands = spec.lands.unwrap_or(false);
        let action = match spec.kind {
            HttpFaultKind::Error => {
                let status = spec.status.unwrap_or(500);
                if !(400..=599).contains(&status) {
                    return Err(format!("status: {status} is not a 4xx or 5xx status"));
                }
                HttpFaultAction::Error { status, lands }
            }
            HttpFaultKind::RateLimit => HttpFaultAction::RateLimit {
                retry_after: spec.retry_after.unwrap_or(1),
                lands,
            },
            HttpFaultKind::Delay => {
                let delay_ms = spec.delay_ms.ok_or("delay_ms: required for kind delay")?;
                if delay_ms > MAX_DELAY_MS {
                    return Err(format!("delay_ms: at most {MAX_DELAY_MS}"));
                }
                HttpFaultAction::Delay(Duration::from_millis(delay_ms))
            }
        };
        let remaining = Self::count(spec.count)?;
        self.next_id += 1;
        self.http.push(HttpFault {
            id: self.next_id,
            spec,
            method,
            pattern,
            action,
            remaining,
        });
        Ok(self.next_id)
    }

    /// Adds a webhook fault; the error names the field that is wrong.
    pub fn add_webhook(&mut self, spec: WebhookFaultSpec) -> Result<u64, String> {
        let action = match spec.kind {
            WebhookFaultKind::Drop => WebhookFaultAction::Drop,
            WebhookFaultKind::Duplicate => {
                let copies = spec.copies.unwrap_or(2);
                if !(2..=10).contains(&copies) {
                    return Err(format!("copies: {copies} is not between 2 and 10"));
                }
                WebhookFaultAction::Duplicate { copies }
            }
        };
        let remaining = Self::count(spec.count)?;
        self.next_id += 1;
        self.webhooks.push(WebhookFault {
            id: self.next_id,
            spec,
            action,
            remaining,
        });
        Ok(self.next_id)
    }

    fn count(count: Option<u32>) -> Result<u32, String> {
        match count.unwrap_or(1) {
            0 => Err("count: must be at least 1".into()),
            n => Ok(n),
        }
    }

    /// The fault this request meets, if any (it counts down).
    pub fn take_http(&mut self, method: &str, path: &str) -> Option<HttpFaultAction> {
        let at = self.http.iter().position(|fault| {
            fault
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
                && fault.pattern.matches(path)
        })?;
        let fault = &mut self.http[at];
        let action = fault.action;
        fault.remaining -= 1;
        if fault.remaining == 0 {
            self.http.remove(at);
        }
        Some(action)
    }

    /// The fault this delivery meets, if any (it counts down).
    pub fn take_webhook(&mut self, event_type: &str) -> Option<WebhookFaultAction> {
        let at = self.webhooks.iter().position(|fault| {
            fault
                .spec
                .event_type
                .as_deref()
                .is_none_or(|e| e == event_type)
        })?;
        let fault = &mut self.webhooks[at];
        let action = fault.action;
        fault.remaining -= 1;
        if fault.remaining == 0 {
            self.webhooks.remove(at);
        }
        Some(action)
    }

    /// `{http: [...], webhooks: [...]}` with the remaining counts.
    pub fn to_json(&self) -> Value {
        let http: Vec<Value> = self
            .http
            .iter()
            .map(|f| {
                json!({
                    "id": f.id,
                    "method": f.method,
                    "path": f.spec.path,
                    "kind": f.spec.kind,
                    "status": f.spec.status,
                    "retry_after": f.spec.retry_after,
                    "delay_ms": f.spec.delay_ms,
                    "lands": f.spec.lands.unwrap_or(false),
                    "remaining": f.remaining,
                })
            })
            .collect();
        let webhooks: Vec<Value> = self
            .webhooks
            .iter()
            .map(|f| {
                json!({
                    "id": f.id,
                    "kind": f.spec.kind,
                    "event_type": f.spec.event_type,
                    "copies": f.spec.copies,
                    "remaining": f.remaining,
                })
            })
            .collect();
        json!({ "http": http, "webhooks": webhooks })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(path: &str, method: Option<&str>, count: u32) -> HttpFaultSpec {
        HttpFaultSpec {
            method: method.map(str::to_owned),
            path: path.into(),
            kind: HttpFaultKind::Error,
            status: Some(503),
            retry_after: None,
            delay_ms: None,
            lands: None,
            count: Some(count),
        }
    }

    #[test]
    fn one_star_matches_one_segment_and_two_stars_the_rest() {
        let pattern = PathPattern::parse("/v2/Services/*/Channels/*/Messages").unwrap();
        assert!(pattern.matches("/v2/Services/IS1/Channels/CH1/Messages"));
        assert!(!pattern.matches("/v2/Services/IS1/Channels/CH1/Messages/IM1"));
        assert!(!pattern.matches("/v2/Services/IS1/Channels/Messages"));
        let rest = PathPattern::parse("/v2/**").unwrap();
        assert!(rest.matches("/v2/Services/IS1"));
        assert!(rest.matches("/v2/"));
        assert!(!rest.matches("/v1/Channels"));
        assert!(PathPattern::parse("/v2/**/Messages").is_err());
    }

    #[test]
    fn a_fault_fires_count_times_then_disappears() {
        let mut faults = Faults::default();
        faults
            .add_http(http("/v1/Channels", Some("post"), 2))
            .unwrap();
        assert_eq!(faults.take_http("GET", "/v1/Channels"), None);
        let expected = Some(HttpFaultAction::Error {
            status: 503,
            lands: false,
        });
        assert_eq!(faults.take_http("POST", "/v1/Channels"), expected);
        assert_eq!(faults.take_http("POST", "/v1/Channels"), expected);
        assert_eq!(faults.take_http("POST", "/v1/Channels"), None);
    }

    #[test]
    fn bad_fault_specs_name_the_wrong_field() {
        let mut faults = Faults::default();
        assert!(
            faults
                .add_http(http("v1", None, 1))
                .unwrap_err()
                .starts_with("path")
        );
        assert!(
            faults
                .add_http(http("/v1", None, 0))
                .unwrap_err()
                .starts_with("count")
        );
        let mut delay = http("/v1", None, 1);
        delay.kind = HttpFaultKind::Delay;
        assert!(faults.add_http(delay).unwrap_err().starts_with("delay_ms"));
    }

    #[test]
    fn webhook_faults_can_target_one_event_type() {
        let mut faults = Faults::default();
        faults
            .add_webhook(WebhookFaultSpec {
                kind: WebhookFaultKind::Duplicate,
                count: Some(1),
                event_type: Some("onMessageSent".into()),
                copies: Some(3),
            })
            .unwrap();
        assert_eq!(faults.take_webhook("onChannelUpdated"), None);
        assert_eq!(
            faults.take_webhook("onMessageSent"),
            Some(WebhookFaultAction::Duplicate { copies: 3 })
        );
        assert_eq!(faults.take_webhook("onMessageSent"), None);
    }
}
