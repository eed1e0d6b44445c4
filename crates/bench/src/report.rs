//! What a run found, as JSON (every number) and as the Markdown tables the
//! README shows. Each result says what it measured; `problems` lists every
//! lost, duplicated or failed message — a run with any problem exits non-zero.

use std::fmt::Write as _;

use serde::Serialize;

use crate::cli::Backend;
use crate::sio::Transport;
use crate::stats::Summary;

/// Scenario 1 (and 4, against the floor): customers → emulator store.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub target: String,
    /// The relay's Flex backend (`None` for `echo`, which has no upstream).
    pub backend: Option<Backend>,
    pub customers: usize,
    pub messages_per_customer: usize,
    /// `None`: closed loop (each customer waits for its ack before the next
    /// emit). `Some(r)`: open loop, r messages/s in aggregate, latencies
    /// counted from each message's due time.
    pub offered_per_s: Option<f64>,
    /// Messages emitted in the measured phase (warm-up excluded).
    pub sent: usize,
    /// Acked `{ok}` with the right client message id.
    pub acked: usize,
    /// Found exactly once in the emulator's store (`/_emulator/state`).
    pub stored_once: usize,
    pub lost: usize,
    pub duplicated: usize,
    /// sent / (last ack − first emit).
    pub acked_per_s: f64,
    /// stored / (last store seen − first emit); `None` without an emulator.
    pub stored_per_s: Option<f64>,
    /// Emit → ack, on the generator's clock.
    pub ack: Option<Summary>,
    /// Emit → `message.added` seen on the emulator's event stream.
    pub stored: Option<Summary>,
    /// Emit (wall clock, µs) → the emulator's own stamp of the store
    /// (`received_at_us`, µs).
    pub stored_stamp: Option<Summary>,
    /// CPU seconds during the measured phase, per process (when known).
    pub server_cpu_s: Option<f64>,
    pub emulator_cpu_s: Option<f64>,
    pub generator_cpu_s: f64,
    /// Server CPU per stored (or acked) message, in ms.
    pub server_cpu_ms_per_message: Option<f64>,
    pub server_rss_kib: Option<u64>,
    /// Events the emulator's stream dropped for the observer (latency
    /// samples missing; counts then come from the state only).
    pub observer_lagged: u64,
    pub wall_s: f64,
}

/// Scenario 2: agent replies → customer sockets.
#[derive(Debug, Clone, Serialize)]
pub struct Replies {
    pub target: String,
    pub backend: Option<Backend>,
    pub conversations: usize,
    pub replies_per_conversation: usize,
    pub sent: usize,
    pub received_once: usize,
    pub lost: usize,
    pub duplicated: usize,
    /// Control-API POST issued → `message` event read on the customer socket.
    pub latency: Option<Summary>,
    /// The emulator's store of the reply (`received_at_us`) → the socket's
    /// receipt, on the wall clock.
    pub stored_to_socket: Option<Summary>,
    /// The emulator's send of the reply's webhook (`sent_at_us`, first
    /// attempt) → the socket's receipt, on the wall clock.
    pub webhook_to_socket: Option<Summary>,
    pub received_per_s: f64,
}

/// One step of scenario 3.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityStep {
    /// Customers asked for (cumulative).
    pub target_customers: usize,
    /// Customers connected and registered (cumulative).
    pub connected: usize,
    /// Time this step took (its new connections only).
    pub step_s: f64,
    pub server_rss_kib: Option<u64>,
    /// (RSS now − RSS before any customer) / connected.
    pub rss_per_customer_kib: Option<f64>,
}

/// Scenario 3: idle customers.
#[derive(Debug, Clone, Serialize)]
pub struct Capacity {
    pub target: String,
    pub backend: Option<Backend>,
    /// How its customers were connected.
    pub transport: Transport,
    pub baseline_rss_kib: Option<u64>,
    pub steps: Vec<CapacityStep>,
    pub nofile_limit: u64,
    /// Why the last step stopped short, if it did.
    pub stopped: Option<String>,
}

