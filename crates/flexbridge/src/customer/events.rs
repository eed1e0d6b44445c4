//! Every Socket.IO event of the customer protocol, defined once, as serde
//! types. `docs/protocol.md` mirrors this file; the tests at the bottom pin
//! the JSON shapes the document shows.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::core::Session;
use crate::core::attachment::Attachment;
use crate::core::clock::format_ms;
use crate::core::conversation::CloseReason;
use crate::core::fanout::DeliveryOutcome;
use crate::core::model::{ConversationRecord, MessageRecord};
use crate::core::pre_engagement::{Field, FieldErrors};

/// Event names.
pub mod name {
    // client → server
    pub const REGISTER: &str = "register";
    pub const MESSAGE: &str = "message";
    pub const HISTORY: &str = "history";
    pub const CHAT_END: &str = "chat:end";
    // server → client (and `message`)
    pub const SESSION: &str = "session";
    pub const CONVERSATION: &str = "conversation";
    pub const AGENT_JOINED: &str = "agent:joined";
    pub const CHAT_ENDED: &str = "chat:ended";
    pub const DELIVERY: &str = "delivery";
}

/// Reasons a connection is refused (`connect_error` `message`).
pub mod refusal {
    /// The token is unknown or malformed: forget it and register again.
    pub const INVALID_TOKEN: &str = "invalid_token";
    /// The `auth` object is not what the protocol says.
    pub const INVALID_AUTH: &str = "invalid_auth";
    /// The bridge could not check the token (try again later).
    pub const UNAVAILABLE: &str = "unavailable";
}

// ---- client → server ----

/// The handshake `auth` object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandshakeAuth {
    pub token: Option<String>,
    pub last_seq: Option<i64>,
}

/// `register`: the name, and the pre-engagement form's other fields
/// (each optional in the payload; the configured form says which it
/// requires).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest {
    pub name: String,
    pub email: Option<String>,
    pub question: Option<String>,
    pub topic: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRequest {
    pub client_message_id: String,
    /// The text (absent or empty when the message carries a file).
    pub body: String,
    /// The id of a file the customer uploaded (`POST /attachments`).
    pub attachment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryRequest {
    pub since: Option<i64>,
    pub limit: Option<i64>,
}

/// `chat:end {}`: no fields today (unknown ones are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndChatRequest {}

// ---- acknowledgements ----

/// Every ack: `{ "ok": … }` or `{ "error": { "code", "message" } }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Ack<T> {
    Ok(T),
    Error(AckError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AckError {
    pub code: ErrorCode,
    pub message: String,
    /// Per field of the pre-engagement form (`register` only): what is
    /// wrong with each field that is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<&'static str, FieldErrorPayload>>,
}

/// One field's error: a code clients translate, and English text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldErrorPayload {
    pub code: &'static str,
    pub message: String,
}

impl<T> Ack<T> {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error(AckError::new(code, message))
    }
}

impl AckError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: None,
        }
    }

    /// The form's errors: `invalid_name` when only the name is wrong (as
    /// for a name-only `register`), else `invalid_form`.
    pub fn form(errors: &FieldErrors) -> Self {
        let only_name = errors.keys().all(|field| *field == Field::Name);
        let (code, message) = if only_name {
            (ErrorCode::InvalidName, "the name is not valid")
        } else {
            (
                ErrorCode::InvalidForm,
                "some fields of the form are not valid",
            )
        };
        let fields = errors
            .iter()
            .map(|(field, error)| {
                let payload = FieldErrorPayload {
                    code: error.code(),
                    message: error.message(),
                };
                (field.as_str(), payload)
            })
            .collect();
        let message = match errors.get(&Field::Name) {
            Some(error) if only_name => format!("name: {}", error.message()),
            _ => message.to_owned(),
        };
        Self {
            code,
            message,
            fields: Some(fields),
        }
    }
}

impl<T> From<Result<T, AckError>> for Ack<T> {
    fn from(result: Result<T, AckError>) -> Self {
        match result {
            Ok(value) => Self::Ok(value),
            Err(error) => Self::Error(error),
        }
    }
}

/// Error codes of acks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidPayload,
    InvalidName,
    InvalidForm,
    AlreadyRegistered,
    NotRegistered,
    MessageTooLong,
    EmptyMessage,
    UnknownAttachment,
    RateLimited,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    pub customer_id: String,
    pub token: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageAccepted {
    pub seq: i64,
    pub client_message_id: String,
    pub conversation_id: String,
    pub created_at: String,
}

/// The ack of `chat:end`: whether a conversation was ended (`false`: the
/// customer had none open, nothing was done), and which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatEndResult {
    pub ended: bool,
    pub conversation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryPage {
    pub messages: Vec<MessagePayload>,
}

