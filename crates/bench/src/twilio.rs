//! The few Twilio REST calls the floor relay and the emulator-capacity
//! scenario make, with Twilio's parameter names (`docs/twilio-reference.md`
//! §2–§4), for either backend ([`Upstream`]):
//!
//! - chat: create a Flex Flow; per customer, a Flex chat channel
//!   (`POST /v1/Channels`) and a channel webhook (`onMessageSent`); per
//!   message, `POST /v2/Services/{IS}/Channels/{CH}/Messages`.
//! - conversations (the bridge's paths, service-scoped): per customer,
//!   `POST /v1/Services/{IS}/Conversations`, the customer as participant, a
//!   scoped webhook (`onMessageAdded`) and `POST /v1/Interactions` to route
//!   it to Flex; per message, `POST /v1/Services/{IS}/Conversations/{CH}/Messages`
//!   with `Author` and `Body`.
//!
//! Every message is posted with `X-Twilio-Webhook-Enabled: true`. One
//! `reqwest::Client` (keep-alive pool, `TCP_NODELAY`) per process: every
//! message is one request on a reused loopback connection.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cli::Backend;

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
    pub async fn add_chat_webhook(
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
    pub async fn create_chat_message(
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

    /// `POST /v1/Services/{IS}/Conversations`: a conversation named after
    /// the customer (CH…).
    pub async fn create_conversation(
        &self,
        service_sid: &str,
        name: &str,
    ) -> anyhow::Result<String> {
        let attributes = json!({ "name": name }).to_string();
        self.create(
            &format!("/v1/Services/{service_sid}/Conversations"),
            &[("FriendlyName", name), ("Attributes", &attributes)],
            false,
        )
        .await
    }

    /// `POST /v1/Services/{IS}/Conversations/{CH}/Participants`: `identity` joins.
    pub async fn add_participant(
        &self,
        service_sid: &str,
        conversation_sid: &str,
        identity: &str,
    ) -> anyhow::Result<String> {
        self.create(
            &format!("/v1/Services/{service_sid}/Conversations/{conversation_sid}/Participants"),
            &[("Identity", identity)],
            false,
        )
        .await
    }

    /// `POST /v1/Services/{IS}/Conversations/{CH}/Webhooks`: a scoped
    /// webhook, `onMessageAdded` to `url`.
    pub async fn add_conversation_webhook(
        &self,
        service_sid: &str,
        conversation_sid: &str,
        url: &str,
    ) -> anyhow::Result<String> {
        self.create(
            &format!("/v1/Services/{service_sid}/Conversations/{conversation_sid}/Webhooks"),
            &[
                ("Target", "webhook"),
                ("Configuration.Url", url),
                ("Configuration.Method", "post"),
                ("Configuration.Filters", "onMessageAdded"),
            ],
            false,
        )
        .await
    }

    /// `POST /v1/Interactions`: routes the conversation to Flex (a task in
    /// `workspace_sid` through `workflow_sid`, on the `chat` task channel);
    /// returns the interaction SID (KD…).
    pub async fn create_interaction(
        &self,
        conversation_sid: &str,
        workspace_sid: &str,
        workflow_sid: &str,
        name: &str,
    ) -> anyhow::Result<String> {
        let channel = json!({
            "type": "chat",
            "initiated_by": "customer",
            "properties": { "media_channel_sid": conversation_sid },
        })
        .to_string();
        let routing = json!({
            "properties": {
                "workspace_sid": workspace_sid,
                "workflow_sid": workflow_sid,
                "task_channel_unique_name": "chat",
                "attributes": { "name": name, "channelType": "custom" },
            },
        })
        .to_string();
        self.create(
            "/v1/Interactions",
            &[("Channel", &channel), ("Routing", &routing)],
            false,
        )
        .await
    }

    /// `POST /v1/Services/{IS}/Conversations/{CH}/Messages` with webhooks
    /// enabled; returns the message SID (IM…).
    pub async fn create_conversation_message(
        &self,
        service_sid: &str,
        conversation_sid: &str,
        author: &str,
        body: &str,
        attributes: &str,
    ) -> anyhow::Result<String> {
        self.create(
            &format!("/v1/Services/{service_sid}/Conversations/{conversation_sid}/Messages"),
            &[
                ("Author", author),
                ("Body", body),
                ("Attributes", attributes),
            ],
            true,
        )
        .await
    }
}

/// How a relay reaches Flex on one backend: what it opens per customer and
/// where it posts each message.
#[derive(Debug, Clone)]
pub enum Route {
    /// Programmable Chat through a Flex Flow.
    Chat { flex_flow_sid: String },
    /// Flex Conversations, routed with the Interactions API.
    Conversations {
        workspace_sid: String,
        workflow_sid: String,
    },
}

/// A Twilio account as a relay uses it, on one backend.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub twilio: Twilio,
    /// The "Flex Chat Service" (home of chat channels and conversations).
    pub chat_service_sid: String,
    pub route: Route,
}

