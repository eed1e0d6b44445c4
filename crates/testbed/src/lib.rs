//! # testbed
//!
//! Throwaway servers the tests and the benchmark start for themselves, on
//! free loopback ports, in temporary directories, stopped when done. None
//! relies on a server already running on the machine, or changes one.
//!
//! # Layout
//!
//! - [`postgres`]: a PostgreSQL server made with `initdb` and run with
//!   `pg_ctl`: one of a test's own ([`postgres::Postgres::start`]), or the
//!   one every test process of a run shares, with a fresh database per
//!   test ([`postgres::shared_database`]).
//! - [`redis`]: `redis-server` on a free port, nothing persisted; it can be
//!   stopped and started again (a Redis restart).
//! - [`nginx`]: nginx with a generated configuration, round-robin in front
//!   of N servers, websocket upgrade on (the load balancer of several
//!   bridges).
//!
//! Redis and nginx run under a guard that stops them when their owner is
//! dropped or this process dies (`server`).
//!
//! Calls block (they run the server's own tools); from async code, use
//! them in `spawn_blocking` or accept that the runtime's thread waits.

pub mod nginx;
pub mod postgres;
pub mod redis;
mod server;
