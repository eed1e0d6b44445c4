//! Injected faults (HTTP and webhooks), webhook retries, reset and the
//! determinism of SIDs.

mod common;

use std::time::{Duration, Instant};

use common::{Receiver, TestEmulator, eventually, signed_with};
use flex_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::{Value, json};

async fn fault(emu: &TestEmulator, kind: &str, spec: Value) -> u64 {
    let answer = emu
        .control(Method::POST, &format!("/faults/{kind}"), Some(spec))
        .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    answer.json["id"].as_u64().unwrap()
}

#[tokio::test]
async fn an_error_fault_fails_the_next_n_matching_calls_then_lets_them_through() {
    let emu = TestEmulator::start().await;
    let channel = emu.chat_channel(&[]).await;
    let messages = format!("{}/Messages", emu.channel_path(&channel));
    fault(&emu, "http", json!({"method": "POST", "path": "/v2/Services/*/Channels/*/Messages", "kind": "error", "status": 503, "count": 2})).await;
    let listed = emu.control(Method::GET, "/faults", None).await;
    assert_eq!(listed.json["http"][0]["remaining"], 2);

    assert_eq!(
        emu.get(&messages).await.status,
        200,
        "another method is not matched"
    );
    for _ in 0..2 {
        emu.post(&messages, &[("Body", "x")])
            .await
            .twilio_error(503, 20503);
    }
    assert_eq!(
        emu.post(&messages, &[("Body", "through")]).await.status,
        201
    );
    let bodies = emu.get(&messages).await.json["messages"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(bodies, 1, "failed calls did not land");
    assert_eq!(
        emu.control(Method::GET, "/faults", None).await.json["http"],
        json!([])
    );
}

#[tokio::test]
async fn a_rate_limit_fault_answers_429_with_retry_after() {
    let emu = TestEmulator::start().await;
    fault(
        &emu,
        "http",
        json!({"path": "/v1/**", "kind": "rate_limit", "retry_after": 7}),
    )
    .await;
    let limited = emu.get("/v1/FlexFlows").await;
    limited.twilio_error(429, 20429);
    assert_eq!(limited.headers["retry-after"], "7");
    assert_eq!(emu.get("/v1/FlexFlows").await.status, 200);
}

#[tokio::test]
async fn a_fault_that_lands_keeps_the_effect_but_answers_the_error() {
    let emu = TestEmulator::start().await;
    let channel = emu.chat_channel(&[]).await;
    let messages = format!("{}/Messages", emu.channel_path(&channel));
    fault(&emu, "http", json!({"path": "/v2/Services/*/Channels/*/Messages", "method": "POST", "kind": "error", "lands": true})).await;
    emu.post(&messages, &[("Body", "timed out but landed")])
        .await
        .twilio_error(500, 20500);
    let listed = emu.get(&messages).await.json;
    assert_eq!(listed["messages"][0]["body"], "timed out but landed");
}

#[tokio::test]
async fn a_delay_fault_answers_late_but_executes_the_request() {
    let emu = TestEmulator::start().await;
    fault(
        &emu,
        "http",
        json!({"path": "/v1/FlexFlows", "kind": "delay", "delay_ms": 300}),
    )
    .await;
    let started = Instant::now();
    let flow = emu.studio_flow().await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the answer waited for the delay"
    );
    assert_eq!(emu.get(&format!("/v1/FlexFlows/{flow}")).await.status, 200);
}

#[tokio::test]
async fn bad_fault_specs_are_refused_naming_the_field() {
    let emu = TestEmulator::start().await;
    for (spec, named) in [
        (json!({"path": "no-slash", "kind": "error"}), "path"),
        (
            json!({"path": "/v1", "kind": "error", "status": 200}),
            "status",
        ),
        (json!({"path": "/v1", "kind": "delay"}), "delay_ms"),
        (json!({"path": "/v1", "kind": "error", "count": 0}), "count"),
        (json!({"path": "/v1", "kind": "explode"}), "kind"),
    ] {
        let answer = emu.control(Method::POST, "/faults/http", Some(spec)).await;
        answer.refused_naming(named);
    }
    let webhook = emu
        .control(
            Method::POST,
            "/faults/webhooks",
            Some(json!({"kind": "duplicate", "copies": 1})),
        )
        .await;
    webhook.twilio_error(400, 20001);
}

