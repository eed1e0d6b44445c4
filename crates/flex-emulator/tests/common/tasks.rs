//! TaskRouter and agent helpers: the tasks a chat or conversation made,
//! their status and reservations, and agents acting through the control API.

use serde_json::Value;

use super::{Answer, TestEmulator, attributes, eventually};

impl TestEmulator {
    /// The tasks whose attributes have `key` = `value`.
    pub async fn tasks_with(&self, key: &str, value: &str) -> Vec<Value> {
        let state = self.state().await;
        let tasks = state["tasks"].as_array().cloned().unwrap_or_default();
        tasks
            .into_iter()
            .filter(|task| attributes(task)[key] == value)
            .collect()
    }

    /// The tasks whose attributes name this chat channel.
    pub async fn tasks_for(&self, channel: &str) -> Vec<Value> {
        self.tasks_with("channelSid", channel).await
    }

    /// The tasks whose attributes name this conversation.
    pub async fn tasks_for_conversation(&self, conversation: &str) -> Vec<Value> {
        self.tasks_with("conversationSid", conversation).await
    }

    /// The task's `assignment_status`, over TaskRouter REST.
    pub async fn task_status(&self, task: &str) -> String {
        let path = format!(
            "/v1/Workspaces/{}/Tasks/{task}",
            self.bootstrap().workspace_sid
        );
        self.get(&path).await.json["assignment_status"]
            .as_str()
            .unwrap_or_else(|| panic!("no task {task}"))
            .to_owned()
    }

    /// Waits until the task's `assignment_status` is `status`.
    pub async fn task_reaches(&self, task: &str, status: &str) {
        eventually(|| async { (self.task_status(task).await == status).then_some(()) }).await;
    }

    /// The pending reservation of the task (waits for it).
    pub async fn reservation_of(&self, task: &str) -> Value {
        eventually(|| async {
            let state = self.state().await;
            state["reservations"]
                .as_array()?
                .iter()
                .rev()
                .find(|r| r["task_sid"] == task && r["reservation_status"] == "pending")
                .cloned()
        })
        .await
    }

    /// An agent acts: `POST /_emulator/agents/{agent}/{action}` (e.g.
    /// `tasks/WT…/end`), with an optional JSON body.
    pub async fn as_agent(&self, agent: &str, action: &str, body: Option<Value>) -> Answer {
        let path = format!("/agents/{agent}/{action}");
        self.control(reqwest::Method::POST, &path, body).await
    }

    /// The agent writes in the task's chat (an SDK message); returns the answer.
    pub async fn agent_writes(&self, agent: &str, task: &str, body: &str) -> Answer {
        let action = format!("tasks/{task}/messages");
        let body = serde_json::json!({ "body": body });
        self.as_agent(agent, &action, Some(body)).await
    }

    /// The task's pending reservation, accepted by the agent it went to.
    pub async fn accept(&self, task: &str) -> Answer {
        let reservation = self.reservation_of(task).await;
        let agent = reservation["worker_name"].as_str().unwrap_or_default();
        let action = format!(
            "reservations/{}/accept",
            reservation["sid"].as_str().unwrap_or_default()
        );
        let accepted = self.as_agent(agent, &action, None).await;
        assert_eq!(accepted.status, 200, "{}", accepted.json);
        accepted
    }
}
