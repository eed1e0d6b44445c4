//! The customer ends the chat (`chat:end`): closed in the bridge at once,
//! in Flex after the messages sent before it (in order), once, through
//! faults — on both backends.

use std::time::Duration;

use flexbridge::core::conversation::ConversationState;
use flexbridge::flex::BackendKind;
use serde_json::{Value, json};

use crate::{SioClient, TestApp, eventually, on_both_backends, say, spawn_app};

crate::on_both_databases!(ending_without_an_open_chat_is_an_ok_no_op_and_anonymous_sockets_cannot,);

on_both_backends!(
    when_the_customer_ends_the_chat_flex_gets_the_pending_messages_then_the_end_and_the_next_message_opens_a_new_channel_and_task,
    a_chat_ended_before_flex_had_it_still_delivers_its_messages_then_closes,
    a_close_that_flex_answers_500_and_429_for_a_while_lands_exactly_once,
);

/// Asks to end the chat; returns the ack's `ok`.
async fn end_chat(socket: &mut SioClient) -> Value {
    let ack = socket.emit_with_ack("chat:end", json!({})).await;
    assert!(ack["ok"].is_object(), "{ack}");
    ack["ok"].clone()
}

/// Whether Flex has ended the channel (Chat: attributes `status`
/// `INACTIVE`; Conversations: state `closed`).
fn ended_in_flex(backend: BackendKind, channel: &Value) -> bool {
    match backend {
        BackendKind::Chat => channel["attributes"]
            .as_str()
            .and_then(|a| serde_json::from_str::<Value>(a).ok())
            .is_some_and(|a| a["status"] == json!("INACTIVE")),
        BackendKind::Conversations => channel["state"] == json!("closed"),
    }
}

