//! The `flexbridge` command line: `serve`, `dev` (cargo feature `dev`),
//! `provision` and `doctor`.
//!
//! Processes announce themselves with one stdout line once listening,
//! `flexbridge listening on http://HOST:PORT` (docs/architecture.md §2);
//! logs go to stderr. Ctrl-C or SIGTERM shuts down gracefully.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{Layers, ProvisionSettings, ProvisionTarget, Setting, Settings, setting};
use crate::flex::provision::conversations::{self as conversations_provision, Wanted};
use crate::flex::provision::{FlowSpec, ensure_flex_flow};
use crate::startup::{Application, twilio_client};

#[derive(Debug, Parser)]
#[command(
    name = "flexbridge",
    version,
    about = "Connects a custom Socket.IO chat channel to Twilio Flex."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the bridge against Twilio (or any emulator, via TWILIO_API_BASE).
    Serve(Box<ServeArgs>),
    /// Runs the bridge and a local Flex emulator with its agent console in
    /// one process, provisioned automatically. No Twilio account needed.
    #[cfg(feature = "dev")]
    Dev(crate::dev::DevArgs),
    /// Finds what the bridge needs in Twilio (or the Flex emulator) and
    /// prints the settings to use.
    ///
    /// Conversations (default): finds, never creates, the "Flex Chat
    /// Service", the workspace "Flex Task Assignment", the workflow "Assign
    /// to Anyone", the task channel `chat` and, with `--routing studio`, the
    /// Studio flow "Webchat Flow"; the account's credentials are enough, and
    /// given SIDs are checked instead. Chat: finds or creates the Flex Flow.
    /// Against the emulator, set TWILIO_API_BASE (`--twilio-api-base`) to
    /// its URL and use its account SID and auth token.
    Provision(Box<ProvisionArgs>),
    /// Checks a `serve` configuration (takes the same settings): the
    /// database, the credentials and every configured SID, and whether
    /// PUBLIC_BASE_URL reaches a running bridge. Creates nothing in Twilio.
    Doctor(Box<ServeArgs>),
}

