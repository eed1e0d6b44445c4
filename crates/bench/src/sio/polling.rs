//! The HTTP long-polling transport (Engine.IO v4), the way a browser that
//! cannot open a websocket speaks it:
//!
//! ```text
//! GET  /socket.io/?EIO=4&transport=polling           → 0{"sid":…,"pingInterval":…}
//! POST /socket.io/?EIO=4&transport=polling&sid=…     ← 40{auth}          → ok
//! GET  …&sid=…                                       → 40{"sid":…}
//! GET  …&sid=… (held open until the server has packets: a ping, an ack, an event)
//! ```
//!
//! A body holds one or more packets separated by the record separator
//! (`\x1e`). The GETs go over one kept-alive HTTP/1.1 connection, one at a
//! time; each POST (emits, pongs) opens a connection of its own with
//! `Connection: close`, so an idle customer holds one connection on the
//! server, as it does over websocket. (A browser would keep its POST
//! connection alive too; the benchmark counts the server's cost per
//! customer, not per connection.)

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::client::{Ack, ClientError, Command, Routed, ServerEvent, route, tcp_connect};
use super::codec::{self, Engine, Packet};

/// Separates the packets of one polling body.
const SEPARATOR: char = '\x1e';

type Sender = SendRequest<Full<Bytes>>;

/// Where the engine is: the address to connect to, the `Host` header and
/// the query of this session.
#[derive(Debug, Clone)]
struct Endpoint {
    addr: SocketAddr,
    local: Option<IpAddr>,
    host: String,
    /// `/socket.io/?EIO=4&transport=polling`, then `…&sid=…`.
    path: String,
}

/// A polling session after its Socket.IO connect: its GET connection.
pub(super) struct Session {
    endpoint: Endpoint,
    get: Sender,
    /// What followed the connect packet in its body (a ping, an event),
    /// for the connection's task to handle first.
    rest: Option<(String, Instant)>,
}

fn http_error(e: impl std::fmt::Display) -> ClientError {
    ClientError::Http(e.to_string())
}

async fn open_connection(endpoint: &Endpoint) -> Result<Sender, ClientError> {
    let stream = tcp_connect(endpoint.addr, endpoint.local).await?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http_error)?;
    // Ends when the connection closes (server side, or the sender dropped).
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// One request on `sender`; the body of a 200 answer.
async fn exchange(
    sender: &mut Sender,
    endpoint: &Endpoint,
    body: Option<String>,
) -> Result<String, ClientError> {
    sender.ready().await.map_err(http_error)?;
    let mut request = Request::builder()
        .uri(endpoint.path.as_str())
        .header(header::HOST, endpoint.host.as_str());
    let body = match body {
        Some(body) => {
            request = request
                .method(Method::POST)
                .header(header::CONTENT_TYPE, "text/plain;charset=UTF-8")
                .header(header::CONNECTION, "close");
            Bytes::from(body)
        }
        None => {
            request = request.method(Method::GET);
            Bytes::new()
        }
    };
    let request = request.body(Full::new(body)).map_err(http_error)?;
    let response = sender.send_request(request).await.map_err(http_error)?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(http_error)?
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if !status.is_success() {
        return Err(ClientError::Http(format!("{status}: {text}")));
    }
    Ok(text)
}

/// One POST of `body` on a connection of its own.
async fn post(endpoint: &Endpoint, body: String) -> Result<(), ClientError> {
    let mut sender = open_connection(endpoint).await?;
    exchange(&mut sender, endpoint, Some(body)).await.map(drop)
}