/// Where a relay takes the webhooks of `backend` (the bridge's paths).
pub fn webhook_path(backend: Backend) -> &'static str {
    match backend {
        Backend::Chat => "/webhooks/chat",
        Backend::Conversations => "/webhooks/conversations",
    }
}

impl Upstream {
    /// What `backend` needs on `account` (chat: a new Flex Flow to the
    /// bootstrapped Studio flow; conversations: the bootstrapped workspace
    /// and workflow).
    pub async fn prepare(
        twilio: Twilio,
        account: &Account,
        backend: Backend,
    ) -> anyhow::Result<Self> {
        let route = match backend {
            Backend::Chat => Route::Chat {
                flex_flow_sid: twilio
                    .create_flex_flow(&account.chat_service_sid, &account.studio_flow_sid)
                    .await?,
            },
            Backend::Conversations => Route::Conversations {
                workspace_sid: account.workspace_sid.clone(),
                workflow_sid: account.workflow_sid.clone(),
            },
        };
        Ok(Self {
            twilio,
            chat_service_sid: account.chat_service_sid.clone(),
            route,
        })
    }

    pub fn backend(&self) -> Backend {
        match self.route {
            Route::Chat { .. } => Backend::Chat,
            Route::Conversations { .. } => Backend::Conversations,
        }
    }

    /// Opens a customer's channel or conversation in Flex with one webhook
    /// to `webhook_url` (its messages only) and routes it to an agent;
    /// returns its SID (CH…). Chat: the Flex channel, then the channel
    /// webhook (Studio makes the task on the first message).
    /// Conversations: the conversation, the customer as participant, the
    /// scoped webhook, the interaction (which makes the task).
    pub async fn open(
        &self,
        identity: &str,
        name: &str,
        webhook_url: &str,
    ) -> anyhow::Result<String> {
        let service = &self.chat_service_sid;
        match &self.route {
            Route::Chat { flex_flow_sid } => {
                let channel = self
                    .twilio
                    .create_flex_channel(flex_flow_sid, identity, name)
                    .await?;
                self.twilio
                    .add_chat_webhook(service, &channel, webhook_url)
                    .await?;
                Ok(channel)
            }
            Route::Conversations {
                workspace_sid,
                workflow_sid,
            } => {
                let conversation = self.twilio.create_conversation(service, name).await?;
                self.twilio
                    .add_participant(service, &conversation, identity)
                    .await?;
                self.twilio
                    .add_conversation_webhook(service, &conversation, webhook_url)
                    .await?;
                self.twilio
                    .create_interaction(&conversation, workspace_sid, workflow_sid, name)
                    .await?;
                Ok(conversation)
            }
        }
    }

    /// Posts one customer message (webhooks enabled); returns its SID (IM…).
    pub async fn send(
        &self,
        channel_sid: &str,
        identity: &str,
        body: &str,
        attributes: &str,
    ) -> anyhow::Result<String> {
        let service = &self.chat_service_sid;
        match self.route {
            Route::Chat { .. } => {
                self.twilio
                    .create_chat_message(service, channel_sid, identity, body, attributes)
                    .await
            }
            Route::Conversations { .. } => {
                self.twilio
                    .create_conversation_message(service, channel_sid, identity, body, attributes)
                    .await
            }
        }
    }
}

/// The account and bootstrap SIDs the emulator reports in `/_emulator/state`.
#[derive(Debug, Clone)]
pub struct Account {
    pub account_sid: String,
    pub auth_token: String,
    pub chat_service_sid: String,
    pub studio_flow_sid: String,
    /// "Flex Task Assignment" and its "Assign to Anyone" workflow.
    pub workspace_sid: String,
    pub workflow_sid: String,
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
            workspace_sid: text("/bootstrap/workspace_sid")?,
            workflow_sid: text("/bootstrap/workflow_sid")?,
        })
    }
}
