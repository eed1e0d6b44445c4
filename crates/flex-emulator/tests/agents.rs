//! Agents at work: reservations, accept and reject, SDK messages and the
//! chat end reaching a local webhook receiver, signed like Twilio's.

mod common;

use std::time::Duration;

use common::events::EventStream;
use common::{Receiver, TestEmulator, signed_with};
use flex_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn an_agent_accepts_chats_and_ends_and_every_step_reaches_the_webhook_signed() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let (channel, task) = emu.open_chat(&receiver.url, "customer-ada").await;
    let token = emu.emulator.credentials().auth_token.clone();

    // The customer's own message came back as Source=API.
    let own = receiver
        .wait_for(|r| r.param("EventType") == Some("onMessageSent"))
        .await;
    assert_eq!(own.param("Source"), Some("API"));
    assert_eq!(own.param("ClientIdentity"), None);

    // Reserved to alice (lowest load, first); she accepts and joins.
    let reservation = emu.reservation_of(&task).await;
    assert_eq!(reservation["worker_name"], "alice");
    let reservation_sid = reservation["sid"].as_str().unwrap();
    let accepted = emu
        .as_agent(
            "alice",
            &format!("reservations/{reservation_sid}/accept"),
            None,
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.json);
    assert_eq!(
        accepted.json["reservation"]["reservation_status"],
        "accepted"
    );
    assert_eq!(accepted.json["task"]["assignment_status"], "assigned");
    let joined = receiver
        .wait_for(|r| r.param("EventType") == Some("onMemberAdded"))
        .await;
    assert_eq!(joined.param("Identity"), Some("alice"));
    assert_eq!(joined.param("Source"), Some("SDK"));
    let members = emu
        .get(&format!("{}/Members", emu.channel_path(&channel)))
        .await
        .json;
    let mut identities: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["identity"].as_str().unwrap())
        .collect();
    identities.sort_unstable();
    assert_eq!(identities, ["alice", "customer-ada"]);

    // Alice writes: an SDK message, signed with the auth token.
    let sent = emu.agent_writes("alice", &task, "Hi Ada <b>!</b>").await;
    assert_eq!(sent.status, 201, "{}", sent.json);
    assert_eq!(sent.json["message"]["from"], "alice");
    let reply = receiver
        .wait_for(|r| {
            r.param("EventType") == Some("onMessageSent") && r.param("Source") == Some("SDK")
        })
        .await;
    assert_eq!(reply.param("Body"), Some("Hi Ada <b>!</b>"));
    assert_eq!(reply.param("From"), Some("alice"));
    assert_eq!(reply.param("ClientIdentity"), Some("alice"));
    assert_eq!(reply.param("ChannelSid"), Some(channel.as_str()));
    assert_eq!(reply.param("InstanceSid"), Some(emu.service().as_str()));
    assert_eq!(
        reply.param("AccountSid"),
        Some(emu.emulator.credentials().account_sid.as_str())
    );
    assert_eq!(reply.param("Index"), Some("1"));
    assert_eq!(reply.param("RetryCount"), Some("0"));
    assert_eq!(reply.param("WebhookType"), Some("webhook"));
    assert!(
        reply.param("DateCreated").unwrap().ends_with('Z')
            && reply.param("DateCreated").unwrap().contains('.')
    );
    assert!(
        reply
            .content_type
            .as_deref()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    assert!(
        signed_with(&reply, &token),
        "the signature validates with twilio-signature"
    );
    assert!(!signed_with(&reply, "another-token"));

    // Alice ends the chat: INACTIVE, she leaves, the task wraps and completes.
    let ended = emu
        .as_agent("alice", &format!("tasks/{task}/end"), None)
        .await;
    assert_eq!(ended.status, 200, "{}", ended.json);
    assert_eq!(ended.json["task"]["assignment_status"], "wrapping");
    let updated = receiver
        .wait_for(|r| r.param("EventType") == Some("onChannelUpdated"))
        .await;
    let attributes: Value = serde_json::from_str(updated.param("Attributes").unwrap()).unwrap();
    assert_eq!(attributes["status"], "INACTIVE");
    assert_eq!(updated.param("Source"), Some("SDK"));
    let left = receiver
        .wait_for(|r| r.param("EventType") == Some("onMemberRemoved"))
        .await;
    assert_eq!(left.param("Identity"), Some("alice"));
    assert_eq!(left.param("Reason"), Some("LEFT"));
    emu.task_reaches(&task, "completed").await;
    let state = emu.state().await;
    assert_eq!(state["reservations"][0]["reservation_status"], "completed");
    assert_eq!(state["agents"][0]["load"], 0);
    assert_eq!(state["studio_executions"][0]["status"], "ended");

    let all = receiver.requests();
    assert!(
        all.iter().all(|r| signed_with(r, &token)),
        "every webhook is signed"
    );
    assert!(
        all.iter()
            .all(|r| r.url.ends_with("/flex/webhook?tenant=t1"))
    );
}