// ---- server → client ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionPayload {
    pub customer: CustomerPayload,
    pub conversation: Option<ConversationPayload>,
    pub messages: Vec<MessagePayload>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerPayload {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePayload {
    pub seq: i64,
    pub conversation_id: String,
    pub direction: &'static str,
    pub author: String,
    pub body: String,
    pub client_message_id: Option<String>,
    pub created_at: String,
    /// The file it carries (then `body` is its name); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<AttachmentPayload>,
}

/// A file as customers see it; its bytes are at `GET /attachments/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentPayload {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub content_type: String,
    pub size: i64,
}

impl From<&Attachment> for AttachmentPayload {
    fn from(a: &Attachment) -> Self {
        Self {
            id: a.id.to_string(),
            name: a.filename.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationPayload {
    pub id: String,
    pub state: &'static str,
    pub agent: Option<AgentPayload>,
    /// When it started (the first message), UTC.
    pub created_at: String,
    /// Why it closed (`chat:ended`'s `reason`); `null` while live.
    pub close_reason: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentPayload {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentJoinedPayload {
    pub conversation_id: String,
    pub agent_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatEndedPayload {
    pub conversation_id: String,
    pub reason: &'static str,
    /// The agent's name when an agent ended it (`agent_ended` with an
    /// agent who had joined), else `null`.
    pub ended_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryPayload {
    pub seq: i64,
    pub client_message_id: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<&MessageRecord> for MessagePayload {
    fn from(m: &MessageRecord) -> Self {
        Self {
            seq: m.seq.0,
            conversation_id: m.conversation_id.to_string(),
            direction: m.direction.as_str(),
            author: m.author.clone(),
            body: m.body.clone(),
            client_message_id: m.client_msg_id.clone(),
            created_at: format_ms(m.created_at),
            attachment: m.attachment.as_ref().map(AttachmentPayload::from),
        }
    }
}

impl From<&ConversationRecord> for ConversationPayload {
    fn from(c: &ConversationRecord) -> Self {
        Self {
            id: c.id.to_string(),
            state: c.state.as_str(),
            agent: c.agent_name.clone().map(|name| AgentPayload { name }),
            created_at: format_ms(c.created_at),
            close_reason: c.close_reason.map(CloseReason::as_str),
        }
    }
}

impl From<&Session> for SessionPayload {
    fn from(s: &Session) -> Self {
        Self {
            customer: CustomerPayload {
                id: s.customer.id.to_string(),
                name: s.customer.name.clone(),
            },
            conversation: s.conversation.as_ref().map(ConversationPayload::from),
            messages: s.messages.iter().map(MessagePayload::from).collect(),
        }
    }
}

impl DeliveryPayload {
    pub fn new(seq: i64, client_message_id: String, outcome: &DeliveryOutcome) -> Self {
        let (status, error) = match outcome {
            DeliveryOutcome::Delivered => ("delivered", None),
            DeliveryOutcome::Failed(error) => ("failed", Some(error.clone())),
            DeliveryOutcome::Delayed(why) => ("delayed", Some(why.clone())),
        };
        Self {
            seq,
            client_message_id,
            status,
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::core::conversation::ConversationState;
    use crate::core::ids::{ConversationId, CustomerId, Seq};
    use crate::core::model::Direction;
    use crate::customer::payload::Payload as _;

    #[test]
    fn acks_are_ok_or_error_objects() {
        let ok: Ack<HistoryPage> = Ack::Ok(HistoryPage { messages: vec![] });
        assert_eq!(
            serde_json::to_value(ok).unwrap(),
            json!({"ok": {"messages": []}})
        );
        let err: Ack<()> = Ack::error(ErrorCode::NotRegistered, "register first");
        assert_eq!(
            serde_json::to_value(err).unwrap(),
            json!({"error": {"code": "not_registered", "message": "register first"}})
        );
    }

    #[test]
    fn every_error_code_is_spelled_as_the_protocol_says() {
        let codes = [
            (ErrorCode::InvalidPayload, "invalid_payload"),
            (ErrorCode::InvalidName, "invalid_name"),
            (ErrorCode::InvalidForm, "invalid_form"),
            (ErrorCode::AlreadyRegistered, "already_registered"),
            (ErrorCode::NotRegistered, "not_registered"),
            (ErrorCode::MessageTooLong, "message_too_long"),
            (ErrorCode::EmptyMessage, "empty_message"),
            (ErrorCode::RateLimited, "rate_limited"),
            (ErrorCode::Internal, "internal"),
        ];
        for (code, text) in codes {
            assert_eq!(serde_json::to_value(code).unwrap(), json!(text));
        }
    }

    #[test]
    fn a_message_serialises_as_in_the_protocol() {
        let record = MessageRecord {
            id: 1,
            seq: Seq(42),
            conversation_id: ConversationId::parse("conv_0123456789abcdef0123456789abcdef")
                .unwrap(),
            direction: Direction::Agent,
            author: "alice".into(),
            body: "Hi".into(),
            client_msg_id: None,
            created_at: 1_795_627_200_123,
            attachment: None,
        };
        assert_eq!(
            serde_json::to_value(MessagePayload::from(&record)).unwrap(),
            json!({
                "seq": 42, "conversationId": "conv_0123456789abcdef0123456789abcdef",
                "direction": "agent", "author": "alice", "body": "Hi",
                "clientMessageId": null, "createdAt": "2026-11-25T17:20:00.123Z"
            })
        );
    }

    #[test]
    fn a_conversation_and_the_other_events_serialise_as_in_the_protocol() {
        let conversation = ConversationRecord {
            id: ConversationId::parse("conv_0123456789abcdef0123456789abcdef").unwrap(),
            customer_id: CustomerId::generate(),
            state: ConversationState::Open,
            backend: crate::flex::BackendKind::Conversations.name(),
            flex_channel: None,
            flex_ref: None,
            agent_name: Some("alice".into()),
            close_reason: None,
            created_at: 0,
        };
        assert_eq!(
            serde_json::to_value(ConversationPayload::from(&conversation)).unwrap(),
            json!({"id": "conv_0123456789abcdef0123456789abcdef", "state": "open", "agent": {"name": "alice"},
                   "createdAt": "1970-01-01T00:00:00.000Z", "closeReason": null})
        );
        assert_eq!(
            serde_json::to_value(AgentJoinedPayload {
                conversation_id: "c".into(),
                agent_name: "alice".into()
            })
            .unwrap(),
            json!({"conversationId": "c", "agentName": "alice"})
        );
        assert_eq!(
            serde_json::to_value(ChatEndedPayload {
                conversation_id: "c".into(),
                reason: "agent_ended",
                ended_by: Some("alice".into()),
            })
            .unwrap(),
            json!({"conversationId": "c", "reason": "agent_ended", "endedBy": "alice"})
        );
        assert_eq!(
            serde_json::to_value(DeliveryPayload::new(
                3,
                "m3".into(),
                &DeliveryOutcome::Delivered
            ))
            .unwrap(),
            json!({"seq": 3, "clientMessageId": "m3", "status": "delivered"})
        );
        assert_eq!(
            serde_json::to_value(DeliveryPayload::new(
                3,
                "m3".into(),
                &DeliveryOutcome::Failed("no".into())
            ))
            .unwrap(),
            json!({"seq": 3, "clientMessageId": "m3", "status": "failed", "error": "no"})
        );
    }

    #[test]
    fn acks_of_register_and_message_use_the_documented_fields() {
        assert_eq!(
            serde_json::to_value(Registered {
                customer_id: "cus_1".into(),
                token: "t".into(),
                name: "Ada".into()
            })
            .unwrap(),
            json!({"customerId": "cus_1", "token": "t", "name": "Ada"})
        );
        assert_eq!(
            serde_json::to_value(MessageAccepted {
                seq: 1,
                client_message_id: "c".into(),
                conversation_id: "conv".into(),
                created_at: "x".into()
            })
            .unwrap(),
            json!({"seq": 1, "clientMessageId": "c", "conversationId": "conv", "createdAt": "x"})
        );
    }

    #[test]
    fn register_reads_the_form_and_its_errors_name_each_field() {
        let request = RegisterRequest::from_payload(
            &json!({"name": "Ada", "email": "a@b.co", "topic": null}),
        )
        .unwrap();
        assert_eq!(request.email.as_deref(), Some("a@b.co"));
        assert_eq!((request.question, request.topic), (None, None));
        assert!(RegisterRequest::from_payload(&json!({"name": "A", "email": 1})).is_err());
        let mut errors = FieldErrors::new();
        errors.insert(
            Field::Email,
            crate::core::pre_engagement::FieldError::InvalidEmail,
        );
        assert_eq!(
            serde_json::to_value(Ack::<()>::Error(AckError::form(&errors))).unwrap(),
            json!({"error": {"code": "invalid_form", "message": "some fields of the form are not valid",
                   "fields": {"email": {"code": "invalid_email", "message": "not an e-mail address"}}}})
        );
        let mut name_only = FieldErrors::new();
        name_only.insert(
            Field::Name,
            crate::core::pre_engagement::FieldError::Required,
        );
        let ack = serde_json::to_value(AckError::form(&name_only)).unwrap();
        assert_eq!(ack["code"], "invalid_name");
        assert_eq!(ack["fields"]["name"]["code"], "required");
    }

    #[test]
    fn chat_end_reads_an_empty_object_and_acks_the_documented_fields() {
        let request = EndChatRequest::from_payload(&json!({"why": "done"})).unwrap();
        assert_eq!(request, EndChatRequest {});
        assert_eq!(
            serde_json::to_value(ChatEndResult {
                ended: true,
                conversation_id: Some("conv".into())
            })
            .unwrap(),
            json!({"ended": true, "conversationId": "conv"})
        );
        assert_eq!(
            serde_json::to_value(ChatEndResult {
                ended: false,
                conversation_id: None
            })
            .unwrap(),
            json!({"ended": false, "conversationId": null})
        );
    }
}
