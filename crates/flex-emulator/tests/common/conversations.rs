//! Flex Conversations helpers: conversations, participants, scoped webhooks,
//! webhook-enabled messages and interactions, made through the REST API as
//! the bridge makes them (`docs/architecture.md` §4.2a).

use serde_json::{Value, json};

use super::{Answer, TestEmulator};

impl TestEmulator {
    /// `/v1/Conversations/{id}` (the default service).
    pub fn conversation_path(&self, id: &str) -> String {
        format!("/v1/Conversations/{id}")
    }

    /// `/v1/Services/{IS}/Conversations/{id}`.
    pub fn service_conversation_path(&self, id: &str) -> String {
        format!("/v1/Services/{}/Conversations/{id}", self.service())
    }

    /// Creates a conversation; returns its SID.
    pub async fn conversation(&self, form: &[(&str, &str)]) -> String {
        let answer = self.post("/v1/Conversations", form).await;
        assert_eq!(answer.status, 201, "{}", answer.json);
        answer.sid()
    }

    /// Adds a chat participant; returns its SID.
    pub async fn participant(&self, conversation: &str, identity: &str) -> String {
        let path = format!("{}/Participants", self.conversation_path(conversation));
        let answer = self.post(&path, &[("Identity", identity)]).await;
        assert_eq!(answer.status, 201, "{}", answer.json);
        answer.sid()
    }

    /// Adds a `Target=webhook` scoped webhook (POST) for these events.
    pub async fn conversation_webhook(
        &self,
        conversation: &str,
        url: &str,
        filters: &[&str],
    ) -> String {
        let mut form = vec![
            ("Target", "webhook"),
            ("Configuration.Url", url),
            ("Configuration.Method", "post"),
        ];
        form.extend(filters.iter().map(|f| ("Configuration.Filters", *f)));
        let path = format!("{}/Webhooks", self.conversation_path(conversation));
        let answer = self.post(&path, &form).await;
        assert_eq!(answer.status, 201, "{}", answer.json);
        answer.sid()
    }

    /// A conversation with a scoped webhook to `url` for these events.
    pub async fn hooked_conversation(&self, url: &str, filters: &[&str]) -> String {
        let conversation = self.conversation(&[]).await;
        self.conversation_webhook(&conversation, url, filters).await;
        conversation
    }

    /// A webhook-enabled customer message (as the bridge sends it).
    pub async fn customer_writes(&self, conversation: &str, author: &str, body: &str) -> Answer {
        let path = format!("{}/Messages", self.conversation_path(conversation));
        let answer = self
            .post_hooked(&path, &[("Author", author), ("Body", body)])
            .await;
        assert_eq!(answer.status, 201, "{}", answer.json);
        answer
    }

    /// `POST /v1/Interactions` for a conversation with these routing attributes.
    pub async fn interaction(&self, conversation: &str, attributes: Value) -> Answer {
        let bootstrap = self.bootstrap();
        let channel = json!({
            "type": "chat",
            "initiated_by": "customer",
            "properties": {"media_channel_sid": conversation},
        });
        let routing = json!({"properties": {
            "workspace_sid": bootstrap.workspace_sid,
            "workflow_sid": bootstrap.workflow_sid,
            "task_channel_unique_name": "chat",
            "attributes": attributes,
        }});
        self.post(
            "/v1/Interactions",
            &[
                ("Channel", &channel.to_string()),
                ("Routing", &routing.to_string()),
            ],
        )
        .await
    }

    /// A customer's conversation with a webhook to `url` (all the events the
    /// emulator fires), routed to Flex by an interaction; returns
    /// (conversation, interaction, interaction channel, task).
    pub async fn routed_conversation(
        &self,
        url: &str,
        identity: &str,
    ) -> (String, String, String, String) {
        let conversation = self
            .conversation(&[("FriendlyName", "Chat with Ada")])
            .await;
        self.participant(&conversation, identity).await;
        self.conversation_webhook(
            &conversation,
            url,
            &[
                "onMessageAdded",
                "onConversationStateUpdated",
                "onConversationUpdated",
                "onParticipantAdded",
                "onParticipantRemoved",
            ],
        )
        .await;
        self.customer_writes(&conversation, identity, "Hello?")
            .await;
        let created = self
            .interaction(&conversation, json!({"from": identity}))
            .await;
        assert_eq!(created.status, 200, "{}", created.json);
        let interaction = created.sid();
        let channel = created.json["channel"]["sid"].as_str().unwrap().to_owned();
        let task = created.json["routing"]["properties"]["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        (conversation, interaction, channel, task)
    }
}