/// Flags shared by every command that calls Twilio.
#[derive(Debug, Clone, Default, Args)]
pub struct TwilioFlags {
    /// A TOML config file (also FLEXBRIDGE_CONFIG).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// TWILIO_ACCOUNT_SID (the auth token comes from TWILIO_AUTH_TOKEN only).
    #[arg(long, value_name = "AC…")]
    pub twilio_account_sid: Option<String>,
    /// TWILIO_API_KEY, for REST calls with an API key (secret: TWILIO_API_SECRET).
    #[arg(long, value_name = "SK…")]
    pub twilio_api_key: Option<String>,
    /// TWILIO_API_BASE: one base URL replacing every Twilio host (an emulator).
    #[arg(long, value_name = "URL")]
    pub twilio_api_base: Option<String>,
    /// FLEX_CHAT_SERVICE: the "Flex Chat Service" SID.
    #[arg(long, value_name = "IS…")]
    pub flex_chat_service: Option<String>,
    /// FLEX_BACKEND: `conversations` (default) or `chat`.
    #[arg(long)]
    pub backend: Option<String>,
    /// FLEX_ROUTING (conversations): `interactions` (default) or `studio`.
    #[arg(long)]
    pub routing: Option<String>,
    /// TASKROUTER_WORKSPACE_SID (conversations): "Flex Task Assignment".
    #[arg(long, value_name = "WS…")]
    pub workspace_sid: Option<String>,
    /// TASKROUTER_WORKFLOW_SID (conversations): e.g. "Assign to Anyone".
    #[arg(long, value_name = "WW…")]
    pub workflow_sid: Option<String>,
    /// FLEX_TASK_CHANNEL (conversations; default chat).
    #[arg(long)]
    pub task_channel: Option<String>,
    /// STUDIO_FLOW_SID: the Studio flow that sends chats to Flex (chat
    /// provisioning; conversations with FLEX_ROUTING=studio, where
    /// `provision` finds "Webchat Flow" without it).
    #[arg(long, value_name = "FW…")]
    pub studio_flow_sid: Option<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub twilio: TwilioFlags,
    /// HOST to listen on (default 127.0.0.1).
    #[arg(long)]
    pub host: Option<String>,
    /// PORT to listen on (default 3000; 0 picks a free one).
    #[arg(long)]
    pub port: Option<String>,
    /// PUBLIC_BASE_URL: the URL Twilio reaches this bridge at; `auto` uses
    /// the listening address (local testing only).
    #[arg(long, value_name = "URL")]
    pub public_base_url: Option<String>,
    /// DATABASE_URL (default sqlite://flexbridge.db).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// FLEX_FLOW_SID (chat): the Flex Flow (see `flexbridge provision`).
    #[arg(long, value_name = "FO…")]
    pub flex_flow_sid: Option<String>,
    /// CONVERSATIONS_TIMER_INACTIVE: new conversations' `Timers.Inactive` (e.g. PT30M).
    #[arg(long, value_name = "DURATION")]
    pub timers_inactive: Option<String>,
    /// CONVERSATIONS_TIMER_CLOSED: new conversations' `Timers.Closed` (e.g. P1D).
    #[arg(long, value_name = "DURATION")]
    pub timers_closed: Option<String>,
    /// FLEXBRIDGE_OUTBOX_CONCURRENCY: conversations delivered at once (default 64).
    #[arg(long)]
    pub outbox_concurrency: Option<String>,
    /// FLEXBRIDGE_RATE_BURST: messages a customer may send at once (default 20).
    #[arg(long)]
    pub rate_burst: Option<String>,
    /// FLEXBRIDGE_RATE_PER_SECOND: sustained messages per second per customer (default 5).
    #[arg(long)]
    pub rate_per_second: Option<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ProvisionArgs {
    #[command(flatten)]
    pub twilio: TwilioFlags,
    /// FLEX_FLOW_NAME (chat): the Flex Flow's friendly name (default "flexbridge custom chat").
    #[arg(long)]
    pub flow_name: Option<String>,
}

fn push(flags: &mut Vec<(Setting, String)>, setting: Setting, value: &Option<String>) {
    if let Some(value) = value {
        flags.push((setting, value.clone()));
    }
}

impl TwilioFlags {
    fn layer(&self, flags: &mut Vec<(Setting, String)>) {
        push(flags, setting::ACCOUNT_SID, &self.twilio_account_sid);
        push(flags, setting::API_KEY, &self.twilio_api_key);
        push(flags, setting::API_BASE, &self.twilio_api_base);
        push(flags, setting::CHAT_SERVICE, &self.flex_chat_service);
        push(flags, setting::BACKEND, &self.backend);
        push(flags, setting::ROUTING, &self.routing);
        push(flags, setting::WORKSPACE, &self.workspace_sid);
        push(flags, setting::WORKFLOW, &self.workflow_sid);
        push(flags, setting::TASK_CHANNEL, &self.task_channel);
        push(flags, setting::STUDIO_FLOW_SID, &self.studio_flow_sid);
    }

    fn layers(&self, extra: Vec<(Setting, String)>) -> anyhow::Result<Layers> {
        let mut flags = Vec::new();
        self.layer(&mut flags);
        flags.extend(extra);
        let file = self
            .config
            .clone()
            .or_else(|| std::env::var_os("FLEXBRIDGE_CONFIG").map(PathBuf::from));
        Ok(Layers::load(
            file.as_deref(),
            |name| std::env::var(name).ok(),
            &flags,
        )?)
    }
}

impl ServeArgs {
    /// The settings these flags, the environment and the file give.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut flags = Vec::new();
        push(&mut flags, setting::HOST, &self.host);
        push(&mut flags, setting::PORT, &self.port);
        push(&mut flags, setting::PUBLIC_BASE_URL, &self.public_base_url);
        push(&mut flags, setting::DATABASE_URL, &self.database_url);
        push(&mut flags, setting::FLEX_FLOW_SID, &self.flex_flow_sid);
        push(&mut flags, setting::TIMER_INACTIVE, &self.timers_inactive);
        push(&mut flags, setting::TIMER_CLOSED, &self.timers_closed);
        push(
            &mut flags,
            setting::OUTBOX_CONCURRENCY,
            &self.outbox_concurrency,
        );
        push(&mut flags, setting::RATE_BURST, &self.rate_burst);
        push(&mut flags, setting::RATE_PER_SECOND, &self.rate_per_second);
        Ok(Settings::from_layers(&self.twilio.layers(flags)?)?)
    }
}

