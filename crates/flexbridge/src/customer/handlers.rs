//! The namespace's handlers: the connect middleware (authentication), the
//! connect handler (the `session` event) and one named async fn per
//! client event. [`super::attach`] registers them all, in one place.
//!
//! Every client event is answered through its ack, errors included; a
//! socket that is not bound to a customer can call nothing but `register`.

use std::sync::{Arc, Mutex};

use socketioxide::ParserError;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef};

use super::events::{
    Ack, AckError, ChatEndResult, EndChatRequest, ErrorCode, HandshakeAuth, HistoryPage,
    HistoryRequest, MessageAccepted, MessagePayload, MessageRequest, RegisterRequest, Registered,
    SessionPayload, name, refusal,
};
use super::order::{Ticket, Turnstile};
use super::payload::Payload;
use super::presence::{Presence, Present};
use super::room_of;
use crate::core::attachment::AttachmentId;
use crate::core::bridge::{Bridge, BridgeError, MAX_REPLAY, RegisterError, Session};
use crate::core::chain;
use crate::core::clock::format_ms;
use crate::core::ids::{ClientMessageId, IdError, MessageBody, ResumeToken, Seq};
use crate::core::model::CustomerRecord;
use crate::core::pre_engagement::FormAnswers;

/// The customer a socket is bound to (a socket extension).
#[derive(Debug, Clone)]
pub(super) struct Bound(pub CustomerRecord);

/// The session to send once connected (loaded by the middleware, so a
/// store that cannot answer refuses the connection with `unavailable`
/// rather than leave a connected client without one), and the first place
/// in the socket's event order so `session` precedes every ack.
#[derive(Debug, Clone)]
pub(super) struct PendingSession {
    session: Arc<SessionPayload>,
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

fn bound<A: Adapter>(socket: &SocketRef<A>) -> Option<CustomerRecord> {
    socket.extensions.get::<Bound>().map(|b| b.0)
}

fn bind<A: Adapter>(socket: &SocketRef<A>, customer: CustomerRecord) {
    socket.join(room_of(&customer.id));
    socket.extensions.insert(Bound(customer));
}

fn reply<A: Adapter, T: serde::Serialize>(ack: AckSender<A>, event: &str, answer: &Ack<T>) {
    if let Err(error) = ack.send(answer) {
        tracing::debug!(event, %error, "could not send an ack (client gone?)");
    }
}

fn internal(event: &str, error: BridgeError) -> AckError {
    tracing::error!(event, error.cause_chain = %chain(&error), "customer event failed");
    AckError::new(
        ErrorCode::Internal,
        "the bridge could not do that; try again",
    )
}

/// Connect middleware: checks the handshake `auth`, binds the socket to its
/// customer (joining the customer's room), loads its session and registers
/// the event handlers, all before the client is told it is connected.
/// While the bridge shuts down (`accepting` false) every connection is
/// refused with `unavailable`.
pub(super) async fn authenticate<A: Adapter>(
    socket: SocketRef<A>,
    auth: Result<serde_json::Value, ParserError>,
    bridge: Bridge,
    accepting: bool,
) -> Result<(), Refusal> {
    if !accepting {
        return Err(Refusal(refusal::UNAVAILABLE));
    }
    let auth = auth
        .ok()
        .and_then(|auth| HandshakeAuth::from_payload(&auth).ok())
        .ok_or(Refusal(refusal::INVALID_AUTH))?;
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
        // Joined before the session is read: what is committed after the
        // read arrives live (the client ignores a `seq` seen twice).
        bind(&socket, customer.clone());
        let session = bridge.session(&customer.id, since).await.map_err(|error| {
            tracing::error!(customer = %customer.id, error.cause_chain = %chain(&error), "loading a session");
            Refusal(refusal::UNAVAILABLE)
        })?;
        socket.extensions.insert(PendingSession {
            session: Arc::new(SessionPayload::from(&session)),
            ticket: Arc::new(Mutex::new(Some(turnstile.ticket()))),
        });
    }
    super::register_handlers(&socket, &bridge);
    Ok(())
}

