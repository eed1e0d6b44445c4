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

pub mod engine;
pub mod events;
mod handlers;
pub mod order;

use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler as _;

pub use self::engine::socket_io;
use self::events::{
    AgentJoinedPayload, ChatEndedPayload, ConversationPayload, DeliveryPayload, EndChatRequest,
    HandshakeAuth, HistoryRequest, MessagePayload, MessageRequest, RegisterRequest, name,
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
pub fn attach(io: &SocketIo, bridge: Bridge) {
    let on_connect = {
        let bridge = bridge.clone();
        move |socket: SocketRef| handlers::on_connect(socket, bridge.clone())
    };
    let authenticate = move |socket: SocketRef, TryData(auth): TryData<HandshakeAuth>| {
        handlers::authenticate(socket, auth, bridge.clone())
    };
    io.ns("/", on_connect.with(authenticate));
}

/// Registers `$handler` for `$event`: the socket, the event's place in the
/// socket's order, the payload (`TryData`: a bad one still reaches the
/// handler, which acks the error), the ack, and the core.
macro_rules! on {
    ($socket:expr, $bridge:expr, $event:expr, $handler:path, $request:ty) => {{
        let bridge = $bridge.clone();
        $socket.on(
            $event,
            move |s: SocketRef,
                  InOrder(ticket): InOrder,
                  TryData(request): TryData<$request>,
                  ack: AckSender| { $handler(s, ticket, request, ack, bridge.clone()) },
        );
    }};
}

/// Every client event and its handler: the one place they are registered.
fn register_handlers(socket: &SocketRef, bridge: &Bridge) {
    on!(
        socket,
        bridge,
        name::REGISTER,
        handlers::register,
        RegisterRequest
    );
    on!(
        socket,
        bridge,
        name::MESSAGE,
        handlers::message,
        MessageRequest
    );
    on!(
        socket,
        bridge,
        name::HISTORY,
        handlers::history,
        HistoryRequest
    );
    on!(
        socket,
        bridge,
        name::CHAT_END,
        handlers::chat_end,
        EndChatRequest
    );
}

/// The core's [`Fanout`]: emits to the customer's room.
#[derive(Clone)]
pub struct SocketFanout {
    io: SocketIo,
}

impl SocketFanout {
    pub fn new(io: SocketIo) -> Self {
        Self { io }
    }

    async fn emit<T: serde::Serialize + ?Sized>(
        &self,
        customer: &CustomerId,
        event: &str,
        data: &T,
    ) {
        if let Err(error) = self.io.to(room_of(customer)).emit(event, data).await {
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
