//! Agents on Flex Conversations, through the same control API as on Chat:
//! an interaction's task is reserved, accepted (the agent joins the
//! conversation and the interaction channel), answered (SDK messages) and
//! ended (the interaction channel and the conversation close, the task wraps
//! up), every step reaching the scoped webhook signed like Twilio's.

mod common;

use common::events::EventStream;
use common::{Receiver, TestEmulator, attributes, signed_with};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn an_agent_accepts_answers_and_ends_a_routed_conversation_and_every_step_is_signed() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let token = emu.emulator.credentials().auth_token.clone();
    let (conversation, interaction, channel, task) =
        emu.routed_conversation(&receiver.url, "customer-ada").await;

    // The interaction made the task; it is reserved to alice.
    let reservation = emu.reservation_of(&task).await;
    assert_eq!(reservation["worker_name"], "alice");
    let view = emu.control(Method::GET, "/agents/alice", None).await.json;
    let item = &view["work"][0];
    assert_eq!(item["backend"], "conversations");
    assert_eq!(item["channel_sid"], conversation);
    assert_eq!(
        item["customer"],
        json!({"identity": "customer-ada", "name": "customer-ada"})
    );
    assert_eq!(item["messages"][0]["author"], "customer-ada");
    assert_eq!(item["messages"][0]["body"], "Hello?");

    // Accept: alice joins the conversation (an SDK action) and the interaction channel.
    let accepted = emu.accept(&task).await;
    assert_eq!(accepted.json["task"]["assignment_status"], "assigned");
    let joined = receiver
        .wait_for(|r| {
            r.param("EventType") == Some("onParticipantAdded")
                && r.param("Identity") == Some("alice")
        })
        .await;
    assert_eq!(joined.param("Source"), Some("SDK"));
    assert_eq!(joined.param("ClientIdentity"), Some("alice"));
    let participants = emu
        .get(&format!(
            "{}/Participants",
            emu.conversation_path(&conversation)
        ))
        .await;
    let identities: Vec<&Value> = participants.json["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["identity"])
        .collect();
    assert_eq!(identities, [&json!("customer-ada"), &json!("alice")]);
    let interaction_participants = emu
        .get(&format!(
            "/v1/Interactions/{interaction}/Channels/{channel}/Participants"
        ))
        .await;
    let listed = interaction_participants.json["participants"]
        .as_array()
        .unwrap();
    assert_eq!(listed[0]["type"], "customer");
    assert_eq!(listed[0]["routing_properties"], Value::Null);
    assert_eq!(listed[1]["type"], "agent");
    assert_eq!(
        listed[1]["routing_properties"],
        json!({
            "task_sid": task,
            "worker_sid": reservation["worker_sid"],
            "reservation_sid": reservation["sid"],
        })
    );

    // Alice writes: a conversation message by her, onMessageAdded with Source=SDK.
    let sent = emu
        .agent_writes("alice", &task, "Hi Ada, how can I help?")
        .await;
    assert_eq!(sent.status, 201, "{}", sent.json);
    assert_eq!(sent.json["message"]["author"], "alice");
    assert_eq!(sent.json["message"]["conversation_sid"], conversation);
    let reply = receiver
        .wait_for(|r| {
            r.param("EventType") == Some("onMessageAdded") && r.param("Source") == Some("SDK")
        })
        .await;
    assert_eq!(reply.param("Author"), Some("alice"));
    assert_eq!(reply.param("ClientIdentity"), Some("alice"));
    assert_eq!(reply.param("Body"), Some("Hi Ada, how can I help?"));
    assert_eq!(reply.param("Index"), Some("1"));
    assert_eq!(reply.param("ConversationSid"), Some(conversation.as_str()));
    assert!(signed_with(&reply, &token));
    let typing = emu
        .as_agent("alice", &format!("tasks/{task}/typing"), None)
        .await;
    assert_eq!(typing.status, 204);

    // Alice ends the chat: the channel and the conversation close, the task wraps up.
    let ended = emu
        .as_agent("alice", &format!("tasks/{task}/end"), None)
        .await;
    assert_eq!(ended.status, 200, "{}", ended.json);
    assert_eq!(ended.json["task"]["assignment_status"], "wrapping");
    let closed = receiver
        .wait_for(|r| r.param("EventType") == Some("onConversationStateUpdated"))
        .await;
    assert_eq!(closed.param("StateFrom"), Some("active"));
    assert_eq!(closed.param("StateTo"), Some("closed"));
    assert_eq!(closed.param("Reason"), Some("EVENT"));
    assert_eq!(closed.param("Source"), Some("SDK"));
    assert_eq!(closed.param("ClientIdentity"), Some("alice"));
    let fetched = emu
        .get(&format!(
            "/v1/Interactions/{interaction}/Channels/{channel}"
        ))
        .await;
    assert_eq!(fetched.json["status"], "closed");
    assert_eq!(
        emu.get(&emu.conversation_path(&conversation)).await.json["state"],
        "closed"
    );
    emu.task_reaches(&task, "completed").await;
    let state = emu.state().await;
    assert_eq!(state["agents"][0]["load"], 0);
    let again = emu.agent_writes("alice", &task, "late").await;
    again.twilio_error(409, 20409);

    let all = receiver.requests();
    assert!(
        all.iter().all(|r| signed_with(r, &token)),
        "every webhook is signed"
    );
}

