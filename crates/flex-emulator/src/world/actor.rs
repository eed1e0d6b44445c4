//! Who acts ([`Actor`]): what a webhook reports of the change (`Source`,
//! `ClientIdentity`), and whether the change fires webhooks at all.

/// Who acts, as a webhook reports it (`Source`, `ClientIdentity`), and
/// whether the action fires the channel's webhooks at all.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub source: Source,
    pub identity: Option<String>,
    pub fires_webhooks: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Api,
    Sdk,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Api => "API",
            Source::Sdk => "SDK",
        }
    }
}

impl Actor {
    /// A REST call: webhooks fire only with `X-Twilio-Webhook-Enabled: true`.
    pub fn api(webhook_enabled: bool) -> Self {
        Self {
            source: Source::Api,
            identity: None,
            fires_webhooks: webhook_enabled,
        }
    }

    /// An agent in the Flex UI (console or control API): webhooks always fire.
    pub fn agent(identity: &str) -> Self {
        Self {
            source: Source::Sdk,
            identity: Some(identity.to_owned()),
            fires_webhooks: true,
        }
    }

    /// Flex's own bookkeeping through the REST API (no webhooks).
    pub fn system() -> Self {
        Self::api(false)
    }

    /// Twilio itself — conversation timers, Flex closing an interaction
    /// channel: `Source=API`, and webhooks always fire.
    pub fn service() -> Self {
        Self::api(true)
    }
}
