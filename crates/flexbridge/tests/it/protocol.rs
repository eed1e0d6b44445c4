//! The customer protocol's refusals (docs/protocol.md): payloads that are
//! not what an event takes are refused with `invalid_payload` in the
//! protocol's words and change nothing; a retried message is answered
//! with its original ack whatever the rate limit says, and costs nothing.

use flexbridge::core::ids::Seq;
use flexbridge::core::rate_limit::RateLimit;
use flexbridge::dev::DevFlex;
use flexbridge::flex::BackendKind;
use serde_json::{Value, json};

use crate::{SioClient, TestApp, say, spawn_app, spawn_app_with};

crate::on_both_databases!(
    an_array_message_is_refused_and_nothing_is_stored,
    an_array_chat_end_is_refused_and_the_chat_goes_on,
    a_wrong_field_is_named_in_the_protocols_words,
    a_handshake_auth_that_is_an_array_is_refused,
    a_retried_message_gets_its_original_ack_when_the_customer_is_rate_limited,
    retries_of_a_stored_message_cost_no_rate_tokens,
);

/// The ack's error code and message.
fn refusal(ack: &Value) -> (String, String) {
    let code = ack["error"]["code"].as_str().unwrap_or_default().to_owned();
    let message = ack["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (code, message)
}

/// Words a client never needs to read: Rust's and serde's.
fn assert_in_protocol_words(message: &str) {
    for jargon in [
        "struct", "i64", "u32", "String", "Request", "sequence", "map", "serde",
    ] {
        assert!(
            !message.contains(jargon),
            "`{message}` speaks of `{jargon}`"
        );
    }
}

async fn an_array_message_is_refused_and_nothing_is_stored() {
    let app = spawn_app(BackendKind::Conversations).await;
    let mut ada = app.customer("Ada").await;

    let ack = ada
        .socket
        .emit_with_ack("message", json!(["m1", "hello"]))
        .await;

    let (code, message) = refusal(&ack);
    assert_eq!(code, "invalid_payload", "{ack}");
    assert!(message.contains("object"), "{message}");
    assert_in_protocol_words(&message);
    let stored = app
        .store
        .messages()
        .since(&ada.id, Seq(0), 10)
        .await
        .expect("read");
    assert!(stored.is_empty(), "{stored:?}");
}

async fn an_array_chat_end_is_refused_and_the_chat_goes_on() {
    let app = spawn_app(BackendKind::Conversations).await;
    let mut ada = app.customer("Ada").await;
    say(&mut ada.socket, "m1", "hello").await;

    let ack = ada.socket.emit_with_ack("chat:end", json!([])).await;

    let (code, message) = refusal(&ack);
    assert_eq!(code, "invalid_payload", "{ack}");
    assert_in_protocol_words(&message);
    assert!(app.conversation_of(&ada.id).await.state.is_live());
}

async fn a_wrong_field_is_named_in_the_protocols_words() {
    let app = spawn_app(BackendKind::Conversations).await;
    let mut ada = app.customer("Ada").await;

    let cases = [
        ("history", json!([0, 10]), None),
        ("history", json!({"since": "yesterday"}), Some("since")),
        ("history", json!({"limit": 2.5}), Some("limit")),
        ("message", json!({"body": "hi"}), Some("clientMessageId")),
        (
            "message",
            json!({"clientMessageId": "m1", "body": 5}),
            Some("body"),
        ),
        ("register", json!("Ada"), None),
    ];
    for (event, payload, field) in cases {
        let ack = ada.socket.emit_with_ack(event, payload.clone()).await;
        let (code, message) = refusal(&ack);
        let expected = if event == "register" {
            // This socket has a customer already; that is said first.
            "already_registered"
        } else {
            "invalid_payload"
        };
        assert_eq!(code, expected, "{event} {payload}: {ack}");
        if let Some(field) = field {
            assert!(message.contains(field), "{event} {payload}: {message}");
        }
        assert_in_protocol_words(&message);
    }
    let mut anonymous = SioClient::connect(&app.url, json!({}))
        .await
        .expect("anonymous connect");
    let ack = anonymous.emit_with_ack("register", json!(["Ada"])).await;
    let (code, message) = refusal(&ack);
    assert_eq!(code, "invalid_payload", "{ack}");
    assert_in_protocol_words(&message);
}

async fn a_handshake_auth_that_is_an_array_is_refused() {
    let app = spawn_app(BackendKind::Conversations).await;
    let ada = app.customer("Ada").await;

    let refused = SioClient::connect(&app.url, json!([ada.token, 0])).await;

    assert_eq!(refused.err().as_deref(), Some("invalid_auth"));
}

/// A bridge whose customers may send `burst` messages and then (almost)
/// none.
async fn tightly_limited(burst: f64) -> TestApp {
    spawn_app_with(
        DevFlex {
            backend: BackendKind::Conversations,
            ..DevFlex::default()
        },
        |settings| {
            settings.rate_limit = RateLimit {
                burst,
                per_second: 0.001,
            }
        },
    )
    .await
}

async fn a_retried_message_gets_its_original_ack_when_the_customer_is_rate_limited() {
    let app = tightly_limited(2.0).await;
    let mut ada = app.customer("Ada").await;
    let first = say(&mut ada.socket, "m1", "one").await;
    say(&mut ada.socket, "m2", "two").await;
    let over = ada
        .socket
        .emit_with_ack("message", json!({"clientMessageId": "m3", "body": "three"}))
        .await;
    assert_eq!(refusal(&over).0, "rate_limited", "{over}");

    let retried = ada
        .socket
        .emit_with_ack("message", json!({"clientMessageId": "m1", "body": "one"}))
        .await;

    assert_eq!(retried["ok"], first, "{retried}");
}

async fn retries_of_a_stored_message_cost_no_rate_tokens() {
    let app = tightly_limited(2.0).await;
    let mut ada = app.customer("Ada").await;
    let first = say(&mut ada.socket, "m1", "one").await;

    for _ in 0..3 {
        let retried = say(&mut ada.socket, "m1", "one").await;
        assert_eq!(retried, first);
    }

    // The second token is still there.
    let second = say(&mut ada.socket, "m2", "two").await;
    assert_ne!(second["seq"], first["seq"]);
}
