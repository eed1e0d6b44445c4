//! What only the Flex Conversations backend does: routing through the
//! Interactions API (or Studio), cleaning up a half-made setup, taking
//! every setup step again after a passing failure, ignoring the
//! customer's own messages and an idle conversation, and `flexbridge
//! provision` finding what it routes with.

use std::time::Duration;

use flexbridge::config::{FlexSettings, Layers};
use flexbridge::core::model::Direction;
use flexbridge::dev::DevFlex;
use flexbridge::flex::BackendKind;
use flexbridge::flex::conversations::{Routing, RoutingKind, TimerDuration};
use serde_json::{Value, json};

use crate::{TestApp, eventually, say, spawn_app, spawn_app_with, wait_for};

crate::on_both_databases!(
    a_conversation_is_set_up_and_routed_by_an_interaction_with_the_configured_routing,
    with_studio_routing_a_studio_webhook_routes_the_conversation_on_the_first_message,
    a_setup_step_flex_refuses_deletes_the_conversation_and_ends_the_chat,
    setup_steps_that_fail_for_a_while_are_retried_into_one_conversation_interaction_and_task,
    the_customers_own_messages_coming_back_as_webhooks_are_not_relayed,
    an_idle_conversation_tells_the_customer_nothing_and_their_next_message_wakes_it,
);

const CONVERSATIONS: BackendKind = BackendKind::Conversations;

/// A JSON document held in a string field.
fn json_in(text: &Value) -> Value {
    serde_json::from_str(text.as_str().expect("a JSON string")).expect("JSON")
}

