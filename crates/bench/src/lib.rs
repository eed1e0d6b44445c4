//! # flexbridge-bench
//!
//! The benchmark of issue 5: how fast, how many, at what cost — measured
//! against a floor in the same run. See `README.md` in this crate for the
//! scenarios, what every column measures, and how the generator was checked.
//!
//! # Layout
//! - `cli`       the command line (`flexbridge-bench [--quick]`, `flexbridge-bench floor`, `… hold`)
//! - `run`       one run: start processes, run the scenarios in order, report
//! - `scenarios` the four scenarios, each bounded by count and time
//! - `sio`       the load generator's own Socket.IO client (EIO4/SIO5 over websocket)
//! - `customer`  the flexbridge customer protocol on top of it (register, message)
//! - `floor`     the floor relay: socketioxide in, one REST POST per message out
//! - `hold`      helper processes that hold scenario 3's idle customers
//! - `emulator`  the emulator's control API and its event-stream observer
//! - `twilio`    the Twilio REST calls of the floor and scenario 4b, per backend (chat, conversations)
//! - `procs`     child processes: spawn, "listening on", RSS, CPU time, fd limit
//! - `stats`     latency percentiles
//! - `report`    results as JSON and Markdown

pub mod cli;
pub mod customer;
pub mod emulator;
pub mod floor;
pub mod hold;
pub mod procs;
pub mod report;
pub mod run;
pub mod scenarios;
pub mod sio;
pub mod stats;
pub mod twilio;
