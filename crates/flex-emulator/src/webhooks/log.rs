//! The delivery log behind `GET /_emulator/webhooks`: one [`DeliveryRecord`]
//! per attempt (or drop), the most recent kept in a [`DeliveryLog`].

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::job::HookMethod;
use crate::clock::Instant;

/// What happened to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Delivered,
    Failed,
    Dropped,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
            Outcome::Dropped => "dropped",
        }
    }
}

/// One line of the delivery log.
#[derive(Debug, Clone)]
pub(crate) struct DeliveryRecord {
    pub url: String,
    pub method: HookMethod,
    pub event_type: String,
    pub webhook_sid: String,
    pub channel_sid: String,
    pub params: Vec<(String, String)>,
    /// The `RetryCount` sent (0 = first attempt).
    pub attempt: u8,
    /// 1-based copy number when a duplicate fault sent the delivery again.
    pub copy: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub outcome: Outcome,
    /// When the attempt was logged, after its answer (or its failure).
    pub at: Instant,
    /// µs since the Unix epoch, taken just before the request was handed to
    /// the HTTP client (which writes it at once on a kept-alive connection,
    /// after connecting on a new one); `None` when nothing was sent (a drop).
    pub sent_at_us: Option<u64>,
    /// µs since the Unix epoch, taken when the answer's status and headers
    /// arrived; `None` when none did (timeout, connection error, drop).
    pub answered_at_us: Option<u64>,
}

impl DeliveryRecord {
    pub fn to_json(&self, id: u64) -> Value {
        let params: serde_json::Map<String, Value> = self
            .params
            .iter()
            .map(|(name, value)| (name.clone(), json!(value)))
            .collect();
        json!({
            "id": id,
            "url": self.url,
            "method": self.method.as_str(),
            "event_type": self.event_type,
            "webhook_sid": self.webhook_sid,
            "channel_sid": self.channel_sid,
            "params": params,
            "attempt": self.attempt,
            "copy": self.copy,
            "status": self.status,
            "error": self.error,
            "outcome": self.outcome.as_str(),
            "at": self.at.webhook(),
            "sent_at_us": self.sent_at_us,
            "answered_at_us": self.answered_at_us,
        })
    }
}

/// The most recent deliveries (oldest dropped beyond [`DeliveryLog::CAPACITY`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct DeliveryLog {
    records: VecDeque<(u64, DeliveryRecord)>,
    next_id: u64,
}

impl DeliveryLog {
    pub const CAPACITY: usize = 2_000;

    /// Appends a record and returns its JSON (for the SSE event).
    pub fn push(&mut self, record: DeliveryRecord) -> Value {
        self.next_id += 1;
        let json = record.to_json(self.next_id);
        if self.records.len() == Self::CAPACITY {
            self.records.pop_front();
        }
        self.records.push_back((self.next_id, record));
        json
    }

    pub fn to_json(&self) -> Value {
        Value::Array(
            self.records
                .iter()
                .map(|(id, record)| record.to_json(*id))
                .collect(),
        )
    }
}
