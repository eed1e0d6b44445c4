//! Logs and metrics. Logs go to stderr (`RUST_LOG` filters them; stdout is
//! kept for the "listening on" lines a harness waits for). Metrics are
//! Prometheus text at `/metrics`:
//!
//! - `flexbridge_messages_in_total{from="customer"|"agent"}`
//! - `flexbridge_messages_out_total` (customer messages delivered to Flex)
//! - `flexbridge_outbox_depth` (rows waiting, counted by the outbox's full
//!   scan: at start, on each sweep and when a retry is due)
//! - `flexbridge_delivery_latency_seconds` (accepted → in Flex, histogram)
//! - `flexbridge_store_batch_writes` (writes per group commit, histogram)
//! - `flexbridge_webhooks_total{result=…}` (applied, duplicate, ignored,
//!   unknown_channel, bad_signature, malformed, error)
//!
//! Histogram samples are buffered until they are folded into their
//! distributions; a background thread does that every
//! [`METRICS_UPKEEP`], so they do not pile up when nothing scrapes
//! `/metrics`.
//!
//! Secrets never reach a log: they are `SecretString`s whose `Debug` is
//! redacted, and nothing formats them.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// Installs the log subscriber (once; later calls do nothing).
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,socketioxide=warn,engineioxide=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// How often buffered histogram samples are folded into their
/// distributions.
pub const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// The process-wide Prometheus recorder (installed on first use; every app
/// in the process shares it), with its upkeep thread.
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("flexbridge_delivery_latency_seconds".into()),
                &[
                    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ],
            )
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(METRICS_UPKEEP);
                    upkeep.run_upkeep();
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "no metrics upkeep thread; histograms fold only when /metrics is read");
        }
        handle
    })
}

pub use crate::core::chain;
