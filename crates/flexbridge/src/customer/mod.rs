//! The customer side: a Socket.IO server (websocket and polling) speaking
//! the protocol of `docs/protocol.md` on namespace `/`.
//!
//! - [`events`]: every event and ack as serde types (the protocol, in code).
//! - `handlers`: authentication on connect and one handler per event.
//! - [`order`]: one socket's events are handled in the order they were sent.
//! - [`engine`]: socketioxide's settings and what it keeps per connection.
//! - [`cluster`]: with `REDIS_URL`, rooms span every bridge (Redis adapter).
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
//!
//! [`Customers`] is the side as startup sees it: the layer for the router,
//! the [`Fanout`] for the core, and the lifecycle above. Its adapter is
//! chosen at start (in-process rooms, or Redis when several bridges share
//! rooms); the handlers and [`SocketFanout`] are generic over it.

pub mod cluster;
pub mod engine;
pub mod events;
mod handlers;
pub mod order;
mod payload;
pub mod presence;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler as _;
use socketioxide::{BroadcastError, SocketIo};
use socketioxide_core::adapter::DefinedAdapter;
use url::Url;

use self::cluster::{ClusterAdapter, RedisFabric};
pub use self::engine::socket_io;
use self::engine::{CustomerLayer, builder};
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

/// The customer side of one bridge: a Socket.IO server whose rooms are
/// this process's (one bridge) or every bridge's (through Redis).
#[derive(Clone)]
pub enum Customers {
    Local(Side<LocalAdapter>),
    Cluster(Side<ClusterAdapter>, RedisFabric),
}

/// A Socket.IO server on adapter `A`: its layer and its fan-out (which
/// holds the handle).
pub struct Side<A: Adapter> {
    layer: CustomerLayer<A>,
    fanout: SocketFanout<A>,
}

impl<A: Adapter> Clone for Side<A> {
    fn clone(&self) -> Self {
        Self {
            layer: self.layer.clone(),
            fanout: self.fanout.clone(),
        }
    }
}

/// `$body` with `$side` bound to either variant's [`Side`].
macro_rules! each_side {
    ($customers:expr, $side:ident => $body:expr) => {
        match $customers {
            Customers::Local($side) => $body,
            Customers::Cluster($side, _) => $body,
        }
    };
}

impl Customers {
    /// Rooms in this process: the only bridge on its database.
    pub fn local() -> Self {
        let (layer, io) = socket_io();
        Self::Local(Side {
            layer,
            fanout: SocketFanout::new(io),
        })
    }

    /// Rooms on every bridge that shares the Redis at `url`.
    pub async fn cluster(url: &Url) -> anyhow::Result<Self> {
        let fabric = RedisFabric::connect(url).await?;
        let (layer, io) = builder()
            .with_adapter::<ClusterAdapter>(fabric.clone().adapter())
            .build_layer();
        let side = Side {
            layer: CustomerLayer(layer),
            fanout: SocketFanout::new(io),
        };
        Ok(Self::Cluster(side, fabric))
    }

    /// The core's way to reach customers.
    pub fn fanout(&self) -> Arc<dyn Fanout> {
        each_side!(self, side => Arc::new(side.fanout.clone()))
    }

    /// Registers namespace `/` (on Redis: once its channels are subscribed).
    pub async fn attach(&self, bridge: Bridge) -> anyhow::Result<()> {
        match self {
            Self::Local(side) => attach(&side.fanout.io, bridge, &side.fanout),
            Self::Cluster(side, _) => attach(&side.fanout.io, bridge, &side.fanout)
                .await
                .map_err(|error| anyhow::anyhow!("subscribing to Redis: {error}"))?,
        }
        Ok(())
    }

    /// `router` with `/socket.io/` served.
    pub fn serve(&self, router: Router) -> Router {
        each_side!(self, side => router.layer(side.layer.clone()))
    }

    /// The Redis that joins this bridge's rooms to others', if any.
    pub fn redis(&self) -> Option<&RedisFabric> {
        match self {
            Self::Local(_) => None,
            Self::Cluster(_, fabric) => Some(fabric),
        }
    }

    /// See [`SocketFanout::stop_accepting`].
    pub fn stop_accepting(&self) {
        each_side!(self, side => side.fanout.stop_accepting());
    }

    /// See [`SocketFanout::close`] (on Redis, the namespace's
    /// subscriptions end too).
    pub async fn close(&self, grace: std::time::Duration) {
        each_side!(self, side => side.fanout.close(grace).await);
    }
}

/// The room of one customer's sockets.
pub fn room_of(customer: &CustomerId) -> String {
    format!("customer:{customer}")
}

/// Registers namespace `/`: authentication middleware and connect handler.
/// `fanout` says whether new connections are taken (see the module doc).
/// What the adapter's start gives back: nothing in process, a future that
/// subscribes on Redis.
pub fn attach<A: Adapter + DefinedAdapter>(
    io: &SocketIo<A>,
    bridge: Bridge,
    fanout: &SocketFanout<A>,
) -> A::InitRes {
    let on_connect = {
        let bridge = bridge.clone();
        let presence = fanout.state.presence.clone();
        move |socket: SocketRef<A>| handlers::on_connect(socket, bridge.clone(), presence.clone())
    };
    let state = fanout.state.clone();
    let authenticate = move |socket: SocketRef<A>, TryData(auth): TryData<serde_json::Value>| {
        let accepting = state.accepting.load(Ordering::Acquire);
        handlers::authenticate(socket, auth, bridge.clone(), accepting)
    };
    io.ns("/", on_connect.with(authenticate))
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
            move |s: SocketRef<A>,
                  InOrder(ticket): InOrder,
                  TryData(request): TryData<serde_json::Value>,
                  ack: AckSender<A>| {
                $handler(s, ticket, request, ack, bridge.clone())
            },
        );
    }};
}

/// Every client event and its handler: the one place they are registered.
fn register_handlers<A: Adapter>(socket: &SocketRef<A>, bridge: &Bridge) {
    on!(socket, bridge, name::REGISTER, handlers::register);
    on!(socket, bridge, name::MESSAGE, handlers::message);
    on!(socket, bridge, name::HISTORY, handlers::history);
    on!(socket, bridge, name::CHAT_END, handlers::chat_end);
}

/// The core's [`Fanout`]: emits to the customer's room (on every bridge,
/// with the Redis adapter). It also holds the customer side's lifecycle
/// (taking connections, sockets open).
pub struct SocketFanout<A: Adapter = LocalAdapter> {
    io: SocketIo<A>,
    state: Arc<Lifecycle>,
}

impl<A: Adapter> Clone for SocketFanout<A> {
    fn clone(&self) -> Self {
        Self {
            io: self.io.clone(),
            state: self.state.clone(),
        }
    }
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

impl<A: Adapter> SocketFanout<A> {
    pub fn new(io: SocketIo<A>) -> Self {
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
