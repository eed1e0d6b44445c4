//! Customers, agents and conversations, end to end through the emulator,
//! on both backends.

use std::time::Duration;

use flexbridge::core::conversation::ConversationState;
use flexbridge::flex::BackendKind;
use serde_json::{Value, json};

use crate::{SioClient, TestApp, eventually, on_both_backends, say, spawn_app};

crate::on_both_databases!(
    a_wrong_token_is_refused_and_a_right_one_resumes_the_customer,
    an_anonymous_socket_can_neither_send_nor_read,
    customers_see_the_agents_chat_name_rather_than_their_identity,
);

on_both_backends!(
    two_customers_chat_at_once_and_each_sees_only_their_own_agents_replies,
    two_tabs_of_one_customer_share_one_flex_channel_and_see_each_others_messages,
    an_agent_reply_reaches_a_customer_who_reconnects_later,
    when_the_agent_ends_the_chat_the_customer_is_told_and_the_next_message_opens_a_new_channel_and_task,
    closing_from_the_bridge_ends_the_chat_in_flex_and_the_conversation,
    after_a_restart_at_a_new_address_the_bridge_repoints_the_webhooks_and_catches_up,
    a_chat_the_agent_ended_while_the_bridge_was_down_is_ended_at_restart,
);

fn is_agent_message(message: &Value) -> bool {
    message["direction"] == json!("agent")
}

