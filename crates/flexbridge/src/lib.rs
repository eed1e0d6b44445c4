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
//! A core with ports, and connectors that only translate
//! (`docs/architecture.md` §1 draws it). `core` imports nothing else of
//! the crate; every other module depends on it.
//!
//! - [`core`]: the domain model, the conversation state machine, the
//!   service both sides and the outbox call ([`core::Bridge`], which
//!   decides), and the ports: Flex (`core::backend`), customers
//!   (`core::fanout`), storage (`core::storage`), work (`core::work`).
//! - [`customer`]: the Socket.IO side (namespace, auth on connect, events,
//!   fan-out to a customer's room). A new customer connector goes beside
//!   it: it calls `core::Bridge` and implements `core::fanout::Fanout`.
//! - [`flex`]: the Twilio side: the Conversations backend (the default)
//!   and the Chat backend, the REST client, the signed webhook routes,
//!   provisioning, Twilio's SIDs. A new backend is a module here
//!   implementing `core::backend::FlexBackend`, a `flex::BackendKind`
//!   variant, its settings in `config::flex`, one line in `startup`.
//! - [`store`]: SQLite persistence, one file and handle per table
//!   (customers, conversations, messages, outbox, webhook receipts,
//!   attachments with their bytes),
//!   uniqueness in the schema; it implements `core::storage::Storage`. A
//!   new table is a file there, a migration, and what the core needs of
//!   it on the `Storage` port.
//! - [`outbox`]: the worker delivering customer messages to Flex in order,
//!   exactly once, through retries, rate limits and restarts; it
//!   schedules, the core decides what outcomes mean.
//! - [`web`]: the embedded web chat (the page, `/embed.js` for other
//!   sites, `/widget.json`, `/transcript`, `/attachments`), who may frame it and open its
//!   socket (`ALLOWED_ORIGINS`), `/healthz`, `/readyz`, `/metrics`.
//! - [`config`]: layered settings (defaults → file → env → flags, by
//!   figment), each spelled once in `config::setting`, secrets typed;
//!   data only (startup builds the clients).
//! - [`startup`]: wires the parts into `Application::build(settings)`,
//!   `.port()`, `.run_until_stopped()`, and supervises them.
//! - `dev`: `flexbridge dev`, the bridge and the Flex emulator in one
//!   process, and the integration tests' harness (cargo feature `dev`, on
//!   by default; without it the bridge has no emulator in it).
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
//! - One bridge per SQLite file, and the store commits the writes waiting
//!   together (group commit, `store::group_commit`): an ack means
//!   "committed", and many customers share one commit.
//! - Exactly once to Flex costs one commit per message (its outcome, with
//!   the next row taken), not a write before each send: a send is looked
//!   for in Flex first when an earlier attempt may have landed — after an
//!   ambiguous failure (recorded), or when a run may have sent it without
//!   recording the outcome (the worker's own `unsure` set: conversations
//!   with jobs at its start, or whose task died). See [`outbox`].
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
