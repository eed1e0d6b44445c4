//! A flexbridge customer as the benchmark plays it (docs/protocol.md): connect,
//! `register`, `message` with a client message id, and the server's
//! `message` events. The floor relay speaks the same subset, so one generator
//! drives both.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::sio::{Client, ClientError, Dial, ServerEvent};

/// How long any single ack may take before the emit counts as failed.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// A failed customer action.
#[derive(Debug, thiserror::Error)]
pub enum CustomerError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the server answered {event} with error {code}: {message}")]
    Refused {
        event: &'static str,
        code: String,
        message: String,
    },
    #[error("the ack of {event} is neither {{ok}} nor {{error}}: {args}")]
    BadAck { event: &'static str, args: String },
}

/// The `ok` of a `register` ack.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    pub customer_id: String,
    pub token: String,
}

/// The `ok` of a `message` ack (only what the benchmark reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    #[serde(default)]
    pub seq: Option<i64>,
    pub client_message_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageOut<'a> {
    client_message_id: &'a str,
    body: &'a str,
}

/// The body of a server `message` event (an agent reply, or an echo of our own).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageIn {
    #[serde(default)]
    pub direction: String,
    #[serde(default)]
    pub body: String,
}

/// A connected customer.
#[derive(Debug)]
pub struct Customer {
    pub client: Client,
    pub registered: Option<Registered>,
}

impl Customer {
    /// Connects anonymously (no token) over a websocket.
    pub async fn connect(base: &str, timeout: Duration) -> Result<Self, CustomerError> {
        Self::connect_with(base, Dial::default(), timeout).await
    }

    /// Connects anonymously the way `dial` says.
    pub async fn connect_with(
        base: &str,
        dial: Dial,
        timeout: Duration,
    ) -> Result<Self, CustomerError> {
        let client = Client::connect_with(base, Some(&json!({})), dial, timeout).await?;
        Ok(Self {
            client,
            registered: None,
        })
    }

    /// `register {name}`.
    pub async fn register(&mut self, name: &str) -> Result<&Registered, CustomerError> {
        let ack = self
            .client
            .emit_with_ack("register", &json!({ "name": name }), ACK_TIMEOUT)
            .await?;
        let registered: Registered = parse_ok("register", &ack.args)?;
        Ok(self.registered.insert(registered))
    }

    /// `message {clientMessageId, body}`; returns the ack and the instant it arrived.
    pub async fn send(
        &self,
        client_message_id: &str,
        body: &str,
    ) -> Result<(Accepted, Instant), CustomerError> {
        let ack = self
            .client
            .emit_with_ack(
                "message",
                &MessageOut {
                    client_message_id,
                    body,
                },
                ACK_TIMEOUT,
            )
            .await?;
        Ok((parse_ok("message", &ack.args)?, ack.at))
    }

    /// The next server event (any name); `None` when the connection is gone.
    pub async fn next_event(&mut self) -> Option<ServerEvent> {
        self.client.next_event().await
    }
}

/// Reads `[{ok: T}]` or turns `[{error: {code, message}}]` into an error.
pub fn parse_ok<T: for<'de> Deserialize<'de>>(
    event: &'static str,
    args: &[Value],
) -> Result<T, CustomerError> {
    let bad = || CustomerError::BadAck {
        event,
        args: Value::Array(args.to_vec()).to_string(),
    };
    let first = args.first().ok_or_else(bad)?;
    if let Some(ok) = first.get("ok") {
        return T::deserialize(ok).map_err(|_| bad());
    }
    if let Some(error) = first.get("error") {
        let text = |k: &str| {
            error
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        return Err(CustomerError::Refused {
            event,
            code: text("code"),
            message: text("message"),
        });
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ok_ack_is_read_and_an_error_ack_is_an_error() {
        let ok: Registered = parse_ok(
            "register",
            &[json!({"ok": {"customerId": "c1", "token": "t", "name": "n"}})],
        )
        .unwrap();
        assert_eq!(ok.customer_id, "c1");
        let err = parse_ok::<Registered>(
            "register",
            &[json!({"error": {"code": "invalid_name", "message": "no"}})],
        )
        .unwrap_err();
        assert!(matches!(err, CustomerError::Refused { ref code, .. } if code == "invalid_name"));
        assert!(matches!(
            parse_ok::<Registered>("register", &[json!(1)]),
            Err(CustomerError::BadAck { .. })
        ));
        assert!(matches!(
            parse_ok::<Registered>("register", &[]),
            Err(CustomerError::BadAck { .. })
        ));
    }
}
