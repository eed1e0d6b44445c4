//! The load generator's Socket.IO client: Engine.IO v4 / Socket.IO v5 over
//! a websocket (tokio-tungstenite) or HTTP long-polling (hyper).
//!
//! - `codec.rs`   the text packets, both ways (unit-tested frame by frame)
//! - `client.rs`  one connection: handshake, then a task that answers pings,
//!   writes frames, routes acks and forwards server events with receive instants
//! - `polling.rs` the same over long-polling
//!
//! `tests/sio_selfcheck.rs` checks it against a real socketioxide server.

pub mod client;
pub mod codec;
mod polling;

pub use client::{Ack, Client, ClientError, Dial, ServerEvent, Transport};
