//! Programmable Chat helpers: Flex Flows, Flex channels, chat channels,
//! channel webhooks and webhook-enabled customer messages, made through the
//! REST API as the bridge makes them.

use super::{Answer, TestEmulator};

impl TestEmulator {
    /// Creates a Flex Flow (custom channel) with the given integration params.
    pub async fn flex_flow(&self, extra: &[(&str, &str)]) -> String {
        let service = self.service();
        let mut form = vec![
            ("FriendlyName", "Custom Webchat Flex Flow"),
            ("ChatServiceSid", service.as_str()),
            ("ChannelType", "custom"),
            ("Enabled", "true"),
            ("ContactIdentity", "custom"),
        ];
        form.extend_from_slice(extra);
        let answer = self.post("/v1/FlexFlows", &form).await;
        assert_eq!(answer.status, 201, "{}", answer.json);
        answer.sid()
    }

    /// A studio-integration Flex Flow to "Webchat Flow", as in the blog post.
    pub async fn studio_flow(&self) -> String {
        let flow_sid = self.bootstrap().studio_flow_sid.clone();
        self.flex_flow(&[
            ("IntegrationType", "studio"),
            ("Integration.FlowSid", &flow_sid),
        ])
        .await
    }

    /// `POST /v1/Channels` for a customer; returns the whole answer.
    pub async fn flex_channel(&self, flow: &str, identity: &str, name: &str) -> Answer {
        let chat_name = format!("Chat with {name}");
        self.post(
            "/v1/Channels",
            &[
                ("FlexFlowSid", flow),
                ("Identity", identity),
                ("ChatUserFriendlyName", name),
                ("ChatFriendlyName", &chat_name),
                ("Target", identity),
            ],
        )
        .await
    }

    pub fn channel_path(&self, channel: &str) -> String {
        format!("/v2/Services/{}/Channels/{channel}", self.service())
    }

    /// Creates a chat channel of the Flex Chat Service with this form.
    pub async fn chat_channel(&self, form: &[(&str, &str)]) -> String {
        let path = format!("/v2/Services/{}/Channels", self.service());
        let answer = self.post(&path, form).await;
        assert_eq!(answer.status, 201, "{}", answer.json);
        answer.sid()
    }

    /// A plain chat channel with a `webhook` channel webhook to `url` for
    /// these events; returns the channel.
    pub async fn hooked_channel(&self, url: &str, filters: &[&str], retries: u8) -> String {
        let channel = self.chat_channel(&[]).await;
        self.channel_webhook(&channel, url, filters, retries).await;
        channel
    }

    /// `CreateChannelWebhook` with this form; returns the answer.
    pub async fn add_channel_webhook(&self, channel: &str, form: &[(&str, &str)]) -> Answer {
        self.post(&format!("{}/Webhooks", self.channel_path(channel)), form)
            .await
    }

    /// Adds a `webhook` channel webhook for these events; returns its SID.
    pub async fn channel_webhook(
        &self,
        channel: &str,
        url: &str,
        filters: &[&str],
        retries: u8,
    ) -> String {
        let retries = retries.to_string();
        let mut form = vec![
            ("Type", "webhook"),
            ("Configuration.Url", url),
            ("Configuration.Method", "POST"),
            ("Configuration.RetryCount", retries.as_str()),
        ];
        form.extend(filters.iter().map(|f| ("Configuration.Filters", *f)));
        let answer = self.add_channel_webhook(channel, &form).await;
        assert_eq!(answer.status, 201, "{}", answer.json);
        answer.sid()
    }

    /// A customer message, webhook-enabled (as the bridge sends it).
    pub async fn customer_says(&self, channel: &str, from: &str, body: &str) -> Answer {
        let answer = self
            .post_hooked(
                &format!("{}/Messages", self.channel_path(channel)),
                &[("From", from), ("Body", body)],
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.json);
        answer
    }

    /// A customer chat with a studio flow, a webhook to `url`, one message
    /// and the task it made; returns (channel, task).
    pub async fn open_chat(&self, url: &str, identity: &str) -> (String, String) {
        let flow = self.studio_flow().await;
        let channel = self.flex_channel(&flow, identity, "Ada").await.sid();
        self.channel_webhook(
            &channel,
            url,
            &[
                "onMessageSent",
                "onChannelUpdated",
                "onMemberAdded",
                "onMemberRemoved",
            ],
            0,
        )
        .await;
        self.customer_says(&channel, identity, "Hello?").await;
        let tasks = self.tasks_for(&channel).await;
        assert_eq!(tasks.len(), 1, "one task for the chat: {tasks:?}");
        (
            channel,
            tasks[0]["sid"].as_str().unwrap_or_default().to_owned(),
        )
    }
}
