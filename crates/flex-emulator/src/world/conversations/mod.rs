//! Flex Conversations' media channel: Conversations v1 conversations, kept
//! in their own collection (not Chat channels) with CH SIDs from the same
//! generator. They belong to the bootstrapped "Flex Chat Service": since
//! Twilio unified Chat and Conversations services, that IS is also the
//! default Conversations service, so `/v1/Conversations/…` and
//! `/v1/Services/{IS}/Conversations/…` address the same conversations.
//!
//! - `model.rs`     conversations, participants, messages, scoped webhooks; their JSON
//! - `state.rs`     `ConversationState` and `StateReason`: where a conversation is, why it moved
//! - `timers.rs`    `Timers.Inactive` / `Timers.Closed`: ISO-8601 durations and when they fall due
//! - `changes.rs`   what REST calls and agents do to conversations
//! - `lifecycle.rs` the state machine active ⇄ inactive → closed, by API, timers and events
//! - `events.rs`    conversation events (`docs/twilio-reference.md` §7.2) → scoped webhooks and Studio

pub(crate) mod changes;
pub(crate) mod events;
pub(crate) mod lifecycle;
pub(crate) mod model;
pub(crate) mod state;
pub(crate) mod timers;

pub(crate) use model::{Conversation, Scope};
pub(crate) use state::ConversationState;
