//! One Socket.IO client connection, over the websocket transport without
//! polling first (`GET /socket.io/?EIO=4&transport=websocket`, then the
//! handshake: `0{…}` open, `40{auth}` connect, `40{sid}` or `44{…}`), or
//! over HTTP long-polling alone ([`Transport::Polling`], `polling.rs`).
//!
//! After the handshake one tokio task owns the connection: it answers the
//! server's pings, writes the frames handed to it, routes acks to whoever
//! waits for them and forwards server events, each stamped with the instant
//! its frame was read (so latency does not include the reader's own queue).
//! A [`Client`] is cheap: a channel sender and a receiver; ten thousand of
//! them are ten thousand small tasks.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::codec::{self, Engine, FrameError, Packet};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connection or an emit failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("websocket: {0}")]
    Websocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("protocol: {0}")]
    Frame(#[from] FrameError),
    #[error("unexpected packet during the handshake: {0}")]
    Handshake(String),
    #[error("the server refused the connection: {0}")]
    ConnectError(Value),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("the connection is closed")]
    Closed,
    #[error("encoding the event: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("connecting: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("bad server URL {0:?} (want http://host:port)")]
    Url(String),
}

/// How a client reaches the server's engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A websocket from the first request (what socket.io-client does
    /// with `transports: ["websocket"]`).
    Websocket,
    /// HTTP long-polling only, never upgraded.
    Polling,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Websocket => "websocket",
            Transport::Polling => "polling",
        }
    }
}

/// How to connect: the transport, and the local address to connect from
/// (several loopback addresses spread tens of thousands of connections
/// over more ephemeral ports).
#[derive(Debug, Clone, Copy)]
pub struct Dial {
    pub transport: Transport,
    pub local_ip: Option<IpAddr>,
}

impl Default for Dial {
    fn default() -> Self {
        Self {
            transport: Transport::Websocket,
            local_ip: None,
        }
    }
}

/// An event the server emitted, with the instant its frame was read.
#[derive(Debug, Clone)]
pub struct ServerEvent {
    pub name: String,
    pub args: Vec<Value>,
    pub at: Instant,
}

/// An ack: its arguments and the instant its frame was read.
#[derive(Debug, Clone)]
pub struct Ack {
    pub args: Vec<Value>,
    pub at: Instant,
}

pub(super) enum Command {
    /// A frame to write; when `ack` is set, the frame asks for ack `id`.
    Send {
        frame: String,
        ack: Option<(u64, oneshot::Sender<Ack>)>,
    },
    Close,
}

/// A connected Socket.IO client (root namespace).
#[derive(Debug)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<ServerEvent>,
    next_id: Arc<AtomicU64>,
    sid: String,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Send { frame, .. } => f.debug_tuple("Send").field(frame).finish(),
            Command::Close => f.write_str("Close"),
        }
    }
}

/// The websocket URL of a Socket.IO server's engine (`http://h:p` →
/// `ws://h:p/socket.io/?EIO=4&transport=websocket`).
pub fn engine_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = base
        .strip_prefix("http://")
        .map(|rest| format!("ws://{rest}"))
        .or_else(|| base.strip_prefix("https://").map(|r| format!("wss://{r}")))
        .unwrap_or_else(|| base.to_owned());
    format!("{base}/socket.io/?EIO=4&transport=websocket")
}

/// The address of `http://host:port` and its `Host` header.
pub(super) async fn resolve(base: &str) -> Result<(SocketAddr, String), ClientError> {
    let bad = || ClientError::Url(base.to_owned());
    let rest = base.strip_prefix("http://").ok_or_else(bad)?;
    let host = rest
        .split('/')
        .next()
        .filter(|h| !h.is_empty())
        .ok_or_else(bad)?;
    let addr = tokio::net::lookup_host(host)
        .await?
        .next()
        .ok_or_else(bad)?;
    Ok((addr, host.to_owned()))
}

