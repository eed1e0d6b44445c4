//! The load generator's Socket.IO client: Engine.IO v4 / Socket.IO v5 over
//! tokio-tungstenite, websocket transport only.
//!
//! - `codec.rs`  the text packets, both ways (unit-tested frame by frame)
//! - `client.rs` one connection: handshake, then a task that answers pings,
//!   writes frames, routes acks and forwards server events with receive instants
//!
//! `tests/sio_selfcheck.rs` checks it against a real socketioxide server.

pub mod client;
pub mod codec;

pub use client::{Ack, Client, ClientError, ServerEvent};
