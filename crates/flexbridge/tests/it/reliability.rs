//! Nothing lost, nothing stuck, nothing silent: what an operator runs
//! into under faults and restarts — a second bridge on one database, a
//! wrong credential, a 429 that landed after all, a Flex account that
//! hands out the SIDs of an earlier one, a webhook Twilio never delivered.

use flex_emulator::EmulatorConfig;
use flexbridge::flex::BackendKind;
use flexbridge::flex::client::RestAuth;
use flexbridge::startup::Application;
use serde_json::{Value, json};

use crate::{TestApp, eventually, on_both_backends, say, spawn_app};

crate::on_both_databases!(
    started_anyway_with_a_wrong_credential_the_bridge_is_not_ready_and_customers_hear_of_the_delay,
    an_agent_message_whose_webhook_was_dropped_arrives_with_the_periodic_resync,
);

on_both_backends!(
    a_429_that_landed_is_looked_for_and_not_sent_twice,
    a_fresh_flex_account_that_repeats_old_sids_loses_no_message_and_no_reply,
    an_agent_message_whose_webhook_was_dropped_arrives_before_the_next_one,
);

#[tokio::test]
async fn a_second_bridge_on_the_same_database_refuses_to_start() {
    let app = spawn_app(BackendKind::Conversations).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");

    let second = Application::build_with_listener(app.settings.clone(), listener).await;

    let error = format!("{:#}", second.err().expect("the second bridge is refused"));
    assert!(
        error.contains("another flexbridge") && error.contains("bridge.db"),
        "{error}"
    );
}

#[tokio::test]
async fn a_wrong_rest_credential_stops_the_start_naming_the_settings() {
    let app = spawn_app(BackendKind::Conversations).await;
    let mut settings = app.settings.clone();
    let RestAuth::ApiKey { sid, .. } = settings.twilio.rest_auth.clone() else {
        panic!("the test app uses the emulator's API key");
    };
    settings.twilio.rest_auth = RestAuth::ApiKey {
        sid,
        secret: "not-the-secret".to_owned().into(),
    };
    let dir = tempfile::tempdir().expect("a temp dir");
    settings.database_url = format!("sqlite://{}", dir.path().join("other.db").display());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");

    let built = Application::build_with_listener(settings, listener).await;

    let error = format!("{:#}", built.err().expect("the start is refused"));
    assert!(
        error.contains("TWILIO_API_KEY") && error.contains("TWILIO_API_SECRET"),
        "{error}"
    );
}

/// The customer messages of the emulator's channel `sid`.
async fn bodies(app: &TestApp, sid: &str) -> Vec<String> {
    TestApp::customer_bodies(&app.channel(sid).await)
}

async fn a_429_that_landed_is_looked_for_and_not_sent_twice(backend: BackendKind) {
    let app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    say(&mut ada.socket, "m0", "first").await;
    let channel = app.channel_of(&ada.id).await;
    eventually("the first message is in Flex", || async {
        bodies(&app, &channel).await.len() == 1
    })
    .await;
    app.fault(json!({"method": "POST", "path": app.flavour().messages_path, "kind": "rate_limit", "retry_after": 0, "lands": true, "count": 1}))
        .await;

    say(&mut ada.socket, "m1", "second").await;
    say(&mut ada.socket, "m2", "third").await;

    ada.socket
        .next_event_where("delivery", |d| d["clientMessageId"] == json!("m2"))
        .await;
    assert_eq!(bodies(&app, &channel).await, ["first", "second", "third"]);
}

/// The next agent message the customer's socket gets.
fn is_agent_message(m: &Value) -> bool {
    m["direction"] == json!("agent")
}

