//! The signed webhook routes: signatures, duplicates, malformed input —
//! the same checks on `/webhooks/chat` and `/webhooks/conversations`.

use std::time::Duration;

use flexbridge::core::ids::Seq;
use flexbridge::core::model::Direction;
use flexbridge::flex::BackendKind;
use serde_json::json;

use crate::{TestApp, eventually, on_both_backends, spawn_app};

const IM: &str = "IM00000000000000000000000000000001";

on_both_backends!(
    a_webhook_with_a_missing_or_invalid_signature_is_rejected_with_403_and_nothing_is_delivered,
    the_same_webhook_delivered_three_times_is_stored_and_delivered_once,
    an_agent_message_the_emulator_sends_three_times_reaches_the_customer_once,
    a_signed_webhook_for_an_unknown_channel_is_acknowledged_and_ignored,
    a_signed_but_malformed_webhook_is_refused_with_400,
    an_oversized_webhook_is_refused_before_anything_else,
);

async fn agent_messages(app: &TestApp, customer: &flexbridge::core::ids::CustomerId) -> usize {
    app.store
        .messages()
        .since(customer, Seq(0), 500)
        .await
        .expect("messages")
        .iter()
        .filter(|m| m.direction == Direction::Agent)
        .count()
}

async fn a_webhook_with_a_missing_or_invalid_signature_is_rejected_with_403_and_nothing_is_delivered(
    backend: BackendKind,
) {
    let app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    ada.socket
        .emit_with_ack("message", json!({"clientMessageId": "m1", "body": "hello"}))
        .await;
    let channel = app.channel_of(&ada.id).await;
    let params = app.agent_message_form(&channel, IM, "Hello from the agent");
    let forged = app.sign_for(&app.url, "not-the-auth-token", &params);
    let host_url = app.url.replace("127.0.0.1", "localhost");
    let over_host = app.sign_for(&host_url, &app.auth_token, &params);

    let missing = app.post_webhook(&params, None).await;
    let wrong_key = app.post_webhook(&params, Some(&forged)).await;
    let wrong_url = app.post_webhook(&params, Some(&over_host)).await;

    assert_eq!(missing, 403);
    assert_eq!(wrong_key, 403);
    assert_eq!(wrong_url, 403);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(agent_messages(&app, &ada.id).await, 0);
    assert!(
        ada.socket
            .drain_events()
            .iter()
            .all(|(name, data)| name != "message" || data["direction"] != json!("agent")),
        "a forged message reached the customer"
    );

    // The same webhook, signed by the account's token over the public URL, is accepted.
    let signature = app.sign(&params);
    assert_eq!(app.post_webhook(&params, Some(&signature)).await, 200);
    assert_eq!(agent_messages(&app, &ada.id).await, 1);
    let delivered = ada
        .socket
        .next_event_where("message", |m| m["direction"] == json!("agent"))
        .await;
    assert_eq!(delivered["body"], json!("Hello from the agent"));
}

async fn the_same_webhook_delivered_three_times_is_stored_and_delivered_once(backend: BackendKind) {
    let app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    ada.socket
        .emit_with_ack("message", json!({"clientMessageId": "m1", "body": "hello"}))
        .await;
    let channel = app.channel_of(&ada.id).await;
    let params = app.agent_message_form(&channel, IM, "Hello from the agent");
    let signature = app.sign(&params);

    for _ in 0..3 {
        assert_eq!(app.post_webhook(&params, Some(&signature)).await, 200);
    }

    assert_eq!(agent_messages(&app, &ada.id).await, 1);
    ada.socket
        .next_event_where("message", |m| m["direction"] == json!("agent"))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let more: Vec<_> = ada
        .socket
        .drain_events()
        .into_iter()
        .filter(|(name, data)| name == "message" && data["direction"] == json!("agent"))
        .collect();
    assert!(more.is_empty(), "delivered again: {more:?}");
}

async fn an_agent_message_the_emulator_sends_three_times_reaches_the_customer_once(
    backend: BackendKind,
) {
    let app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    ada.socket
        .emit_with_ack("message", json!({"clientMessageId": "m1", "body": "hello"}))
        .await;
    let work = app.accept(None).await;
    let event = app.flavour().message_event;
    app.emulator_post(
        "/_emulator/faults/webhooks",
        json!({"kind": "duplicate", "event_type": event, "copies": 3, "count": 1}),
    )
    .await;

    app.agent_says(&work.agent, &work.task, "Hi Ada").await;

    let reply = ada
        .socket
        .next_event_where("message", |m| m["direction"] == json!("agent"))
        .await;
    assert_eq!(reply["body"], json!("Hi Ada"));
    eventually("the emulator sent all three copies", || async {
        let log = app.emulator_get("/_emulator/webhooks").await;
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["event_type"] == json!(event) && d["params"]["Source"] == json!("SDK"))
            .count()
            >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(agent_messages(&app, &ada.id).await, 1);
    let again = ada
        .socket
        .drain_events()
        .into_iter()
        .filter(|(name, data)| name == "message" && data["body"] == json!("Hi Ada"))
        .count();
    assert_eq!(again, 0, "the reply arrived more than once");
}

async fn a_signed_webhook_for_an_unknown_channel_is_acknowledged_and_ignored(backend: BackendKind) {
    let app = spawn_app(backend).await;
    let params = app.agent_message_form("CH000000000000000000000000000000ff", IM, "Hi");
    let signature = app.sign(&params);
    assert_eq!(app.post_webhook(&params, Some(&signature)).await, 200);
}

async fn a_signed_but_malformed_webhook_is_refused_with_400(backend: BackendKind) {
    let app = spawn_app(backend).await;
    let params = app.agent_message_form("undefined", IM, "Hi");
    let signature = app.sign(&params);
    assert_eq!(app.post_webhook(&params, Some(&signature)).await, 400);
}

async fn an_oversized_webhook_is_refused_before_anything_else(backend: BackendKind) {
    let app = spawn_app(backend).await;
    let params = [("Body".to_owned(), "x".repeat(70 * 1024))];
    let status = app.post_webhook(&params, Some("anything")).await;
    assert_eq!(status, 413);
}