/// A TCP connection to `addr` (from `local`, when given), without Nagle.
pub(super) async fn tcp_connect(
    addr: SocketAddr,
    local: Option<IpAddr>,
) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = local {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Client {
    /// Opens a websocket, does the Engine.IO and Socket.IO handshakes with
    /// `auth` and starts the connection's task. `base` is `http://host:port`.
    pub async fn connect(
        base: &str,
        auth: Option<&Value>,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        Self::connect_with(base, auth, Dial::default(), timeout).await
    }

    /// [`Client::connect`] over the transport (and from the address) `dial` says.
    pub async fn connect_with(
        base: &str,
        auth: Option<&Value>,
        dial: Dial,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let handshake = async {
            match dial.transport {
                Transport::Websocket => Self::handshake(base, auth, dial.local_ip).await,
                Transport::Polling => {
                    let (session, sid) = super::polling::connect(base, auth, dial.local_ip).await?;
                    Ok(Self::start(sid, |commands, events| {
                        super::polling::drive(session, commands, events)
                    }))
                }
            }
        };
        tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    /// Spawns the connection's task and returns its handle.
    fn start<F, Fut>(sid: String, task: F) -> Client
    where
        F: FnOnce(mpsc::UnboundedReceiver<Command>, mpsc::UnboundedSender<ServerEvent>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        tokio::spawn(task(command_rx, event_tx));
        Client {
            commands,
            events,
            next_id: Arc::new(AtomicU64::new(0)),
            sid,
        }
    }

    async fn handshake(
        base: &str,
        auth: Option<&Value>,
        local: Option<IpAddr>,
    ) -> Result<Client, ClientError> {
        // Small buffers: the protocol's frames are small and an idle client
        // should not hold 128 KiB (tungstenite's default) per socket.
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0)
            .max_message_size(Some(1 << 20));
        let (addr, _) = resolve(base).await?;
        let stream = tcp_connect(addr, local).await?;
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(
            engine_url(base),
            MaybeTlsStream::Plain(stream),
            Some(config),
        )
        .await?;
        // Engine open first, then our namespace connect.
        loop {
            let text = next_text(&mut ws).await?;
            match codec::decode_engine(&text)? {
                Engine::Open(_) => break,
                Engine::Noop => continue,
                other => return Err(ClientError::Handshake(format!("{other:?}"))),
            }
        }
        ws.send(Message::text(codec::encode_connect(auth))).await?;
        let sid = loop {
            let text = next_text(&mut ws).await?;
            match codec::decode_engine(&text)? {
                Engine::Ping => ws.send(Message::text(codec::PONG)).await?,
                Engine::Noop => {}
                Engine::Message(inner) => match codec::decode_socket(inner)? {
                    Packet::Connect(data) => {
                        break data
                            .as_ref()
                            .and_then(|d| d.get("sid"))
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                    }
                    Packet::ConnectError(data) => return Err(ClientError::ConnectError(data)),
                    other => return Err(ClientError::Handshake(format!("{other:?}"))),
                },
                other => return Err(ClientError::Handshake(format!("{other:?}"))),
            }
        };
        Ok(Self::start(sid, |commands, events| {
            drive(ws, commands, events)
        }))
    }

    /// The Socket.IO session id the server gave this socket.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Emits `name` with one argument and no ack.
    pub fn emit<T: Serialize + ?Sized>(&self, name: &str, data: &T) -> Result<(), ClientError> {
        let frame = codec::encode_event(name, data, None)?;
        self.commands
            .send(Command::Send { frame, ack: None })
            .map_err(|_| ClientError::Closed)
    }

    /// Emits `name` with one argument and waits (at most `timeout`) for its ack.
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        name: &str,
        data: &T,
        timeout: Duration,
    ) -> Result<Ack, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = codec::encode_event(name, data, Some(id))?;
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Send {
                frame,
                ack: Some((id, tx)),
            })
            .map_err(|_| ClientError::Closed)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(ack)) => Ok(ack),
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Timeout(timeout)),
        }
    }

    /// The next event the server emitted; `None` once the connection is gone.
    pub async fn next_event(&mut self) -> Option<ServerEvent> {
        self.events.recv().await
    }

    /// Sends `41` and closes the websocket (best effort).
    pub fn close(&self) {
        let _ = self.commands.send(Command::Close);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.close();
    }
}

async fn next_text(ws: &mut Ws) -> Result<String, ClientError> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | None => return Err(ClientError::Closed),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

/// What one received Engine.IO packet asks of the connection.
pub(super) enum Routed {
    Continue,
    /// A ping: answer `3`.
    Pong,
    /// The server closed the engine or the socket.
    Closed,
}

/// Routes one Engine.IO packet: an ack to its waiter, an event to the
/// client's queue, both stamped `at`; says whether to pong or stop.
pub(super) fn route(
    text: &str,
    at: Instant,
    pending: &mut HashMap<u64, oneshot::Sender<Ack>>,
    events: &mpsc::UnboundedSender<ServerEvent>,
) -> Routed {
    match codec::decode_engine(text) {
        Ok(Engine::Ping) => return Routed::Pong,
        Ok(Engine::Message(inner)) => match codec::decode_socket(inner) {
            Ok(Packet::Ack { id, args }) => {
                if let Some(tx) = pending.remove(&id) {
                    let _ = tx.send(Ack { args, at });
                }
            }
            Ok(Packet::Event { name, args, .. }) => {
                // Nobody listening is fine (idle clients).
                let _ = events.send(ServerEvent { name, args, at });
            }
            Ok(Packet::Disconnect) => return Routed::Closed,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "undecodable Socket.IO packet"),
        },
        Ok(Engine::Close) => return Routed::Closed,
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "undecodable Engine.IO packet"),
    }
    Routed::Continue
}

/// The connection's task: until the server closes, `Close` is asked or
/// every `Client` handle is dropped.
async fn drive(
    ws: Ws,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<ServerEvent>,
) {
    let (mut sink, mut stream) = ws.split();
    let mut pending: HashMap<u64, oneshot::Sender<Ack>> = HashMap::new();
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Send { frame, ack }) => {
                    if let Some((id, tx)) = ack {
                        pending.insert(id, tx);
                    }
                    if sink.send(Message::text(frame)).await.is_err() {
                        break;
                    }
                }
                Some(Command::Close) | None => {
                    let _ = sink.send(Message::text(codec::DISCONNECT)).await;
                    let _ = sink.close().await;
                    break;
                }
            },
            frame = stream.next() => {
                let at = Instant::now();
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                match route(text.as_str(), at, &mut pending, &events) {
                    Routed::Continue => {}
                    Routed::Pong => {
                        if sink.send(Message::text(codec::PONG)).await.is_err() {
                            break;
                        }
                    }
                    Routed::Closed => break,
                }
            }
        }
    }
    // Dropping `pending` wakes every waiter with `Closed`.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_urls_use_the_websocket_scheme_and_the_socket_io_path() {
        assert_eq!(
            engine_url("http://127.0.0.1:3000"),
            "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            engine_url("https://h/"),
            "wss://h/socket.io/?EIO=4&transport=websocket"
        );
    }
}
