//! What the benchmark reads off the emulator: the microsecond each message
//! was stored (`received_at_us`, control API and events only), the
//! microseconds each webhook attempt was sent and answered (`sent_at_us`,
//! `answered_at_us`), and an event buffer a subscriber can be given room in.
//! Every stamp is checked against the test's own clock around the call.

mod common;

use std::process::Stdio;

use common::events::EventStream;
use common::{Receiver, TestEmulator, eventually, now_us};
use flex_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::Value;

/// The `received_at_us` of a stored message, checked to fall within the
/// call that stored it.
fn stamp_within(message: &Value, before: u64, after: u64) -> u64 {
    let stamp = message["received_at_us"]
        .as_u64()
        .unwrap_or_else(|| panic!("no received_at_us in {message}"));
    assert!(
        before <= stamp && stamp <= after,
        "{stamp} is outside the call [{before}, {after}]"
    );
    stamp
}

/// Posts three messages over REST to `messages` and checks that each one
/// stored in `/_emulator/state` (at the JSON pointer `stored`) carries the microsecond of its own POST,
/// that the stamps increase, that its `message.added` event carries the
/// same, and that no REST answer shows it.
async fn rest_messages_are_stamped(
    emu: &TestEmulator,
    events: &mut EventStream,
    messages: &str,
    stored: &str,
) {
    let mut calls = Vec::new();
    for n in 0..3 {
        let before = now_us();
        let created = emu.post(messages, &[("Body", &format!("m{n}"))]).await;
        let after = now_us();
        assert_eq!(created.status, 201, "{}", created.json);
        assert_eq!(
            created.json.get("received_at_us"),
            None,
            "REST stays Twilio's"
        );
        calls.push((created.sid(), before, after));
    }
    let listed = emu.get(messages).await.json;
    assert!(
        listed["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m.get("received_at_us").is_none()),
        "{listed}"
    );
    let fetched = emu.get(&format!("{messages}/{}", calls[0].0)).await.json;
    assert_eq!(fetched.get("received_at_us"), None, "{fetched}");

    let state = emu.state().await;
    let state = state
        .pointer(stored)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no messages at {stored}"));
    assert_eq!(state.len(), calls.len());
    let mut previous = 0;
    for (message, (sid, before, after)) in state.iter().zip(&calls) {
        assert_eq!(message["sid"], *sid);
        let stamp = stamp_within(message, *before, *after);
        assert!(stamp > previous, "stamps increase message after message");
        previous = stamp;
        let (event, _) = events
            .until("message.added", |data| data["message"]["sid"] == *sid)
            .await;
        assert_eq!(event.data["message"]["received_at_us"], stamp);
    }
}

#[tokio::test]
async fn chat_messages_carry_the_microsecond_they_were_stored_in_state_and_events_only() {
    let emu = TestEmulator::start().await;
    let mut events = EventStream::open(&emu).await;
    let channel = emu.chat_channel(&[]).await;
    let messages = format!("{}/Messages", emu.channel_path(&channel));
    let stored = "/chat/channels/0/messages";
    rest_messages_are_stamped(&emu, &mut events, &messages, stored).await;
}

#[tokio::test]
async fn conversation_messages_carry_the_microsecond_they_were_stored_in_state_and_events_only() {
    let emu = TestEmulator::start().await;
    let mut events = EventStream::open(&emu).await;
    let conversation = emu.conversation(&[]).await;
    let messages = format!("{}/Messages", emu.conversation_path(&conversation));
    let stored = "/conversations/0/messages";
    rest_messages_are_stamped(&emu, &mut events, &messages, stored).await;
}

#[tokio::test]
async fn each_webhook_attempt_records_when_it_was_sent_and_when_it_was_answered() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let mut events = EventStream::open(&emu).await;
    let channel = emu
        .hooked_channel(&receiver.url, &["onMessageSent"], 1)
        .await;
    receiver.answer_next(&[500]);
    emu.customer_says(&channel, "c", "twice").await;
    let requests = receiver
        .wait_for_count(2, |r| r.param("Body") == Some("twice"))
        .await;
    let log = eventually(|| async {
        let log = emu.control(Method::GET, "/webhooks", None).await.json;
        (log.as_array()?.len() == 2).then_some(log)
    })
    .await;
    let state = emu.state().await;
    let stored = state["chat"]["channels"][0]["messages"][0]["received_at_us"]
        .as_u64()
        .unwrap();

    let mut previous_answer = stored;
    for (record, request) in log.as_array().unwrap().iter().zip(&requests) {
        let sent = record["sent_at_us"].as_u64().unwrap();
        let answered = record["answered_at_us"].as_u64().unwrap();
        assert!(
            previous_answer <= sent,
            "sent after the message was stored and after the previous answer: {record}"
        );
        assert!(
            sent <= request.received_at_us && request.received_at_us <= answered,
            "the receiver got it between send ({sent}) and answer ({answered}): {}",
            request.received_at_us
        );
        previous_answer = answered;
        let (event, _) = events
            .until("webhook.delivery", |data| {
                data["delivery"]["id"] == record["id"]
            })
            .await;
        assert_eq!(event.data["delivery"]["sent_at_us"], record["sent_at_us"]);
        assert_eq!(
            event.data["delivery"]["answered_at_us"],
            record["answered_at_us"]
        );
    }
    assert_eq!(log[0]["status"], 500);
    assert_eq!(log[1]["status"], 200);
}

