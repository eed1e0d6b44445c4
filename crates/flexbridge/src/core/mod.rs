//! The bridge's core: identity, conversation state, ordering, persistence
//! and deduplication. The two sides only connect and translate: the
//! customer side (Socket.IO) calls [`Bridge`]'s customer methods, the Flex
//! side (webhooks) calls [`Bridge::apply_flex_event`], and the core tells
//! customers what happened through the [`Fanout`] trait, which the customer
//! side implements. The core knows neither Socket.IO nor which Flex backend
//! runs.
//!
//! - [`ids`]: parse-only newtypes for every id and piece of customer input.
//! - [`conversation`]: the `opening → open → closed` state machine.
//! - [`bridge`]: the service API both sides call.
//! - [`rate_limit`]: the per-customer message rate limit.
//! - [`clock`]: millisecond timestamps and their protocol format.

pub mod bridge;
pub mod clock;
pub mod conversation;
pub mod ids;
pub mod rate_limit;

pub use bridge::{Bridge, BridgeError, EventOutcome, Fanout, Notice, Session};