async fn tasks(app: &TestApp) -> Vec<Value> {
    app.state().await["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn a_conversation_is_set_up_and_routed_by_an_interaction_with_the_configured_routing() {
    let app = spawn_app(CONVERSATIONS).await;
    let bootstrap = app.emulator.emulator.bootstrap();
    let mut ada = app.customer("Ada").await;

    let ack = say(&mut ada.socket, "m1", "hello").await;

    let sid = app.channel_of(&ada.id).await;
    let task = wait_for("a task", || async { tasks(&app).await.first().cloned() }).await;
    let attributes = json_in(&task["attributes"]);
    assert_eq!(attributes["name"], json!("Ada"));
    assert_eq!(attributes["channelType"], json!("custom"));
    assert_eq!(attributes["customerId"], json!(ada.id.to_string()));
    assert_eq!(attributes["conversationSid"], json!(sid));
    assert_eq!(task["workspace_sid"], json!(bootstrap.workspace_sid));
    assert_eq!(task["workflow_sid"], json!(bootstrap.workflow_sid));
    assert_eq!(task["task_channel_unique_name"], json!("chat"));

    let conversation = app.channel(&sid).await;
    assert_eq!(conversation["unique_name"], ack["conversationId"]);
    assert_eq!(
        conversation["chat_service_sid"],
        json!(bootstrap.chat_service_sid)
    );
    assert_eq!(json_in(&conversation["attributes"])["name"], json!("Ada"));
    let identities: Vec<_> = conversation["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .map(|p| p["identity"].clone())
        .collect();
    assert_eq!(identities, [json!(format!("flexbridge_{}", ada.id))]);
    let webhooks = conversation["webhooks"].as_array().expect("webhooks");
    assert_eq!(webhooks.len(), 1, "{webhooks:?}");
    let configuration = &webhooks[0]["configuration"];
    assert_eq!(webhooks[0]["target"], json!("webhook"));
    assert_eq!(configuration["method"], json!("post"));
    assert_eq!(
        configuration["url"],
        json!(format!("{}/webhooks/conversations", app.url))
    );
    assert_eq!(
        configuration["filters"],
        json!([
            "onMessageAdded",
            "onConversationStateUpdated",
            "onParticipantAdded"
        ])
    );
    // The interaction is remembered for closing.
    let interaction = app.state().await["interactions"][0].clone();
    assert_eq!(interaction["channels"][0]["conversation_sid"], json!(sid));
    let stored = app.conversation_of(&ada.id).await;
    let flex_ref = stored.flex_ref.expect("the interaction is stored");
    assert_eq!(flex_ref.value()["interaction_sid"], interaction["sid"]);
    assert_eq!(
        flex_ref.value()["interaction_channel_sid"],
        interaction["channels"][0]["sid"]
    );
}

async fn with_studio_routing_a_studio_webhook_routes_the_conversation_on_the_first_message() {
    let app = spawn_app_with(
        DevFlex {
            backend: CONVERSATIONS,
            routing: RoutingKind::Studio,
        },
        |_| {},
    )
    .await;
    let flow = app.emulator.emulator.bootstrap().studio_flow_sid.clone();
    let mut ada = app.customer("Ada").await;

    say(&mut ada.socket, "m1", "hello").await;
    let work = app.accept(None).await;

    let sid = app.channel_of(&ada.id).await;
    let conversation = app.channel(&sid).await;
    let studio: Vec<_> = conversation["webhooks"]
        .as_array()
        .expect("webhooks")
        .iter()
        .filter(|w| w["target"] == json!("studio"))
        .collect();
    assert_eq!(studio.len(), 1, "{conversation}");
    assert_eq!(studio[0]["configuration"]["flow_sid"], json!(flow));
    let executions = app.state().await["studio_executions"].clone();
    assert_eq!(executions.as_array().map(Vec::len), Some(1), "{executions}");
    assert_eq!(work.channel, sid);
    assert_eq!(app.conversation_of(&ada.id).await.flex_ref, None);

    app.agent_says(&work.agent, &work.task, "Hi Ada").await;
    let reply = ada
        .socket
        .next_event_where("message", |m| m["direction"] == json!("agent"))
        .await;
    assert_eq!(reply["body"], json!("Hi Ada"));
    app.agent_ends(&work.agent, &work.task).await;
    ada.socket.next_event("chat:ended").await;
}

async fn a_setup_step_flex_refuses_deletes_the_conversation_and_ends_the_chat() {
    let app = spawn_app(CONVERSATIONS).await;
    for (i, step) in [
        "/v1/Services/*/Conversations/*/Participants",
        "/v1/Services/*/Conversations/*/Webhooks",
        "/v1/Interactions",
    ]
    .into_iter()
    .enumerate()
    {
        app.fault(
            json!({"method": "POST", "path": step, "kind": "error", "status": 400, "count": 1}),
        )
        .await;
        let mut customer = app.customer(&format!("Customer {i}")).await;

        let ack = say(&mut customer.socket, "m1", "hello").await;

        let ended = customer.socket.next_event("chat:ended").await;
        assert_eq!(ended["reason"], json!("open_failed"), "{step}");
        let delivery = customer.socket.next_event("delivery").await;
        assert_eq!(delivery["status"], json!("failed"), "{step}");
        let unique_name = ack["conversationId"].clone();
        let left: Vec<_> = app
            .channels()
            .await
            .into_iter()
            .filter(|c| c["unique_name"] == unique_name)
            .collect();
        assert!(left.is_empty(), "{step}: an orphan conversation {left:?}");
    }
    assert_eq!(app.state().await["interactions"], json!([]));
    assert_eq!(tasks(&app).await, Vec::<Value>::new());
}

async fn setup_steps_that_fail_for_a_while_are_retried_into_one_conversation_interaction_and_task()
{
    let app = spawn_app(CONVERSATIONS).await;
    for fault in [
        // The create lands but answers 500: the retry finds it by unique name.
        json!({"method": "POST", "path": "/v1/Services/*/Conversations", "kind": "error", "status": 500, "lands": true, "count": 1}),
        // The participant lands too: the retry is told it is there already.
        json!({"method": "POST", "path": "/v1/Services/*/Conversations/*/Participants", "kind": "error", "status": 502, "lands": true, "count": 1}),
        json!({"method": "POST", "path": "/v1/Services/*/Conversations/*/Webhooks", "kind": "rate_limit", "retry_after": 1, "count": 1}),
        // The interaction lands: the retry is refused (one per
        // conversation) and recognises the live one as its own.
        json!({"method": "POST", "path": "/v1/Interactions", "kind": "error", "status": 503, "lands": true, "count": 1}),
    ] {
        app.fault(fault).await;
    }
    let mut ada = app.customer("Ada").await;

    say(&mut ada.socket, "m1", "hello").await;

    let delivered = ada.socket.next_event("delivery").await;
    assert_eq!(delivered["status"], json!("delivered"));
    let state = app.state().await;
    let faults = app.emulator_get("/_emulator/faults").await;
    assert_eq!(faults["http"], json!([]), "every fault fired");
    let count = |list: &Value| list.as_array().map(Vec::len);
    assert_eq!(count(&state["conversations"]), Some(1));
    assert_eq!(count(&state["conversations"][0]["participants"]), Some(1));
    assert_eq!(count(&state["conversations"][0]["webhooks"]), Some(1));
    assert_eq!(count(&state["interactions"]), Some(1));
    assert_eq!(count(&state["tasks"]), Some(1));
    let stored = app.conversation_of(&ada.id).await;
    assert_eq!(
        stored.flex_ref.expect("the interaction is known").value()["interaction_sid"],
        state["interactions"][0]["sid"]
    );
    let work = app.accept(None).await;
    app.agent_says(&work.agent, &work.task, "Hi Ada").await;
    let reply = ada
        .socket
        .next_event_where("message", |m| m["direction"] == json!("agent"))
        .await;
    assert_eq!(reply["body"], json!("Hi Ada"));
}

async fn the_customers_own_messages_coming_back_as_webhooks_are_not_relayed() {
    let app = spawn_app(CONVERSATIONS).await;
    let mut ada = app.customer("Ada").await;
    let identity = format!("flexbridge_{}", ada.id);

    say(&mut ada.socket, "m1", "hello").await;
    ada.socket.next_event("delivery").await;

    eventually("the bridge answered its own message's webhook", || async {
        app.emulator_get("/_emulator/webhooks")
            .await
            .as_array()
            .is_some_and(|log| {
                log.iter().any(|d| {
                    d["event_type"] == json!("onMessageAdded")
                        && d["params"]["Author"] == json!(identity)
                        && d["status"] == json!(200)
                })
            })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stored = app
        .store
        .messages()
        .since(&ada.id, flexbridge::core::ids::Seq(0), 10)
        .await
        .expect("messages");
    assert!(
        stored.iter().all(|m| m.direction == Direction::Customer),
        "{stored:?}"
    );
    let echoed: Vec<_> = ada
        .socket
        .drain_events()
        .into_iter()
        .filter(|(name, data)| name == "message" && data["direction"] != json!("customer"))
        .collect();
    assert!(echoed.is_empty(), "{echoed:?}");
    // Ignored as the customer's own, not merely deduplicated by its SID.
    let metrics = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    // Every result is listed from the start; only the counted ones matter.
    let webhooks: Vec<_> = metrics
        .lines()
        .filter(|l| l.starts_with("flexbridge_webhooks_total") && !l.ends_with(" 0"))
        .collect();
    assert_eq!(
        webhooks,
        [r#"flexbridge_webhooks_total{result="ignored"} 1"#]
    );
}

async fn an_idle_conversation_tells_the_customer_nothing_and_their_next_message_wakes_it() {
    let app = spawn_app_with(DevFlex::default(), |settings| {
        settings.flex.timers.inactive = Some(TimerDuration::parse("PT1S").expect("a duration"));
    })
    .await;
    let mut ada = app.customer("Ada").await;
    say(&mut ada.socket, "m1", "hello").await;
    let sid = app.channel_of(&ada.id).await;
    assert!(!app.channel(&sid).await["timers"]["date_inactive"].is_null());

    eventually("the bridge heard the conversation go inactive", || async {
        app.emulator_get("/_emulator/webhooks")
            .await
            .as_array()
            .is_some_and(|log| {
                log.iter().any(|d| {
                    d["params"]["StateTo"] == json!("inactive") && d["status"] == json!(200)
                })
            })
    })
    .await;
    let told: Vec<_> = ada
        .socket
        .drain_events()
        .into_iter()
        .filter(|(name, _)| name == "chat:ended")
        .collect();
    assert!(told.is_empty(), "{told:?}");
    assert!(app.conversation_of(&ada.id).await.state.is_live());

    say(&mut ada.socket, "m2", "still there?").await;

    eventually(
        "the conversation is active again with the message",
        || async {
            let conversation = app.channel(&sid).await;
            conversation["state"] == json!("active")
                && TestApp::customer_bodies(&conversation).contains(&"still there?".to_owned())
        },
    )
    .await;
}

/// `flexbridge provision` (the binary) against the emulator, with `env`.
async fn provision(app: &TestApp, env: &[(&str, &str)]) -> std::process::Output {
    let credentials = app.emulator.emulator.credentials();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_flexbridge"));
    command
        .arg("provision")
        .env_clear()
        .env("RUST_LOG", "off")
        .env("TWILIO_ACCOUNT_SID", &credentials.account_sid)
        .env("TWILIO_AUTH_TOKEN", &credentials.auth_token)
        .env("TWILIO_API_BASE", &app.emulator_url)
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().await.expect("flexbridge provision runs")
}

#[tokio::test]
async fn provision_finds_what_conversations_route_with_and_prints_the_settings_twice_alike() {
    let app = spawn_app(CONVERSATIONS).await;
    let bootstrap = app.emulator.emulator.bootstrap().clone();
    let before = app.state().await;
    let env = [
        ("FLEX_CHAT_SERVICE", bootstrap.chat_service_sid.as_str()),
        ("TASKROUTER_WORKSPACE_SID", bootstrap.workspace_sid.as_str()),
    ];

    let first = provision(&app, &env).await;
    let second = provision(&app, &env).await;

    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    for line in [
        "FLEX_BACKEND=conversations".to_owned(),
        format!("FLEX_CHAT_SERVICE={}", bootstrap.chat_service_sid),
        format!("TASKROUTER_WORKSPACE_SID={}", bootstrap.workspace_sid),
        format!("TASKROUTER_WORKFLOW_SID={}", bootstrap.workflow_sid),
        "FLEX_TASK_CHANNEL=chat".to_owned(),
        "FLEX_ROUTING=interactions".to_owned(),
        format!(
            "Workflow {} \"Assign to Anyone\" (found by name)",
            bootstrap.workflow_sid
        ),
        format!(
            "Workspace {} \"Flex Task Assignment\" (configured, checked)",
            bootstrap.workspace_sid
        ),
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no line {line:?} in:\n{stdout}"
        );
    }
    assert_eq!(first.stdout, second.stdout, "a second run finds the same");
    let after = app.state().await;
    for created in ["flex_flows", "conversations", "tasks", "interactions"] {
        assert_eq!(
            before[created], after[created],
            "provision created {created}"
        );
    }
}

/// The `KEY=value` lines `provision` printed for `flexbridge serve`.
fn settings_printed(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .skip_while(|line| !line.starts_with("Set these for"))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// The Flex side of `flexbridge serve` configured by exactly `printed`
/// (plus the auth token, which `provision` never prints).
fn flex_settings_from(printed: &[(String, String)]) -> FlexSettings {
    let env = |name: &str| match name {
        "TWILIO_AUTH_TOKEN" => Some("token".to_owned()),
        _ => printed
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone()),
    };
    let layers = Layers::load(None, env, &[]).expect("the printed lines load");
    FlexSettings::from_layers(&layers).expect("the printed lines configure the backend")
}

#[tokio::test]
async fn provision_given_only_the_account_finds_what_conversations_route_with_in_the_emulator() {
    let app = spawn_app(CONVERSATIONS).await;
    let bootstrap = app.emulator.emulator.bootstrap().clone();

    let interactions = provision(&app, &[]).await;
    let studio = provision(&app, &[("FLEX_ROUTING", "studio")]).await;

    for run in [&interactions, &studio] {
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let interactions = String::from_utf8_lossy(&interactions.stdout).into_owned();
    let studio = String::from_utf8_lossy(&studio.stdout).into_owned();
    let found = [
        format!(
            "Conversation service {} \"Flex Chat Service\" (found by name)",
            bootstrap.chat_service_sid
        ),
        format!(
            "Workspace {} \"Flex Task Assignment\" (found by name)",
            bootstrap.workspace_sid
        ),
        format!(
            "Workflow {} \"Assign to Anyone\" (found by name)",
            bootstrap.workflow_sid
        ),
        format!("Task channel {} \"chat\"", bootstrap.chat_task_channel_sid),
    ];
    for stdout in [&interactions, &studio] {
        for line in &found {
            assert!(
                stdout.lines().any(|l| l == line),
                "no line {line:?} in:\n{stdout}"
            );
        }
    }
    let flow_line = format!(
        "Routing: studio, Studio flow {} \"Webchat Flow\" (found by name)",
        bootstrap.studio_flow_sid
    );
    assert!(
        studio.lines().any(|l| l == flow_line),
        "no line {flow_line:?} in:\n{studio}"
    );

    let routed = flex_settings_from(&settings_printed(&interactions));
    assert_eq!(routed.backend, CONVERSATIONS);
    assert_eq!(
        routed.chat_service_sid.to_string(),
        bootstrap.chat_service_sid
    );
    let Some(Routing::Interactions(routing)) = routed.routing else {
        panic!("interactions routing from:\n{interactions}");
    };
    assert_eq!(routing.workspace.to_string(), bootstrap.workspace_sid);
    assert_eq!(routing.workflow.to_string(), bootstrap.workflow_sid);
    assert_eq!(routing.task_channel.as_str(), "chat");

    let through_studio = flex_settings_from(&settings_printed(&studio));
    assert_eq!(
        through_studio.chat_service_sid.to_string(),
        bootstrap.chat_service_sid
    );
    let Some(Routing::Studio { flow }) = through_studio.routing else {
        panic!("studio routing from:\n{studio}");
    };
    assert_eq!(flow.to_string(), bootstrap.studio_flow_sid);
}

#[tokio::test]
async fn provision_names_the_setting_whose_sid_is_not_found() {
    let app = spawn_app(CONVERSATIONS).await;
    let bootstrap = app.emulator.emulator.bootstrap().clone();

    let wrong_service = provision(
        &app,
        &[
            ("FLEX_CHAT_SERVICE", "IS000000000000000000000000000000ff"),
            ("TASKROUTER_WORKSPACE_SID", &bootstrap.workspace_sid),
        ],
    )
    .await;
    let wrong_workspace = provision(
        &app,
        &[
            ("FLEX_CHAT_SERVICE", &bootstrap.chat_service_sid),
            (
                "TASKROUTER_WORKSPACE_SID",
                "WS000000000000000000000000000000ff",
            ),
        ],
    )
    .await;

    assert!(!wrong_service.status.success());
    let stderr = String::from_utf8_lossy(&wrong_service.stderr);
    assert!(stderr.contains("FLEX_CHAT_SERVICE"), "{stderr}");
    assert!(
        stderr.contains("IS000000000000000000000000000000ff"),
        "{stderr}"
    );
    assert!(!wrong_workspace.status.success());
    let stderr = String::from_utf8_lossy(&wrong_workspace.stderr);
    assert!(
        stderr.contains("WS000000000000000000000000000000ff"),
        "{stderr}"
    );
}
