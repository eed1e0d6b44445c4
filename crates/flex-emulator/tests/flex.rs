//! Flex behaviour: what `POST /v1/Channels` makes, and when a flow's
//! integration makes the task.

mod common;

use common::{TestEmulator, attributes};
use serde_json::Value;

#[tokio::test]
async fn a_flex_channel_makes_the_user_the_private_channel_and_the_member() {
    let emu = TestEmulator::start().await;
    let flow = emu.studio_flow().await;
    let answer = emu
        .post(
            "/v1/Channels",
            &[
                ("FlexFlowSid", &flow),
                ("Identity", "customer-ada"),
                ("ChatUserFriendlyName", "Ada Lovelace"),
                ("ChatFriendlyName", "Chat with Ada"),
                ("Target", "customer-ada"),
                ("PreEngagementData", r#"{"topic":"orders"}"#),
            ],
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    let sid = answer.sid();
    assert!(sid.starts_with("CH"));
    assert_eq!(answer.json["flex_flow_sid"], flow);
    assert_eq!(
        answer.json["task_sid"],
        Value::Null,
        "studio flows make the task later"
    );
    assert_eq!(answer.json["url"], format!("{}/v1/Channels/{sid}", emu.url));

    let channel = emu.get(&emu.channel_path(&sid)).await.json;
    assert_eq!(channel["type"], "private");
    assert_eq!(channel["friendly_name"], "Chat with Ada");
    assert_eq!(channel["created_by"], "system");
    let attrs = attributes(&channel);
    assert_eq!(attrs["from"], "Ada Lovelace");
    assert_eq!(attrs["channel_type"], "custom");
    assert_eq!(attrs["status"], "ACTIVE");
    assert_eq!(attrs["long_lived"], false);
    assert_eq!(attrs["pre_engagement_data"]["topic"], "orders");

    let members = emu
        .get(&format!("{}/Members", emu.channel_path(&sid)))
        .await
        .json;
    let identities: Vec<&Value> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["identity"])
        .collect();
    assert_eq!(identities, ["customer-ada"]);

    let user = emu
        .get(&format!(
            "/v2/Services/{}/Users/{}",
            emu.service(),
            answer.json["user_sid"].as_str().unwrap()
        ))
        .await;
    assert_eq!(user.json["identity"], "customer-ada");
    assert_eq!(user.json["friendly_name"], "Ada Lovelace");
    assert_eq!(user.json["joined_channels_count"], 1);

    let listed = emu.get("/v1/Channels").await.json;
    assert_eq!(listed["meta"]["key"], "flex_chat_channels");
    assert_eq!(listed["flex_chat_channels"][0]["sid"], sid);
    assert_eq!(
        emu.get(&format!("/v1/Channels/{sid}")).await.json,
        answer.json
    );
}

#[tokio::test]
async fn the_same_target_while_active_answers_the_same_channel_and_makes_no_new_task() {
    let emu = TestEmulator::start().await;
    let flow = emu.studio_flow().await;
    let first = emu.flex_channel(&flow, "cust-1", "One").await;
    emu.customer_says(&first.sid(), "cust-1", "first").await;
    assert_eq!(emu.tasks_for(&first.sid()).await.len(), 1);

    let again = emu.flex_channel(&flow, "cust-1", "One").await;
    assert_eq!(again.status, 201);
    assert_eq!(again.sid(), first.sid());
    emu.customer_says(&again.sid(), "cust-1", "second").await;
    assert_eq!(emu.tasks_for(&first.sid()).await.len(), 1, "no second task");

    let other = emu.flex_channel(&flow, "cust-2", "Two").await;
    assert_ne!(other.sid(), first.sid());
    let state = emu.state().await;
    assert_eq!(state["chat"]["channels"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_studio_flow_makes_the_task_on_the_first_webhook_enabled_message_only() {
    let emu = TestEmulator::start().await;
    let flow = emu.studio_flow().await;
    let channel = emu.flex_channel(&flow, "cust", "Customer Name").await.sid();
    let messages = format!("{}/Messages", emu.channel_path(&channel));

    let quiet = emu
        .post(&messages, &[("From", "cust"), ("Body", "no header")])
        .await;
    assert_eq!(quiet.status, 201);
    assert!(
        emu.tasks_for(&channel).await.is_empty(),
        "no webhook-enabled message, no task"
    );

    emu.customer_says(&channel, "cust", "hello").await;
    let tasks = emu.tasks_for(&channel).await;
    assert_eq!(tasks.len(), 1);
    let task = &tasks[0];
    let attrs = attributes(task);
    assert_eq!(attrs["channelSid"], channel);
    assert_eq!(attrs["name"], "Customer Name");
    assert_eq!(attrs["channelType"], "custom");
    assert_eq!(task["workflow_sid"], emu.bootstrap().workflow_sid);
    assert_eq!(task["workflow_friendly_name"], "Assign to Anyone");
    assert_eq!(task["task_channel_unique_name"], "chat");
    assert_eq!(task["assignment_status"], "reserved", "alice is available");

    emu.customer_says(&channel, "cust", "anyone there?").await;
    assert_eq!(
        emu.tasks_for(&channel).await.len(),
        1,
        "the execution is already running"
    );

    let state = emu.state().await;
    let executions = state["studio_executions"].as_array().unwrap();
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0]["status"], "active");
    assert_eq!(executions[0]["flow_sid"], emu.bootstrap().studio_flow_sid);
    let path = format!("/v2/Flows/{}/Executions", emu.bootstrap().studio_flow_sid);
    assert_eq!(
        emu.get(&path).await.json["executions"][0]["sid"],
        executions[0]["sid"]
    );
}

#[tokio::test]
async fn a_task_flow_makes_the_task_with_the_channel() {
    let emu = TestEmulator::start().await;
    let workspace = emu.bootstrap().workspace_sid.clone();
    let workflow = emu.bootstrap().workflow_sid.clone();
    let flow = emu
        .flex_flow(&[
            ("IntegrationType", "task"),
            ("Integration.WorkspaceSid", &workspace),
            ("Integration.WorkflowSid", &workflow),
            ("Integration.Channel", "chat"),
            ("Integration.Priority", "5"),
        ])
        .await;
    let answer = emu.flex_channel(&flow, "cust", "Cust").await;
    let task_sid = answer.json["task_sid"]
        .as_str()
        .expect("task integration sets task_sid")
        .to_owned();
    let task = emu
        .get(&format!("/v1/Workspaces/{workspace}/Tasks/{task_sid}"))
        .await
        .json;
    assert_eq!(attributes(&task)["channelSid"], answer.sid());
    assert_eq!(task["priority"], 5);
    assert_eq!(task["task_channel_unique_name"], "chat");
    assert_eq!(
        attributes(&emu.get(&emu.channel_path(&answer.sid())).await.json)["task_sid"],
        task_sid
    );

    emu.customer_says(&answer.sid(), "cust", "hi").await;
    assert_eq!(
        emu.tasks_for(&answer.sid()).await.len(),
        1,
        "messages make no more tasks"
    );
}

#[tokio::test]
async fn a_task_flow_with_creation_on_message_waits_for_the_first_message() {
    let emu = TestEmulator::start().await;
    let flow = emu
        .flex_flow(&[
            ("IntegrationType", "task"),
            ("Integration.CreationOnMessage", "true"),
        ])
        .await;
    let answer = emu.flex_channel(&flow, "cust", "Cust").await;
    assert_eq!(answer.json["task_sid"], Value::Null);
    assert!(emu.tasks_for(&answer.sid()).await.is_empty());

    emu.post(
        &format!("{}/Messages", emu.channel_path(&answer.sid())),
        &[("Body", "silent")],
    )
    .await;
    assert!(
        emu.tasks_for(&answer.sid()).await.is_empty(),
        "not without the header"
    );

    emu.customer_says(&answer.sid(), "cust", "hi").await;
    emu.customer_says(&answer.sid(), "cust", "again").await;
    assert_eq!(emu.tasks_for(&answer.sid()).await.len(), 1);
    let fetched = emu.get(&format!("/v1/Channels/{}", answer.sid())).await;
    assert!(fetched.json["task_sid"].as_str().unwrap().starts_with("WT"));
}

#[tokio::test]
async fn after_the_chat_ends_the_same_target_gets_a_new_channel_and_a_new_task() {
    let emu = TestEmulator::start().await;
    let flow = emu.studio_flow().await;
    let first = emu.flex_channel(&flow, "cust", "Cust").await.sid();
    emu.customer_says(&first, "cust", "hello").await;
    let task = emu.tasks_for(&first).await[0]["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        emu.accept(&task).await.json["reservation"]["worker_name"],
        "alice"
    );
    let end = emu
        .as_agent("alice", &format!("tasks/{task}/end"), None)
        .await;
    assert_eq!(end.status, 200, "{}", end.json);

    let hooks = emu
        .get(&format!("{}/Webhooks", emu.channel_path(&first)))
        .await;
    assert_eq!(
        hooks.json["webhooks"].as_array().unwrap().len(),
        0,
        "the studio webhook of an ended chat is gone"
    );
    emu.customer_says(&first, "cust", "late message in the old channel")
        .await;
    assert_eq!(
        emu.tasks_for(&first).await.len(),
        1,
        "an ended, short-lived chat makes no new task"
    );

    let second = emu.flex_channel(&flow, "cust", "Cust").await.sid();
    assert_ne!(second, first, "the old channel is INACTIVE");
    emu.customer_says(&second, "cust", "me again").await;
    assert_eq!(emu.tasks_for(&second).await.len(), 1);
}

#[tokio::test]
async fn channel_create_refuses_unknown_or_disabled_flows() {
    let emu = TestEmulator::start().await;
    let unknown = emu
        .flex_channel(&format!("FO{}", "0".repeat(32)), "c", "C")
        .await;
    unknown.refused_naming("FlexFlowSid");

    let flow = emu.studio_flow().await;
    emu.post(&format!("/v1/FlexFlows/{flow}"), &[("Enabled", "false")])
        .await;
    let disabled = emu.flex_channel(&flow, "c", "C").await;
    disabled.refused_naming("disabled");
}

#[tokio::test]
async fn deleting_a_flex_channel_deletes_the_chat_channel() {
    let emu = TestEmulator::start().await;
    let flow = emu.studio_flow().await;
    let sid = emu.flex_channel(&flow, "c", "C").await.sid();
    assert_eq!(emu.delete(&format!("/v1/Channels/{sid}")).await.status, 204);
    emu.get(&emu.channel_path(&sid))
        .await
        .twilio_error(404, 20404);
    emu.get(&format!("/v1/Channels/{sid}"))
        .await
        .twilio_error(404, 20404);
}

#[tokio::test]
async fn a_long_lived_channel_starts_a_new_task_on_the_next_message_after_the_end() {
    let emu = TestEmulator::start().await;
    let studio = emu.bootstrap().studio_flow_sid.clone();
    let flow = emu
        .flex_flow(&[
            ("IntegrationType", "studio"),
            ("Integration.FlowSid", &studio),
            ("LongLived", "true"),
        ])
        .await;
    let channel = emu.flex_channel(&flow, "cust", "Cust").await.sid();
    assert_eq!(
        attributes(&emu.get(&emu.channel_path(&channel)).await.json)["long_lived"],
        true
    );
    emu.customer_says(&channel, "cust", "hello").await;
    let first = emu.tasks_for(&channel).await[0]["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    emu.accept(&first).await;
    emu.as_agent("alice", &format!("tasks/{first}/end"), None)
        .await;

    emu.customer_says(&channel, "cust", "one more thing").await;
    let tasks = emu.tasks_for(&channel).await;
    assert_eq!(tasks.len(), 2, "a new execution made a new task");
    let executions = emu.state().await["studio_executions"].clone();
    let statuses: Vec<&Value> = executions
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["status"])
        .collect();
    assert_eq!(statuses, ["ended", "active"]);
}