#[tokio::test]
async fn the_state_dump_shows_conversations_and_interactions_and_a_reset_clears_them() {
    let emu = TestEmulator::start().await;
    let (conversation, interaction, channel, task) = emu
        .routed_conversation("http://127.0.0.1:9/hook", "customer-ada")
        .await;
    let state = emu.state().await;
    let dumped = &state["conversations"][0];
    assert_eq!(dumped["sid"], conversation);
    assert_eq!(dumped["participants"][0]["identity"], "customer-ada");
    assert_eq!(dumped["webhooks"][0]["target"], "webhook");
    assert_eq!(dumped["messages"][0]["body"], "Hello?");
    let routed = &state["interactions"][0];
    assert_eq!(routed["sid"], interaction);
    assert_eq!(routed["channels"][0]["sid"], channel);
    assert_eq!(routed["channels"][0]["conversation_sid"], conversation);
    assert_eq!(routed["channels"][0]["participants"][0]["type"], "customer");
    assert_eq!(routed["routing"]["properties"]["sid"], task);
    let attributes = attributes(&state["tasks"][0]);
    assert_eq!(attributes["conversationSid"], conversation);

    let reset = emu.control(Method::POST, "/reset", None).await;
    assert_eq!(reset.status, 200);
    let state = emu.state().await;
    assert_eq!(state["conversations"], json!([]));
    assert_eq!(state["interactions"], json!([]));
    assert_eq!(state["tasks"], json!([]));
    let again = emu.conversation(&[]).await;
    assert_eq!(again, conversation, "runtime SIDs start over");
}

#[tokio::test]
async fn the_event_stream_reports_conversation_and_interaction_changes() {
    let emu = TestEmulator::start().await;
    let mut events = EventStream::open(&emu).await;
    let (conversation, ..) = emu
        .routed_conversation("http://127.0.0.1:9/hook", "customer-ada")
        .await;
    emu.post(
        &emu.conversation_path(&conversation),
        &[("State", "closed")],
    )
    .await;
    let seen = events
        .until_every(&[
            "conversation.created",
            "participant.added",
            "message.added",
            "interaction.created",
            "task.created",
            "reservation.created",
            "conversation.updated",
            "interaction.updated",
            "task.updated",
        ])
        .await;
    assert!(
        seen.iter().any(|e| e.data["channel_sid"] == conversation),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| e.data["conversation_sid"] == conversation),
        "{seen:?}"
    );
}
