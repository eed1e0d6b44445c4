//! The load generator's Socket.IO client against a real socketioxide server,
//! over each transport (websocket, long-polling): handshake with auth, acks
//! (many in flight over many sockets, each routed to its emitter),
//! server-pushed events, connect_error, and pings answered (the server
//! drops a client that does not pong).

use std::time::Duration;

use flexbridge_bench::sio::{Client, ClientError, Dial, Transport};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use tokio::net::TcpListener;

const T: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Refused;
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid_token")
    }
}
impl std::error::Error for Refused {}

/// Checks the auth and installs the handlers. A middleware, because
/// socketioxide runs it before answering the connect (the connect handler
/// is spawned after the answer and would race our first emit).
async fn check_auth_and_install(
    socket: SocketRef,
    TryData(auth): TryData<Value>,
) -> Result<(), Refused> {
    let auth = auth.unwrap_or(Value::Null);
    if auth.get("token").and_then(Value::as_str) == Some("bad") {
        return Err(Refused);
    }
    socket.on(
        "echo",
        async |ack: AckSender, TryData(data): TryData<Value>| {
            let reply = match data {
                Ok(data) => json!({ "ok": data }),
                Err(e) => {
                    json!({ "error": { "code": "invalid_payload", "message": e.to_string() } })
                }
            };
            ack.send(&reply).expect("ack sent");
        },
    );
    socket.on(
        "push",
        async |socket: SocketRef, TryData(data): TryData<Value>| {
            socket
                .emit("pushed", &data.unwrap_or(Value::Null))
                .expect("emit");
        },
    );
    socket.on("whoami", async move |ack: AckSender| {
        ack.send(&auth).expect("ack sent");
    });
    Ok(())
}

async fn on_connect() {}

/// A socketioxide server on port 0 that pings every 100 ms and gives up on a
/// client after 500 ms without a pong (a pong may wait behind a POST of a
/// busy polling client on a loaded machine).
async fn spawn_server() -> String {
    let (layer, io) = SocketIo::builder()
        .ping_interval(Duration::from_millis(100))
        .ping_timeout(Duration::from_millis(500))
        .build_layer();
    io.ns("/", on_connect.with(check_auth_and_install));
    let app = axum::Router::new().layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

const TRANSPORTS: [Transport; 2] = [Transport::Websocket, Transport::Polling];

async fn connect(
    url: &str,
    auth: Option<&Value>,
    transport: Transport,
) -> Result<Client, ClientError> {
    let dial = Dial {
        transport,
        local_ip: None,
    };
    Client::connect_with(url, auth, dial, T).await
}

#[tokio::test]
async fn an_ack_carries_back_what_was_emitted_and_the_auth_reaches_the_server() {
    for transport in TRANSPORTS {
        let url = spawn_server().await;
        let client = connect(&url, Some(&json!({"token": "good"})), transport)
            .await
            .unwrap();
        assert!(!client.sid().is_empty());

        let ack = client
            .emit_with_ack("echo", &json!({"body": "hé \"quoted\""}), T)
            .await
            .unwrap();
        assert_eq!(ack.args, vec![json!({"ok": {"body": "hé \"quoted\""}})]);

        let ack = client.emit_with_ack("whoami", &json!({}), T).await.unwrap();
        assert_eq!(ack.args, vec![json!({"token": "good"})]);
    }
}

#[tokio::test]
async fn a_refused_auth_is_a_connect_error_with_the_servers_message() {
    for transport in TRANSPORTS {
        let url = spawn_server().await;
        let err = connect(&url, Some(&json!({"token": "bad"})), transport)
            .await
            .unwrap_err();
        match err {
            ClientError::ConnectError(data) => assert_eq!(data["message"], "invalid_token"),
            other => panic!("{transport:?}: expected a connect_error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn server_events_arrive_in_order() {
    for transport in TRANSPORTS {
        let url = spawn_server().await;
        let mut client = connect(&url, None, transport).await.unwrap();
        for i in 0..5 {
            client.emit("push", &json!({ "i": i })).unwrap();
        }
        for i in 0..5 {
            let event = tokio::time::timeout(T, client.next_event())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(event.name, "pushed");
            assert_eq!(event.args, vec![json!({ "i": i })]);
        }
    }
}

#[tokio::test]
async fn many_sockets_with_many_acks_in_flight_each_get_their_own_answers() {
    for transport in TRANSPORTS {
        let url = spawn_server().await;
        let mut sockets = Vec::new();
        for _ in 0..50 {
            sockets.push(connect(&url, None, transport).await.unwrap());
        }
        let mut tasks = Vec::new();
        for (s, client) in sockets.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                let emits = (0..20).map(|m| {
                    let client = &client;
                    async move {
                        let ack = client
                            .emit_with_ack("echo", &json!({ "s": s, "m": m }), T)
                            .await
                            .unwrap();
                        assert_eq!(ack.args, vec![json!({"ok": { "s": s, "m": m }})]);
                    }
                });
                futures::future::join_all(emits).await.len()
            }));
        }
        let mut acked = 0;
        for task in tasks {
            acked += task.await.unwrap();
        }
        assert_eq!(acked, 50 * 20);
    }
}

#[tokio::test]
async fn pings_are_answered_so_an_idle_connection_stays_open() {
    for transport in TRANSPORTS {
        let url = spawn_server().await;
        let client = connect(&url, None, transport).await.unwrap();
        // Ten ping intervals; without pongs the server closes after ~600 ms.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let ack = client
            .emit_with_ack("echo", &json!("still here"), T)
            .await
            .unwrap_or_else(|e| panic!("{transport:?}: {e}"));
        assert_eq!(ack.args, vec![json!({"ok": "still here"})]);
    }
}

#[tokio::test]
async fn a_client_can_connect_from_another_loopback_address() {
    let url = spawn_server().await;
    for transport in TRANSPORTS {
        let dial = Dial {
            transport,
            local_ip: Some("127.0.0.2".parse().unwrap()),
        };
        let client = Client::connect_with(&url, None, dial, T).await.unwrap();
        let ack = client.emit_with_ack("echo", &json!(1), T).await.unwrap();
        assert_eq!(ack.args, vec![json!({"ok": 1})], "{transport:?}");
    }
}
