//! Customer messages to Flex: committed before the ack, then delivered in
//! order, exactly once, through faults and a crash — on both backends.

use std::time::Duration;

use flexbridge::core::ids::Seq;
use flexbridge::flex::BackendKind;
use futures::future::join_all;
use serde_json::json;

use crate::{TestApp, eventually, on_both_backends, spawn_app};

on_both_backends!(
    a_customer_message_is_in_the_database_before_the_ack,
    messages_reach_the_agent_in_order_and_exactly_once_through_500s_and_a_429,
    a_message_create_that_lands_but_answers_500_is_not_duplicated,
    concurrent_first_messages_of_one_customer_create_exactly_one_flex_channel,
    a_crash_and_restart_on_the_same_database_delivers_what_was_pending_exactly_once,
    a_conversation_whose_flex_channel_vanished_is_closed_at_restart_and_the_customer_starts_anew,
);

/// Sends messages `m{i}` / `message {i}` for each `i`, one after the
/// other, each acked.
async fn send_all(socket: &mut crate::SioClient, range: std::ops::Range<usize>) {
    for i in range {
        let ack = socket
            .emit_with_ack(
                "message",
                json!({"clientMessageId": format!("m{i}"), "body": format!("message {i}")}),
            )
            .await;
        assert!(ack["ok"].is_object(), "m{i}: {ack}");
    }
}

/// Waits until the channel holds `count` customer messages; returns them.
async fn wait_for_bodies(app: &TestApp, channel: &str, count: usize) -> Vec<String> {
    eventually("every message is in Flex", || async {
        TestApp::customer_bodies(&app.channel(channel).await).len() >= count
    })
    .await;
    // Anything duplicated would arrive right behind; give it the chance.
    tokio::time::sleep(Duration::from_millis(500)).await;
    TestApp::customer_bodies(&app.channel(channel).await)
}

fn expected(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("message {i}")).collect()
}

async fn a_customer_message_is_in_the_database_before_the_ack(backend: BackendKind) {
    let app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    // Flex is down: nothing but the bridge's own commit can make the ack.
    app.fault(json!({"method": "POST", "path": app.flavour().open_path, "kind": "error", "status": 503, "count": 1000}))
        .await;
    let other_connection = &app.store;

    let ack = ada
        .socket
        .emit_with_ack(
            "message",
            json!({"clientMessageId": "c1", "body": "  hello  "}),
        )
        .await;

    let seq = ack["ok"]["seq"].as_i64().expect("a seq");
    let stored = other_connection
        .messages()
        .since(&ada.id, Seq(0), 10)
        .await
        .expect("read");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].seq, Seq(seq));
    assert_eq!(stored[0].body, "hello");
    assert_eq!(stored[0].client_msg_id.as_deref(), Some("c1"));
    assert!(other_connection.outbox().depth().await.expect("depth") >= 1);
}

async fn messages_reach_the_agent_in_order_and_exactly_once_through_500s_and_a_429(
    backend: BackendKind,
) {
    let app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    send_all(&mut ada.socket, 0..1).await;
    let channel = app.channel_of(&ada.id).await;
    wait_for_bodies(&app, &channel, 1).await;
    app.fault(json!({"method": "POST", "path": app.flavour().messages_path, "kind": "error", "status": 500, "count": 2}))
        .await;
    app.fault(json!({"method": "POST", "path": app.flavour().messages_path, "kind": "rate_limit", "retry_after": 1, "count": 1}))
        .await;
    app.fault(json!({"method": "POST", "path": app.flavour().messages_path, "kind": "error", "status": 503, "count": 1}))
        .await;

    send_all(&mut ada.socket, 1..8).await;

    assert_eq!(wait_for_bodies(&app, &channel, 8).await, expected(8));
    let faults = app.emulator_get("/_emulator/faults").await;
    assert_eq!(faults["http"], json!([]), "every fault fired");
}

async fn a_message_create_that_lands_but_answers_500_is_not_duplicated(backend: BackendKind) {
    let app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    send_all(&mut ada.socket, 0..1).await;
    let channel = app.channel_of(&ada.id).await;
    wait_for_bodies(&app, &channel, 1).await;
    app.fault(json!({"method": "POST", "path": app.flavour().messages_path, "kind": "error", "status": 500, "lands": true, "count": 1}))
        .await;

    let ack = ada
        .socket
        .emit_with_ack(
            "message",
            json!({"clientMessageId": "m1", "body": "message 1"}),
        )
        .await;
    assert!(ack["ok"].is_object());

    ada.socket
        .next_event_where("delivery", |d| d["clientMessageId"] == json!("m1"))
        .await;
    assert_eq!(wait_for_bodies(&app, &channel, 2).await, expected(2));
}