#[tokio::test]
async fn a_dropped_webhook_is_logged_and_never_sent() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let channel = emu
        .hooked_channel(&receiver.url, &["onMessageSent"], 0)
        .await;
    fault(
        &emu,
        "webhooks",
        json!({"kind": "drop", "count": 1, "event_type": "onMessageSent"}),
    )
    .await;
    emu.customer_says(&channel, "c", "lost").await;
    emu.customer_says(&channel, "c", "found").await;
    receiver
        .wait_for(|r| r.param("Body") == Some("found"))
        .await;
    assert!(
        receiver
            .requests()
            .iter()
            .all(|r| r.param("Body") != Some("lost"))
    );
    let log = emu.control(Method::GET, "/webhooks", None).await.json;
    let outcomes: Vec<(&str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["params"]["Body"].as_str().unwrap(),
                d["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(outcomes, [("lost", "dropped"), ("found", "delivered")]);
    assert_eq!(log[0]["sent_at_us"], Value::Null, "nothing was sent");
    assert_eq!(log[0]["answered_at_us"], Value::Null);
}

#[tokio::test]
async fn a_duplicated_webhook_arrives_copies_times_with_one_idempotency_token() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let channel = emu
        .hooked_channel(&receiver.url, &["onMessageSent"], 0)
        .await;
    fault(&emu, "webhooks", json!({"kind": "duplicate", "copies": 3})).await;
    emu.customer_says(&channel, "c", "echo").await;
    let copies = receiver
        .wait_for_count(3, |r| r.param("Body") == Some("echo"))
        .await;
    let tokens: Vec<_> = copies
        .iter()
        .map(|r| r.idempotency_token.clone().unwrap())
        .collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    assert!(
        copies
            .iter()
            .all(|r| r.param("MessageSid") == copies[0].param("MessageSid"))
    );
    emu.customer_says(&channel, "c", "once").await;
    receiver.wait_for(|r| r.param("Body") == Some("once")).await;
    assert_eq!(receiver.events("onMessageSent").len(), 4);
}

#[tokio::test]
async fn a_failing_webhook_is_retried_retry_count_times_carrying_the_attempt_number() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let channel = emu
        .hooked_channel(&receiver.url, &["onMessageSent"], 2)
        .await;
    receiver.answer_next(&[500, 502]);
    emu.customer_says(&channel, "c", "persist").await;
    let attempts = receiver
        .wait_for_count(3, |r| r.param("Body") == Some("persist"))
        .await;
    let numbers: Vec<&str> = attempts
        .iter()
        .map(|r| r.param("RetryCount").unwrap())
        .collect();
    assert_eq!(numbers, ["0", "1", "2"]);
    let token = emu.emulator.credentials().auth_token.clone();
    assert!(
        attempts.iter().all(|r| signed_with(r, &token)),
        "each attempt is signed over its own params"
    );
    let log = eventually(|| async {
        let log = emu.control(Method::GET, "/webhooks", None).await.json;
        (log.as_array()?.len() == 3).then_some(log)
    })
    .await;
    let statuses: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["status"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(502), &json!(200)]);
}

#[tokio::test]
async fn an_unreachable_webhook_is_logged_as_failed_after_its_retries() {
    let emu = TestEmulator::start().await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/gone", closed.local_addr().unwrap());
    drop(closed);
    let channel = emu.hooked_channel(&url, &["onMessageSent"], 1).await;
    emu.customer_says(&channel, "c", "anyone?").await;
    let log = eventually(|| async {
        let log = emu.control(Method::GET, "/webhooks", None).await.json;
        (log.as_array()?.len() == 2).then_some(log)
    })
    .await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|d| d["outcome"] == "failed" && d["error"].is_string())
    );
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|d| d["sent_at_us"].is_u64() && d["answered_at_us"].is_null()),
        "each attempt was sent and never answered: {log}"
    );
}