/// Connect handler: the socket counts as connected ([`Presence`]), and
/// one that resumed gets its `session`.
pub(super) async fn on_connect<A: Adapter>(
    socket: SocketRef<A>,
    _bridge: Bridge,
    presence: Arc<Presence>,
) {
    presence.connected(&socket, bound(&socket).as_ref().map(|c| &c.id));
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
    send_session(&socket, &pending.session);
}

fn send_session<A: Adapter>(socket: &SocketRef<A>, session: &SessionPayload) {
    if let Err(error) = socket.emit(name::SESSION, session) {
        tracing::debug!(%error, "could not send the session (client gone?)");
    }
}

/// The customer this socket is bound to, or the `not_registered` error.
fn customer_of<A: Adapter>(socket: &SocketRef<A>) -> Result<CustomerRecord, AckError> {
    bound(socket).ok_or_else(|| {
        AckError::new(
            ErrorCode::NotRegistered,
            "register (or connect with a token) first",
        )
    })
}

/// The payload read as the protocol says (an object of its fields), or
/// the `invalid_payload` error saying what is wrong with it.
fn payload<T: Payload>(request: Result<serde_json::Value, ParserError>) -> Result<T, AckError> {
    let value = request.map_err(|_| AckError::new(ErrorCode::InvalidPayload, T::missing()))?;
    T::from_payload(&value).map_err(|message| AckError::new(ErrorCode::InvalidPayload, message))
}

/// `register { name, email?, question?, topic? }`: the pre-engagement
/// form, checked field by field (`core::pre_engagement`).
pub(super) async fn register<A: Adapter>(
    socket: SocketRef<A>,
    ticket: Ticket,
    request: Result<serde_json::Value, ParserError>,
    ack: AckSender<A>,
    bridge: Bridge,
) {
    let _turn = ticket.wait().await;
    let answer = async {
        if bound(&socket).is_some() {
            return Err(AckError::new(
                ErrorCode::AlreadyRegistered,
                "this connection already has a customer",
            ));
        }
        let request: RegisterRequest = payload(request)?;
        let answers = FormAnswers {
            name: &request.name,
            email: request.email.as_deref(),
            question: request.question.as_deref(),
            topic: request.topic.as_deref(),
        };
        let registration = bridge
            .register_form(&answers)
            .await
            .map_err(|error| match error {
                RegisterError::Form(errors) => AckError::form(&errors),
                RegisterError::Bridge(error) => internal(name::REGISTER, error),
            })?;
        let customer = registration.customer;
        bind(&socket, customer.clone());
        if let Some(Present(presence)) = socket.extensions.get::<Present>() {
            presence.joined(&customer.id);
        }
        let registered = Registered {
            customer_id: customer.id.to_string(),
            token: registration.token.expose().to_owned(),
            name: customer.name.clone(),
        };
        Ok((registered, customer, registration.first_message))
    }
    .await;
    match answer {
        Ok((registered, customer, first_message)) => {
            reply(ack, name::REGISTER, &Ack::Ok(registered));
            // A customer made just now has at most the conversation and
            // the message their question started: nothing to read, nothing
            // that can fail.
            let session = Session {
                customer: customer.clone(),
                conversation: first_message.as_ref().and_then(|sent| sent.opened.clone()),
                messages: first_message
                    .iter()
                    .map(|sent| sent.message.clone())
                    .collect(),
            };
            send_session(&socket, &SessionPayload::from(&session));
            if let Some(sent) = first_message {
                bridge.announce(&customer.id, &sent).await;
            }
        }
        Err(error) => reply(ack, name::REGISTER, &Ack::<()>::Error(error)),
    }
}

