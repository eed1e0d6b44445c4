//! The floor: the least a Socket.IO → Flex relay can do, built from the same
//! libraries as the bridge (axum, socketioxide, reqwest), so a benchmark run
//! can print bridge / floor for the same load.
//!
//! It speaks the subset of docs/protocol.md the generator uses:
//! - `register {name}` only names the socket (no Flex call, like the bridge);
//! - the first `message` opens the customer's Flex chat channel
//!   (`POST /v1/Channels`) and adds one `onMessageSent` channel webhook back
//!   to the floor (so the emulator does the same work per message as for the
//!   bridge: store, Studio/task bookkeeping, one signed webhook delivery);
//! - every `message {clientMessageId, body}` is one `POST …/Messages` with
//!   `X-Twilio-Webhook-Enabled: true`, acked `{ok}` once Twilio answered 201;
//! - `POST /webhooks/chat`: an agent's message (`Source=SDK`) is emitted to
//!   the channel's room; our own (`Source=API`) is ignored.
//!
//! What it leaves out, on purpose: no store, no outbox, no retries, no
//! identity or resume tokens, no signature check, no ordering guarantee
//! beyond one emit at a time per socket. That is the floor, not a product.
//!
//! With no Twilio configured (`--echo`) it acks at once: what socketioxide
//! and the generator do alone, the ceiling of the measurement itself.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use anyhow::Context as _;
use axum::extract::{Form, State as AxumState};
use axum::http::StatusCode;
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use tokio::net::TcpListener;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::twilio::Twilio;

/// Where the floor relays to; `None` is echo mode.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub twilio: Twilio,
    pub flex_flow_sid: String,
    pub chat_service_sid: String,
}

struct Floor {
    upstream: Option<Upstream>,
    /// Where the emulator sends `onMessageSent` (`{public url}/webhooks/chat`).
    webhook_url: String,
    next_customer: AtomicU64,
    next_seq: AtomicI64,
}

/// What one socket registered as (socket extension). The channel is opened
/// by the first message, once, like the bridge opens a conversation.
#[derive(Debug, Clone)]
struct Session {
    identity: String,
    name: String,
    channel_sid: Arc<OnceCell<String>>,
}

