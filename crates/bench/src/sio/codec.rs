//! Engine.IO v4 and Socket.IO v5 packets in their text form, as they travel
//! in websocket frames: one Engine.IO packet per frame, a Socket.IO packet
//! inside an Engine.IO `4` (message) packet.
//!
//! ```text
//! 0{"sid":"…","pingInterval":25000,…}   engine open (server → client)
//! 2 / 3                                  engine ping / pong (the server pings)
//! 40{"token":"…"}                        socket connect with auth (client → server)
//! 40{"sid":"…"}                          socket connect ok (server → client)
//! 44{"message":"invalid_token"}          socket connect_error
//! 42["message",{…}] / 4217["message",{…}] event, optionally with ack id 17
//! 4317[{"ok":{…}}]                       ack of id 17
//! 41                                     socket disconnect
//! ```
//!
//! Only the root namespace `/` and text packets are spoken: the flexbridge
//! protocol has no binary payloads. Encoding writes straight into one
//! `String` per frame (the generator's hot path); decoding borrows from the
//! frame and parses only the JSON the caller asks for.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// A frame that is not Engine.IO v4 / Socket.IO v5 text as this client speaks it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("unknown Engine.IO packet type {0:?}")]
    EngineType(char),
    #[error("unknown Socket.IO packet type {0:?}")]
    SocketType(char),
    #[error("binary Socket.IO packets are not supported")]
    Binary,
    #[error("namespace {0:?} is not spoken (only \"/\")")]
    Namespace(String),
    #[error("bad ack id")]
    AckId,
    #[error("bad JSON payload: {0}")]
    Json(String),
    #[error("an event needs a name as its first argument")]
    EventName,
}

/// One Engine.IO packet, borrowed from its frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Engine<'a> {
    /// `0{…}`: the handshake JSON (sid, pingInterval, pingTimeout, maxPayload).
    Open(&'a str),
    Close,
    Ping,
    Pong,
    /// `4…`: a Socket.IO packet (still encoded).
    Message(&'a str),
    Upgrade,
    Noop,
}

/// Splits one websocket text frame into its Engine.IO packet.
pub fn decode_engine(frame: &str) -> Result<Engine<'_>, FrameError> {
    let kind = frame.chars().next().ok_or(FrameError::Empty)?;
    let rest = &frame[kind.len_utf8()..];
    Ok(match kind {
        '0' => Engine::Open(rest),
        '1' => Engine::Close,
        '2' => Engine::Ping,
        '3' => Engine::Pong,
        '4' => Engine::Message(rest),
        '5' => Engine::Upgrade,
        '6' => Engine::Noop,
        other => return Err(FrameError::EngineType(other)),
    })
}

/// One Socket.IO packet of the root namespace.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    /// `0[{…}]`: from the server, `{"sid": …}`.
    Connect(Option<Value>),
    Disconnect,
    /// `2[id][name, args…]`
    Event {
        id: Option<u64>,
        name: String,
        args: Vec<Value>,
    },
    /// `3id[args…]`
    Ack {
        id: u64,
        args: Vec<Value>,
    },
    /// `4{…}`: usually `{"message": "…"}`.
    ConnectError(Value),
}

