//! The customer side: a Socket.IO server (websocket and polling) speaking
//! the protocol of `docs/protocol.md` on namespace `/`.
//!
//! - [`events`]: every event and ack as serde types (the protocol, in code).
//! - `handlers`: authentication on connect and one handler per event.
//! - [`order`]: one socket's events are handled in the order they were sent.
//! - [`cluster`]: with `REDIS_URL`, rooms span every bridge (Redis adapter).
//!
//! A socket bound to a customer joins that customer's room
//! (`customer:<id>`); [`SocketFanout`] (the core's [`Fanout`]) emits to that
//! room only, so every tab of a customer hears everything of theirs and no
//! one else does. socketioxide has no connection-state recovery: a client
//! that reconnects gets what it missed from the store (`session`, from its
//! `lastSeq`).
//!
//! [`Customers`] is the side as startup sees it: the layer for the router,
//! the [`Fanout`] for the core, and `close`. Its adapter is chosen at start
//! (in-process rooms, or Redis when several bridges share rooms); the
//! handlers are generic over it.

pub mod cluster;
pub mod events;
mod handlers;
pub mod order;

use std::sync::Arc;

use axum::Router;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler as _;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{BroadcastError, SocketIo, SocketIoBuilder, TransportType};
use socketioxide_core::adapter::DefinedAdapter;
use url::Url;

use self::cluster::{ClusterAdapter, RedisFabric};
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

/// The Socket.IO server's settings, whatever its adapter.
fn builder() -> SocketIoBuilder {
    SocketIo::builder()
        .max_payload(MAX_PACKET_BYTES as u64)
        .ws_max_message_size(MAX_PACKET_BYTES)
        .ws_max_frame_size(MAX_PACKET_BYTES)
        .transports([TransportType::Polling, TransportType::Websocket])
}

/// The Socket.IO layer and its handle, rooms in this process. Attach the
/// namespace with [`attach`] once the core exists (the core needs the
/// handle to emit).
pub fn socket_io() -> (SocketIoLayer, SocketIo) {
    builder().build_layer()
}

/// The customer side of one bridge: a Socket.IO server whose rooms are
/// this process's (one bridge) or every bridge's (through Redis).
#[derive(Clone)]
pub enum Customers {
    Local(Side<LocalAdapter>),
    Cluster(Side<ClusterAdapter>),
}

/// A Socket.IO server on adapter `A`: its layer and its handle.
pub struct Side<A: Adapter> {
    layer: SocketIoLayer<A>,
    io: SocketIo<A>,
}

impl<A: Adapter> Clone for Side<A> {
    fn clone(&self) -> Self {
        Self {
            layer: self.layer.clone(),
            io: self.io.clone(),
        }
    }
}

impl Customers {
    /// Rooms in this process: the only bridge on its database.
    pub fn local() -> Self {
        let (layer, io) = socket_io();
        Self::Local(Side { layer, io })
    }

    /// Rooms on every bridge that shares the Redis at `url`.
    pub async fn cluster(url: &Url) -> anyhow::Result<Self> {
        let fabric = RedisFabric::connect(url).await?;
        let (layer, io) = builder()
            .with_adapter::<ClusterAdapter>(fabric.adapter())
            .build_layer();
        Ok(Self::Cluster(Side { layer, io }))
    }

    /// The core's way to reach customers.
    pub fn fanout(&self) -> Arc<dyn Fanout> {
        match self {
            Self::Local(side) => Arc::new(SocketFanout::new(side.io.clone())),
            Self::Cluster(side) => Arc::new(SocketFanout::new(side.io.clone())),
        }
    }

    /// Registers namespace `/` (on Redis: once its channels are subscribed).
    pub async fn attach(&self, bridge: Bridge) -> anyhow::Result<()> {
        match self {
            Self::Local(side) => attach(&side.io, bridge),
            Self::Cluster(side) => attach(&side.io, bridge)
                .await
                .map_err(|error| anyhow::anyhow!("subscribing to Redis: {error}"))?,
        }
        Ok(())
    }

