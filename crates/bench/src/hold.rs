//! Idle customers held by helper processes (`flexbridge-bench hold`).
//!
//! Scenario 3 goes to 20,000 connected customers, and one process may not
//! hold that many sockets: its open-files limit (inherited, raised to the
//! hard limit, 20,000 on the machine the README's figures come from) counts
//! every socket and file. So each step's new customers are connected by
//! helpers of a few thousand each, every helper from a loopback address of
//! its own (127.0.0.2, .3, …) so that no single address runs short of
//! ephemeral ports either.
//!
//! A helper connects and registers its customers (at most `--parallel`
//! handshakes at a time, like the in-process generator), prints `error …`
//! for the first failure if any, then `held N`, and keeps the customers
//! (answering pings) until its stdin closes or it is killed.

use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::cli::HoldArgs;
use crate::scenarios::connect_customers_with;
use crate::sio::{Dial, Transport};

/// `flexbridge-bench hold`: the helper's whole life.
pub async fn serve(args: HoldArgs) -> anyhow::Result<()> {
    let dial = Dial {
        transport: args.transport,
        local_ip: args.local_ip,
    };
    let (customers, error) = connect_customers_with(
        &args.url,
        dial,
        &args.prefix,
        args.first,
        args.count,
        args.parallel,
    )
    .await;
    if let Some(error) = error {
        println!("error {}", error.replace('\n', " "));
    }
    println!("held {}", customers.len());
    // Until the parent closes our stdin (or is gone).
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
    })
    .await;
    drop(customers);
    Ok(())
}

/// What one helper should connect.
#[derive(Debug, Clone)]
pub struct Order<'a> {
    pub url: &'a str,
    pub transport: Transport,
    pub prefix: &'a str,
    pub first: usize,
    pub count: usize,
    pub parallel: usize,
    pub local_ip: Option<IpAddr>,
}

/// A running helper and what it reported. Killed when dropped.
#[derive(Debug)]
pub struct Holder {
    pub held: usize,
    pub error: Option<String>,
    /// Kept for its stdin (closing it ends the helper) and kill-on-drop.
    _child: Child,
}

impl Holder {
    /// Starts a helper (this executable's `hold`) and waits, at most
    /// `timeout`, for its `held N` line.
    pub async fn start(
        order: Order<'_>,
        log_dir: &Path,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding this executable")?;
        std::fs::create_dir_all(log_dir)?;
        let log = log_dir.join(format!("hold-{}-{}.log", order.prefix, order.first));
        let stderr = std::fs::File::create(&log)?;
        let mut command = Command::new(exe);
        command
            .arg("hold")
            .args(["--url", order.url])
            .args(["--transport", order.transport.name()])
            .args(["--prefix", order.prefix])
            .args(["--first", &order.first.to_string()])
            .args(["--count", &order.count.to_string()])
            .args(["--parallel", &order.parallel.max(1).to_string()]);
        if let Some(ip) = order.local_ip {
            command.args(["--local-ip", &ip.to_string()]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .context("starting a hold helper")?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut error = None;
        let held = tokio::time::timeout(timeout, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(text) = line.strip_prefix("error ") {
                    error = Some(text.to_owned());
                } else if let Some(n) = line.strip_prefix("held ") {
                    return anyhow::Ok(n.trim().parse::<usize>()?);
                }
            }
            bail!("the helper exited without saying (see {})", log.display())
        })
        .await
        .with_context(|| format!("a hold helper did not finish within {timeout:?}"))??;
        Ok(Holder {
            held,
            error,
            _child: child,
        })
    }
}

/// Helpers started so far, seeded by the clock: successive helpers (and
/// successive runs) connect from different addresses, so that one address's
/// ephemeral ports are not still in `TIME_WAIT` from an earlier helper.
static NEXT_ADDRESS: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The loopback address the next helper connects from (see [`local_ip_for`]).
pub fn next_local_ip(url: &str) -> Option<IpAddr> {
    let _ = NEXT_ADDRESS.compare_exchange(
        usize::MAX,
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as usize)
            .unwrap_or(0),
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    local_ip_for(url, NEXT_ADDRESS.fetch_add(1, Ordering::Relaxed))
}

/// The loopback address helper `k` connects from, when the server is on
/// 127.0.0.1 (else the system chooses).
pub fn local_ip_for(url: &str, k: usize) -> Option<IpAddr> {
    let host = url.strip_prefix("http://")?.split([':', '/']).next()?;
    (host == "127.0.0.1").then(|| IpAddr::from([127, 0, 0, 2 + (k % 250) as u8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_of_a_loopback_server_get_loopback_addresses_of_their_own() {
        assert_eq!(
            local_ip_for("http://127.0.0.1:3000", 0),
            Some(IpAddr::from([127, 0, 0, 2]))
        );
        assert_eq!(
            local_ip_for("http://127.0.0.1:3000", 3),
            Some(IpAddr::from([127, 0, 0, 5]))
        );
        assert_eq!(local_ip_for("http://bridge.internal:3000", 0), None);
    }
}