#[tokio::test]
async fn get_webhooks_carry_the_params_in_the_signed_query() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start().await;
    let channel = emu.chat_channel(&[]).await;
    let answer = emu
        .add_channel_webhook(
            &channel,
            &[
                ("Type", "webhook"),
                ("Configuration.Url", &receiver.url),
                ("Configuration.Method", "GET"),
                ("Configuration.Filters", "onMessageSent"),
            ],
        )
        .await;
    assert_eq!(answer.status, 201);
    emu.customer_says(&channel, "c", "by GET").await;
    let request = receiver
        .wait_for(|r| r.param("Body") == Some("by GET"))
        .await;
    assert_eq!(request.method, "GET");
    assert!(signed_with(
        &request,
        &emu.emulator.credentials().auth_token
    ));
}

#[tokio::test]
async fn reset_restores_the_bootstrap_state_with_the_same_sids() {
    let emu = TestEmulator::start().await;
    let before = emu.state().await;
    let flow = emu.studio_flow().await;
    let channel = emu.flex_channel(&flow, "c", "C").await.sid();
    fault(&emu, "http", json!({"path": "/nothing", "kind": "error"})).await;

    let reset = emu.control(Method::POST, "/reset", None).await;
    assert_eq!(reset.status, 200);
    let after = emu.state().await;
    assert_eq!(after["flex_flows"], json!([]));
    assert_eq!(after["chat"]["channels"], json!([]));
    assert_eq!(after["bootstrap"], before["bootstrap"]);
    assert_eq!(after["account"], before["account"]);
    assert_eq!(
        emu.control(Method::GET, "/faults", None).await.json["http"],
        json!([])
    );

    assert_eq!(emu.studio_flow().await, flow, "runtime SIDs start over too");
    assert_eq!(emu.flex_channel(&flow, "c", "C").await.sid(), channel);
}

#[tokio::test]
async fn the_same_seed_gives_the_same_account_and_the_same_sids() {
    let first = TestEmulator::with(EmulatorConfig::from_seed(42).with_agents(3)).await;
    let second = TestEmulator::with(EmulatorConfig::from_seed(42).with_agents(3)).await;
    let other = TestEmulator::with(EmulatorConfig::from_seed(43).with_agents(3)).await;
    assert_eq!(first.emulator.credentials(), second.emulator.credentials());
    assert_eq!(first.bootstrap(), second.bootstrap());
    assert_ne!(
        first.bootstrap().workspace_sid,
        other.bootstrap().workspace_sid
    );
    let mut made = Vec::new();
    for emu in [&first, &second] {
        let flow = emu.studio_flow().await;
        let channel = emu.flex_channel(&flow, "c", "C").await.sid();
        let message = emu.customer_says(&channel, "c", "hi").await.sid();
        let task = emu.tasks_for(&channel).await[0]["sid"].clone();
        made.push((flow, channel, message, task));
    }
    assert_eq!(made[0], made[1]);
}

#[tokio::test]
async fn faults_match_the_conversations_and_interactions_routes_and_a_landed_create_is_kept() {
    let emu = TestEmulator::start().await;
    let conversation = emu.conversation(&[]).await;
    let messages = format!("{}/Messages", emu.conversation_path(&conversation));
    fault(&emu, "http", json!({"method": "POST", "path": "/v1/Conversations/*/Messages", "kind": "error", "status": 500, "lands": true, "count": 1})).await;
    let failed = emu
        .post(&messages, &[("Author", "ada"), ("Body", "did it land?")])
        .await;
    failed.twilio_error(500, 20500);
    let listed = emu.get(&messages).await;
    assert_eq!(
        listed.json["messages"][0]["body"], "did it land?",
        "the create landed"
    );

    fault(
        &emu,
        "http",
        json!({"path": "/v1/Interactions", "kind": "rate_limit", "retry_after": 2, "count": 1}),
    )
    .await;
    let limited = emu.interaction(&conversation, json!({})).await;
    limited.twilio_error(429, 20429);
    assert_eq!(limited.headers["retry-after"], "2");
    assert!(
        emu.tasks_for_conversation(&conversation).await.is_empty(),
        "nothing was routed"
    );
    assert_eq!(emu.interaction(&conversation, json!({})).await.status, 200);
}
