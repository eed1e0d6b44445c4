//! The namespace's handlers: the connect middleware (authentication), the
//! connect handler (the `session` event) and one named async fn per
//! client event. [`super::attach`] registers them all, in one place.
//!
//! Every client event is answered through its ack, errors included; a
//! socket that is not bound to a customer can call nothing but `register`.

use std::sync::{Arc, Mutex};

use socketioxide::ParserError;
use socketioxide::extract::{AckSender, SocketRef};

use super::events::{
    Ack, ErrorCode, HandshakeAuth, HistoryPage, HistoryRequest, MessageAccepted, MessagePayload,
    MessageRequest, RegisterRequest, Registered, SessionPayload, name, refusal,
};
use super::order::{Ticket, Turnstile};
use super::room_of;
use crate::core::bridge::{Bridge, BridgeError, MAX_REPLAY};
use crate::core::clock::format_ms;
use crate::core::ids::{ClientMessageId, CustomerName, IdError, MessageBody, ResumeToken, Seq};
use crate::store::customers::CustomerRecord;
use crate::telemetry::chain;

/// The customer a socket is bound to (a socket extension).
#[derive(Debug, Clone)]
pub(super) struct Bound(pub CustomerRecord);

/// The session to send once connected: the client's cursor, and the first
/// place in the socket's event order so `session` precedes every ack.
#[derive(Debug, Clone)]
pub(super) struct PendingSession {
    since: Seq,
    ticket: Arc<Mutex<Option<Ticket>>>,
}

