//! The scenarios of issue 5, each bounded by a count and a timeout:
//!
//! - `throughput.rs`    1 (and 4): N customers × M messages → emulator store
//! - `replies.rs`       2: agents reply through the control API → customer sockets
//! - `capacity.rs`      3: idle customers in steps, per transport, held by
//!   helper processes (`hold.rs`); RSS per customer, connect time
//! - `emulator_alone.rs` 4b: the emulator's message-create route without any relay
//!
//! A scenario never decides whether a number is good; it only counts what
//! was lost or duplicated (the run fails on any) and measures.

pub mod capacity;
pub mod emulator_alone;
pub mod replies;
pub mod throughput;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::cli::Backend;
use crate::customer::Customer;
use crate::emulator::Emulator;
use crate::procs::Process;
use crate::sio::Dial;

/// What a scenario runs against.
pub struct Target<'a> {
    /// `bridge`, `floor` or `echo`.
    pub name: &'a str,
    /// The relay's Flex backend (`None` for `echo`).
    pub backend: Option<Backend>,
    pub url: &'a str,
    /// The server process, when this run started it (for RSS and CPU).
    pub process: Option<&'a Process>,
    /// The emulator behind it (none for `echo`).
    pub emulator: Option<(&'a Emulator, Option<&'a Process>)>,
}

impl Target<'_> {
    /// How problems name the target: `bridge (conversations)`.
    pub fn who(&self) -> String {
        match self.backend {
            Some(backend) => format!("{} ({})", self.name, backend.name()),
            None => self.name.to_owned(),
        }
    }
}

/// How long one connection handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Connects (over a websocket) and registers `count` customers named
/// `{prefix}-c{i}`, at most `parallel` handshakes at a time. Returns them in
/// order, or the first error.
pub async fn connect_customers(
    url: &str,
    prefix: &str,
    first: usize,
    count: usize,
    parallel: usize,
) -> (Vec<Customer>, Option<String>) {
    connect_customers_with(url, Dial::default(), prefix, first, count, parallel).await
}

/// [`connect_customers`] the way `dial` says.
pub async fn connect_customers_with(
    url: &str,
    dial: Dial,
    prefix: &str,
    first: usize,
    count: usize,
    parallel: usize,
) -> (Vec<Customer>, Option<String>) {
    let gate = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = Vec::with_capacity(count);
    for i in first..first + count {
        let gate = gate.clone();
        let url = url.to_owned();
        let name = format!("{prefix}-c{i}");
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let mut customer = Customer::connect_with(&url, dial, CONNECT_TIMEOUT).await?;
            customer.register(&name).await?;
            anyhow::Ok(customer)
        }));
    }
    let mut customers = Vec::with_capacity(count);
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(customer)) => customers.push(customer),
            Ok(Err(e)) => {
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
            Err(e) => {
                first_error.get_or_insert_with(|| format!("task: {e}"));
            }
        }
    }
    (customers, first_error)
}

/// CPU time of an optional process, in seconds.
pub fn cpu_s(process: Option<&Process>) -> Option<f64> {
    process.and_then(|p| p.cpu().ok()).map(|d| d.as_secs_f64())
}

/// At most `keep` of `items`, then one line saying how many more there were
/// (a run that loses a thousand messages should not print a thousand lines).
pub fn capped(items: Vec<String>, keep: usize) -> Vec<String> {
    let total = items.len();
    let mut kept: Vec<String> = items.into_iter().take(keep).collect();
    if total > keep {
        kept.push(format!("… and {} more like these", total - keep));
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_problem_lists_are_capped_with_a_count() {
        let items: Vec<String> = (0..7).map(|i| format!("p{i}")).collect();
        assert_eq!(
            capped(items.clone(), 3),
            vec!["p0", "p1", "p2", "… and 4 more like these"]
        );
        assert_eq!(capped(items[..2].to_vec(), 3), vec!["p0", "p1"]);
    }
}
