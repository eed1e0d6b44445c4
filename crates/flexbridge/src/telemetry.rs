//! Logs and metrics. Logs go to stderr (`RUST_LOG` filters them; stdout is
//! kept for the "listening on" lines a harness waits for). Metrics are
//! Prometheus text at `/metrics` ([`render`]): the bridge's families, each
//! with HELP text and registered at zero at start ([`families`]), and the
//! process's own (`process_*`: CPU seconds, resident and virtual memory,
//! open and maximum file descriptors, threads, start time; the
//! `metrics-process` crate, collected at each scrape).
//!
//! Histogram samples are buffered until they are folded into their
//! distributions; a background thread does that every
//! [`METRICS_UPKEEP`], so they do not pile up when nothing scrapes
//! `/metrics`.
//!
//! Secrets never reach a log: they are `SecretString`s whose `Debug` is
//! redacted, and nothing formats them; the Socket.IO crates, which would
//! log a customer's resume token (the connect packet) and message bodies
//! at DEBUG and TRACE, are held at INFO whatever `RUST_LOG` says
//! ([`may_log`]). Message bodies appear only at TRACE, of our own targets.

pub mod families;

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// What `RUST_LOG` is when unset.
const DEFAULT_FILTER: &str = "info,sqlx=warn,socketioxide=warn,engineioxide=warn";

/// The customer transport's crates (Socket.IO, Engine.IO, the websocket
/// under them): at DEBUG and TRACE they log whole packets and frames, the
/// connect packet's `auth` and the `register` ack (a customer's resume
/// token) and every event's payload (message bodies) included.
const TRANSPORT_TARGETS: [&str; 4] = [
    "socketioxide",
    "engineioxide",
    "tungstenite",
    "tokio_tungstenite",
];

/// Whether an event may be logged whatever `RUST_LOG` asks: nothing of the
/// customer transport's crates below INFO, so a resume token never reaches a log at
/// any level. (Our own targets log no token at all, and a message body
/// only at TRACE.)
pub fn may_log(target: &str, level: &Level) -> bool {
    // Asked for every event, sqlx's `log` records included (their interest
    // is not cached): no allocation, and the level first.
    if *level <= Level::INFO {
        return true;
    }
    let transport = TRANSPORT_TARGETS.iter().any(|t| {
        target
            .strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    });
    !transport
}

/// Installs the log subscriber (once; later calls do nothing): stderr,
/// filtered by `RUST_LOG` (then by [`may_log`]); `LOG_FORMAT=json` writes
/// one JSON object per line (`timestamp`, `level`, `target`, `fields` —
/// the conversation and customer ids among them as `conversation` and
/// `customer` — and the current span's fields), else human text.
pub fn init_logging() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let secrets =
        tracing_subscriber::filter::filter_fn(|meta| may_log(meta.target(), meta.level()));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let layer = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter).with_filter(secrets))
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
        let buckets = [
            (families::DELIVERY_LATENCY, families::LATENCY_BUCKETS),
            (families::AGENT_MESSAGE_LATENCY, families::LATENCY_BUCKETS),
            (families::STORE_COMMIT, families::COMMIT_BUCKETS),
        ];
        let recorder = buckets
            .into_iter()
            .try_fold(PrometheusBuilder::new(), |builder, (name, buckets)| {
                builder.set_buckets_for_metric(Matcher::Full(name.into()), buckets)
            })
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
        }
        families::register();
        process().describe();
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

/// The process metrics' collector.
fn process() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// The Prometheus text of every family, the process's freshly collected.
/// The caller sets the gauges counted at scrape time first.
pub fn render() -> String {
    let handle = metrics();
    process().collect();
    handle.render()
}

pub use crate::core::chain;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_io_crates_never_log_below_info() {
        for target in [
            "socketioxide",
            "socketioxide::client",
            "engineioxide::socket",
            "tungstenite::protocol",
        ] {
            assert!(!may_log(target, &Level::DEBUG), "{target}");
            assert!(!may_log(target, &Level::TRACE), "{target}");
            assert!(may_log(target, &Level::INFO), "{target}");
        }
        assert!(may_log("flexbridge::outbox", &Level::TRACE));
        assert!(may_log("socketioxidelike", &Level::DEBUG));
    }
}