/// Why a connection is refused; its text is the `connect_error` message.
#[derive(Debug)]
pub(super) struct Refusal(&'static str);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

fn bound(socket: &SocketRef) -> Option<CustomerRecord> {
    socket.extensions.get::<Bound>().map(|b| b.0)
}

fn bind(socket: &SocketRef, customer: CustomerRecord) {
    socket.join(room_of(&customer.id));
    socket.extensions.insert(Bound(customer));
}

fn reply<T: serde::Serialize>(ack: AckSender, event: &str, answer: &Ack<T>) {
    if let Err(error) = ack.send(answer) {
        tracing::debug!(event, %error, "could not send an ack (client gone?)");
    }
}

fn internal<T>(event: &str, error: BridgeError) -> Ack<T> {
    tracing::error!(event, error.cause_chain = %chain(&error), "customer event failed");
    Ack::error(
        ErrorCode::Internal,
        "the bridge could not do that; try again",
    )
}

/// Connect middleware: checks the handshake `auth`, binds the socket to its
/// customer (joining the customer's room) and registers the event
/// handlers, all before the client is told it is connected.
pub(super) async fn authenticate(
    socket: SocketRef,
    auth: Result<HandshakeAuth, ParserError>,
    bridge: Bridge,
) -> Result<(), Refusal> {
    let auth = auth.map_err(|_| Refusal(refusal::INVALID_AUTH))?;
    let since = match auth.last_seq {
        None => Seq(0),
        Some(seq) if seq >= 0 => Seq(seq),
        Some(_) => return Err(Refusal(refusal::INVALID_AUTH)),
    };
    let turnstile = Arc::new(Turnstile::default());
    socket.extensions.insert(turnstile.clone());
    if let Some(token) = auth.token {
        let token = ResumeToken::parse(&token).map_err(|_| Refusal(refusal::INVALID_TOKEN))?;
        let customer = bridge
            .authenticate(&token)
            .await
            .map_err(|error| {
                tracing::error!(error.cause_chain = %chain(&error), "checking a resume token");
                Refusal(refusal::UNAVAILABLE)
            })?
            .ok_or(Refusal(refusal::INVALID_TOKEN))?;
        socket.extensions.insert(PendingSession {
            since,
            ticket: Arc::new(Mutex::new(Some(turnstile.ticket()))),
        });
        bind(&socket, customer);
    }
    super::register_handlers(&socket, &bridge);
    Ok(())
}

/// Connect handler: a socket that resumed gets its `session`.
pub(super) async fn on_connect(socket: SocketRef, bridge: Bridge) {
    let Some(pending) = socket.extensions.get::<PendingSession>() else {
        return;
    };
    let ticket = match pending.ticket.lock() {
        Ok(mut slot) => slot.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    let _turn = match ticket {
        Some(ticket) => Some(ticket.wait().await),
        None => None,
    };
    if let Some(customer) = bound(&socket) {
        send_session(&socket, &bridge, &customer, pending.since).await;
    }
}

async fn send_session(socket: &SocketRef, bridge: &Bridge, customer: &CustomerRecord, since: Seq) {
    match bridge.session(&customer.id, since).await {
        Ok(session) => {
            if let Err(error) = socket.emit(name::SESSION, &SessionPayload::from(&session)) {
                tracing::debug!(%error, "could not send the session (client gone?)");
            }
        }
        Err(error) => {
            tracing::error!(error.cause_chain = %chain(&error), "loading a session");
            // The client reconnects (and retries) rather than run without one.
            socket.clone().disconnect().ok();
        }
    }
}

/// `register { name }`.
pub(super) async fn register(
    socket: SocketRef,
    ticket: Ticket,
    request: Result<RegisterRequest, ParserError>,
    ack: AckSender,
    bridge: Bridge,
) {
    let _turn = ticket.wait().await;
    let answer = async {
        if bound(&socket).is_some() {
            return Ack::error(
                ErrorCode::AlreadyRegistered,
                "this connection already has a customer",
            );
        }
        let request = match request {
            Ok(request) => request,
            Err(error) => return Ack::error(ErrorCode::InvalidPayload, error.to_string()),
        };
        let name = match CustomerName::parse(&request.name) {
            Ok(name) => name,
            Err(error) => return Ack::error(ErrorCode::InvalidName, error.to_string()),
        };
        match bridge.register(&name).await {
            Ok((customer, token)) => {
                bind(&socket, customer.clone());
                Ack::Ok(Registered {
                    customer_id: customer.id.to_string(),
                    token: token.expose().to_owned(),
                    name: customer.name,
                })
            }
            Err(error) => internal(name::REGISTER, error),
        }
    }
    .await;
    let registered = matches!(answer, Ack::Ok(_));
    reply(ack, name::REGISTER, &answer);
    if registered && let Some(customer) = bound(&socket) {
        send_session(&socket, &bridge, &customer, Seq(0)).await;
    }
}

/// `message { clientMessageId, body }`.
pub(super) async fn message(
    socket: SocketRef,
    ticket: Ticket,
    request: Result<MessageRequest, ParserError>,
    ack: AckSender,
    bridge: Bridge,
) {
    let _turn = ticket.wait().await;
    let answer: Ack<MessageAccepted> = async {
        let Some(customer) = bound(&socket) else {
            return Ack::error(
                ErrorCode::NotRegistered,
                "register (or connect with a token) first",
            );
        };
        let request = match request {
            Ok(request) => request,
            Err(error) => return Ack::error(ErrorCode::InvalidPayload, error.to_string()),
        };
        let client_msg_id = match ClientMessageId::parse(&request.client_message_id) {
            Ok(id) => id,
            Err(error) => {
                return Ack::error(
                    ErrorCode::InvalidPayload,
                    format!("clientMessageId: {error}"),
                );
            }
        };
        let body = match MessageBody::parse(&request.body) {
            Ok(body) => body,
            Err(error @ IdError::BodyTooLong { .. }) => {
                return Ack::error(ErrorCode::MessageTooLong, error.to_string());
            }
            Err(error) => return Ack::error(ErrorCode::EmptyMessage, error.to_string()),
        };
        match bridge.send_message(&customer, &client_msg_id, &body).await {
            Ok(sent) => Ack::Ok(MessageAccepted {
                seq: sent.message.seq.0,
                client_message_id: client_msg_id.as_str().to_owned(),
                conversation_id: sent.message.conversation_id.to_string(),
                created_at: format_ms(sent.message.created_at),
            }),
            Err(BridgeError::RateLimited) => {
                Ack::error(ErrorCode::RateLimited, "too many messages; slow down")
            }
            Err(error) => internal(name::MESSAGE, error),
        }
    }
    .await;
    reply(ack, name::MESSAGE, &answer);
}

/// `history { since?, limit? }`.
pub(super) async fn history(
    socket: SocketRef,
    ticket: Ticket,
    request: Result<HistoryRequest, ParserError>,
    ack: AckSender,
    bridge: Bridge,
) {
    let _turn = ticket.wait().await;
    let answer: Ack<HistoryPage> = async {
        let Some(customer) = bound(&socket) else {
            return Ack::error(
                ErrorCode::NotRegistered,
                "register (or connect with a token) first",
            );
        };
        let request = match request {
            Ok(request) => request,
            Err(error) => return Ack::error(ErrorCode::InvalidPayload, error.to_string()),
        };
        let since = request.since.unwrap_or(0);
        let limit = request.limit.unwrap_or(i64::from(MAX_REPLAY));
        if since < 0 || limit < 1 {
            return Ack::error(ErrorCode::InvalidPayload, "since must be ≥ 0 and limit ≥ 1");
        }
        let limit = u32::try_from(limit.min(i64::from(MAX_REPLAY))).unwrap_or(MAX_REPLAY);
        match bridge.history(&customer.id, Seq(since), limit).await {
            Ok(messages) => Ack::Ok(HistoryPage {
                messages: messages.iter().map(MessagePayload::from).collect(),
            }),
            Err(error) => internal(name::HISTORY, error),
        }
    }
    .await;
    reply(ack, name::HISTORY, &answer);
}