#[tokio::test]
async fn an_agent_message_is_stamped_in_the_answer_and_the_view_before_its_webhook_is_sent() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let (_, task) = emu.open_chat(&receiver.url, "customer-ada").await;
    emu.accept(&task).await;

    let before = now_us();
    let sent = emu.agent_writes("alice", &task, "Hi Ada").await;
    let after = now_us();
    assert_eq!(sent.status, 201, "{}", sent.json);
    let stamp = stamp_within(&sent.json["message"], before, after);
    let view = emu.control(Method::GET, "/agents/alice", None).await.json;
    let shown = view["work"][0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["body"] == "Hi Ada")
        .cloned()
        .unwrap();
    assert_eq!(shown["received_at_us"], stamp);

    let request = receiver
        .wait_for(|r| r.param("Body") == Some("Hi Ada"))
        .await;
    let log = emu.control(Method::GET, "/webhooks", None).await.json;
    let delivery = log
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["params"]["Body"] == "Hi Ada")
        .cloned()
        .unwrap();
    let webhook_sent = delivery["sent_at_us"].as_u64().unwrap();
    assert!(stamp <= webhook_sent && webhook_sent <= request.received_at_us);
}

/// Opens a Flex channel (one request emitting several events at once), then
/// posts a message; returns what a subscriber reads up to that message.
async fn burst_then_message(config: EmulatorConfig) -> Vec<common::events::SseEvent> {
    let emu = TestEmulator::with(config).await;
    let mut events = EventStream::open(&emu).await;
    let flow = emu.studio_flow().await;
    let channel = emu.flex_channel(&flow, "c", "C").await.sid();
    let messages = format!("{}/Messages", emu.channel_path(&channel));
    emu.post(&messages, &[("Body", "last")]).await;
    let (_, seen) = events
        .until("message.added", |data| data["message"]["body"] == "last")
        .await;
    seen
}

#[tokio::test]
async fn a_subscriber_further_behind_than_the_event_buffer_is_told_how_many_it_missed() {
    // The test runs on one thread: the stream cannot read while a request
    // emits, so a buffer of one overflows on any request emitting two events.
    let tight =
        burst_then_message(EmulatorConfig::from_seed(1).with_event_buffer(1).unwrap()).await;
    let lagged = tight
        .iter()
        .find(|e| e.kind == "lagged")
        .unwrap_or_else(|| panic!("no lagged event in {tight:?}"));
    assert!(lagged.data["missed"].as_u64().unwrap() >= 1, "{lagged:?}");

    let roomy = burst_then_message(EmulatorConfig::from_seed(1)).await;
    assert!(roomy.iter().all(|e| e.kind != "lagged"), "{roomy:?}");
    let kinds: Vec<&str> = roomy.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds.contains(&"channel.created") && kinds.contains(&"member.added"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn the_binary_refuses_an_event_buffer_of_zero_naming_the_flag() {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_flex-emulator"))
        .args(["--host", "127.0.0.1", "--port", "0", "--event-buffer", "0"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(common::PATIENCE, run)
        .await
        .expect("the emulator exits instead of serving")
        .expect("running flex-emulator");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--event-buffer"), "{stderr}");
}
