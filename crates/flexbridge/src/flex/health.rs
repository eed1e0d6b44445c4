//! Whether Twilio answers this bridge, and accepts its credentials: checked
//! at start (a refusal stops `serve`, naming the settings, unless
//! `FLEXBRIDGE_SKIP_TWILIO_CHECK`) and then every [`PROBE_INTERVAL`] in the
//! background; `/readyz` reads the last answer (cached: a probe of the
//! load balancer never becomes a call to Twilio).
//!
//! The probe is one fetch of the Flex Chat Service
//! (`GET conversations /v1/Services/{FLEX_CHAT_SERVICE}`), which both
//! backends use: 2xx (or 404: Twilio answered and took the credentials; a
//! missing service is `doctor`'s to name) is up, 401/403 is refused
//! credentials, anything else (no answer, 5xx, 429) is unreachable.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::FlexError;
use super::client::{Product, TwilioClient};
use super::sid::ChatServiceSid;
use crate::core::lock;

/// How often the background probe asks Twilio.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(30);

/// What the last probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioStatus {
    /// Not probed yet.
    Unknown,
    Up,
    /// 401/403: the credentials are wrong (or revoked); `settings` names them.
    Refused {
        status: u16,
        settings: &'static str,
    },
    /// No answer, or a server error or rate limit.
    Unreachable(String),
}

impl TwilioStatus {
    /// Why the bridge is not ready, or `None` when Twilio is fine.
    pub fn not_ready(&self) -> Option<String> {
        match self {
            Self::Unknown | Self::Up => None,
            Self::Refused { status, settings } => Some(format!(
                "Twilio refuses the bridge's credentials (HTTP {status}): check {settings}"
            )),
            Self::Unreachable(why) => Some(format!("Twilio is unreachable: {why}")),
        }
    }
}

/// The probe and its last answer. Cheap to clone.
#[derive(Clone)]
pub struct TwilioHealth {
    client: TwilioClient,
    service: ChatServiceSid,
    /// The settings that hold the credentials (for messages).
    settings: &'static str,
    last: Arc<Mutex<TwilioStatus>>,
}

impl TwilioHealth {
    pub fn new(client: TwilioClient, service: ChatServiceSid, settings: &'static str) -> Self {
        Self {
            client,
            service,
            settings,
            last: Arc::new(Mutex::new(TwilioStatus::Unknown)),
        }
    }

    /// The last probe's answer.
    pub fn status(&self) -> TwilioStatus {
        lock(&self.last).clone()
    }

    /// Asks Twilio now; remembers and returns the answer.
    pub async fn probe(&self) -> TwilioStatus {
        let path = format!("/v1/Services/{}", self.service);
        let answer = self
            .client
            .get::<serde_json::Value>(Product::Conversations, &path, &[])
            .await;
        let status = match answer {
            Ok(_) => TwilioStatus::Up,
            Err(error) if error.is_not_found() => TwilioStatus::Up,
            Err(FlexError::Api {
                status: status @ (401 | 403),
                ..
            }) => TwilioStatus::Refused {
                status,
                settings: self.settings,
            },
            Err(error) => TwilioStatus::Unreachable(crate::core::chain(&error)),
        };
        let previous = std::mem::replace(&mut *lock(&self.last), status.clone());
        if previous != status {
            match status.not_ready() {
                Some(why) => tracing::error!(%why, "Twilio check failed; not ready"),
                None => tracing::info!("Twilio answers and accepts the credentials"),
            }
        }
        status
    }

    /// Probes every [`PROBE_INTERVAL`] until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(PROBE_INTERVAL) => {}
            }
            self.probe().await;
        }
    }
}
