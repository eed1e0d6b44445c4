//! # flexbridge
//!
//! Connects a custom chat channel (any Socket.IO client: the bundled web
//! chat, a mobile app, a bot) to Twilio Flex: every customer conversation
//! becomes a Flex channel and task, and the agent's replies come back to
//! that customer only. `docs/protocol.md` is the customer protocol;
//! `docs/architecture.md` the contracts between the parts.
//!
//! # Layout
//!
//! - [`core`]: ids, the conversation state machine and the bridge service
//!   both sides call; owns identity, ordering and deduplication.
//! - [`customer`]: the Socket.IO side (namespace, auth on connect, events,
//!   fan-out to a customer's room).
//! - [`flex`]: the Twilio side: the `FlexBackend` trait, the Conversations
//!   backend (the default) and the Chat backend, the REST client, the
//!   signed webhook routes, provisioning.
//! - [`store`]: SQLite persistence (customers, conversations, messages,
//!   outbox, webhook receipts) with uniqueness in the schema.
//! - [`outbox`]: the worker delivering customer messages to Flex in order,
//!   exactly once, through retries, rate limits and restarts.
//! - [`web`]: the embedded web chat, `/healthz`, `/readyz`, `/metrics`.
//! - [`config`]: layered settings (defaults → file → env → flags, by
//!   figment), each spelled once in `config::setting`, secrets typed;
//!   `config::flex`: which backend, and what each one needs.
//! - [`startup`]: `Application::build(settings)`, `.port()`, `.run_until_stopped()`.
//! - `dev`: `flexbridge dev`, the bridge and the Flex emulator in one process
//!   (cargo feature `dev`, on by default).
//! - [`doctor`]: `flexbridge doctor`, checking a `serve` configuration.
//! - [`cli`]: the `flexbridge` command line (`serve`, `dev`, `provision`, `doctor`).
//! - [`telemetry`]: logging and Prometheus metrics.
//!
//! # Decisions worth knowing
//!
//! - A client message id is unique per *customer* (`UNIQUE(customer_id,
//!   client_msg_id)`), not per conversation: a retry after a lost ack that
//!   crosses a chat's end still finds the original instead of opening a
//!   new conversation with a duplicate.
//! - One bridge per database. SQLite has one writer; the store serialises
//!   writes through one connection (`BEGIN IMMEDIATE`) and commits the
//!   writes waiting together (group commit: one transaction for many
//!   customers' messages, each caller answered after the commit). WAL with
//!   `synchronous=NORMAL`: an acked message survives a process crash, not
//!   necessarily a power loss. PostgreSQL and several instances are future
//!   work (the SQL is kept portable).
//! - Exactly once to Flex costs one commit per message (its outcome, with
//!   the next row taken), not a write before each send: a send is looked
//!   for in Flex first when an earlier attempt may have landed — after an
//!   ambiguous failure (recorded), or when a run may have sent it without
//!   recording the outcome (the worker's own `unsure` set: conversations
//!   with rows at its start, or whose task died). See [`outbox`].
//! - The bridge writes no `system` messages: an agent joining or ending the
//!   chat is state (`conversation`, `agent:joined`, `chat:ended`, and the
//!   `session`'s conversation on reconnect), so clients never show it twice.
//! - At every start, open conversations are re-attached (webhooks pointed
//!   at the current `PUBLIC_BASE_URL`, missed agent messages and chat end
//!   applied), so a restart on another address loses nothing.
//! - A client payload over 64 KiB is refused on both transports (polling
//!   body, websocket message and frame; socketioxide ≥ 0.18.9).
//! - Each conversation keeps the Flex backend that opened it (stored with
//!   it): `FLEX_BACKEND` only chooses how new conversations open, so a
//!   switch needs no drain (`docs/migrating-to-conversations.md`).

pub mod cli;
pub mod config;
pub mod core;
pub mod customer;
#[cfg(feature = "dev")]
pub mod dev;
pub mod doctor;
pub mod flex;
pub mod outbox;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod web;
