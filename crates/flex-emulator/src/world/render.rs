//! How stored resources become Twilio JSON: [`Render`] (the base of absolute
//! URLs and the account), and [`with_received_at`] for the control API's
//! and the SSE events' message shape.

use serde_json::{Value, json};

/// What turns stored resources into Twilio JSON: the base of absolute URLs
/// and the account they belong to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Render<'a> {
    pub base: &'a str,
    pub account_sid: &'a str,
}

/// A stored message's Twilio JSON plus `received_at_us`, the instant (µs
/// since the Unix epoch) the emulator committed it: the shape the control API
/// and the SSE events show. REST answers stay Twilio's.
pub(crate) fn with_received_at(mut json: Value, received_at_us: u64) -> Value {
    if let Value::Object(map) = &mut json {
        map.insert("received_at_us".into(), json!(received_at_us));
    }
    json
}