#[tokio::test]
async fn without_the_header_rest_messages_fire_no_webhook() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let channel = emu
        .hooked_channel(&receiver.url, &["onMessageSent"], 0)
        .await;
    let messages = format!("{}/Messages", emu.channel_path(&channel));
    emu.post(&messages, &[("Body", "quiet")]).await;
    emu.customer_says(&channel, "c", "loud").await;
    // Deliveries of one channel keep their order: once "loud" is in, "quiet" would be too.
    receiver.wait_for(|r| r.param("Body") == Some("loud")).await;
    let bodies: Vec<String> = receiver
        .requests()
        .iter()
        .filter_map(|r| r.param("Body").map(str::to_owned))
        .collect();
    assert_eq!(bodies, ["loud"]);
}

#[tokio::test]
async fn webhooks_of_one_channel_arrive_in_the_order_of_their_events() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let channel = emu
        .hooked_channel(&receiver.url, &["onMessageSent"], 0)
        .await;
    for n in 0..20 {
        emu.customer_says(&channel, "c", &format!("m{n}")).await;
    }
    let received = receiver
        .wait_for_count(20, |r| r.param("EventType") == Some("onMessageSent"))
        .await;
    let indexes: Vec<String> = received
        .iter()
        .map(|r| r.param("Index").unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..20).map(|n| n.to_string()).collect();
    assert_eq!(indexes, expected);
}

#[tokio::test]
async fn a_rejected_reservation_goes_to_the_next_agent_then_waits() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let (_, task) = emu.open_chat(&receiver.url, "c").await;
    let first = emu.reservation_of(&task).await;
    assert_eq!(first["worker_name"], "alice");
    let reject = |reservation: &Value| {
        format!(
            "reservations/{}/reject",
            reservation["sid"].as_str().unwrap()
        )
    };
    let rejected = emu.as_agent("alice", &reject(&first), None).await;
    assert_eq!(rejected.status, 200);
    assert_eq!(
        rejected.json["reservation"]["reservation_status"],
        "rejected"
    );

    let second = emu.reservation_of(&task).await;
    assert_eq!(second["worker_name"], "bob");
    emu.as_agent("bob", &reject(&second), None).await;
    assert_eq!(
        emu.task_status(&task).await,
        "pending",
        "nobody left who has not rejected it"
    );
}

#[tokio::test]
async fn a_second_chat_waits_until_the_only_agent_has_capacity_again() {
    let emu = TestEmulator::with(EmulatorConfig::from_seed(3).with_agents(1)).await;
    let receiver = Receiver::start().await;
    let (_, first) = emu.open_chat(&receiver.url, "one").await;
    let (_, second) = emu.open_chat(&receiver.url, "two").await;
    assert_eq!(emu.task_status(&first).await, "reserved");
    assert_eq!(
        emu.task_status(&second).await,
        "pending",
        "alice's capacity is 1"
    );

    emu.accept(&first).await;
    emu.as_agent("alice", &format!("tasks/{first}/end"), None)
        .await;
    emu.task_reaches(&second, "reserved").await;
}

#[tokio::test]
async fn an_unavailable_agent_is_offered_nothing_until_available_again() {
    let emu = TestEmulator::with(EmulatorConfig::from_seed(4).with_agents(1)).await;
    let receiver = Receiver::start().await;
    let away = emu
        .as_agent("alice", "activity", Some(json!({"available": false})))
        .await;
    assert_eq!(away.json["available"], false);
    assert_eq!(away.json["activity"], "Offline");
    let (_, task) = emu.open_chat(&receiver.url, "c").await;
    assert_eq!(emu.task_status(&task).await, "pending");
    emu.as_agent("alice", "activity", Some(json!({"available": true})))
        .await;
    assert_eq!(emu.task_status(&task).await, "reserved");
}