async fn two_customers_chat_at_once_and_each_sees_only_their_own_agents_replies(
    backend: BackendKind,
) {
    let app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    let mut bob = app.customer("Bob").await;
    say(&mut ada.socket, "a1", "I am Ada").await;
    say(&mut bob.socket, "b1", "I am Bob").await;
    let ada_channel = app.channel_of(&ada.id).await;
    let bob_channel = app.channel_of(&bob.id).await;
    assert_ne!(ada_channel, bob_channel);

    // Each agent answers on the channel they were given, naming it.
    for agent in ["alice", "bob"] {
        let work = app.accept(Some(agent)).await;
        let reply = format!("reply on {}", work.channel);
        app.agent_says(agent, &work.task, &reply).await;
    }

    let to_ada = ada
        .socket
        .next_event_where("message", is_agent_message)
        .await;
    let to_bob = bob
        .socket
        .next_event_where("message", is_agent_message)
        .await;
    assert_eq!(to_ada["body"], json!(format!("reply on {ada_channel}")));
    assert_eq!(to_bob["body"], json!(format!("reply on {bob_channel}")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for customer in [&mut ada, &mut bob] {
        let extra: Vec<_> = customer
            .socket
            .drain_events()
            .into_iter()
            .filter(|(name, data)| name == "message" && is_agent_message(data))
            .collect();
        assert!(extra.is_empty(), "someone else's reply arrived: {extra:?}");
    }
}

async fn two_tabs_of_one_customer_share_one_flex_channel_and_see_each_others_messages(
    backend: BackendKind,
) {
    let app = spawn_app(backend).await;
    let mut first = app.customer("Ada").await;
    let mut second = app.tab(&first.token, 0).await;
    second.next_event("session").await;

    let a = say(&mut first.socket, "t1", "from the first tab").await;
    let b = say(&mut second, "t2", "from the second tab").await;

    assert_eq!(a["conversationId"], b["conversationId"]);
    let seen = second
        .next_event_where("message", |m| m["clientMessageId"] == json!("t1"))
        .await;
    assert_eq!(seen["body"], json!("from the first tab"));
    let seen = first
        .socket
        .next_event_where("message", |m| m["clientMessageId"] == json!("t2"))
        .await;
    assert_eq!(seen["body"], json!("from the second tab"));
    app.channel_of(&first.id).await;
    eventually("both messages are in Flex", || async {
        app.channels()
            .await
            .iter()
            .map(|c| TestApp::customer_bodies(c).len())
            .sum::<usize>()
            == 2
    })
    .await;
    assert_eq!(app.channels().await.len(), 1);
}

async fn an_agent_reply_reaches_a_customer_who_reconnects_later(backend: BackendKind) {
    let app = spawn_app(backend).await;
    let ada = app.customer("Ada").await;
    let mut socket = ada.socket;
    let ack = say(&mut socket, "m1", "anyone there?").await;
    let seen = ack["seq"].as_i64().expect("seq");
    let work = app.accept(None).await;
    drop(socket);

    app.agent_says(&work.agent, &work.task, "Yes, I am here")
        .await;
    eventually("the reply is stored", || async {
        app.store
            .messages()
            .since(&ada.id, flexbridge::core::ids::Seq(seen), 10)
            .await
            .is_ok_and(|messages| messages.iter().any(|m| m.body == "Yes, I am here"))
    })
    .await;

    let mut back = app.tab(&ada.token, seen).await;
    let session = back.next_event("session").await;
    let replayed: Vec<&str> = session["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(replayed, ["Yes, I am here"]);
    assert_eq!(session["conversation"]["agent"]["name"], json!(work.agent));
}

async fn when_the_agent_ends_the_chat_the_customer_is_told_and_the_next_message_opens_a_new_channel_and_task(
    backend: BackendKind,
) {
    let app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    let first = say(&mut ada.socket, "m1", "hello").await;
    let work = app.accept(None).await;
    let joined = ada.socket.next_event("agent:joined").await;
    assert_eq!(joined["agentName"], json!(work.agent));

    app.agent_ends(&work.agent, &work.task).await;

    let ended = ada.socket.next_event("chat:ended").await;
    assert_eq!(ended["conversationId"], first["conversationId"]);
    assert_eq!(ended["reason"], json!("agent_ended"));
    assert_eq!(
        app.conversation_of(&ada.id).await.state,
        ConversationState::Closed
    );

    let second = say(&mut ada.socket, "m2", "one more question").await;
    assert_ne!(second["conversationId"], first["conversationId"]);
    let new_channel = app.channel_of(&ada.id).await;
    assert_ne!(new_channel, work.channel);
    eventually("a second task exists", || async {
        app.state().await["tasks"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    if backend == BackendKind::Conversations {
        let interactions = app.state().await["interactions"].clone();
        assert_eq!(
            interactions.as_array().map(Vec::len),
            Some(2),
            "{interactions}"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ended_again = ada
        .socket
        .drain_events()
        .into_iter()
        .filter(|(name, _)| name == "chat:ended")
        .count();
    assert_eq!(ended_again, 0, "chat:ended was sent more than once");
}

async fn a_wrong_token_is_refused_and_a_right_one_resumes_the_customer() {
    let app = spawn_app(BackendKind::Conversations).await;
    let ada = app.customer("Ada").await;

    let wrong = SioClient::connect(&app.url, json!({"token": "A".repeat(43)})).await;
    let garbage = SioClient::connect(&app.url, json!({"token": "x"})).await;
    let bad_cursor = SioClient::connect(&app.url, json!({"token": ada.token, "lastSeq": -1})).await;

    assert_eq!(wrong.err().as_deref(), Some("invalid_token"));
    assert_eq!(garbage.err().as_deref(), Some("invalid_token"));
    assert_eq!(bad_cursor.err().as_deref(), Some("invalid_auth"));
    let mut right = app.tab(&ada.token, 0).await;
    let session = right.next_event("session").await;
    assert_eq!(session["customer"]["id"], json!(ada.id.to_string()));
}

async fn an_anonymous_socket_can_neither_send_nor_read() {
    let app = spawn_app(BackendKind::Conversations).await;
    let mut anonymous = SioClient::connect(&app.url, json!({}))
        .await
        .expect("connects");

    let send = anonymous
        .emit_with_ack("message", json!({"clientMessageId": "x", "body": "hi"}))
        .await;
    let read = anonymous.emit_with_ack("history", json!({})).await;

    assert_eq!(send["error"]["code"], json!("not_registered"));
    assert_eq!(read["error"]["code"], json!("not_registered"));
}

/// The bridge's own backend for `app` (as `Application` builds it).
fn backend_of(app: &TestApp) -> Box<dyn flexbridge::core::backend::FlexBackend> {
    use flexbridge::flex::chat::ChatBackend;
    use flexbridge::flex::conversations::ConversationsBackend;

    let flex = &app.settings.flex;
    let client = flexbridge::startup::twilio_client(&app.settings.twilio).expect("client");
    let public = url::Url::parse(&app.url).expect("url");
    match app.backend {
        BackendKind::Chat => Box::new(
            ChatBackend::new(
                client,
                flex.flex_flow_sid.clone(),
                flex.chat_service_sid.clone(),
                &public,
            )
            .expect("backend"),
        ),
        BackendKind::Conversations => Box::new(
            ConversationsBackend::new(
                client,
                flex.chat_service_sid.clone(),
                &public,
                flex.routing.clone(),
                flex.timers.clone(),
            )
            .expect("backend"),
        ),
    }
}

async fn closing_from_the_bridge_ends_the_chat_in_flex_and_the_conversation(backend: BackendKind) {
    let app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    say(&mut ada.socket, "m1", "hello").await;
    let channel = app.channel_of(&ada.id).await;
    let work = app.accept(None).await;
    let conversation = app.conversation_of(&ada.id).await;
    let sid = conversation.flex_channel.expect("a channel");

    backend_of(&app)
        .close(&sid, conversation.flex_ref.as_ref())
        .await
        .expect("closed");

    ada.socket.next_event("chat:ended").await;
    assert_eq!(
        app.conversation_of(&ada.id).await.state,
        ConversationState::Closed
    );
    let flex_side = app.channel(&channel).await;
    match backend {
        BackendKind::Chat => {
            let attributes: Value =
                serde_json::from_str(flex_side["attributes"].as_str().expect("a JSON string"))
                    .expect("JSON");
            assert_eq!(attributes["status"], json!("INACTIVE"));
        }
        BackendKind::Conversations => {
            assert_eq!(flex_side["state"], json!("closed"));
            // Closed by closing the interaction channel (Reason=EVENT), not
            // by a REST update of the conversation (Reason=API).
            let log = app.emulator_get("/_emulator/webhooks").await;
            let reasons: Vec<_> = log
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["params"]["StateTo"] == json!("closed"))
                .map(|d| d["params"]["Reason"].clone())
                .collect();
            assert_eq!(reasons, [json!("EVENT")]);
            // Through the interaction: its channel closed, the task wraps up.
            let interaction = &app.state().await["interactions"][0];
            assert_eq!(
                interaction["channels"][0]["status"],
                json!("closed"),
                "{interaction}"
            );
            let task = app.state().await["tasks"]
                .as_array()
                .and_then(|tasks| tasks.iter().find(|t| t["sid"] == json!(work.task)).cloned())
                .expect("the task");
            assert_ne!(task["assignment_status"], json!("assigned"), "{task}");
        }
    }
    // Closing again is not an error.
    backend_of(&app)
        .close(&sid, conversation.flex_ref.as_ref())
        .await
        .expect("closing twice");
}

async fn after_a_restart_at_a_new_address_the_bridge_repoints_the_webhooks_and_catches_up(
    backend: BackendKind,
) {
    let mut app = spawn_app(backend).await;
    let ada = app.customer("Ada").await;
    let mut socket = ada.socket;
    say(&mut socket, "m1", "hello").await;
    app.channel_of(&ada.id).await;
    app.pending_work(None).await;
    drop(socket);
    app.crash().await;

    // The agent joins and writes while the bridge is down: the webhooks
    // find no one.
    let work = app.accept(None).await;
    app.agent_says(&work.agent, &work.task, "sorry for the wait")
        .await;
    wait_until_a_webhook_failed(&app, app.flavour().message_event).await;
    app.restart_elsewhere().await;

    // The caught-up reply comes in the session's replay when the bridge
    // re-synced before this tab connected, else live as a `message`.
    let mut back = app.tab(&ada.token, 1).await;
    let session = back.next_event("session").await;
    let replayed = session["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["body"] == json!("sorry for the wait"))
        .cloned();
    let caught_up = match replayed {
        Some(message) => message,
        None => {
            back.next_event_where("message", |m| m["body"] == json!("sorry for the wait"))
                .await
        }
    };
    assert_eq!(caught_up["direction"], json!("agent"));
    eventually("the agent who joined meanwhile is known", || async {
        app.conversation_of(&ada.id).await.agent_name.as_deref() == Some(work.agent.as_str())
    })
    .await;
    let channel = app.channel(&work.channel).await;
    let ours = app.bridge_webhook_urls(&channel);
    assert_eq!(ours.len(), app.flavour().bridge_webhooks, "{ours:?}");
    assert!(ours.iter().all(|url| url.starts_with(&app.url)), "{ours:?}");

    app.agent_says(&work.agent, &work.task, "welcome back")
        .await;
    let live = back
        .next_event_where("message", |m| m["body"] == json!("welcome back"))
        .await;
    assert_eq!(live["direction"], json!("agent"));
}

/// Waits until the emulator failed to deliver an `event_type` webhook
/// (the bridge is down).
async fn wait_until_a_webhook_failed(app: &TestApp, event_type: &str) {
    eventually("the emulator gave up on the webhook", || async {
        app.emulator_get("/_emulator/webhooks")
            .await
            .as_array()
            .is_some_and(|log| {
                log.iter()
                    .any(|d| d["event_type"] == json!(event_type) && !d["error"].is_null())
            })
    })
    .await;
}

async fn a_chat_the_agent_ended_while_the_bridge_was_down_is_ended_at_restart(
    backend: BackendKind,
) {
    let mut app = spawn_app(backend).await;
    let ada = app.customer("Ada").await;
    let mut socket = ada.socket;
    say(&mut socket, "m1", "hello").await;
    app.channel_of(&ada.id).await;
    let work = app.accept(None).await;
    drop(socket);
    app.crash().await;

    app.agent_says(&work.agent, &work.task, "bye now").await;
    app.agent_ends(&work.agent, &work.task).await;
    let ended = match backend {
        BackendKind::Chat => "onChannelUpdated",
        BackendKind::Conversations => "onConversationStateUpdated",
    };
    wait_until_a_webhook_failed(&app, ended).await;
    app.restart_elsewhere().await;

    eventually("the conversation is closed", || async {
        app.conversation_of(&ada.id).await.state == ConversationState::Closed
    })
    .await;
    let mut back = app.tab(&ada.token, 1).await;
    let session = back.next_event("session").await;
    assert_eq!(session["conversation"]["state"], json!("closed"));
    let bodies: Vec<_> = session["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(bodies, ["bye now"]);
    say(&mut back, "m2", "one more thing").await;
    let next = crate::wait_for("a new conversation opens", || async {
        app.conversation_of(&ada.id)
            .await
            .flex_channel
            .filter(|sid| sid.as_str() != work.channel)
    })
    .await;
    assert_ne!(next.as_str(), work.channel);
}

/// Chat only: the emulator serves Chat users, not Conversations users
/// (the Conversations backend asks `/v1/Services/{IS}/Users/{identity}`
/// and falls back to the identity).
async fn customers_see_the_agents_chat_name_rather_than_their_identity() {
    let app = spawn_app(BackendKind::Chat).await;
    let identity = "carol_40example_2Ecom";
    let service = app.settings.flex.chat_service_sid.to_string();
    let twilio = &app.settings.twilio;
    let created = app
        .http
        .post(format!("{}/v2/Services/{service}/Users", app.emulator_url))
        .basic_auth(twilio.account_sid.as_str(), Some(&app.auth_token))
        .form(&[("Identity", identity), ("FriendlyName", "Carol Example")])
        .send()
        .await
        .expect("the emulator answers");
    assert_eq!(created.status(), 201);
    let backend = backend_of(&app);

    assert_eq!(backend.agent_name(identity).await, "Carol Example");
    assert_eq!(backend.agent_name("nobody_known").await, "nobody_known");
}
