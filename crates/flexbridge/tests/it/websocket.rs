//! The websocket transport: a frame over the 64 KiB payload limit is
//! refused (the connection closes) without harming the server; frames
//! under it are handled as over polling.

use std::time::Duration;

use flexbridge::flex::BackendKind;
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{say, spawn_app};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens an Engine.IO websocket and connects namespace `/`.
async fn connect(base: &str) -> Socket {
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        base.replacen("http://", "ws://", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("the websocket opens");
    let open = next_text(&mut socket).await.expect("the open packet");
    assert!(open.starts_with('0'), "{open}");
    socket
        .send(Message::text("40"))
        .await
        .expect("connect sent");
    let connected = next_text(&mut socket).await.expect("connected");
    assert!(connected.starts_with("40"), "{connected}");
    socket
}

/// The next text frame, or `None` once the connection is closed. An
/// Engine.IO ping (`2`, which the server may send at any time, even before
/// it answers the namespace connect) is answered (`3`) and skipped.
async fn next_text(socket: &mut Socket) -> Option<String> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the server answers in time");
        match frame {
            Some(Ok(Message::Text(text))) if text.as_str() == "2" => {
                let _ = socket.send(Message::text("3")).await;
            }
            Some(Ok(Message::Text(text))) => return Some(text.to_string()),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Emits `event` with ack id `id`; the ack's argument.
async fn emit(socket: &mut Socket, id: u32, event: &str, data: Value) -> Value {
    let packet = format!("42{id}{}", json!([event, data]));
    socket.send(Message::text(packet)).await.expect("sent");
    let prefix = format!("43{id}");
    loop {
        let text = next_text(socket).await.expect("an ack");
        if let Some(rest) = text.strip_prefix(&prefix) {
            let ack: Value = serde_json::from_str(rest).expect("JSON");
            return ack[0].clone();
        }
    }
}

#[tokio::test]
async fn an_oversized_websocket_frame_is_refused_and_the_server_goes_on() {
    let app = spawn_app(BackendKind::Conversations).await;
    let mut socket = connect(&app.url).await;
    let registered = emit(&mut socket, 0, "register", json!({"name": "Ada"})).await;
    assert!(registered["ok"].is_object(), "{registered}");

    let body = "a".repeat(70 * 1024);
    let oversized = format!(
        "421{}",
        json!(["message", {"clientMessageId": "big", "body": body}])
    );
    let _ = socket.send(Message::text(oversized)).await;

    // The server closes the connection (a timeout here fails the test).
    while let Some(text) = next_text(&mut socket).await {
        assert!(
            !text.starts_with("431"),
            "the oversized event was handled: {text}"
        );
    }
    let customer = flexbridge::core::ids::CustomerId::parse(
        registered["ok"]["customerId"].as_str().expect("an id"),
    )
    .expect("a customer id");
    let stored = app
        .store
        .messages()
        .since(&customer, flexbridge::core::ids::Seq(0), 10)
        .await
        .expect("the store answers");
    assert!(
        stored.is_empty(),
        "the oversized message was stored: {stored:?}"
    );

    // The server goes on: a new websocket works, and a frame under the limit
    // is validated as over polling.
    let mut again = connect(&app.url).await;
    emit(&mut again, 0, "register", json!({"name": "Bob"})).await;
    let long = emit(
        &mut again,
        1,
        "message",
        json!({"clientMessageId": "long", "body": "b".repeat(2000)}),
    )
    .await;
    assert_eq!(long["error"]["code"], json!("message_too_long"));
    let mut ada = app.customer("Ada").await;
    say(&mut ada.socket, "m1", "hello").await;
}
