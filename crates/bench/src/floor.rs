//! The floor: the least a Socket.IO → Flex relay can do, built from the same
//! libraries as the bridge (axum, socketioxide, reqwest), so a benchmark run
//! can print bridge / floor for the same load.
//!
//! It speaks the subset of docs/protocol.md the generator uses, on either
//! backend (`--backend`, the bridge's `FLEX_BACKEND`; see [`Upstream`]):
//! - `register {name}` only names the socket (no Flex call, like the bridge);
//! - the first `message` opens the customer's place in Flex and one webhook
//!   back to the floor for its messages, so the emulator does the same work
//!   per message as for the bridge (store, routing bookkeeping, one signed
//!   webhook delivery). Chat: the Flex chat channel (`POST /v1/Channels`)
//!   and an `onMessageSent` channel webhook. Conversations: the
//!   conversation, the customer as participant, an `onMessageAdded` scoped
//!   webhook and the interaction that routes it (`POST /v1/Interactions`);
//! - every `message {clientMessageId, body}` is one `POST …/Messages` with
//!   `X-Twilio-Webhook-Enabled: true`, acked `{ok}` once Twilio answered 201;
//! - `POST /webhooks/chat` (`onMessageSent`) and `POST /webhooks/conversations`
//!   (`onMessageAdded`): an agent's message (`Source=SDK`) is emitted to the
//!   channel's or conversation's room; our own (`Source=API`) is ignored.
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

use crate::cli::Backend;
use crate::twilio::{Upstream, webhook_path};

struct Floor {
    /// Where the floor relays to; `None` is echo mode.
    upstream: Option<Upstream>,
    /// Where the emulator sends the webhooks of the upstream's backend
    /// (`{public url}/webhooks/{chat|conversations}`).
    webhook_url: String,
    next_customer: AtomicU64,
    next_seq: AtomicI64,
}

/// What one socket registered as (socket extension). The channel (or
/// conversation) is opened by the first message, once, like the bridge
/// opens a conversation.
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

/// The `onMessageAdded` parameters the floor reads.
#[derive(Debug, Deserialize)]
struct ConversationsHook {
    #[serde(rename = "EventType")]
    event_type: String,
    #[serde(rename = "Source", default)]
    source: String,
    #[serde(rename = "ConversationSid", default)]
    conversation_sid: String,
    #[serde(rename = "Body", default)]
    body: String,
    #[serde(rename = "Author", default)]
    author: String,
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
                let channel = up
                    .open(&session.identity, &session.name, &floor.webhook_url)
                    .await?;
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
            .send(channel, &session.identity, &data.body, &attributes)
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

/// Emits an agent's message to the room of its channel or conversation.
async fn to_customer(io: &SocketIo, room: String, author: String, body: String) {
    let event = json!({
        "direction": "agent",
        "author": author,
        "body": body,
        "conversationId": room,
    });
    if let Err(e) = io.to(room).emit("message", &event).await {
        tracing::warn!(error = %e, "could not emit an agent message");
    }
}

async fn chat_webhook(
    AxumState(io): AxumState<SocketIo>,
    Form(hook): Form<ChatHook>,
) -> StatusCode {
    if hook.event_type == "onMessageSent" && hook.source == "SDK" {
        to_customer(&io, hook.channel_sid, hook.from, hook.body).await;
    }
    StatusCode::OK
}

async fn conversations_webhook(
    AxumState(io): AxumState<SocketIo>,
    Form(hook): Form<ConversationsHook>,
) -> StatusCode {
    if hook.event_type == "onMessageAdded" && hook.source == "SDK" {
        to_customer(&io, hook.conversation_sid, hook.author, hook.body).await;
    }
    StatusCode::OK
}

/// Serves the floor on `listener` until `shutdown`. `public_url` is the base
/// of its webhook URL (default: the listener's own address). Both webhook
/// routes answer 200 whatever the backend (scenario 4b uses the floor as a
/// sink).
pub async fn run(
    listener: TcpListener,
    upstream: Option<Upstream>,
    public_url: Option<String>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let address = listener.local_addr().context("reading the bound address")?;
    let public_url = public_url.unwrap_or_else(|| format!("http://{address}"));
    let path = upstream
        .as_ref()
        .map_or(webhook_path(Backend::Chat), |up| webhook_path(up.backend()));
    let floor = Arc::new(Floor {
        upstream,
        webhook_url: format!("{}{path}", public_url.trim_end_matches('/')),
        next_customer: AtomicU64::new(1),
        next_seq: AtomicI64::new(0),
    });
    let (layer, io) = SocketIo::builder().with_state(floor).build_layer();
    io.ns("/", on_connect.with(install_handlers));
    let app = axum::Router::new()
        .route(webhook_path(Backend::Chat), post(chat_webhook))
        .route(
            webhook_path(Backend::Conversations),
            post(conversations_webhook),
        )
        .with_state(io)
        .layer(layer);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("serving the floor")
}