#[tokio::test]
async fn reservations_can_be_accepted_over_the_taskrouter_rest_api_too() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let (channel, task) = emu.open_chat(&receiver.url, "c").await;
    let reservation = emu.reservation_of(&task).await;
    let workspace = emu.bootstrap().workspace_sid.clone();
    let path = format!(
        "/v1/Workspaces/{workspace}/Tasks/{task}/Reservations/{}",
        reservation["sid"].as_str().unwrap()
    );
    let accepted = emu.post(&path, &[("ReservationStatus", "accepted")]).await;
    assert_eq!(accepted.status, 200, "{}", accepted.json);
    assert_eq!(accepted.json["reservation_status"], "accepted");
    let members = emu
        .get(&format!(
            "{}/Members?Identity=alice",
            emu.channel_path(&channel)
        ))
        .await;
    assert_eq!(members.json["members"].as_array().unwrap().len(), 1);

    let again = emu.post(&path, &[("ReservationStatus", "accepted")]).await;
    again.twilio_error(400, 20001);
    let listed = emu
        .get(&format!(
            "/v1/Workspaces/{workspace}/Tasks/{task}/Reservations?ReservationStatus=accepted"
        ))
        .await;
    assert_eq!(listed.json["reservations"].as_array().unwrap().len(), 1);

    let no_reason = emu
        .post(
            &format!("/v1/Workspaces/{workspace}/Tasks/{task}"),
            &[("AssignmentStatus", "completed")],
        )
        .await;
    no_reason.refused_naming("Reason");
    let completed = emu
        .post(
            &format!("/v1/Workspaces/{workspace}/Tasks/{task}"),
            &[("AssignmentStatus", "completed"), ("Reason", "done")],
        )
        .await;
    assert_eq!(completed.json["assignment_status"], "completed");
    assert_eq!(completed.json["reason"], "done");
}

#[tokio::test]
async fn agents_cannot_act_on_work_that_is_not_theirs_or_not_ready() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let (_, task) = emu.open_chat(&receiver.url, "c").await;
    let reservation = emu.reservation_of(&task).await;
    let sid = reservation["sid"].as_str().unwrap();

    let bobs = emu
        .as_agent("bob", &format!("reservations/{sid}/accept"), None)
        .await;
    bobs.twilio_error(404, 20404);
    let early = emu.agent_writes("alice", &task, "x").await;
    early.twilio_error(409, 20409);
    emu.as_agent("alice", &format!("reservations/{sid}/accept"), None)
        .await;
    let twice = emu
        .as_agent("alice", &format!("reservations/{sid}/accept"), None)
        .await;
    twice.twilio_error(409, 20409);
    let empty = emu.agent_writes("alice", &task, "  ").await;
    empty.twilio_error(400, 20001);
    let nobody = emu.control(Method::GET, "/agents/zed", None).await;
    nobody.twilio_error(404, 20404);
    let broken = emu
        .http
        .post(format!(
            "{}/_emulator/agents/alice/tasks/{task}/messages",
            emu.url
        ))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 400);
}

#[tokio::test]
async fn the_agent_view_lists_the_work_with_the_customer_and_the_conversation() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let (channel, task) = emu.open_chat(&receiver.url, "customer-ada").await;
    let view = emu.control(Method::GET, "/agents/alice", None).await.json;
    assert_eq!(view["agent"]["name"], "alice");
    assert_eq!(view["agent"]["load"], 1);
    let work = &view["work"][0];
    assert_eq!(work["task"]["sid"], task);
    assert_eq!(work["reservation"]["reservation_status"], "pending");
    assert_eq!(work["channel_sid"], channel);
    assert_eq!(work["backend"], "chat");
    assert_eq!(
        work["customer"],
        json!({"identity": "customer-ada", "name": "Ada"})
    );
    assert_eq!(work["messages"][0]["body"], "Hello?");
    let by_sid = emu
        .control(
            Method::GET,
            &format!("/agents/{}", emu.bootstrap().agents[0].worker_sid),
            None,
        )
        .await;
    assert_eq!(by_sid.json["agent"]["name"], "alice");
    let agents = emu.control(Method::GET, "/agents", None).await.json;
    assert_eq!(
        agents[1],
        json!({"sid": emu.bootstrap().agents[1].worker_sid, "name": "bob", "identity": "bob",
        "available": true, "activity": "Available", "capacity": 1, "load": 0})
    );
}

#[tokio::test]
async fn a_wrapup_time_keeps_the_task_wrapping_until_it_passes() {
    let config = EmulatorConfig::from_seed(5).with_wrapup(Duration::from_millis(300));
    let emu = TestEmulator::with(config).await;
    let receiver = Receiver::start().await;
    let (_, task) = emu.open_chat(&receiver.url, "c").await;
    emu.accept(&task).await;
    emu.as_agent("alice", &format!("tasks/{task}/end"), None)
        .await;
    assert_eq!(emu.task_status(&task).await, "wrapping");
    emu.task_reaches(&task, "completed").await;
}

#[tokio::test]
async fn the_event_stream_reports_each_change_as_it_happens() {
    let emu = TestEmulator::start().await;
    let mut events = EventStream::open(&emu).await;
    let flow = emu.studio_flow().await;
    let channel = emu.flex_channel(&flow, "c", "C").await.sid();
    emu.customer_says(&channel, "c", "hi").await;
    let seen = events
        .until_every(&[
            "channel.created",
            "member.added",
            "message.added",
            "task.created",
            "reservation.created",
        ])
        .await;
    assert!(
        seen.iter().any(|e| e.data["channel_sid"] == channel),
        "{seen:?}"
    );
}
