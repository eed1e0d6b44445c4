//! The few Twilio REST calls the floor relay and the emulator-capacity
//! scenario make, with the parameter names of ENDPOINTS.md: create a Flex
//! Flow, open a Flex chat channel (`POST /v1/Channels`), add a channel
//! webhook, post a chat message with `X-Twilio-Webhook-Enabled: true`.
//!
//! One `reqwest::Client` (keep-alive pool, `TCP_NODELAY`) per process: every
//! message is one request on a reused loopback connection.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use serde_json::Value;

/// Where Twilio is (an emulator URL) and whose account it is.
#[derive(Debug, Clone)]
pub struct Twilio {
    http: reqwest::Client,
    base: String,
    account_sid: String,
    auth_token: String,
}

/// What a created resource answered that we need (`sid`).
#[derive(Debug, Deserialize)]
struct Created {
    sid: String,
}

impl Twilio {
    pub fn new(base: &str, account_sid: &str, auth_token: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
        })
    }

    async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        webhook_enabled: bool,
    ) -> anyhow::Result<String> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(form);
        if webhook_enabled {
            request = request.header("X-Twilio-Webhook-Enabled", "true");
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .with_context(|| format!("reading the answer of POST {path}"))?;
        if !status.is_success() {
            bail!("POST {path} answered {status}: {body}");
        }
        Ok(body)
    }

    async fn create(
        &self,
        path: &str,
        form: &[(&str, &str)],
        webhook_enabled: bool,
    ) -> anyhow::Result<String> {
        let body = self.post(path, form, webhook_enabled).await?;
        let created: Created = serde_json::from_str(&body)
            .with_context(|| format!("reading the sid in the answer of POST {path}: {body}"))?;
        Ok(created.sid)
    }

    /// `POST /v1/FlexFlows`: a custom-channel flow sending to the Studio flow.
    pub async fn create_flex_flow(
        &self,
        chat_service_sid: &str,
        studio_flow_sid: &str,
    ) -> anyhow::Result<String> {
        self.create(
            "/v1/FlexFlows",
            &[
                ("FriendlyName", "flexbridge-bench"),
                ("ChatServiceSid", chat_service_sid),
                ("ChannelType", "custom"),
                ("IntegrationType", "studio"),
                ("Integration.FlowSid", studio_flow_sid),
                ("ContactIdentity", "flexbridge-bench"),
                ("Enabled", "true"),
            ],
            false,
        )
        .await
    }

    /// `POST /v1/Channels`: the customer's Flex chat channel (CH…).
    pub async fn create_flex_channel(
        &self,
        flex_flow_sid: &str,
        identity: &str,
        name: &str,
    ) -> anyhow::Result<String> {
        self.create(
            "/v1/Channels",
            &[
                ("FlexFlowSid", flex_flow_sid),
                ("Identity", identity),
                ("ChatUserFriendlyName", name),
                ("ChatFriendlyName", name),
                ("Target", identity),
            ],
            false,
        )
        .await
    }

    /// `POST /v2/Services/{IS}/Channels/{CH}/Webhooks`: `onMessageSent` to `url`.
    pub async fn add_message_webhook(
        &self,
        service_sid: &str,
        channel_sid: &str,
        url: &str,
    ) -> anyhow::Result<String> {
        self.create(
            &format!("/v2/Services/{service_sid}/Channels/{channel_sid}/Webhooks"),
            &[
                ("Type", "webhook"),
                ("Configuration.Url", url),
                ("Configuration.Method", "POST"),
                ("Configuration.Filters", "onMessageSent"),
            ],
            false,
        )
        .await
    }

    /// `POST /v2/Services/{IS}/Channels/{CH}/Messages` with webhooks enabled;
    /// returns the message SID (IM…).
    pub async fn create_message(
        &self,
        service_sid: &str,
        channel_sid: &str,
        from: &str,
        body: &str,
        attributes: &str,
    ) -> anyhow::Result<String> {
        self.create(
            &format!("/v2/Services/{service_sid}/Channels/{channel_sid}/Messages"),
            &[("From", from), ("Body", body), ("Attributes", attributes)],
            true,
        )
        .await
    }
}

/// The account and bootstrap SIDs the emulator reports in `/_emulator/state`.
#[derive(Debug, Clone)]
pub struct Account {
    pub account_sid: String,
    pub auth_token: String,
    pub chat_service_sid: String,
    pub studio_flow_sid: String,
}

impl Account {
    /// Reads them from a `/_emulator/state` document.
    pub fn from_state(state: &Value) -> anyhow::Result<Self> {
        let text = |pointer: &str| -> anyhow::Result<String> {
            state
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("/_emulator/state has no {pointer}"))
        };
        Ok(Self {
            account_sid: text("/account/sid")?,
            auth_token: text("/account/auth_token")?,
            chat_service_sid: text("/bootstrap/chat_service_sid")?,
            studio_flow_sid: text("/bootstrap/studio_flow_sid")?,
        })
    }
}