async fn a_fresh_flex_account_that_repeats_old_sids_loses_no_message_and_no_reply(
    backend: BackendKind,
) {
    let mut app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    say(&mut ada.socket, "m1", "hello").await;
    let work = app.accept(None).await;
    app.agent_says(&work.agent, &work.task, "hi Ada").await;
    ada.socket
        .next_event_where("message", is_agent_message)
        .await;
    app.agent_ends(&work.agent, &work.task).await;
    ada.socket.next_event("chat:ended").await;
    // `flexbridge dev` started again with its old database and an
    // emulator of the same seed: the new account repeats the old SIDs.
    app.crash().await;
    app.replace_emulator(EmulatorConfig::from_seed(7).with_agents(2))
        .await;
    app.restart().await;
    let mut ada = crate::Customer {
        socket: app.tab(&ada.token, 0).await,
        ..ada
    };
    ada.socket.next_event("session").await;

    say(&mut ada.socket, "m2", "are you there?").await;

    let delivery = ada
        .socket
        .next_event_where("delivery", |d| d["clientMessageId"] == json!("m2"))
        .await;
    assert_eq!(delivery["status"], json!("delivered"), "{delivery}");
    let work = app.accept(None).await;
    ada.socket.next_event_where("agent:joined", |_| true).await;
    app.agent_says(&work.agent, &work.task, "yes, here").await;
    let reply = ada
        .socket
        .next_event_where("message", is_agent_message)
        .await;
    assert_eq!(reply["body"], json!("yes, here"));
    app.agent_ends(&work.agent, &work.task).await;
    ada.socket.next_event("chat:ended").await;
}

async fn an_agent_message_whose_webhook_was_dropped_arrives_before_the_next_one(
    backend: BackendKind,
) {
    let app = spawn_app(backend).await;
    let mut ada = app.customer("Ada").await;
    say(&mut ada.socket, "m1", "hello").await;
    let work = app.accept(None).await;
    ada.socket.next_event_where("agent:joined", |_| true).await;
    app.emulator_post(
        "/_emulator/faults/webhooks",
        json!({"kind": "drop", "count": 1, "event_type": app.flavour().message_event}),
    )
    .await;

    app.agent_says(&work.agent, &work.task, "first").await;
    app.agent_says(&work.agent, &work.task, "second").await;

    let first = ada
        .socket
        .next_event_where("message", is_agent_message)
        .await;
    let second = ada
        .socket
        .next_event_where("message", is_agent_message)
        .await;
    assert_eq!(
        (first["body"].clone(), second["body"].clone()),
        (json!("first"), json!("second"))
    );
    assert!(first["seq"].as_i64() < second["seq"].as_i64());
}

async fn started_anyway_with_a_wrong_credential_the_bridge_is_not_ready_and_customers_hear_of_the_delay()
 {
    let app = crate::spawn_app_with(flexbridge::dev::DevFlex::default(), |settings| {
        let RestAuth::ApiKey { sid, .. } = settings.twilio.rest_auth.clone() else {
            panic!("the test app uses the emulator's API key");
        };
        settings.twilio.rest_auth = RestAuth::ApiKey {
            sid,
            secret: "not-the-secret".to_owned().into(),
        };
        settings.skip_twilio_check = true;
    })
    .await;
    let mut ada = app.customer("Ada").await;

    let ready = app
        .http
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .expect("the bridge answers");
    let status = ready.status();
    let body = ready.text().await.expect("a body");
    say(&mut ada.socket, "m1", "hello?").await;
    let delivery = ada
        .socket
        .next_event_where("delivery", |d| d["clientMessageId"] == json!("m1"))
        .await;

    assert_eq!(status, reqwest::StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("Twilio"), "{body}");
    assert_eq!(delivery["status"], json!("delayed"), "{delivery}");
    assert!(delivery["error"].is_string(), "{delivery}");
    let metrics = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("flexbridge_twilio_auth_failures_total") && !l.ends_with(" 0")),
        "{metrics}"
    );
}

async fn an_agent_message_whose_webhook_was_dropped_arrives_with_the_periodic_resync() {
    let app = crate::spawn_app_with(flexbridge::dev::DevFlex::default(), |settings| {
        settings.outbox.resync_interval = std::time::Duration::from_millis(300);
    })
    .await;
    let mut ada = app.customer("Ada").await;
    say(&mut ada.socket, "m1", "hello").await;
    let work = app.accept(None).await;
    ada.socket.next_event_where("agent:joined", |_| true).await;
    app.emulator_post(
        "/_emulator/faults/webhooks",
        json!({"kind": "drop", "count": 1, "event_type": app.flavour().message_event}),
    )
    .await;

    app.agent_says(&work.agent, &work.task, "the only reply")
        .await;

    let reply = ada
        .socket
        .next_event_where("message", is_agent_message)
        .await;
    assert_eq!(reply["body"], json!("the only reply"));
}
