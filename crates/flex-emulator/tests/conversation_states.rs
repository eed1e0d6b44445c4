//! The conversation state machine — active ⇄ inactive → closed — driven by
//! the API, by messages and by `Timers.Inactive` / `Timers.Closed` (real
//! time, durations of a second or two, waited for with a generous bound),
//! each move reported by `onConversationStateUpdated`.

mod common;

use common::{Receiver, TestEmulator, eventually};
use serde_json::Value;

fn parse_time(value: &Value) -> time::OffsetDateTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"));
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
}

#[tokio::test]
async fn the_api_moves_a_conversation_and_a_message_reactivates_it_until_it_is_closed_for_good() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let conversation = emu
        .hooked_conversation(
            &receiver.url,
            &["onConversationStateUpdated", "onConversationRemoved"],
        )
        .await;
    let path = emu.conversation_path(&conversation);

    let inactive = emu.post_hooked(&path, &[("State", "inactive")]).await;
    assert_eq!(inactive.json["state"], "inactive");
    let moved = receiver
        .wait_for(|r| r.param("StateTo") == Some("inactive"))
        .await;
    assert_eq!(moved.param("StateFrom"), Some("active"));
    assert_eq!(moved.param("Reason"), Some("API"));
    assert_eq!(moved.param("Source"), Some("API"));
    assert_eq!(moved.param("ConversationSid"), Some(conversation.as_str()));
    assert_eq!(moved.param("ChatServiceSid"), Some(emu.service().as_str()));
    assert!(moved.param("StateUpdated").unwrap().ends_with('Z'));

    emu.customer_writes(&conversation, "ada", "still there?")
        .await;
    let back = receiver
        .wait_for(|r| r.param("StateTo") == Some("active"))
        .await;
    assert_eq!(back.param("StateFrom"), Some("inactive"));
    assert_eq!(
        back.param("Reason"),
        Some("EVENT"),
        "a message reactivates it"
    );
    assert_eq!(emu.get(&path).await.json["state"], "active");

    emu.post(&path, &[("State", "closed")]).await;
    assert_eq!(emu.get(&path).await.json["state"], "closed");

    emu.post(&path, &[("State", "active")])
        .await
        .twilio_error(409, 50377);
    emu.post(&path, &[("FriendlyName", "again")])
        .await
        .twilio_error(409, 50377);
    emu.post(&format!("{path}/Messages"), &[("Body", "hello?")])
        .await
        .twilio_error(409, 50377);
    emu.post(&format!("{path}/Participants"), &[("Identity", "bob")])
        .await
        .twilio_error(409, 50377);
    let history = emu.get(&format!("{path}/Messages")).await;
    assert_eq!(history.json["messages"].as_array().unwrap().len(), 1);

    // Deleting is allowed; its webhook comes after anything queued before it.
    assert_eq!(emu.delete_hooked(&path).await.status, 204);
    receiver
        .wait_for(|r| r.param("EventType") == Some("onConversationRemoved"))
        .await;
    assert_eq!(
        receiver.events("onConversationStateUpdated").len(),
        2,
        "without the header the API's move to closed fired nothing"
    );
}

#[tokio::test]
async fn a_closed_start_and_malformed_timers_are_refused_naming_the_parameter() {
    let emu = TestEmulator::start().await;
    emu.post("/v1/Conversations", &[("State", "closed")])
        .await
        .twilio_error(400, 50384);
    for (param, value) in [
        ("Timers.Inactive", "5 minutes"),
        ("Timers.Inactive", "PT0S"),
        ("Timers.Closed", "P1M"),
        ("Timers.Closed", "PT"),
    ] {
        let refused = emu.post("/v1/Conversations", &[(param, value)]).await;
        refused.refused_naming(param);
    }
    let conversation = emu.conversation(&[]).await;
    let refused = emu
        .post(
            &emu.conversation_path(&conversation),
            &[("Timers.Inactive", "soon")],
        )
        .await;
    refused.refused_naming("Timers.Inactive");
}

#[tokio::test]
async fn timers_make_a_conversation_inactive_then_closed_with_reason_timer() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let conversation = emu
        .hooked_conversation(&receiver.url, &["onConversationStateUpdated"])
        .await;
    let path = emu.conversation_path(&conversation);
    let set = emu
        .post(
            &path,
            &[("Timers.Inactive", "PT1S"), ("Timers.Closed", "PT2S")],
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.json);
    let updated = parse_time(&set.json["date_updated"]);
    let date_inactive = parse_time(&set.json["timers"]["date_inactive"]);
    let date_closed = parse_time(&set.json["timers"]["date_closed"]);
    assert_eq!(date_inactive - updated, time::Duration::seconds(1));
    assert_eq!(date_closed - updated, time::Duration::seconds(2));

    let inactive = receiver
        .wait_for(|r| r.param("StateTo") == Some("inactive"))
        .await;
    assert_eq!(inactive.param("StateFrom"), Some("active"));
    assert_eq!(inactive.param("Reason"), Some("TIMER"));
    assert_eq!(
        inactive.param("Source"),
        Some("API"),
        "timers fire without any header"
    );
    let closed = receiver
        .wait_for(|r| r.param("StateTo") == Some("closed"))
        .await;
    assert_eq!(closed.param("StateFrom"), Some("inactive"));
    assert_eq!(closed.param("Reason"), Some("TIMER"));
    let fetched = emu.get(&path).await;
    assert_eq!(fetched.json["state"], "closed");
    assert_eq!(fetched.json["timers"], set.json["timers"], "the dates stay");
    emu.post(&format!("{path}/Messages"), &[("Body", "too late")])
        .await
        .twilio_error(409, 50377);
}

#[tokio::test]
async fn a_closed_timer_shorter_than_the_inactive_one_closes_an_active_conversation_directly() {
    let emu = TestEmulator::start().await;
    let conversation = emu
        .conversation(&[("Timers.Inactive", "PT1H"), ("Timers.Closed", "PT1S")])
        .await;
    let path = emu.conversation_path(&conversation);
    eventually(|| async { (emu.get(&path).await.json["state"] == "closed").then_some(()) }).await;
    let state = emu.state().await;
    assert_eq!(state["conversations"][0]["state"], "closed");
}

#[tokio::test]
async fn a_message_restarts_the_timers_from_its_own_time() {
    let emu = TestEmulator::start().await;
    let conversation = emu
        .conversation(&[("Timers.Inactive", "PT1H"), ("Timers.Closed", "P1D")])
        .await;
    let path = emu.conversation_path(&conversation);
    let message = emu.customer_writes(&conversation, "ada", "hello").await;
    let written = parse_time(&message.json["date_created"]);
    let timers = emu.get(&path).await.json["timers"].clone();
    assert_eq!(
        parse_time(&timers["date_inactive"]),
        written + time::Duration::hours(1)
    );
    assert_eq!(
        parse_time(&timers["date_closed"]),
        written + time::Duration::days(1)
    );

    let cleared = emu.post(&path, &[("Timers.Inactive", "")]).await;
    assert!(cleared.json["timers"].get("date_inactive").is_none());
    assert!(cleared.json["timers"]["date_closed"].is_string());
}