async fn concurrent_first_messages_of_one_customer_create_exactly_one_flex_channel(
    backend: BackendKind,
) {
    let app = spawn_app(backend).await;
    let ada = app.customer("Ada").await;
    let mut tabs = Vec::new();
    for _ in 0..5 {
        tabs.push(app.tab(&ada.token, 0).await);
    }

    let acks = join_all(tabs.iter_mut().enumerate().map(|(i, tab)| {
        tab.emit_with_ack(
            "message",
            json!({"clientMessageId": format!("c{i}"), "body": format!("first {i}")}),
        )
    }))
    .await;

    let conversations: std::collections::BTreeSet<_> = acks
        .iter()
        .map(|ack| {
            ack["ok"]["conversationId"]
                .as_str()
                .expect("acked")
                .to_owned()
        })
        .collect();
    assert_eq!(conversations.len(), 1, "{acks:?}");
    let channel = app.channel_of(&ada.id).await;
    assert_eq!(wait_for_bodies(&app, &channel, 5).await.len(), 5);
    let state = app.state().await;
    let identity = format!("flexbridge_{}", ada.id);
    let count = |list: &serde_json::Value| list.as_array().expect("a list").len();
    let tasks = count(&state["tasks"]);
    assert_eq!(tasks, 1, "tasks: {}", state["tasks"]);
    match backend {
        BackendKind::Chat => {
            let channels = &state["flex_chat_channels"];
            assert_eq!(count(channels), 1, "Flex channels: {channels}");
            let users: Vec<_> = state["chat"]["users"]
                .as_array()
                .expect("users")
                .iter()
                .filter(|u| u["identity"] == json!(identity))
                .collect();
            assert_eq!(users.len(), 1);
        }
        BackendKind::Conversations => {
            let conversations = &state["conversations"];
            assert_eq!(count(conversations), 1, "conversations: {conversations}");
            assert_eq!(count(&state["interactions"]), 1);
            let participants: Vec<_> = conversations[0]["participants"]
                .as_array()
                .expect("participants")
                .iter()
                .filter(|p| p["identity"] == json!(identity))
                .collect();
            assert_eq!(participants.len(), 1);
        }
    }
}

async fn a_crash_and_restart_on_the_same_database_delivers_what_was_pending_exactly_once(
    backend: BackendKind,
) {
    let mut app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    send_all(&mut ada.socket, 0..1).await;
    let channel = app.channel_of(&ada.id).await;
    wait_for_bodies(&app, &channel, 1).await;
    app.fault(json!({"method": "POST", "path": app.flavour().messages_path, "kind": "error", "status": 500, "count": 100000}))
        .await;
    send_all(&mut ada.socket, 1..4).await;
    eventually("a delivery was attempted and failed", || async {
        app.emulator_get("/_emulator/faults").await["http"]
            .as_array()
            .is_some_and(|faults| {
                faults
                    .iter()
                    .any(|f| f["remaining"].as_u64().is_some_and(|n| n < 100000))
            })
    })
    .await;

    let token = ada.token.clone();
    drop(ada);
    app.crash_and_restart().await;
    let response = app
        .http
        .delete(format!("{}/_emulator/faults", app.emulator_url))
        .send()
        .await
        .expect("clear faults");
    assert!(response.status().is_success());

    assert_eq!(wait_for_bodies(&app, &channel, 4).await, expected(4));

    // The conversation goes on, on the same channel.
    let mut tab = app.tab(&token, 0).await;
    let session = tab.next_event("session").await;
    assert_eq!(session["messages"].as_array().map(Vec::len), Some(4));
    let ack = tab
        .emit_with_ack(
            "message",
            json!({"clientMessageId": "m4", "body": "message 4"}),
        )
        .await;
    assert!(ack["ok"].is_object());
    assert_eq!(wait_for_bodies(&app, &channel, 5).await, expected(5));
    assert_eq!(app.channels().await.len(), 1);
    assert_eq!(app.store.outbox().depth().await.expect("depth"), 0);
}

async fn a_conversation_whose_flex_channel_vanished_is_closed_at_restart_and_the_customer_starts_anew(
    backend: BackendKind,
) {
    let mut app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    send_all(&mut ada.socket, 0..1).await;
    let first_conversation = app.conversation_of(&ada.id).await;
    app.channel_of(&ada.id).await;
    let token = ada.token.clone();
    drop(ada);

    // Flex forgets everything (like `flexbridge dev` started again with an
    // old database); provisioning runs again, then the bridge restarts.
    app.emulator_post("/_emulator/reset", json!({})).await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], app.settings.port));
    let reprovisioned = flexbridge::dev::bridge_settings(
        &app.emulator,
        addr,
        &app.settings.database_url,
        flexbridge::dev::DevFlex {
            backend,
            ..Default::default()
        },
    )
    .await
    .expect("provisioning again");
    app.settings.flex = reprovisioned.flex;
    app.crash_and_restart().await;

    eventually("the old conversation is closed", || async {
        app.conversation_of(&first_conversation.customer_id)
            .await
            .state
            == flexbridge::core::conversation::ConversationState::Closed
    })
    .await;
    let mut tab = app.tab(&token, 1).await;
    let session = tab.next_event("session").await;
    assert_eq!(session["conversation"]["state"], json!("closed"));
    send_all(&mut tab, 1..2).await;
    let channel = app.channel_of(&first_conversation.customer_id).await;
    assert_eq!(wait_for_bodies(&app, &channel, 1).await, ["message 1"]);
    assert_ne!(
        app.conversation_of(&first_conversation.customer_id)
            .await
            .id,
        first_conversation.id
    );
}