/// The emulator's message-create route alone.
#[derive(Debug, Clone, Serialize)]
pub struct EmulatorAlone {
    /// Whose message-create route was measured.
    pub backend: Backend,
    pub channels: usize,
    pub messages_per_channel: usize,
    pub created: usize,
    pub failed: usize,
    pub created_per_s: f64,
    /// POST → 201, on the client's clock.
    pub latency: Option<Summary>,
    /// POST (wall clock) → the emulator's `received_at_us`.
    pub stored: Option<Summary>,
    /// POST issued → `message.added` seen: what the observer adds on top of
    /// the store, compare with the `stored` columns above.
    pub observed: Option<Summary>,
    pub emulator_cpu_s: Option<f64>,
    /// CPU of the benchmark process (the HTTP client) meanwhile.
    pub client_cpu_s: Option<f64>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub command: String,
    pub quick: bool,
    /// The Flex backends of the relays, in the order they were measured.
    pub backends: Vec<Backend>,
    pub unix_time: u64,
    pub load_before: Option<String>,
    pub load_after: Option<String>,
    pub bin_dir: String,
    pub throughput: Vec<Throughput>,
    pub replies: Vec<Replies>,
    pub capacity: Vec<Capacity>,
    pub emulator_alone: Vec<EmulatorAlone>,
    pub notes: Vec<String>,
    pub problems: Vec<String>,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

fn pcts(s: &Option<Summary>) -> String {
    match s {
        Some(s) => format!(
            "{:.2} / {:.2} / {:.2} / {:.2}",
            s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms
        ),
        None => "–".to_owned(),
    }
}

/// Percentiles, and "(k of n)" when only k of the n messages have a sample.
fn coverage(s: &Option<Summary>, n: usize) -> String {
    match s {
        Some(summary) if summary.count < n => {
            format!("{} ({} of {n})", pcts(s), summary.count)
        }
        _ => pcts(s),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// The message-create route of `backend`, as the 4b table names it.
fn create_route(backend: Backend) -> &'static str {
    match backend {
        Backend::Chat => "POST /v2/Services/{IS}/Channels/{CH}/Messages",
        Backend::Conversations => "POST /v1/Services/{IS}/Conversations/{CH}/Messages",
    }
}

fn ratios(b: &Throughput, f: &Throughput) -> String {
    let p50 = |s: &Option<Summary>| s.map(|s| s.p50_ms);
    let p99 = |s: &Option<Summary>| s.map(|s| s.p99_ms);
    format!(
        "stored msg/s ×{}, emit→stored (emulator stamp) p50 ×{}, p99 ×{}; (seen) p50 ×{}, p99 ×{}; server CPU per message ×{}",
        opt(ratio(b.stored_per_s, f.stored_per_s), 2),
        opt(ratio(p50(&b.stored_stamp), p50(&f.stored_stamp)), 2),
        opt(ratio(p99(&b.stored_stamp), p99(&f.stored_stamp)), 2),
        opt(ratio(p50(&b.stored), p50(&f.stored)), 2),
        opt(ratio(p99(&b.stored), p99(&f.stored)), 2),
        opt(
            ratio(b.server_cpu_ms_per_message, f.server_cpu_ms_per_message),
            2
        ),
    )
}

impl Report {
    /// A row's target, with its backend when the run measured several.
    fn label(&self, target: &str, backend: Option<Backend>) -> String {
        match backend {
            Some(backend) if self.backends.len() > 1 => format!("{target} ({})", backend.name()),
            _ => target.to_owned(),
        }
    }

    /// The Markdown tables.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let load = |l: &Option<String>| l.clone().unwrap_or_else(|| "?".into());
        let backends: Vec<&str> = self.backends.iter().map(|b| b.name()).collect();
        let _ = writeln!(
            md,
            "flexbridge benchmark{} — backend {} — load average before {} / after {} — binaries {}\n",
            if self.quick { " (--quick)" } else { "" },
            backends.join(", "),
            load(&self.load_before),
            load(&self.load_after),
            self.bin_dir
        );
        if !self.throughput.is_empty() {
            self.throughput_tables(&mut md);
        }
        if !self.replies.is_empty() {
            md.push_str("### 2. Agent → customer\n\n");
            md.push_str("| target | conversations × replies | received once / lost / dup | received msg/s | agent send→socket ms p50 / p95 / p99 / max | emulator stored→socket ms p50 / p95 / p99 / max | webhook sent→socket ms p50 / p95 / p99 / max |\n");
            md.push_str("|---|---|---|---|---|---|---|\n");
            for r in &self.replies {
                let _ = writeln!(
                    md,
                    "| {} | {} × {} | {} / {} / {} | {:.0} | {} | {} | {} |",
                    self.label(&r.target, r.backend),
                    r.conversations,
                    r.replies_per_conversation,
                    r.received_once,
                    r.lost,
                    r.duplicated,
                    r.received_per_s,
                    pcts(&r.latency),
                    coverage(&r.stored_to_socket, r.received_once),
                    coverage(&r.webhook_to_socket, r.received_once),
                );
            }
            md.push('\n');
        }
        if !self.capacity.is_empty() {
            self.capacity_table(&mut md);
        }
        if !self.emulator_alone.is_empty() {
            md.push_str("### 4b. The emulator alone (message create, webhooks on)\n\n");
            md.push_str("| route | channels × msgs | created / failed | created msg/s | POST→201 ms p50 / p95 / p99 / max | POST→stored (emulator stamp) ms p50 / p95 / p99 / max | POST→observed ms p50 / p95 / p99 / max | CPU s emulator / client |\n");
            md.push_str("|---|---|---|---|---|---|---|---|\n");
            for e in &self.emulator_alone {
                let _ = writeln!(
                    md,
                    "| `{}` | {} × {} | {} / {} | {:.0} | {} | {} | {} | {} / {} |",
                    create_route(e.backend),
                    e.channels,
                    e.messages_per_channel,
                    e.created,
                    e.failed,
                    e.created_per_s,
                    pcts(&e.latency),
                    coverage(&e.stored, e.created),
                    pcts(&e.observed),
                    opt(e.emulator_cpu_s, 2),
                    opt(e.client_cpu_s, 2),
                );
            }
            md.push('\n');
        }
        if self.throughput.iter().any(|t| t.observer_lagged > 0) {
            md.push_str("- note: ~ marks a rate where the emulator's event stream dropped events for the observer (its buffer overflowed); latency columns then say how many messages have a sample\n");
        }
        for note in &self.notes {
            let _ = writeln!(md, "- note: {note}");
        }
        for problem in &self.problems {
            let _ = writeln!(md, "- PROBLEM: {problem}");
        }
        md
    }

    /// Scenario 3: a row per target, transport and step; a bridge's KiB
    /// per customer also as a ratio to its floor's at the same step.
    fn capacity_table(&self, md: &mut String) {
        md.push_str("### 3. Idle customers (connected + registered)\n\n");
        md.push_str("| target | transport | customers | step time s | server RSS MiB | KiB per customer | × floor |\n");
        md.push_str("|---|---|---|---|---|---|---|\n");
        for c in &self.capacity {
            let target = self.label(&c.target, c.backend);
            let transport = c.transport.name();
            let floor = self.capacity.iter().find(|f| {
                c.target == "bridge"
                    && f.target == "floor"
                    && f.backend == c.backend
                    && f.transport == c.transport
            });
            let _ = writeln!(
                md,
                "| {target} | {transport} | 0 | – | {} | – | |",
                opt(c.baseline_rss_kib.map(|k| k as f64 / 1024.0), 1)
            );
            for s in &c.steps {
                let against = floor
                    .and_then(|f| {
                        f.steps
                            .iter()
                            .find(|fs| fs.target_customers == s.target_customers)
                    })
                    .and_then(|fs| ratio(s.rss_per_customer_kib, fs.rss_per_customer_kib));
                let _ = writeln!(
                    md,
                    "| {target} | {transport} | {} of {} | {:.2} | {} | {} | {} |",
                    s.connected,
                    s.target_customers,
                    s.step_s,
                    opt(s.server_rss_kib.map(|k| k as f64 / 1024.0), 1),
                    opt(s.rss_per_customer_kib, 1),
                    against.map(|r| format!("×{r:.2}")).unwrap_or_default(),
                );
            }
            if let Some(why) = &c.stopped {
                let _ = writeln!(md, "| {target} | {transport} | stopped: {why} | | | | |");
            }
        }
        md.push('\n');
    }

    /// Scenarios 1 and 4: one row per target and phase, then bridge / floor
    /// for each backend and pace.
    fn throughput_tables(&self, md: &mut String) {
        md.push_str("### 1 + 4. Customer → Flex (emulator store)\n\n");
        md.push_str("| target | customers × msgs | stored once / lost / dup | stored msg/s | acked msg/s | emit→ack ms p50 / p95 / p99 / max | emit→stored (seen) ms p50 / p95 / p99 / max | emit→stored (emulator stamp) ms p50 / p95 / p99 / max | server CPU ms/msg | CPU s server / emulator / generator | server RSS MiB |\n");
        md.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
        for t in &self.throughput {
            let _ = writeln!(
                md,
                "| {} | {} × {} | {} / {} / {} | {} | {:.0} | {} | {} | {} | {} | {} / {} / {:.2} | {} |",
                self.label(&t.target, t.backend),
                t.customers,
                t.messages_per_customer,
                t.stored_once,
                t.lost,
                t.duplicated,
                if t.observer_lagged > 0 {
                    format!("~{}", opt(t.stored_per_s, 0))
                } else {
                    opt(t.stored_per_s, 0)
                },
                t.acked_per_s,
                pcts(&t.ack),
                coverage(&t.stored, t.stored_once),
                coverage(&t.stored_stamp, t.stored_once),
                opt(t.server_cpu_ms_per_message, 3),
                opt(t.server_cpu_s, 2),
                opt(t.emulator_cpu_s, 2),
                t.generator_cpu_s,
                opt(t.server_rss_kib.map(|k| k as f64 / 1024.0), 1),
            );
        }
        let find = |name: &str, backend: Option<Backend>, pace: Option<f64>| {
            self.throughput.iter().find(|t| {
                t.target.split(' ').next() == Some(name)
                    && t.backend == backend
                    && t.offered_per_s == pace
            })
        };
        let bridges = self
            .throughput
            .iter()
            .filter(|t| t.target.starts_with("bridge"));
        for b in bridges {
            let Some(f) = find("floor", b.backend, b.offered_per_s) else {
                continue;
            };
            let _ = writeln!(
                md,
                "\n{} / {}: {}",
                self.label(&b.target, b.backend),
                self.label(&f.target, f.backend),
                ratios(b, f)
            );
        }
        md.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(p50: f64) -> Summary {
        Summary {
            count: 10,
            p50_ms: p50,
            p95_ms: p50 * 2.0,
            p99_ms: p50 * 3.0,
            max_ms: p50 * 4.0,
            mean_ms: p50,
        }
    }

    fn row(target: &str, rate: f64, p50: f64, cpu: f64) -> Throughput {
        Throughput {
            target: target.into(),
            backend: Some(Backend::Conversations),
            offered_per_s: None,
            customers: 2,
            messages_per_customer: 5,
            sent: 10,
            acked: 10,
            stored_once: 10,
            lost: 0,
            duplicated: 0,
            acked_per_s: rate,
            stored_per_s: Some(rate),
            ack: Some(summary(1.0)),
            stored: Some(summary(p50)),
            stored_stamp: Some(summary(p50)),
            server_cpu_s: Some(cpu),
            emulator_cpu_s: None,
            generator_cpu_s: 0.1,
            server_cpu_ms_per_message: Some(cpu * 100.0),
            server_rss_kib: Some(2048),
            observer_lagged: 0,
            wall_s: 1.0,
        }
    }

    fn report() -> Report {
        Report {
            command: "flexbridge-bench".into(),
            quick: true,
            backends: vec![Backend::Conversations],
            unix_time: 0,
            load_before: None,
            load_after: None,
            bin_dir: "target/debug".into(),
            throughput: vec![
                row("floor", 1000.0, 2.0, 0.1),
                row("bridge", 250.0, 8.0, 0.4),
            ],
            replies: Vec::new(),
            capacity: Vec::new(),
            emulator_alone: Vec::new(),
            notes: Vec::new(),
            problems: vec!["bridge: 1 of 10 messages never stored".into()],
        }
    }

    #[test]
    fn the_markdown_has_a_row_per_target_and_the_bridge_over_floor_ratios() {
        let md = report().markdown();
        assert!(md.contains("| floor | 2 × 5 | 10 / 0 / 0 | 1000 |"), "{md}");
        assert!(md.contains("| bridge | 2 × 5 | 10 / 0 / 0 | 250 |"), "{md}");
        assert!(
            md.contains(
                "bridge / floor: stored msg/s ×0.25, emit→stored (emulator stamp) p50 ×4.00"
            ),
            "{md}"
        );
        assert!(md.contains("server CPU per message ×4.00"), "{md}");
        assert!(md.contains("- PROBLEM: bridge: 1 of 10 messages never stored"));
        assert!(md.contains("— backend conversations —"), "{md}");
    }

    #[test]
    fn with_two_backends_rows_name_theirs_and_each_bridge_is_set_against_its_floor() {
        let mut r = report();
        r.backends.push(Backend::Chat);
        let chat = |target: &str, rate: f64| Throughput {
            backend: Some(Backend::Chat),
            ..row(target, rate, 1.0, 0.1)
        };
        r.throughput
            .extend([chat("floor", 2000.0), chat("bridge", 500.0)]);
        let md = r.markdown();
        assert!(md.contains("— backend conversations, chat —"), "{md}");
        assert!(md.contains("| floor (chat) | 2 × 5 |"), "{md}");
        assert!(
            md.contains("bridge (conversations) / floor (conversations): stored msg/s ×0.25"),
            "{md}"
        );
        assert!(
            md.contains("bridge (chat) / floor (chat): stored msg/s ×0.25"),
            "{md}"
        );
    }

    #[test]
    fn partial_samples_and_lagged_rates_are_marked() {
        let mut r = report();
        r.throughput[1].observer_lagged = 3;
        r.throughput[1].stored_once = 12;
        let md = r.markdown();
        assert!(md.contains("| ~250 |"), "{md}");
        assert!(md.contains("(10 of 12)"), "{md}");
        assert!(md.contains("dropped events for the observer"));
    }

    #[test]
    fn the_json_carries_every_number() {
        let json = serde_json::to_value(report()).unwrap();
        assert_eq!(json["throughput"][1]["stored_per_s"], 250.0);
        assert_eq!(json["throughput"][0]["stored"]["p99_ms"], 6.0);
        assert_eq!(json["throughput"][0]["backend"], "conversations");
        assert_eq!(json["backends"][0], "conversations");
    }
}
