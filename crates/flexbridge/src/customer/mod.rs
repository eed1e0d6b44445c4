//! The customer side: a Socket.IO server (websocket and polling) speaking
//! the protocol of `docs/protocol.md` on namespace `/`.
//!
//! - [`events`]: every event and ack as serde types (the protocol, in code).
//! - `handlers`: authentication on connect and one handler per event.
//! - [`order`]: one socket's events are handled in the order they were sent.
//! - [`engine`]: socketioxide's settings and what it keeps per connection.
//!
//! A socket bound to a customer joins that customer's room
//! (`customer:<id>`); [`SocketFanout`] (the core's [`Fanout`]) emits to that
//! room only, so every tab of a customer hears everything of theirs and no
//! one else does. socketioxide has no connection-state recovery: a client
//! that reconnects gets what it missed from the store (`session`, from its
//! `lastSeq`).
//!
//! Shutting down (`crate::startup` says the order): [`SocketFanout::stop_accepting`]
//! refuses new connections with `unavailable` (the protocol's "retry
//! later"); [`SocketFanout::close`] closes every socket's transport (a
//! transport close, after which socket.io-client reconnects by itself),
//! and from then on a notice is dropped, never emitted (the customer
//! replays it from the store on reconnect): a notice after close is a
//! no-op, never a panic.

pub mod engine;
pub mod events;
mod handlers;
pub mod order;
mod payload;
pub mod presence;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler as _;

pub use self::engine::socket_io;
use self::events::{
    AgentJoinedPayload, ChatEndedPayload, ConversationPayload, DeliveryPayload, MessagePayload,
    name,
};
use self::order::InOrder;
use crate::core::Bridge;
use crate::core::fanout::{Fanout, Notice};
use crate::core::ids::CustomerId;

/// Largest payload accepted from a client on either transport: an HTTP
/// long-polling body, or a websocket message (and frame). Bigger is
/// refused: polling answers an error, a websocket is closed.
pub const MAX_PACKET_BYTES: usize = 64 * 1024;

/// The room of one customer's sockets.
pub fn room_of(customer: &CustomerId) -> String {
    format!("customer:{customer}")
}

/// Registers namespace `/`: authentication middleware and connect handler.
/// `fanout` says whether new connections are taken (see the module doc).
pub fn attach(io: &SocketIo, bridge: Bridge, fanout: &SocketFanout) {
    let on_connect = {
        let bridge = bridge.clone();
        let presence = fanout.state.presence.clone();
        move |socket: SocketRef| handlers::on_connect(socket, bridge.clone(), presence.clone())
    };
    let state = fanout.state.clone();
    let authenticate = move |socket: SocketRef, TryData(auth): TryData<serde_json::Value>| {
        let accepting = state.accepting.load(Ordering::Acquire);
        handlers::authenticate(socket, auth, bridge.clone(), accepting)
    };
    io.ns("/", on_connect.with(authenticate));
}

/// Registers `$handler` for `$event`: the socket, the event's place in the
/// socket's order, the payload as JSON (`TryData`: a bad one still reaches
/// the handler, which reads it as the protocol says — an object — and acks
/// the error), the ack, and the core.
macro_rules! on {
    ($socket:expr, $bridge:expr, $event:expr, $handler:path) => {{
        let bridge = $bridge.clone();
        $socket.on(
            $event,
            move |s: SocketRef,
                  InOrder(ticket): InOrder,
                  TryData(request): TryData<serde_json::Value>,
                  ack: AckSender| { $handler(s, ticket, request, ack, bridge.clone()) },
        );
    }};
}

/// Every client event and its handler: the one place they are registered.
fn register_handlers(socket: &SocketRef, bridge: &Bridge) {
    on!(socket, bridge, name::REGISTER, handlers::register);
    on!(socket, bridge, name::MESSAGE, handlers::message);
    on!(socket, bridge, name::HISTORY, handlers::history);
    on!(socket, bridge, name::CHAT_END, handlers::chat_end);
}