/// Runs a command to completion; the exit code says how it went.
pub fn main(cli: Cli) -> ExitCode {
    crate::telemetry::init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    // Graceful work is done by now; never hang on a stray blocking task.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        #[cfg(feature = "dev")]
        Command::Dev(args) => crate::dev::run(args, shutdown_on_signal()).await,
        Command::Provision(args) => provision(*args).await,
        Command::Doctor(args) => doctor(*args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let app = Application::build(settings).await?;
    println!("flexbridge listening on http://{}", app.local_addr());
    tracing::info!(public_base_url = %app.public_base_url(), "serving");
    app.run_until_stopped(shutdown_on_signal()).await
}

async fn doctor(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let checks = crate::doctor::check(&settings).await;
    for check in &checks {
        println!("{check}");
    }
    if crate::doctor::failed(&checks) {
        anyhow::bail!("a check failed (FAIL above)");
    }
    Ok(())
}

async fn provision(args: ProvisionArgs) -> anyhow::Result<()> {
    let mut flags = Vec::new();
    push(&mut flags, setting::FLOW_NAME, &args.flow_name);
    let settings = ProvisionSettings::from_layers(&args.twilio.layers(flags)?)?;
    for line in provision_lines(&settings).await? {
        println!("{line}");
    }
    Ok(())
}

/// Runs provisioning; what to print.
pub async fn provision_lines(settings: &ProvisionSettings) -> anyhow::Result<Vec<String>> {
    let client = twilio_client(&settings.twilio)?;
    let account = format!("TWILIO_ACCOUNT_SID={}", settings.twilio.account_sid);
    let mut lines = Vec::new();
    let env = match &settings.target {
        ProvisionTarget::Chat {
            chat_service_sid,
            studio_flow_sid,
            flow_name,
        } => {
            let outcome = ensure_flex_flow(
                &client,
                &FlowSpec {
                    friendly_name: flow_name,
                    chat_service: chat_service_sid,
                    studio_flow: studio_flow_sid,
                },
            )
            .await
            .context("finding or creating the Flex Flow")?;
            let verb = if outcome.created { "Created" } else { "Found" };
            lines.push(format!(
                "{verb} Flex Flow {} \"{flow_name}\" (custom channel, Studio flow {studio_flow_sid}, chat service {chat_service_sid})",
                outcome.flow_sid
            ));
            for difference in &outcome.differences {
                lines.push(format!(
                    "  warning: {difference}; fix it in Twilio or choose another --flow-name"
                ));
            }
            vec![
                "FLEX_BACKEND=chat".to_owned(),
                format!("FLEX_FLOW_SID={}", outcome.flow_sid),
                format!("FLEX_CHAT_SERVICE={chat_service_sid}"),
            ]
        }
        ProvisionTarget::Conversations {
            chat_service_sid,
            workspace,
            workflow,
            task_channel,
            routing,
            studio_flow_sid,
        } => {
            let found = conversations_provision::find(
                &client,
                &Wanted {
                    chat_service: chat_service_sid.as_ref(),
                    workspace: workspace.as_ref(),
                    workflow: workflow.as_ref(),
                    task_channel,
                    routing: *routing,
                    studio_flow: studio_flow_sid.as_ref(),
                },
            )
            .await
            .context("finding what Flex Conversations routes with")?;
            lines.extend(found.report());
            found.env_lines()
        }
    };
    lines.push(String::new());
    lines.push("Set these for `flexbridge serve`:".to_owned());
    lines.push(String::new());
    lines.push(account);
    lines.extend(env);
    Ok(lines)
}

/// A token cancelled on Ctrl-C or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received; shutting down");
        cancel.cancel();
    });
    token
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
