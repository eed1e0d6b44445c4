//! Command line: `flexbridge-bench [run options]` runs the benchmark;
//! `flexbridge-bench floor …` serves the floor relay (the run starts it
//! that way, as a process of its own).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::sio::Transport;

/// Benchmarks flexbridge against a minimal relay (the floor) and the Flex emulator.
#[derive(Debug, Parser)]
#[command(
    name = "flexbridge-bench",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the floor relay (Socket.IO in, one Twilio REST POST per message out).
    Floor(FloorArgs),
    /// Connect and register customers, print `held N`, hold them until
    /// stdin closes (scenario 3 runs its customers in these helpers).
    Hold(HoldArgs),
}

/// The scenarios a run can be limited to (`--scenarios`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// 1 and 4: customer → Flex, closed loop then paced (and the echo row).
    Messages,
    /// 2: agent → customer (runs on the customers of `messages`, so only with it).
    Replies,
    /// 3: idle customers, one fresh server per transport.
    Idle,
    /// 4b: the emulator's message-create route alone.
    EmulatorAlone,
}

/// Which servers a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    /// flexbridge serve, with its store and outbox.
    Bridge,
    /// The floor relay (same libraries, nothing else).
    Floor,
    /// The floor with no upstream: acks at once (the generator's ceiling).
    Echo,
}

impl Which {
    pub fn name(self) -> &'static str {
        match self {
            Which::Bridge => "bridge",
            Which::Floor => "floor",
            Which::Echo => "echo",
        }
    }
}

/// Which Flex API the relays speak (the bridge's `FLEX_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Flex Conversations (the bridge's default): a conversation per
    /// customer, `POST …/Conversations/{CH}/Messages`, `onMessageAdded`.
    Conversations,
    /// Programmable Chat: a Flex chat channel per customer,
    /// `POST …/Channels/{CH}/Messages`, `onMessageSent`.
    Chat,
}

impl Backend {
    /// The name, as `FLEX_BACKEND` and the report spell it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Conversations => "conversations",
            Backend::Chat => "chat",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Every scenario small (20 customers × 5 messages, 200 idle customers),
    /// on both backends unless --backend says otherwise: checks that the
    /// benchmark works and nothing is lost; asserts no speed.
    #[arg(long)]
    pub quick: bool,
    /// Flex backend(s) of the floor and the bridge, each measured in turn
    /// [default: conversations (the bridge's default); quick conversations,chat].
    #[arg(long, value_delimiter = ',', value_enum)]
    pub backend: Option<Vec<Backend>>,
    /// Customers of scenarios 1, 2 and 4 [default: 200, quick 20].
    #[arg(long)]
    pub customers: Option<usize>,
    /// Messages per customer in the measured phase [default: 20, quick 5].
    #[arg(long)]
    pub messages: Option<usize>,
    /// Agent replies per conversation in scenario 2 [default: 5, quick 3].
    #[arg(long)]
    pub replies: Option<usize>,
    /// Aggregate rate (messages/s) of the extra open-loop phase of scenario 1,
    /// for latencies below saturation; 0 skips it [default: 200, quick 100].
    #[arg(long)]
    pub paced_rate: Option<f64>,
    /// Cumulative idle-customer steps of scenario 3 [default: 1000,5000,10000,20000; quick 200].
    #[arg(long, value_delimiter = ',')]
    pub idle: Option<Vec<usize>>,
    /// Transports of scenario 3, a fresh server and a row each.
    #[arg(long, value_delimiter = ',', value_enum, default_values_t = [Transport::Websocket, Transport::Polling])]
    pub transports: Vec<Transport>,
    /// Idle customers per helper process (`flexbridge-bench hold`) in scenario 3.
    #[arg(long, default_value_t = 5000)]
    pub hold_per_process: usize,
    /// Run only these scenarios [default: all].
    #[arg(long, value_delimiter = ',', value_enum)]
    pub scenarios: Option<Vec<Scenario>>,
    /// Servers to measure, in this order [default: echo,floor,bridge].
    #[arg(long, value_delimiter = ',', value_enum)]
    pub targets: Option<Vec<Which>>,
    /// Where `flex-emulator` and `flexbridge` are [default: this executable's directory].
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Benchmark an already running bridge (no RSS/CPU then); needs --emulator-url.
    #[arg(long, requires = "emulator_url")]
    pub bridge_url: Option<String>,
    /// The emulator behind --bridge-url.
    #[arg(long, requires = "bridge_url")]
    pub emulator_url: Option<String>,
    /// JSON results file [default: <target>/bench/bench-<unix time>.json].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Bound of each scenario, in seconds [default: 120, quick 30].
    #[arg(long)]
    pub timeout_s: Option<u64>,
    /// Handshakes in flight while connecting customers.
    #[arg(long, default_value_t = 128)]
    pub connect_parallel: usize,
    /// Agents of the spawned emulators (their chat capacity is set so every
    /// conversation of scenario 2 gets an agent).
    #[arg(long, default_value_t = 10)]
    pub agents: usize,
    /// Extra environment for the spawned bridge, e.g.
    /// `--bridge-env FLEXBRIDGE_OUTBOX_CONCURRENCY=256` (repeatable; for tuning runs).
    #[arg(long, value_parser = parse_key_value)]
    pub bridge_env: Vec<(String, String)>,
    /// Extra environment for the spawned floor relays (repeatable), e.g. a
    /// heap profiler's `LD_PRELOAD` (see README, "Memory per idle customer").
    #[arg(long, value_parser = parse_key_value)]
    pub floor_env: Vec<(String, String)>,
    /// Run the floor and bridge processes under this command (split at
    /// spaces), e.g. `valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p`
    /// (see README, "CPU per message"). They are stopped with SIGTERM.
    #[arg(long)]
    pub server_wrapper: Option<String>,
    /// Skip scenario 4b (the emulator alone).
    #[arg(long)]
    pub no_emulator_alone: bool,
}

