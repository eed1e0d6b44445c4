//! Resources every REST route can be pointed at, made through the API.

use flex_emulator::api::{Api, Route};

use super::TestEmulator;

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
    pub task: String,
    pub reservation: String,
    pub studio_flow: String,
    pub execution: String,
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
        let spare_channel = emu
            .post(&format!("/v2/Services/{}/Channels", emu.service()), &[])
            .await
            .sid();
        Self {
            service: emu.service(),
            flow,
            user: created.json["user_sid"].as_str().unwrap().to_owned(),
            channel,
            spare_channel,
            webhook,
            message,
            member,
            workspace: emu.bootstrap().workspace_sid.clone(),
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
        let mut out = Vec::new();
        for (at, segment) in segments.iter().enumerate() {
            if !segment.starts_with('{') {
                out.push((*segment).to_owned());
                continue;
            }
            let value = match (segments[at - 1], route.api) {
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
