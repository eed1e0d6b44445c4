//! Scenario 3: how many idle customers one server holds, and what each costs.
//!
//! On a freshly started server: read its RSS, then connect and register
//! customers in cumulative steps (e.g. 1,000 → 5,000 → 10,000), each step as
//! fast as `parallel` handshakes at a time allow. After each step, wait for
//! the RSS to settle (two equal reads 200 ms apart, at most 3 s) and report
//! (RSS − baseline) / customers. The customers stay connected and idle
//! (answering pings) until the scenario ends. A step that cannot connect
//! everyone (file descriptors, ephemeral ports, server refusal) stops the
//! scenario and says why.

use std::time::{Duration, Instant};

use crate::customer::Customer;
use crate::procs::Process;
use crate::report::{Capacity, CapacityStep};

use super::{Target, connect_customers};

/// Sizes of one run of the scenario.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Cumulative customer counts, ascending.
    pub steps: Vec<usize>,
    pub parallel: usize,
    pub nofile_limit: u64,
}

async fn settled_rss(process: &Process) -> Option<u64> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = process.rss_kib().ok()?;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = process.rss_kib().ok()?;
        if now == last || Instant::now() >= deadline {
            return Some(now);
        }
        last = now;
    }
}

pub async fn run(target: &Target<'_>, prefix: &str, plan: &Plan) -> Capacity {
    let baseline = match target.process {
        Some(p) => settled_rss(p).await,
        None => None,
    };
    let mut held: Vec<Customer> = Vec::new();
    let mut steps = Vec::new();
    let mut stopped = None;
    for &wanted in &plan.steps {
        let more = wanted.saturating_sub(held.len());
        let started = Instant::now();
        let (customers, error) =
            connect_customers(target.url, prefix, held.len(), more, plan.parallel).await;
        let step_s = started.elapsed().as_secs_f64();
        held.extend(customers);
        let rss = match target.process {
            Some(p) => settled_rss(p).await,
            None => None,
        };
        steps.push(CapacityStep {
            target_customers: wanted,
            connected: held.len(),
            step_s,
            server_rss_kib: rss,
            rss_per_customer_kib: rss
                .zip(baseline)
                .filter(|_| !held.is_empty())
                .map(|(now, base)| (now as f64 - base as f64) / held.len() as f64),
        });
        if let Some(error) = error {
            stopped = Some(format!(
                "{} of {wanted} connected; first error: {error}",
                held.len()
            ));
            break;
        }
    }
    for customer in &held {
        customer.client.close();
    }
    Capacity {
        target: target.name.to_owned(),
        backend: target.backend,
        baseline_rss_kib: baseline,
        steps,
        nofile_limit: plan.nofile_limit,
        stopped,
    }
}