#[derive(Debug, Clone, Args)]
pub struct FloorArgs {
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Twilio API base (an emulator URL); without it and with --echo, no upstream.
    #[arg(long, env = "TWILIO_API_BASE")]
    pub emulator: Option<String>,
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    pub account_sid: Option<String>,
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// The Flex API to relay to (the bridge's variable).
    #[arg(long, env = "FLEX_BACKEND", value_enum, default_value_t = Backend::Conversations)]
    pub backend: Backend,
    /// The Flex Flow of the chat backend.
    #[arg(long, env = "FLEX_FLOW_SID")]
    pub flex_flow_sid: Option<String>,
    #[arg(long, env = "FLEX_CHAT_SERVICE")]
    pub chat_service_sid: Option<String>,
    /// Where the conversations backend routes its interactions.
    #[arg(long, env = "TASKROUTER_WORKSPACE_SID")]
    pub workspace_sid: Option<String>,
    #[arg(long, env = "TASKROUTER_WORKFLOW_SID")]
    pub workflow_sid: Option<String>,
    /// Base of the webhook URL given to the emulator [default: the listening address].
    #[arg(long, env = "PUBLIC_BASE_URL")]
    pub public_url: Option<String>,
    /// Ack every message at once, relay nothing.
    #[arg(long)]
    pub echo: bool,
}

#[derive(Debug, Clone, Args)]
pub struct HoldArgs {
    /// The server, `http://host:port`.
    #[arg(long)]
    pub url: String,
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    pub transport: Transport,
    /// Customers are named `{prefix}-c{index}`.
    #[arg(long)]
    pub prefix: String,
    /// Index of the first customer.
    #[arg(long, default_value_t = 0)]
    pub first: usize,
    #[arg(long)]
    pub count: usize,
    /// Handshakes in flight.
    #[arg(long, default_value_t = 32)]
    pub parallel: usize,
    /// Connect from this local address.
    #[arg(long)]
    pub local_ip: Option<std::net::IpAddr>,
}

fn parse_key_value(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    if key.is_empty() {
        return Err(format!("{text:?} has an empty key"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_env_is_key_equals_value() {
        assert_eq!(
            parse_key_value("A=b=c"),
            Ok(("A".to_owned(), "b=c".to_owned()))
        );
        assert!(parse_key_value("novalue").is_err());
        assert!(parse_key_value("=x").is_err());
    }

    #[test]
    fn quick_and_floor_command_lines_parse() {
        let cli = Cli::try_parse_from(["flexbridge-bench", "--quick", "--targets", "floor,echo"])
            .unwrap();
        assert!(cli.run.quick);
        assert_eq!(cli.run.targets, Some(vec![Which::Floor, Which::Echo]));
        let cli =
            Cli::try_parse_from(["flexbridge-bench", "floor", "--echo", "--port", "0"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Floor(ref f)) if f.echo));
        let cli = Cli::try_parse_from([
            "flexbridge-bench",
            "hold",
            "--url",
            "http://127.0.0.1:1",
            "--transport",
            "polling",
            "--prefix",
            "p",
            "--count",
            "3",
        ])
        .unwrap();
        assert!(
            matches!(cli.command, Some(Command::Hold(ref h)) if h.count == 3 && h.transport == Transport::Polling)
        );
    }

    #[test]
    fn backends_are_a_list_and_default_to_none_given() {
        let cli =
            Cli::try_parse_from(["flexbridge-bench", "--backend", "chat,conversations"]).unwrap();
        assert_eq!(
            cli.run.backend,
            Some(vec![Backend::Chat, Backend::Conversations])
        );
        let cli = Cli::try_parse_from(["flexbridge-bench"]).unwrap();
        assert_eq!(cli.run.backend, None);
        assert_eq!(
            cli.run.transports,
            vec![Transport::Websocket, Transport::Polling]
        );
        let cli = Cli::try_parse_from([
            "flexbridge-bench",
            "--scenarios",
            "idle",
            "--transports",
            "polling",
        ])
        .unwrap();
        assert_eq!(cli.run.scenarios, Some(vec![Scenario::Idle]));
        assert_eq!(cli.run.transports, vec![Transport::Polling]);
        assert!(Cli::try_parse_from(["flexbridge-bench", "--backend", "sms"]).is_err());
    }
}