#[derive(Debug, Deserialize)]
struct RegisterIn {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageIn {
    client_message_id: String,
    body: String,
}

/// The `onMessageSent` parameters the floor reads.
#[derive(Debug, Deserialize)]
struct ChatHook {
    #[serde(rename = "EventType")]
    event_type: String,
    #[serde(rename = "Source", default)]
    source: String,
    #[serde(rename = "ChannelSid", default)]
    channel_sid: String,
    #[serde(rename = "Body", default)]
    body: String,
    #[serde(rename = "From", default)]
    from: String,
}

fn error(code: &str, message: impl std::fmt::Display) -> Value {
    json!({ "error": { "code": code, "message": message.to_string() } })
}

fn answer(ack: AckSender, value: &Value) {
    if let Err(e) = ack.send(value) {
        tracing::warn!(error = %e, "could not send an ack");
    }
}

/// Installs the event handlers. It runs as a connect *middleware* because
/// socketioxide awaits middlewares before it answers `40{sid}`, while the
/// connect handler itself is spawned after the answer: handlers installed
/// there race a client that emits at once, and an event that wins the race
/// is dropped without an ack (the load generator found this: 15 of 200
/// `register`s lost on a busy machine).
async fn install_handlers(socket: SocketRef) -> Result<(), Infallible> {
    socket.on("register", register);
    socket.on("message", message);
    Ok(())
}

async fn on_connect() {}

async fn register(
    socket: SocketRef,
    ack: AckSender,
    State(floor): State<Arc<Floor>>,
    TryData(data): TryData<RegisterIn>,
) {
    let data = match data {
        Ok(data) => data,
        Err(e) => return answer(ack, &error("invalid_payload", e)),
    };
    let number = floor.next_customer.fetch_add(1, Ordering::Relaxed);
    let identity = format!("floor-{number}");
    socket.extensions.insert(Session {
        identity: identity.clone(),
        name: data.name.clone(),
        channel_sid: Arc::new(OnceCell::new()),
    });
    answer(
        ack,
        &json!({ "ok": { "customerId": identity, "token": identity, "name": data.name } }),
    );
}

async fn message(
    socket: SocketRef,
    ack: AckSender,
    State(floor): State<Arc<Floor>>,
    TryData(data): TryData<MessageIn>,
) {
    let data = match data {
        Ok(data) => data,
        Err(e) => return answer(ack, &error("invalid_payload", e)),
    };
    let Some(session) = socket.extensions.get::<Session>() else {
        return answer(ack, &error("not_registered", "register first"));
    };
    let mut conversation = None;
    if let Some(up) = &floor.upstream {
        let opened = session
            .channel_sid
            .get_or_try_init(|| async {
                let channel = open_channel(up, &session, &floor.webhook_url).await?;
                socket.join(channel.clone());
                anyhow::Ok(channel)
            })
            .await;
        let channel = match opened {
            Ok(channel) => channel,
            Err(e) => return answer(ack, &error("internal", format!("{e:#}"))),
        };
        let attributes = json!({ "clientMessageId": data.client_message_id }).to_string();
        let sent = up
            .twilio
            .create_message(
                &up.chat_service_sid,
                channel,
                &session.identity,
                &data.body,
                &attributes,
            )
            .await;
        if let Err(e) = sent {
            return answer(ack, &error("internal", format!("{e:#}")));
        }
        conversation = Some(channel.clone());
    }
    let seq = floor.next_seq.fetch_add(1, Ordering::Relaxed) + 1;
    answer(
        ack,
        &json!({ "ok": {
            "seq": seq,
            "clientMessageId": data.client_message_id,
            "conversationId": conversation,
        }}),
    );
}

/// `POST /v1/Channels`, then the `onMessageSent` webhook back to the floor.
async fn open_channel(
    up: &Upstream,
    session: &Session,
    webhook_url: &str,
) -> anyhow::Result<String> {
    let channel = up
        .twilio
        .create_flex_channel(&up.flex_flow_sid, &session.identity, &session.name)
        .await?;
    up.twilio
        .add_message_webhook(&up.chat_service_sid, &channel, webhook_url)
        .await?;
    Ok(channel)
}

async fn chat_webhook(
    AxumState(io): AxumState<SocketIo>,
    Form(hook): Form<ChatHook>,
) -> StatusCode {
    if hook.event_type == "onMessageSent" && hook.source == "SDK" {
        let event = json!({
            "direction": "agent",
            "author": hook.from,
            "body": hook.body,
            "conversationId": hook.channel_sid,
        });
        if let Err(e) = io.to(hook.channel_sid).emit("message", &event).await {
            tracing::warn!(error = %e, "could not emit an agent message");
        }
    }
    StatusCode::OK
}

/// Serves the floor on `listener` until `shutdown`. `public_url` is the base
/// of its webhook URL (default: the listener's own address).
pub async fn run(
    listener: TcpListener,
    upstream: Option<Upstream>,
    public_url: Option<String>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let address = listener.local_addr().context("reading the bound address")?;
    let public_url = public_url.unwrap_or_else(|| format!("http://{address}"));
    let floor = Arc::new(Floor {
        upstream,
        webhook_url: format!("{}/webhooks/chat", public_url.trim_end_matches('/')),
        next_customer: AtomicU64::new(1),
        next_seq: AtomicI64::new(0),
    });
    let (layer, io) = SocketIo::builder().with_state(floor).build_layer();
    io.ns("/", on_connect.with(install_handlers));
    let app = axum::Router::new()
        .route("/webhooks/chat", post(chat_webhook))
        .with_state(io)
        .layer(layer);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serving the floor")
}