/// Decodes the Socket.IO packet carried by an Engine.IO message.
pub fn decode_socket(message: &str) -> Result<Packet, FrameError> {
    let kind = message.chars().next().ok_or(FrameError::Empty)?;
    let mut rest = &message[kind.len_utf8()..];
    if matches!(kind, '5' | '6') {
        return Err(FrameError::Binary);
    }
    if let Some(after) = rest.strip_prefix('/') {
        let (nsp, tail) = after.split_once(',').unwrap_or((after, ""));
        if !nsp.is_empty() {
            return Err(FrameError::Namespace(format!("/{nsp}")));
        }
        rest = tail;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = if digits > 0 {
        Some(
            rest[..digits]
                .parse::<u64>()
                .map_err(|_| FrameError::AckId)?,
        )
    } else {
        None
    };
    let payload = &rest[digits..];
    let json = |text: &str| -> Result<Value, FrameError> {
        serde_json::from_str(text).map_err(|e| FrameError::Json(e.to_string()))
    };
    Ok(match kind {
        '0' => Packet::Connect(if payload.is_empty() {
            None
        } else {
            Some(json(payload)?)
        }),
        '1' => Packet::Disconnect,
        '2' => {
            let Value::Array(mut items) = json(payload)? else {
                return Err(FrameError::EventName);
            };
            if items.is_empty() {
                return Err(FrameError::EventName);
            }
            let Value::String(name) = items.remove(0) else {
                return Err(FrameError::EventName);
            };
            Packet::Event {
                id,
                name,
                args: items,
            }
        }
        '3' => {
            let id = id.ok_or(FrameError::AckId)?;
            let Value::Array(args) = json(payload)? else {
                return Err(FrameError::Json("ack payload is not an array".into()));
            };
            Packet::Ack { id, args }
        }
        '4' => Packet::ConnectError(json(payload)?),
        other => return Err(FrameError::SocketType(other)),
    })
}

/// `40` or `40{auth}`: connect to the root namespace.
pub fn encode_connect(auth: Option<&Value>) -> String {
    match auth {
        Some(auth) => format!("40{auth}"),
        None => "40".to_owned(),
    }
}

/// `41`: leave the root namespace.
pub const DISCONNECT: &str = "41";
/// `3`: the answer to the server's ping.
pub const PONG: &str = "3";

/// `42[id]["name",data]`: an event with one argument, optionally asking for an ack.
pub fn encode_event<T: Serialize + ?Sized>(
    name: &str,
    data: &T,
    id: Option<u64>,
) -> Result<String, serde_json::Error> {
    let data = serde_json::to_string(data)?;
    let name = serde_json::to_string(name)?;
    let mut frame = String::with_capacity(8 + name.len() + data.len());
    frame.push_str("42");
    if let Some(id) = id {
        // Writing into a String cannot fail.
        let _ = write!(frame, "{id}");
    }
    frame.push('[');
    frame.push_str(&name);
    frame.push(',');
    frame.push_str(&data);
    frame.push(']');
    Ok(frame)
}

/// `43id[data]`: answers an event the server emitted with an ack id.
pub fn encode_ack<T: Serialize + ?Sized>(id: u64, data: &T) -> Result<String, serde_json::Error> {
    let data = serde_json::to_string(data)?;
    Ok(format!("43{id}[{data}]"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn engine_packets_are_split_by_their_first_character() {
        assert_eq!(
            decode_engine(r#"0{"sid":"a"}"#),
            Ok(Engine::Open(r#"{"sid":"a"}"#))
        );
        assert_eq!(decode_engine("2"), Ok(Engine::Ping));
        assert_eq!(decode_engine("3"), Ok(Engine::Pong));
        assert_eq!(decode_engine("1"), Ok(Engine::Close));
        assert_eq!(decode_engine("6"), Ok(Engine::Noop));
        assert_eq!(decode_engine("40"), Ok(Engine::Message("0")));
        assert_eq!(decode_engine(""), Err(FrameError::Empty));
        assert_eq!(decode_engine("9x"), Err(FrameError::EngineType('9')));
        assert_eq!(decode_engine("é"), Err(FrameError::EngineType('é')));
        assert_eq!(decode_socket("€[]"), Err(FrameError::SocketType('€')));
    }

    #[test]
    fn connect_answers_carry_the_sid_or_an_error() {
        assert_eq!(
            decode_socket(r#"0{"sid":"abc"}"#),
            Ok(Packet::Connect(Some(json!({"sid": "abc"}))))
        );
        assert_eq!(decode_socket("0"), Ok(Packet::Connect(None)));
        assert_eq!(
            decode_socket(r#"4{"message":"invalid_token"}"#),
            Ok(Packet::ConnectError(json!({"message": "invalid_token"})))
        );
        assert_eq!(decode_socket("1"), Ok(Packet::Disconnect));
    }

    #[test]
    fn events_decode_with_and_without_ack_ids() {
        assert_eq!(
            decode_socket(r#"2["message",{"seq":1}]"#),
            Ok(Packet::Event {
                id: None,
                name: "message".into(),
                args: vec![json!({"seq": 1})]
            })
        );
        assert_eq!(
            decode_socket(r#"217["ping"]"#),
            Ok(Packet::Event {
                id: Some(17),
                name: "ping".into(),
                args: vec![]
            })
        );
        assert_eq!(decode_socket("2[]"), Err(FrameError::EventName));
        assert_eq!(decode_socket("2[1]"), Err(FrameError::EventName));
    }

    #[test]
    fn acks_need_an_id_and_an_array() {
        assert_eq!(
            decode_socket(r#"3123[{"ok":{"seq":4}}]"#),
            Ok(Packet::Ack {
                id: 123,
                args: vec![json!({"ok": {"seq": 4}})]
            })
        );
        assert_eq!(decode_socket("3[]"), Err(FrameError::AckId));
        assert!(matches!(decode_socket("31{}"), Err(FrameError::Json(_))));
    }

    #[test]
    fn the_root_namespace_may_be_written_out_and_others_are_refused() {
        assert_eq!(
            decode_socket(r#"2/,5["a"]"#),
            Ok(Packet::Event {
                id: Some(5),
                name: "a".into(),
                args: vec![]
            })
        );
        assert_eq!(
            decode_socket(r#"2/admin,["a"]"#),
            Err(FrameError::Namespace("/admin".into()))
        );
    }

    #[test]
    fn binary_packets_are_refused() {
        assert_eq!(decode_socket(r#"51-["a",{}]"#), Err(FrameError::Binary));
        assert_eq!(decode_socket(r#"61-0[{}]"#), Err(FrameError::Binary));
    }

    #[test]
    fn encoded_frames_are_what_socket_io_expects() {
        assert_eq!(encode_connect(None), "40");
        assert_eq!(
            encode_connect(Some(&json!({"token": "t"}))),
            r#"40{"token":"t"}"#
        );
        assert_eq!(
            encode_event("message", &json!({"body": "hi \"you\""}), Some(9)).unwrap(),
            r#"429["message",{"body":"hi \"you\""}]"#
        );
        assert_eq!(
            encode_event("history", &json!({}), None).unwrap(),
            r#"42["history",{}]"#
        );
        assert_eq!(
            encode_ack(3, &json!({"ok": true})).unwrap(),
            r#"433[{"ok":true}]"#
        );
    }

    #[test]
    fn an_encoded_event_decodes_back_to_itself() {
        let frame = encode_event("message", &json!({"clientMessageId": "x-1"}), Some(42)).unwrap();
        let Engine::Message(inner) = decode_engine(&frame).unwrap() else {
            panic!("not a message: {frame}");
        };
        assert_eq!(
            decode_socket(inner),
            Ok(Packet::Event {
                id: Some(42),
                name: "message".into(),
                args: vec![json!({"clientMessageId": "x-1"})]
            })
        );
    }
}
