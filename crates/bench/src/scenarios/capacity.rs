//! Scenario 3: how many idle customers one server holds, and what each costs.
//!
//! On a freshly started server: read its RSS, then connect and register
//! customers in cumulative steps (e.g. 1,000 → 5,000 → 10,000 → 20,000) over
//! one transport, each step as fast as `parallel` handshakes at a time
//! allow. The customers are held by helper processes (`hold.rs`) of at most
//! `per_process` each, so the generator's own open-files limit and
//! ephemeral ports do not cap the server's figure. After each step, wait
//! for the RSS to settle (two equal reads 200 ms apart, at most 3 s) and
//! report (RSS − baseline) / customers. The customers stay connected and
//! idle (answering pings) until the scenario ends. A step that cannot
//! connect everyone (file descriptors, ephemeral ports, server refusal)
//! stops the scenario and says why. A step larger than the server's own
//! open-files limit allows (one descriptor per customer, plus what it has
//! open already) is cut to what fits, and the table says so.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::future::join_all;

use crate::hold::{Holder, Order, next_local_ip};
use crate::procs::Process;
use crate::report::{Capacity, CapacityStep};
use crate::sio::Transport;

use super::Target;

/// Descriptors a server keeps free beyond its customers (files it opens,
/// a webhook client's connections, a margin for the moment of a step).
const FD_MARGIN: u64 = 48;

/// Sizes of one run of the scenario.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Cumulative customer counts, ascending.
    pub steps: Vec<usize>,
    pub parallel: usize,
    pub nofile_limit: u64,
    pub transport: Transport,
    /// Customers per helper process.
    pub per_process: usize,
    /// Where helpers write their logs.
    pub log_dir: PathBuf,
    /// How long one helper may take for its customers.
    pub timeout: Duration,
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

/// How many customers `process` can still accept, by its open-files limit.
fn fd_room(process: &Process) -> Option<usize> {
    let limit = process.nofile_limit().ok()?;
    let open = process.open_files().ok()?;
    Some(limit.saturating_sub(open + FD_MARGIN) as usize)
}

pub async fn run(target: &Target<'_>, prefix: &str, plan: &Plan) -> Capacity {
    let baseline = match target.process {
        Some(p) => settled_rss(p).await,
        None => None,
    };
    let mut holders: Vec<Holder> = Vec::new();
    let mut connected = 0;
    let mut steps = Vec::new();
    let mut stopped = None;
    let per_process = plan.per_process.max(1);
    for &wanted in &plan.steps {
        let mut more = wanted.saturating_sub(connected);
        let room = target.process.and_then(fd_room);
        let cut = room.filter(|&room| room < more);
        if let Some(room) = cut {
            more = room;
        }
        let started = Instant::now();
        let chunks: Vec<(usize, usize)> = (0..more)
            .step_by(per_process)
            .map(|from| (connected + from, per_process.min(more - from)))
            .collect();
        let parallel = (plan.parallel / chunks.len().max(1)).max(1);
        let started_helpers = join_all(chunks.iter().map(|&(first, count)| {
            let order = Order {
                url: target.url,
                transport: plan.transport,
                prefix,
                first,
                count,
                parallel,
                local_ip: next_local_ip(target.url),
            };
            Holder::start(order, &plan.log_dir, plan.timeout)
        }))
        .await;
        let step_s = started.elapsed().as_secs_f64();
        let mut error = None;
        for outcome in started_helpers {
            match outcome {
                Ok(holder) => {
                    connected += holder.held;
                    if error.is_none() {
                        error.clone_from(&holder.error);
                    }
                    holders.push(holder);
                }
                Err(e) => {
                    error.get_or_insert_with(|| format!("{e:#}"));
                }
            }
        }
        let rss = match target.process {
            Some(p) => settled_rss(p).await,
            None => None,
        };
        steps.push(CapacityStep {
            target_customers: wanted,
            connected,
            step_s,
            server_rss_kib: rss,
            rss_per_customer_kib: rss
                .zip(baseline)
                .filter(|_| connected > 0)
                .map(|(now, base)| (now as f64 - base as f64) / connected as f64),
        });
        if let Some(error) = error {
            stopped = Some(format!(
                "{connected} of {wanted} connected; first error: {error}"
            ));
            break;
        }
        if cut.is_some() {
            stopped = Some(format!(
                "{connected} of {wanted}: the server's open-files limit ({}) has room for no more",
                target
                    .process
                    .and_then(|p| p.nofile_limit().ok())
                    .unwrap_or(plan.nofile_limit)
            ));
            break;
        }
    }
    drop(holders);
    Capacity {
        target: target.name.to_owned(),
        backend: target.backend,
        transport: plan.transport,
        baseline_rss_kib: baseline,
        steps,
        nofile_limit: plan.nofile_limit,
        stopped,
    }
}
