//! Resources every REST route can be pointed at, made through the API.

use flex_emulator::api::{Api, Route};
use serde_json::json;

use super::TestEmulator;

/// Conversation resources of one URL family (default or service-scoped),
/// so that the deletes of one family leave the other's intact.
pub struct ConversationFixtures {
    pub conversation: String,
    /// Deleted by `DeleteConversation` (the others stay for later routes).
    pub spare_conversation: String,
    pub participant: String,
    pub message: String,
    pub webhook: String,
}

impl ConversationFixtures {
    async fn make(emu: &TestEmulator, identity: &str) -> Self {
        let conversation = emu.conversation(&[("FriendlyName", identity)]).await;
        let participant = emu.participant(&conversation, identity).await;
        let webhook = emu
            .conversation_webhook(
                &conversation,
                "http://127.0.0.1:9/hook",
                &["onMessageAdded"],
            )
            .await;
        let message = emu
            .customer_writes(&conversation, identity, "hello")
            .await
            .sid();
        Self {
            spare_conversation: emu.conversation(&[]).await,
            conversation,
            participant,
            message,
            webhook,
        }
    }
}

/// Resources every route can be pointed at.
pub struct Fixtures {
    pub service: String,
    pub flow: String,
    pub channel: String,
    pub spare_channel: String,
    pub webhook: String,
    pub message: String,
    pub member: String,
    pub user: String,
    pub workspace: String,
    /// The `chat` task channel.
    pub task_channel: String,
    pub task: String,
    pub reservation: String,
    pub studio_flow: String,
    pub execution: String,
    /// `/v1/Conversations/…`
    pub default_scope: ConversationFixtures,
    /// `/v1/Services/{IS}/Conversations/…`
    pub service_scope: ConversationFixtures,
    /// A conversation with no interaction yet (for `CreateInteraction`).
    pub unrouted_conversation: String,
    pub interaction: String,
    pub interaction_channel: String,
    pub interaction_participant: String,
}

impl Fixtures {
    pub async fn make(emu: &TestEmulator) -> Self {
        let flow = emu.studio_flow().await;
        let created = emu.flex_channel(&flow, "cust", "Cust").await;
        let channel = created.sid();
        let webhook = emu
            .channel_webhook(&channel, "http://127.0.0.1:9/hook", &["onMessageSent"], 0)
            .await;
        let message = emu.customer_says(&channel, "cust", "hello").await.sid();
        let task = emu.tasks_for(&channel).await[0]["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        let reservation = emu.reservation_of(&task).await["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        let state = emu.state().await;
        let member = emu
            .get(&format!("{}/Members", emu.channel_path(&channel)))
            .await
            .json["members"][0]["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        let spare_channel = emu.chat_channel(&[]).await;
        let default_scope = ConversationFixtures::make(emu, "conv-cust").await;
        let service_scope = ConversationFixtures::make(emu, "service-cust").await;
        let routed = emu.conversation(&[]).await;
        emu.participant(&routed, "routed-cust").await;
        let interaction = emu.interaction(&routed, json!({})).await;
        assert_eq!(interaction.status, 200, "{}", interaction.json);
        let interaction_channel = interaction.json["channel"]["sid"]
            .as_str()
            .unwrap()
            .to_owned();
        let participants = emu
            .get(&format!(
                "/v1/Interactions/{}/Channels/{interaction_channel}/Participants",
                interaction.sid()
            ))
            .await;
        Self {
            default_scope,
            service_scope,
            unrouted_conversation: emu.conversation(&[]).await,
            interaction: interaction.sid(),
            interaction_channel,
            interaction_participant: participants.json["participants"][0]["sid"]
                .as_str()
                .unwrap()
                .to_owned(),
            service: emu.service(),
            flow,
            user: created.json["user_sid"].as_str().unwrap().to_owned(),
            channel,
            spare_channel,
            webhook,
            message,
            member,
            workspace: emu.bootstrap().workspace_sid.clone(),
            task_channel: emu.bootstrap().chat_task_channel_sid.clone(),
            task,
            reservation,
            studio_flow: emu.bootstrap().studio_flow_sid.clone(),
            execution: state["studio_executions"][0]["sid"]
                .as_str()
                .unwrap()
                .to_owned(),
        }
    }

    /// The route's path with every parameter replaced by a fixture.
    pub fn path(&self, route: &Route) -> String {
        let segments: Vec<&str> = route.path.split('/').collect();
        let interactions = route.path.starts_with("/v1/Interactions");
        let conversations = if route.path.starts_with("/v1/Services") {
            &self.service_scope
        } else {
            &self.default_scope
        };
        let deletes_conversation = route.operation_id.ends_with("Conversation")
            && route.operation_id.starts_with("Delete");
        let mut out = Vec::new();
        for (at, segment) in segments.iter().enumerate() {
            if !segment.starts_with('{') {
                out.push((*segment).to_owned());
                continue;
            }
            let value = match (segments[at - 1], route.api) {
                ("Interactions", _) => &self.interaction,
                ("Channels", _) if interactions => &self.interaction_channel,
                ("Participants", _) if interactions => &self.interaction_participant,
                ("Conversations", _) if deletes_conversation => &conversations.spare_conversation,
                ("Conversations", _) => &conversations.conversation,
                ("Participants", Api::Conversations) => &conversations.participant,
                ("Messages", Api::Conversations) => &conversations.message,
                ("Webhooks", Api::Conversations) => &conversations.webhook,
                ("Services", _) => &self.service,
                ("FlexFlows", _) => &self.flow,
                ("Channels", Api::Flex) => &self.channel,
                ("Channels", _) if route.operation_id == "DeleteChannel" => &self.spare_channel,
                ("Channels", _) => &self.channel,
                ("Webhooks", _) => &self.webhook,
                ("Messages", _) => &self.message,
                ("Members", _) => &self.member,
                ("Users", _) => &self.user,
                ("Workspaces", _) => &self.workspace,
                ("TaskChannels", _) => &self.task_channel,
                ("Tasks", _) => &self.task,
                ("Reservations", _) => &self.reservation,
                ("Flows", _) => &self.studio_flow,
                ("Executions", _) => &self.execution,
                (other, _) => panic!("no fixture for a {other} parameter in {route:?}"),
            };
            out.push(value.clone());
        }
        out.join("/")
    }
}