    /// `router` with `/socket.io/` served.
    pub fn serve(&self, router: Router) -> Router {
        match self {
            Self::Local(side) => router.layer(side.layer.clone()),
            Self::Cluster(side) => router.layer(side.layer.clone()),
        }
    }

    /// Closes every socket's connection (clients reconnect, to another
    /// bridge if this one is going away) and the namespace (on Redis, its
    /// subscriptions). Emits after this reach no one and are harmless.
    pub async fn close(&self) {
        match self {
            Self::Local(side) => side.io.close().await,
            Self::Cluster(side) => side.io.close().await,
        }
    }
}

/// The room of one customer's sockets.
pub fn room_of(customer: &CustomerId) -> String {
    format!("customer:{customer}")
}

/// Registers namespace `/`: authentication middleware and connect handler.
/// What the adapter's start gives back: nothing in process, a future that
/// subscribes on Redis.
pub fn attach<A: Adapter + DefinedAdapter>(io: &SocketIo<A>, bridge: Bridge) -> A::InitRes {
    let on_connect = {
        let bridge = bridge.clone();
        move |socket: SocketRef<A>| handlers::on_connect(socket, bridge.clone())
    };
    let authenticate = move |socket: SocketRef<A>, TryData(auth): TryData<HandshakeAuth>| {
        handlers::authenticate(socket, auth, bridge.clone())
    };
    io.ns("/", on_connect.with(authenticate))
}

/// Registers `$handler` for `$event`: the socket, the event's place in the
/// socket's order, the payload (`TryData`: a bad one still reaches the
/// handler, which acks the error), the ack, and the core.
macro_rules! on {
    ($socket:expr, $bridge:expr, $event:expr, $handler:path, $request:ty) => {{
        let bridge = $bridge.clone();
        $socket.on(
            $event,
            move |s: SocketRef<A>,
                  InOrder(ticket): InOrder,
                  TryData(request): TryData<$request>,
                  ack: AckSender<A>| {
                $handler(s, ticket, request, ack, bridge.clone())
            },
        );
    }};
}

/// Every client event and its handler: the one place they are registered.
fn register_handlers<A: Adapter>(socket: &SocketRef<A>, bridge: &Bridge) {
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

/// The core's [`Fanout`]: emits to the customer's room (on every bridge,
/// with the Redis adapter).
pub struct SocketFanout<A: Adapter = LocalAdapter> {
    io: SocketIo<A>,
}

impl<A: Adapter> Clone for SocketFanout<A> {
    fn clone(&self) -> Self {
        Self {
            io: self.io.clone(),
        }
    }
}

impl<A: Adapter> SocketFanout<A> {
    pub fn new(io: SocketIo<A>) -> Self {
        Self { io }
    }

    async fn emit<T: serde::Serialize + ?Sized>(
        &self,
        customer: &CustomerId,
        event: &str,
        data: &T,
    ) {
        // No namespace once the sockets are closed at shutdown: nobody to tell.
        let Some(namespace) = self.io.of("/") else {
            return;
        };
        let room = room_of(customer);
        match namespace.clone().to(room.clone()).emit(event, data).await {
            Ok(()) => {}
            Err(BroadcastError::Adapter(error)) => {
                // Redis did not take it (counted by the driver): this
                // bridge's sockets still hear it; other bridges' catch up
                // from the store when they reconnect.
                tracing::warn!(%customer, event, %error, "fan-out to other bridges failed; told this bridge's sockets only");
                if let Err(error) = namespace.local().to(room).emit(event, data).await {
                    tracing::debug!(%customer, event, %error, "emit to a customer's room failed");
                }
            }
            Err(error) => {
                // A socket that closed mid-broadcast; it replays on reconnect.
                tracing::debug!(%customer, event, %error, "emit to a customer's room failed");
            }
        }
    }
}

#[async_trait::async_trait]
impl<A: Adapter> Fanout for SocketFanout<A> {
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
