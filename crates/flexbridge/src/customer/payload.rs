//! How a client payload is read: as the protocol says it is shaped, a
//! JSON object of named fields ([`Payload`]), with what is wrong said in the
//! protocol's words. The request types themselves are in [`super::events`].

use super::events::{
    EndChatRequest, HandshakeAuth, HistoryRequest, MessageRequest, RegisterRequest,
};

/// A client payload, read as the protocol says it is shaped: a JSON object
/// of named fields (serde's derived structs would also take an array of
/// values in field order). What is wrong is said in the protocol's words
/// (the field's name, what it must be), never in Rust's.
pub trait Payload: Sized {
    /// What the payload is, for messages: `message { clientMessageId, body }`.
    const SHAPE: &'static str;

    /// Reads the object's fields (unknown ones are ignored).
    fn read(fields: &Fields<'_>) -> Result<Self, String>;

    /// Reads `value`, which must be an object.
    fn from_payload(value: &serde_json::Value) -> Result<Self, String> {
        match value {
            serde_json::Value::Object(map) => Self::read(&Fields(map)),
            other => Err(format!(
                "{} takes an object, not {}",
                Self::SHAPE,
                kind_of(other)
            )),
        }
    }

    /// The message when no payload was sent at all.
    fn missing() -> String {
        format!("{} takes an object; none was sent", Self::SHAPE)
    }
}

/// What a JSON value is, in words.
fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "true or false",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The fields of a payload object.
pub struct Fields<'a>(&'a serde_json::Map<String, serde_json::Value>);

impl Fields<'_> {
    /// A field that must be a string.
    pub fn string(&self, name: &str) -> Result<String, String> {
        self.optional_string(name)?
            .ok_or_else(|| format!("`{name}` is missing"))
    }

    /// A string field that may be absent (or null).
    pub fn optional_string(&self, name: &str) -> Result<Option<String>, String> {
        match self.0.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(format!("`{name}` must be a string, not {}", kind_of(other))),
        }
    }

    /// A whole-number field that may be absent (or null).
    pub fn optional_integer(&self, name: &str) -> Result<Option<i64>, String> {
        match self.0.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| format!("`{name}` must be a whole number, not {n}")),
            Some(other) => Err(format!(
                "`{name}` must be a whole number, not {}",
                kind_of(other)
            )),
        }
    }
}

impl Payload for HandshakeAuth {
    const SHAPE: &'static str = "the handshake auth { token?, lastSeq? }";

    fn read(fields: &Fields<'_>) -> Result<Self, String> {
        Ok(Self {
            token: fields.optional_string("token")?,
            last_seq: fields.optional_integer("lastSeq")?,
        })
    }
}

impl Payload for RegisterRequest {
    const SHAPE: &'static str = "register { name, email?, question?, topic? }";

    fn read(fields: &Fields<'_>) -> Result<Self, String> {
        Ok(Self {
            name: fields.string("name")?,
            email: fields.optional_string("email")?,
            question: fields.optional_string("question")?,
            topic: fields.optional_string("topic")?,
        })
    }
}

impl Payload for MessageRequest {
    const SHAPE: &'static str = "message { clientMessageId, body | attachment }";

    fn read(fields: &Fields<'_>) -> Result<Self, String> {
        // A file's message has no text: `body` is then optional.
        let attachment = fields.optional_string("attachment")?;
        let body = match attachment {
            Some(_) => fields.optional_string("body")?.unwrap_or_default(),
            None => fields.string("body")?,
        };
        Ok(Self {
            client_message_id: fields.string("clientMessageId")?,
            body,
            attachment,
        })
    }
}

impl Payload for HistoryRequest {
    const SHAPE: &'static str = "history { since?, limit? }";

    fn read(fields: &Fields<'_>) -> Result<Self, String> {
        Ok(Self {
            since: fields.optional_integer("since")?,
            limit: fields.optional_integer("limit")?,
        })
    }
}

impl Payload for EndChatRequest {
    const SHAPE: &'static str = "chat:end {}";

    fn read(_: &Fields<'_>) -> Result<Self, String> {
        Ok(Self {})
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn requests_read_the_documented_camel_case_fields() {
        let m =
            MessageRequest::from_payload(&json!({"clientMessageId": "c1", "body": "hi"})).unwrap();
        assert_eq!(m.client_message_id, "c1");
        let auth = HandshakeAuth::from_payload(&json!({"token": "t", "lastSeq": 7})).unwrap();
        assert_eq!((auth.token.as_deref(), auth.last_seq), (Some("t"), Some(7)));
        let empty = HandshakeAuth::from_payload(&json!({})).unwrap();
        assert_eq!(empty, HandshakeAuth::default());
        assert!(MessageRequest::from_payload(&json!({"body": "hi"})).is_err());
        let file =
            MessageRequest::from_payload(&json!({"clientMessageId": "c2", "attachment": "att_1"}))
                .unwrap();
        assert_eq!(
            (file.body.as_str(), file.attachment.as_deref()),
            ("", Some("att_1"))
        );
        assert!(
            MessageRequest::from_payload(&json!({"clientMessageId": "c3", "attachment": 7}))
                .is_err()
        );
        assert!(RegisterRequest::from_payload(&json!({"name": 5})).is_err());
    }

    #[test]
    fn arrays_are_not_objects_and_errors_name_the_field() {
        assert_eq!(
            MessageRequest::from_payload(&json!(["c1", "hi"])).unwrap_err(),
            "message { clientMessageId, body | attachment } takes an object, not an array"
        );
        assert!(EndChatRequest::from_payload(&json!([])).is_err());
        assert!(HandshakeAuth::from_payload(&json!(["t", 1])).is_err());
        assert_eq!(
            HistoryRequest::from_payload(&json!({"since": "x"})).unwrap_err(),
            "`since` must be a whole number, not a string"
        );
        assert_eq!(
            HistoryRequest::from_payload(&json!({"limit": 2.5})).unwrap_err(),
            "`limit` must be a whole number, not 2.5"
        );
        assert_eq!(
            MessageRequest::from_payload(&json!({"body": "hi"})).unwrap_err(),
            "`clientMessageId` is missing"
        );
    }
}
