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
//!
//! Calls block (they run the server's own tools); from async code, use
//! them in `spawn_blocking` or accept that the runtime's thread waits.

pub mod postgres;