/// Engine open, Socket.IO connect with `auth`; the session and the
/// socket's id.
pub(super) async fn connect(
    base: &str,
    auth: Option<&Value>,
    local: Option<IpAddr>,
) -> Result<(Session, String), ClientError> {
    let (addr, host) = super::client::resolve(base).await?;
    let mut endpoint = Endpoint {
        addr,
        local,
        host,
        path: "/socket.io/?EIO=4&transport=polling".to_owned(),
    };
    let mut get = open_connection(&endpoint).await?;
    let open = exchange(&mut get, &endpoint, None).await?;
    let engine_sid = open
        .split(SEPARATOR)
        .find_map(|packet| match codec::decode_engine(packet) {
            Ok(Engine::Open(json)) => serde_json::from_str::<Value>(json).ok(),
            _ => None,
        })
        .and_then(|open| open.get("sid").and_then(Value::as_str).map(str::to_owned))
        .ok_or_else(|| ClientError::Handshake(format!("no open packet: {open}")))?;
    endpoint.path.push_str("&sid=");
    endpoint.path.push_str(&engine_sid);
    post(&endpoint, codec::encode_connect(auth)).await?;
    loop {
        let body = exchange(&mut get, &endpoint, None).await?;
        let at = Instant::now();
        let mut packets = body.split(SEPARATOR);
        while let Some(packet) = packets.next() {
            match codec::decode_engine(packet)? {
                Engine::Noop => {}
                Engine::Ping => post(&endpoint, codec::PONG.to_owned()).await?,
                Engine::Message(inner) => match codec::decode_socket(inner)? {
                    Packet::Connect(data) => {
                        let sid = data
                            .as_ref()
                            .and_then(|d| d.get("sid"))
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        let rest: Vec<&str> = packets.collect();
                        let rest =
                            (!rest.is_empty()).then(|| (rest.join(&SEPARATOR.to_string()), at));
                        return Ok((
                            Session {
                                endpoint,
                                get,
                                rest,
                            },
                            sid,
                        ));
                    }
                    Packet::ConnectError(data) => return Err(ClientError::ConnectError(data)),
                    other => return Err(ClientError::Handshake(format!("{other:?}"))),
                },
                other => return Err(ClientError::Handshake(format!("{other:?}"))),
            }
        }
    }
}

/// GETs one after the other on the session's connection; hands each body
/// (with the instant it was read) to the connection's task.
async fn read_loop(
    mut get: Sender,
    endpoint: Endpoint,
    bodies: mpsc::UnboundedSender<(String, Instant)>,
) {
    while let Ok(body) = exchange(&mut get, &endpoint, None).await {
        if bodies.send((body, Instant::now())).is_err() {
            return;
        }
    }
}

/// The connection's task: as the websocket one (`client::drive`), over
/// polling.
pub(super) async fn drive(
    session: Session,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<ServerEvent>,
) {
    let Session {
        endpoint,
        get,
        rest,
    } = session;
    let (body_tx, mut bodies) = mpsc::unbounded_channel();
    if let Some(rest) = rest {
        let _ = body_tx.send(rest);
    }
    let reader = tokio::spawn(read_loop(get, endpoint.clone(), body_tx));
    let mut pending: HashMap<u64, oneshot::Sender<Ack>> = HashMap::new();
    'connection: loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Send { frame, ack }) => {
                    // Everything queued meanwhile goes in the same POST (as
                    // socket.io-client batches), so a burst of emits does
                    // not hold a pong back behind one request per frame.
                    let mut body = frame;
                    let mut next = ack;
                    let mut closing = false;
                    loop {
                        if let Some((id, tx)) = next.take() {
                            pending.insert(id, tx);
                        }
                        match commands.try_recv() {
                            Ok(Command::Send { frame, ack }) => {
                                body.push(SEPARATOR);
                                body.push_str(&frame);
                                next = ack;
                            }
                            Ok(Command::Close) => {
                                closing = true;
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if closing {
                        body.push(SEPARATOR);
                        body.push_str(codec::DISCONNECT);
                        body.push_str(&format!("{SEPARATOR}1"));
                    }
                    if post(&endpoint, body).await.is_err() || closing {
                        break;
                    }
                }
                Some(Command::Close) | None => {
                    let goodbye = format!("{}{SEPARATOR}1", codec::DISCONNECT);
                    let _ = post(&endpoint, goodbye).await;
                    break;
                }
            },
            body = bodies.recv() => {
                let Some((body, at)) = body else { break };
                for packet in body.split(SEPARATOR) {
                    match route(packet, at, &mut pending, &events) {
                        Routed::Continue => {}
                        Routed::Pong => {
                            if post(&endpoint, codec::PONG.to_owned()).await.is_err() {
                                break 'connection;
                            }
                        }
                        Routed::Closed => break 'connection,
                    }
                }
            }
        }
    }
    reader.abort();
}
