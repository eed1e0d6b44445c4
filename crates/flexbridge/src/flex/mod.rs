//! The Twilio side: everything that knows how Flex works lives under here,
//! behind the core's Flex port ([`crate::core::backend::FlexBackend`]).
//! Each backend translates: core requests into Twilio REST calls, Twilio
//! webhooks into typed `FlexEvent`s, Twilio failures into a
//! `BackendError` whose disposition is decided once, here
//! ([`FlexError::disposition`]).
//!
//! - [`sid`]: Twilio's SIDs, task channel names, the customer's identity
//!   in Flex, and their conversions to the core's opaque ids.
//! - [`client`]: the REST client (reqwest + rustls, Basic auth, timeouts,
//!   error classification incl. 429 `Retry-After`).
//! - [`chat`]: the Programmable Chat backend, the blog post's flow
//!   (docs/twilio-reference.md §2–§3, §7.1).
//! - [`conversations`]: the Flex Conversations backend, the default
//!   (docs/twilio-reference.md §2, §4, §7.2).
//! - [`media`]: files through Twilio's Media Content Service, for both.
//! - [`messages`], [`form`], [`agents`]: what both backends do alike — our
//!   mark in message attributes and finding it again, reading a webhook
//!   form, telling agents from customers and looking up their names.
//! - [`webhooks`]: the signed inbound routes (`/webhooks/{backend}`), one
//!   code path for every backend.
//! - [`provision`]: finding or creating what a backend needs in Twilio.
//! - [`health`]: whether Twilio answers and takes the credentials (the
//!   start-up check, `/readyz`).
//!
//! A new backend is a module here implementing `FlexBackend`, a variant of
//! [`BackendKind`], its settings in `crate::config::flex`, and one line in
//! `crate::startup` that builds it.

pub mod agents;
pub mod chat;
pub mod client;
pub mod conversations;
pub mod form;
pub mod health;
pub mod media;
pub mod messages;
pub mod provision;
pub mod sid;
pub mod webhooks;

use std::time::Duration;

use url::Url;

use self::sid::ChannelSid;
use crate::core::backend::{BackendError, BackendName, Disposition};
use crate::core::ids::{IdError, RemoteChannel};

/// Which Flex integration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// Programmable Chat channels created through the Flex Channel API.
    Chat,
    /// Conversations routed to Flex with the Interactions API (or Studio).
    Conversations,
}

impl BackendKind {
    /// Every backend, the default first.
    pub const ALL: [Self; 2] = [Self::Conversations, Self::Chat];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Conversations => "conversations",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }

    /// The name the core and the store know this backend by.
    pub const fn name(self) -> BackendName {
        match self {
            Self::Chat => BackendName::from_static("chat"),
            Self::Conversations => BackendName::from_static("conversations"),
        }
    }
}