/// The core's [`Fanout`]: emits to the customer's room. It also holds
/// the customer side's lifecycle (taking connections, sockets open).
#[derive(Clone)]
pub struct SocketFanout {
    io: SocketIo,
    state: Arc<Lifecycle>,
}

/// Where the customer side is in its life.
#[derive(Debug)]
struct Lifecycle {
    /// New connections are taken (until shutdown begins).
    accepting: AtomicBool,
    /// The sockets are open (until shutdown closes them).
    open: AtomicBool,
    /// Who is connected (the sockets and customers gauges).
    presence: Arc<presence::Presence>,
}

impl SocketFanout {
    pub fn new(io: SocketIo) -> Self {
        Self {
            io,
            state: Arc::new(Lifecycle {
                accepting: AtomicBool::new(true),
                open: AtomicBool::new(true),
                presence: Arc::default(),
            }),
        }
    }

    /// From now on a connection is refused with `unavailable` (retry
    /// later); connected sockets go on.
    pub fn stop_accepting(&self) {
        self.state.accepting.store(false, Ordering::Release);
    }

    /// Closes every socket's transport (clients reconnect, to another
    /// instance or to this one restarted) and drops every later notice.
    /// Waits at most `grace` for the transports to close.
    pub async fn close(&self, grace: std::time::Duration) {
        self.stop_accepting();
        self.state.open.store(false, Ordering::Release);
        if tokio::time::timeout(grace, self.io.close()).await.is_err() {
            tracing::warn!("customer connections still closing after the grace period");
        }
    }

    async fn emit<T: serde::Serialize + ?Sized>(
        &self,
        customer: &CustomerId,
        event: &str,
        data: &T,
    ) {
        // Closed (shutting down): the customer replays it from the store.
        // `of` rather than `to`: after `close` there is no namespace, and
        // `io.to` would panic.
        let Some(namespace) = self
            .state
            .open
            .load(Ordering::Acquire)
            .then(|| self.io.of("/"))
            .flatten()
        else {
            tracing::debug!(%customer, event, "customer sockets closed; not told (replayed on reconnect)");
            return;
        };
        if let Err(error) = namespace.to(room_of(customer)).emit(event, data).await {
            // A socket that closed mid-broadcast; it replays on reconnect.
            tracing::debug!(%customer, event, %error, "emit to a customer's room failed");
        }
    }
}

#[async_trait::async_trait]
impl Fanout for SocketFanout {
    async fn notify(&self, customer: &CustomerId, notice: Notice) {
        match &notice {
            Notice::Message(message) => {
                self.emit(customer, name::MESSAGE, &MessagePayload::from(message))
                    .await;
            }
            Notice::Conversation(conversation) => {
                self.emit(
                    customer,
                    name::CONVERSATION,
                    &ConversationPayload::from(conversation),
                )
                .await;
            }
            Notice::AgentJoined {
                conversation,
                agent,
            } => {
                let payload = AgentJoinedPayload {
                    conversation_id: conversation.id.to_string(),
                    agent_name: agent.clone(),
                };
                self.emit(customer, name::AGENT_JOINED, &payload).await;
            }
            Notice::ChatEnded {
                conversation,
                reason,
            } => {
                let ended_by = match reason {
                    crate::core::conversation::CloseReason::AgentEnded => {
                        conversation.agent_name.clone()
                    }
                    _ => None,
                };
                let payload = ChatEndedPayload {
                    conversation_id: conversation.id.to_string(),
                    reason: reason.as_str(),
                    ended_by,
                };
                self.emit(customer, name::CHAT_ENDED, &payload).await;
            }
            Notice::Delivery {
                seq,
                client_msg_id,
                outcome,
            } => {
                let payload = DeliveryPayload::new(seq.0, client_msg_id.clone(), outcome);
                self.emit(customer, name::DELIVERY, &payload).await;
            }
        }
    }
}
