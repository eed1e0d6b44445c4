//! `flex-emulator`: runs the emulator alone. Only wiring: flags → config,
//! tracing to stderr, bind, announce (docs/architecture.md §2), serve until
//! Ctrl-C or SIGTERM.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use flex_emulator::{DEFAULT_EVENT_BUFFER, Emulator, EmulatorConfig};
use tokio::net::TcpListener;

/// A local Twilio Flex (Flex, Chat, Conversations, TaskRouter, Studio) with an agent console.
#[derive(Debug, Parser)]
#[command(name = "flex-emulator", version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 3001)]
    port: u16,
    /// Account SID to accept (default: derived from --seed).
    #[arg(long)]
    account_sid: Option<String>,
    /// Auth token to accept and sign webhooks with (default: derived from --seed).
    #[arg(long)]
    auth_token: Option<String>,
    /// Number of agents (TaskRouter workers).
    #[arg(long, default_value_t = 2)]
    agents: usize,
    /// Chat tasks one agent works at once.
    #[arg(long, default_value_t = 1)]
    chat_capacity: u32,
    /// Seed of every SID and of the derived credentials (default: a random
    /// one, printed, so no two runs share SIDs; give one to repeat a run).
    #[arg(long)]
    seed: Option<u64>,
    /// Base of the absolute URLs in answers (default: http://{Host header}).
    #[arg(long)]
    public_url: Option<String>,
    /// Seconds an ended task stays wrapping before it is completed.
    #[arg(long, default_value_t = 0)]
    wrapup_seconds: u64,
    /// SSE events a subscriber of /_emulator/events may fall behind before it
    /// misses some (then it gets a `lagged` event).
    #[arg(long, default_value_t = DEFAULT_EVENT_BUFFER)]
    event_buffer: usize,
}

impl Cli {
    fn config(&self) -> anyhow::Result<EmulatorConfig> {
        let seeded = self
            .seed
            .map_or_else(EmulatorConfig::random, EmulatorConfig::from_seed);
        let mut config = seeded
            .with_agents(self.agents)
            .with_chat_capacity(self.chat_capacity)
            .with_wrapup(Duration::from_secs(self.wrapup_seconds))
            .with_event_buffer(self.event_buffer)
            .context("--event-buffer")?;
        if let Some(sid) = &self.account_sid {
            config = config.with_account_sid(sid).context("--account-sid")?;
        }
        if let Some(token) = &self.auth_token {
            config = config.with_auth_token(token).context("--auth-token")?;
        }
        if let Some(url) = &self.public_url {
            config = config.with_public_url(url).context("--public-url")?;
        }
        Ok(config)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let emulator = Emulator::new(cli.config()?);
    let listener = TcpListener::bind((cli.host.as_str(), cli.port))
        .await
        .with_context(|| format!("binding {}:{}", cli.host, cli.port))?;
    let address = listener.local_addr().context("reading the bound address")?;
    announce(&emulator, &format!("http://{address}")).context("writing to stdout")?;

    let shutdown = shutdown_signal::on_signal();
    emulator
        .run(listener, shutdown)
        .await
        .context("serving the emulator")
}

/// The "listening on" line first (harnesses wait for it), then, for humans,
/// where to look and what to use. Printing the generated secrets is the
/// point: this is a local development tool.
fn announce(emulator: &Emulator, url: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "flex-emulator listening on {url}")?;
    let base = emulator.config().public_url().unwrap_or(url);
    let credentials = emulator.credentials();
    let bootstrap = emulator.bootstrap();
    writeln!(out, "agent console:   {base}/")?;
    writeln!(out, "control API:     {base}/_emulator/state")?;
    writeln!(out, "seed:            {}", emulator.config().seed())?;
    writeln!(out, "account SID:     {}", credentials.account_sid)?;
    writeln!(out, "auth token:      {}", credentials.auth_token)?;
    writeln!(out, "API key SID:     {}", credentials.api_key_sid)?;
    writeln!(out, "API key secret:  {}", credentials.api_key_secret)?;
    writeln!(
        out,
        "chat service:    {} (Flex Chat Service)",
        bootstrap.chat_service_sid
    )?;
    writeln!(
        out,
        "workspace:       {} (Flex Task Assignment)",
        bootstrap.workspace_sid
    )?;
    writeln!(
        out,
        "workflow:        {} (Assign to Anyone)",
        bootstrap.workflow_sid
    )?;
    writeln!(
        out,
        "task channel:    {} (chat)",
        bootstrap.chat_task_channel_sid
    )?;
    writeln!(
        out,
        "studio flow:     {} (Webchat Flow)",
        bootstrap.studio_flow_sid
    )?;
    for agent in &bootstrap.agents {
        writeln!(
            out,
            "agent:           {} ({})",
            agent.worker_sid, agent.name
        )?;
    }
    out.flush()
}