impl PartialEq<BackendKind> for BackendName {
    fn eq(&self, kind: &BackendKind) -> bool {
        self.as_str() == kind.as_str()
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call to Twilio.
#[derive(Debug, thiserror::Error)]
pub enum FlexError {
    #[error(
        "Twilio answered HTTP {status}{}: {message}",
        code.map(|code| format!(" (error {code})")).unwrap_or_default()
    )]
    Api {
        status: u16,
        code: Option<i64>,
        message: String,
        /// From `Retry-After` on 429 (and 503).
        retry_after: Option<Duration>,
    },
    /// The request never left (connection refused, DNS, TLS): it did not land.
    #[error("could not reach Twilio")]
    Unreachable(#[source] reqwest::Error),
    /// Sent, but no (complete) answer: it may have landed.
    #[error("no answer from Twilio")]
    NoAnswer(#[source] reqwest::Error),
    /// A 2xx answer that is not what the API documents.
    #[error("Twilio's answer could not be read: {0}")]
    BadResponse(String),
    /// This bridge lacks the settings for the call (e.g. opening a
    /// conversation with a backend that only serves what it opened).
    #[error("{0}")]
    NotConfigured(String),
}

impl FlexError {
    /// Twilio said the resource does not exist (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { status: 404, .. })
    }

    /// Twilio answered `status` with error `code` (e.g. 409 and 50353).
    pub fn is_api(&self, status: u16, code: i64) -> bool {
        matches!(self, Self::Api { status: s, code: Some(c), .. } if *s == status && *c == code)
    }
}

/// A SID in an answer from Twilio, parsed (malformed: a bad answer).
pub(crate) fn parse_sid<T>(
    raw: &str,
    parse: impl Fn(&str) -> Result<T, IdError>,
) -> Result<T, FlexError> {
    parse(raw).map_err(|e| FlexError::BadResponse(e.to_string()))
}

/// The Twilio SID of a conversation's channel as the core keeps it (a
/// value that is not one is a corrupt row, or another backend's: refused
/// for good).
pub(crate) fn channel_sid(channel: &RemoteChannel) -> Result<ChannelSid, FlexError> {
    ChannelSid::try_from(channel)
        .map_err(|e| FlexError::NotConfigured(format!("channel {channel}: {e}")))
}

/// `base` + `path`, keeping any path prefix `base` has.
pub fn join_url(base: &Url, path: &str) -> anyhow::Result<Url> {
    use anyhow::Context as _;
    Url::parse(&format!("{}{path}", base.as_str().trim_end_matches('/')))
        .with_context(|| format!("joining {path} to {base}"))
}

/// Whether `url` is where an earlier address of this bridge took webhooks
/// of `path` (same path, another base URL: `PUBLIC_BASE_URL` changed).
pub(crate) fn is_earlier_address(url: &str, path: &str) -> bool {
    Url::parse(url).is_ok_and(|url| url.path().ends_with(path))
}

impl FlexError {
    /// What a failure means for the work that made the call: decided once,
    /// here, for every backend.
    pub fn disposition(&self) -> Disposition {
        match self {
            Self::Api {
                status: 429,
                retry_after,
                ..
            } => Disposition::RateLimited(*retry_after),
            // Server errors (and timeouts reported as 408) may have landed.
            Self::Api { status, .. } if *status >= 500 || *status == 408 => {
                Disposition::Transient { maybe_landed: true }
            }
            // Credentials are an operator's fix; keep the work until then.
            Self::Api {
                status: 401 | 403, ..
            } => Disposition::Unauthorized,
            Self::Api { .. } | Self::NotConfigured(_) => Disposition::Permanent,
            Self::Unreachable(_) => Disposition::Transient {
                maybe_landed: false,
            },
            Self::NoAnswer(_) | Self::BadResponse(_) => {
                Disposition::Transient { maybe_landed: true }
            }
        }
    }
}

impl FlexError {
    /// The kind of failure, as metrics count it.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Api { status: 401, .. } => "401",
            Self::Api { status: 403, .. } => "403",
            Self::Api { status: 404, .. } => "404",
            Self::Api { status: 429, .. } => "429",
            Self::Api { status, .. } if *status >= 500 => "5xx",
            Self::Api { .. } => "4xx",
            Self::Unreachable(_) => "unreachable",
            Self::NoAnswer(_) => "timeout",
            Self::BadResponse(_) | Self::NotConfigured(_) => "other",
        }
    }
}

impl From<FlexError> for BackendError {
    fn from(error: FlexError) -> Self {
        let label = error.label();
        BackendError::new(error.disposition(), error.is_not_found(), error).with_label(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> FlexError {
        FlexError::Api {
            status,
            code: None,
            message: String::new(),
            retry_after: Some(Duration::from_secs(2)),
        }
    }

    #[test]
    fn rate_limits_carry_retry_after_and_nothing_landed() {
        assert_eq!(
            api(429).disposition(),
            Disposition::RateLimited(Some(Duration::from_secs(2)))
        );
    }

    #[test]
    fn server_errors_may_have_landed_and_client_errors_are_permanent() {
        assert_eq!(
            api(500).disposition(),
            Disposition::Transient { maybe_landed: true }
        );
        assert_eq!(
            api(503).disposition(),
            Disposition::Transient { maybe_landed: true }
        );
        assert_eq!(api(400).disposition(), Disposition::Permanent);
        assert_eq!(api(404).disposition(), Disposition::Permanent);
        assert_eq!(api(401).disposition(), Disposition::Unauthorized);
        assert_eq!(api(403).disposition(), Disposition::Unauthorized);
    }
}
