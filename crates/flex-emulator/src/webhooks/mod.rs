//! Outbound webhooks: the job the world queues (`job.rs`), the dispatcher that
//! signs and sends it (`dispatcher.rs`), and the delivery log behind
//! `GET /_emulator/webhooks` (`log.rs`). `job.rs` and `log.rs` are plain
//! data; the dispatcher reaches the world only through [`Ledger`].

mod dispatcher;
mod job;
mod log;

pub(crate) use dispatcher::{Dispatcher, Ledger};
pub(crate) use job::{HookMethod, Job};
pub(crate) use log::{DeliveryLog, DeliveryRecord};