/// `message { clientMessageId, body }` or `message { clientMessageId,
/// attachment }`.
pub(super) async fn message<A: Adapter>(
    socket: SocketRef<A>,
    ticket: Ticket,
    request: Result<serde_json::Value, ParserError>,
    ack: AckSender<A>,
    bridge: Bridge,
) {
    let _turn = ticket.wait().await;
    let answer = async {
        let customer = customer_of(&socket)?;
        let request: MessageRequest = payload(request)?;
        let client_msg_id =
            ClientMessageId::parse(&request.client_message_id).map_err(|error| {
                AckError::new(
                    ErrorCode::InvalidPayload,
                    format!("clientMessageId: {error}"),
                )
            })?;
        let sent = match &request.attachment {
            Some(_) if !request.body.trim().is_empty() => {
                return Err(AckError::new(
                    ErrorCode::InvalidPayload,
                    "a message carries text or one attachment, not both",
                ));
            }
            Some(id) => {
                let id = AttachmentId::parse(id).map_err(|error| {
                    AckError::new(ErrorCode::UnknownAttachment, format!("attachment: {error}"))
                })?;
                bridge.send_attachment(&customer, &client_msg_id, &id).await
            }
            None => {
                let body = MessageBody::parse(&request.body).map_err(|error| {
                    let code = match error {
                        IdError::BodyTooLong { .. } => ErrorCode::MessageTooLong,
                        _ => ErrorCode::EmptyMessage,
                    };
                    AckError::new(code, error.to_string())
                })?;
                bridge.send_message(&customer, &client_msg_id, &body).await
            }
        }
        .map_err(|error| match error {
            BridgeError::RateLimited => {
                AckError::new(ErrorCode::RateLimited, "too many messages; slow down")
            }
            BridgeError::UnknownAttachment => AckError::new(
                ErrorCode::UnknownAttachment,
                "no such attachment of yours, or another message carries it already",
            ),
            error => internal(name::MESSAGE, error),
        })?;
        let accepted = MessageAccepted {
            seq: sent.message.seq.0,
            client_message_id: client_msg_id.as_str().to_owned(),
            conversation_id: sent.message.conversation_id.to_string(),
            created_at: format_ms(sent.message.created_at),
        };
        Ok((accepted, customer.id, sent))
    }
    .await;
    match answer {
        Ok((accepted, customer, sent)) => {
            reply(ack, name::MESSAGE, &Ack::Ok(accepted));
            bridge.announce(&customer, &sent).await;
        }
        Err(error) => reply(ack, name::MESSAGE, &Ack::<()>::Error(error)),
    }
}

/// `history { since?, limit? }`.
pub(super) async fn history<A: Adapter>(
    socket: SocketRef<A>,
    ticket: Ticket,
    request: Result<serde_json::Value, ParserError>,
    ack: AckSender<A>,
    bridge: Bridge,
) {
    let _turn = ticket.wait().await;
    let answer = async {
        let customer = customer_of(&socket)?;
        let request: HistoryRequest = payload(request)?;
        let since = request.since.unwrap_or(0);
        let limit = request.limit.unwrap_or(i64::from(MAX_REPLAY));
        if since < 0 || limit < 1 {
            return Err(AckError::new(
                ErrorCode::InvalidPayload,
                "`since` must be ≥ 0 and `limit` ≥ 1",
            ));
        }
        let limit = u32::try_from(limit.min(i64::from(MAX_REPLAY))).unwrap_or(MAX_REPLAY);
        let messages = bridge
            .history(&customer.id, Seq(since), limit)
            .await
            .map_err(|error| internal(name::HISTORY, error))?;
        Ok(HistoryPage {
            messages: messages.iter().map(MessagePayload::from).collect(),
        })
    }
    .await;
    reply(ack, name::HISTORY, &Ack::from(answer));
}

/// `chat:end {}`: the customer ends their open conversation (an ok no-op
/// when there is none). Acked once the end is committed; then every tab
/// hears `chat:ended`.
pub(super) async fn chat_end<A: Adapter>(
    socket: SocketRef<A>,
    ticket: Ticket,
    request: Result<serde_json::Value, ParserError>,
    ack: AckSender<A>,
    bridge: Bridge,
) {
    let _turn = ticket.wait().await;
    let answer = async {
        let customer = customer_of(&socket)?;
        let _: EndChatRequest = payload(request)?;
        let ended = bridge
            .end_chat(&customer.id)
            .await
            .map_err(|error| internal(name::CHAT_END, error))?;
        Ok(ended)
    }
    .await;
    match answer {
        Ok(ended) => {
            let result = ChatEndResult {
                ended: ended.is_some(),
                conversation_id: ended.as_ref().map(|c| c.id.to_string()),
            };
            reply(ack, name::CHAT_END, &Ack::Ok(result));
            if let Some(conversation) = ended {
                bridge.announce_end(&conversation).await;
            }
        }
        Err(error) => reply(ack, name::CHAT_END, &Ack::<()>::Error(error)),
    }
}
