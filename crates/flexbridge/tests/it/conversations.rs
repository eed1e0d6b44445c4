//! Customers, agents and conversations, end to end through the emulator.

use std::time::Duration;

use flexbridge::core::conversation::ConversationState;
use serde_json::{Value, json};

use crate::{SioClient, TestApp, eventually, spawn_app};

fn is_agent_message(message: &Value) -> bool {
    message["direction"] == json!("agent")
}

async fn say(socket: &mut SioClient, id: &str, body: &str) -> Value {
    let ack = socket
        .emit_with_ack("message", json!({"clientMessageId": id, "body": body}))
        .await;
    assert!(ack["ok"].is_object(), "{ack}");
    ack["ok"].clone()
}

#[tokio::test]
async fn two_customers_chat_at_once_and_each_sees_only_their_own_agents_replies() {
    let app = spawn_app().await;
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

#[tokio::test]
async fn two_tabs_of_one_customer_share_one_flex_channel_and_see_each_others_messages() {
    let app = spawn_app().await;
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

#[tokio::test]
async fn an_agent_reply_reaches_a_customer_who_reconnects_later() {
    let app = spawn_app().await;
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
            .messages_since(&ada.id, flexbridge::core::ids::Seq(seen), 10)
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

#[tokio::test]
async fn when_the_agent_ends_the_chat_the_customer_is_told_and_the_next_message_opens_a_new_channel_and_task()
 {
    let app = spawn_app().await;
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ended_again = ada
        .socket
        .drain_events()
        .into_iter()
        .filter(|(name, _)| name == "chat:ended")
        .count();
    assert_eq!(ended_again, 0, "chat:ended was sent more than once");
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_a_right_one_resumes_the_customer() {
    let app = spawn_app().await;
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

#[tokio::test]
async fn an_anonymous_socket_can_neither_send_nor_read() {
    let app = spawn_app().await;
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

#[tokio::test]
async fn closing_from_the_bridge_marks_the_flex_channel_inactive_and_ends_the_conversation() {
    use flexbridge::core::ids::ChannelSid;
    use flexbridge::flex::FlexBackend as _;
    use flexbridge::flex::chat::ChatBackend;

    let app = spawn_app().await;
    let mut ada = app.customer("Ada").await;
    say(&mut ada.socket, "m1", "hello").await;
    let channel = app.channel_of(&ada.id).await;
    let twilio = &app.settings.twilio;
    let client = twilio.client().expect("client");
    let backend = ChatBackend::new(
        client,
        app.settings.flex_flow_sid.clone(),
        app.settings.chat_service_sid.clone(),
        &url::Url::parse(&app.url).expect("url"),
    )
    .expect("backend");

    backend
        .close(&ChannelSid::parse(&channel).expect("CH"))
        .await
        .expect("closed");

    let attributes = app.channel(&channel).await["attributes"].clone();
    let attributes: Value =
        serde_json::from_str(attributes.as_str().expect("a JSON string")).expect("JSON");
    assert_eq!(attributes["status"], json!("INACTIVE"));
    ada.socket.next_event("chat:ended").await;
    assert_eq!(
        app.conversation_of(&ada.id).await.state,
        ConversationState::Closed
    );
}

#[tokio::test]
async fn after_a_restart_at_a_new_address_the_bridge_repoints_the_webhooks_and_catches_up() {
    let mut app = spawn_app().await;
    let ada = app.customer("Ada").await;
    let mut socket = ada.socket;
    say(&mut socket, "m1", "hello").await;
    let work = app.accept(None).await;
    drop(socket);
    app.crash().await;

    // The agent writes while the bridge is down: the webhook finds no one.
    app.agent_says(&work.agent, &work.task, "sorry for the wait")
        .await;
    eventually("the emulator gave up on the webhook", || async {
        app.emulator_get("/_emulator/webhooks")
            .await
            .as_array()
            .is_some_and(|log| {
                log.iter().any(|d| {
                    d["event_type"] == json!("onMessageSent")
                        && d["params"]["Source"] == json!("SDK")
                        && !d["error"].is_null()
                })
            })
    })
    .await;
    app.restart_elsewhere().await;

    let mut back = app.tab(&ada.token, 1).await;
    let caught_up = back
        .next_event_where("message", |m| m["body"] == json!("sorry for the wait"))
        .await;
    assert_eq!(caught_up["direction"], json!("agent"));
    let hooks = app.channel(&work.channel).await["webhooks"].clone();
    let ours: Vec<_> = hooks
        .as_array()
        .expect("webhooks")
        .iter()
        .filter_map(|w| w["configuration"]["url"].as_str())
        .filter(|url| url.ends_with("/webhooks/chat"))
        .collect();
    assert_eq!(ours.len(), 2, "{hooks}");
    assert!(ours.iter().all(|url| url.starts_with(&app.url)), "{hooks}");

    app.agent_says(&work.agent, &work.task, "welcome back")
        .await;
    let live = back
        .next_event_where("message", |m| m["body"] == json!("welcome back"))
        .await;
    assert_eq!(live["direction"], json!("agent"));
}

#[tokio::test]
async fn customers_see_the_agents_chat_name_rather_than_their_identity() {
    use flexbridge::flex::FlexBackend as _;
    use flexbridge::flex::chat::ChatBackend;

    let app = spawn_app().await;
    let identity = "carol_40example_2Ecom";
    let service = app.settings.chat_service_sid.to_string();
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
    let backend = ChatBackend::new(
        twilio.client().expect("client"),
        app.settings.flex_flow_sid.clone(),
        app.settings.chat_service_sid.clone(),
        &url::Url::parse(&app.url).expect("url"),
    )
    .expect("backend");

    assert_eq!(backend.agent_name(identity).await, "Carol Example");
    assert_eq!(backend.agent_name("nobody_known").await, "nobody_known");
}