/// The status of task `sid` in the emulator.
async fn task_status(app: &TestApp, sid: &str) -> Value {
    app.state().await["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|t| t["sid"] == json!(sid)).cloned())
        .map(|task| task["assignment_status"].clone())
        .unwrap_or(Value::Null)
}

/// The webhooks Flex delivered to the bridge that say `channel` ended,
/// grouped by the webhook they went to: how many each got.
async fn end_webhooks(app: &TestApp, channel: &str) -> Vec<usize> {
    let log = app.emulator_get("/_emulator/webhooks").await;
    let mut per_webhook = std::collections::BTreeMap::<String, usize>::new();
    for delivery in log.as_array().into_iter().flatten() {
        let params = &delivery["params"];
        let is_end = match app.backend {
            BackendKind::Chat => {
                delivery["event_type"] == json!("onChannelUpdated")
                    && params["ChannelSid"] == json!(channel)
            }
            BackendKind::Conversations => {
                params["StateTo"] == json!("closed") && params["ConversationSid"] == json!(channel)
            }
        };
        let to_bridge = delivery["url"]
            .as_str()
            .is_some_and(|url| url.ends_with(app.flavour().webhook_path));
        if is_end && to_bridge && delivery["outcome"] == json!("delivered") {
            *per_webhook
                .entry(delivery["webhook_sid"].to_string())
                .or_default() += 1;
        }
    }
    per_webhook.into_values().collect()
}

/// How many `chat:ended` events `socket` got so far (after a pause for
/// late ones).
async fn chat_ended_count(socket: &mut SioClient) -> usize {
    tokio::time::sleep(Duration::from_millis(300)).await;
    socket
        .drain_events()
        .into_iter()
        .filter(|(name, _)| name == "chat:ended")
        .count()
}

async fn when_the_customer_ends_the_chat_flex_gets_the_pending_messages_then_the_end_and_the_next_message_opens_a_new_channel_and_task(
    backend: BackendKind,
) {
    let app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    let mut other_tab = app.tab(&ada.token, 0).await;
    other_tab.next_event("session").await;
    let first = say(&mut ada.socket, "m1", "hello").await;
    let channel = app.channel_of(&ada.id).await;
    let work = app.accept(None).await;
    ada.socket.next_event("agent:joined").await;
    // Flex fails the next sends for a while: they are still queued when
    // the customer ends the chat.
    app.fault(json!({"method": "POST", "path": app.flavour().messages_path, "kind": "error", "status": 500, "count": 3}))
        .await;
    say(&mut ada.socket, "m2", "one more thing").await;
    say(&mut ada.socket, "m3", "bye").await;

    let ended = end_chat(&mut ada.socket).await;

    assert_eq!(
        ended,
        json!({"ended": true, "conversationId": first["conversationId"]})
    );
    // Closed in the bridge at once, every tab told, with the customer's reason.
    assert_eq!(
        app.conversation_of(&ada.id).await.state,
        ConversationState::Closed
    );
    for tab in [&mut ada.socket, &mut other_tab] {
        let event = tab.next_event("chat:ended").await;
        assert_eq!(
            event,
            json!({"conversationId": first["conversationId"], "reason": "customer_ended", "endedBy": null})
        );
        let conversation = tab
            .next_event_where("conversation", |c| c["state"] == json!("closed"))
            .await;
        assert_eq!(conversation["id"], first["conversationId"]);
    }
    // In Flex: every message first, in order, then the end; the task wraps.
    eventually("Flex ended the chat", || async {
        ended_in_flex(backend, &app.channel(&channel).await)
    })
    .await;
    assert_eq!(
        TestApp::customer_bodies(&app.channel(&channel).await),
        ["hello", "one more thing", "bye"]
    );
    let status = task_status(&app, &work.task).await;
    assert!(
        status == json!("wrapping") || status == json!("completed"),
        "task {status}"
    );
    // Flex's own end comes back as a webhook; nobody is told twice.
    eventually("Flex's end reached the bridge", || async {
        !end_webhooks(&app, &channel).await.is_empty()
    })
    .await;
    assert_eq!(chat_ended_count(&mut ada.socket).await, 0);
    assert_eq!(chat_ended_count(&mut other_tab).await, 0);

    let second = say(&mut ada.socket, "m4", "actually, one more question").await;

    assert_ne!(second["conversationId"], first["conversationId"]);
    let new_channel = app.channel_of(&ada.id).await;
    assert_ne!(new_channel, channel);
    eventually("a second task exists", || async {
        app.state().await["tasks"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    eventually("the new message is in the new channel", || async {
        TestApp::customer_bodies(&app.channel(&new_channel).await)
            == ["actually, one more question"]
    })
    .await;
    assert!(!ended_in_flex(backend, &app.channel(&new_channel).await));
    // Nothing to end twice: a second `chat:end` of the old one is not needed,
    // and the old channel got nothing more.
    assert_eq!(
        TestApp::customer_bodies(&app.channel(&channel).await).len(),
        3
    );
}

async fn a_chat_ended_before_flex_had_it_still_delivers_its_messages_then_closes(
    backend: BackendKind,
) {
    let app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    app.fault(json!({"method": "POST", "path": app.flavour().open_path, "kind": "error", "status": 503, "count": 2}))
        .await;
    say(&mut ada.socket, "m1", "hello").await;
    say(&mut ada.socket, "m2", "anyone there?").await;

    let ended = end_chat(&mut ada.socket).await;

    assert_eq!(ended["ended"], json!(true));
    ada.socket.next_event("chat:ended").await;
    let channel = app.channel_of(&ada.id).await;
    eventually("Flex ended the chat", || async {
        ended_in_flex(backend, &app.channel(&channel).await)
    })
    .await;
    assert_eq!(
        TestApp::customer_bodies(&app.channel(&channel).await),
        ["hello", "anyone there?"]
    );
    for seq_id in ["m1", "m2"] {
        let delivery = ada
            .socket
            .next_event_where("delivery", |d| d["clientMessageId"] == json!(seq_id))
            .await;
        assert_eq!(delivery["status"], json!("delivered"));
    }
    // The bridge never told the customer it was open: it ended first.
    let events = ada.socket.drain_events();
    assert!(
        !events
            .iter()
            .any(|(name, c)| name == "conversation" && c["state"] == json!("open")),
        "{events:?}"
    );
    // No agent took it: its task is canceled, not left waiting.
    eventually("the task is settled", || async {
        let tasks = app.state().await["tasks"].clone();
        tasks.as_array().is_some_and(|tasks| {
            tasks.len() == 1 && tasks[0]["assignment_status"] == json!("canceled")
        })
    })
    .await;
    // Flex shows the task canceled when it answers the close; the bridge
    // settles the job when that answer reaches it, a moment later.
    eventually("the outbox is empty", || async {
        app.store.outbox().depth().await.expect("depth") == 0
    })
    .await;
}

async fn a_close_that_flex_answers_500_and_429_for_a_while_lands_exactly_once(
    backend: BackendKind,
) {
    let app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    say(&mut ada.socket, "m1", "hello").await;
    let channel = app.channel_of(&ada.id).await;
    let work = app.accept(None).await;
    let close_path = match backend {
        BackendKind::Chat => "/v2/Services/*/Channels/*",
        BackendKind::Conversations => "/v1/Interactions/*/Channels/*",
    };
    app.fault(
        json!({"method": "POST", "path": close_path, "kind": "error", "status": 500, "count": 2}),
    )
    .await;
    app.fault(json!({"method": "POST", "path": close_path, "kind": "rate_limit", "retry_after": 1, "count": 1}))
        .await;

    end_chat(&mut ada.socket).await;
    // The customer writes again at once: a new conversation, which opens
    // in Flex only after the old one's close (Chat would otherwise hand
    // the still-active channel back, and the close would end it).
    let again = say(&mut ada.socket, "m2", "one more question").await;

    ada.socket.next_event("chat:ended").await;
    eventually("Flex ended the chat", || async {
        ended_in_flex(backend, &app.channel(&channel).await)
    })
    .await;
    let new_channel = app.channel_of(&ada.id).await;
    assert_ne!(new_channel, channel);
    assert_eq!(
        app.conversation_of(&ada.id).await.id.to_string(),
        again["conversationId"].as_str().expect("an id")
    );
    eventually("the new message is in the new channel", || async {
        TestApp::customer_bodies(&app.channel(&new_channel).await) == ["one more question"]
    })
    .await;
    assert!(!ended_in_flex(backend, &app.channel(&new_channel).await));
    let faults = app.emulator_get("/_emulator/faults").await;
    assert_eq!(faults["http"], json!([]), "every fault fired");
    eventually("Flex's end reached the bridge", || async {
        !end_webhooks(&app, &channel).await.is_empty()
    })
    .await;
    assert_eq!(app.store.outbox().depth().await.expect("depth"), 0);
    // Anything repeated would arrive right behind; give it the chance.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_webhook = end_webhooks(&app, &channel).await;
    assert!(per_webhook.iter().all(|&n| n == 1), "{per_webhook:?}");
    let status = task_status(&app, &work.task).await;
    assert!(
        status == json!("wrapping") || status == json!("completed"),
        "task {status}"
    );
    assert_eq!(chat_ended_count(&mut ada.socket).await, 0);
}

async fn ending_without_an_open_chat_is_an_ok_no_op_and_anonymous_sockets_cannot() {
    let app = spawn_app(BackendKind::Conversations).await;
    let mut ada = app.customer("Ada").await;

    let nothing = end_chat(&mut ada.socket).await;

    assert_eq!(nothing, json!({"ended": false, "conversationId": null}));
    say(&mut ada.socket, "m1", "hello").await;
    assert_eq!(end_chat(&mut ada.socket).await["ended"], json!(true));
    assert_eq!(
        end_chat(&mut ada.socket).await,
        json!({"ended": false, "conversationId": null})
    );
    ada.socket.next_event("chat:ended").await;
    assert_eq!(chat_ended_count(&mut ada.socket).await, 0);
    let mut anonymous = SioClient::connect(&app.url, json!({}))
        .await
        .expect("connects");
    let refused = anonymous.emit_with_ack("chat:end", json!({})).await;
    assert_eq!(refused["error"]["code"], json!("not_registered"));
    let bad = ada.socket.emit_with_ack("chat:end", json!("now")).await;
    assert_eq!(bad["error"]["code"], json!("invalid_payload"));
}
