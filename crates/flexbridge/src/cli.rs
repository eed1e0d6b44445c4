//! The `flexbridge` command line: `serve`, `dev` (cargo feature `dev`),
//! `provision` and `doctor`. Each command's flags are made from the
//! settings table (`flags`); the command turns them, the environment and
//! the config file into its settings (`crate::config`) and runs.
//!
//! Processes announce themselves with one stdout line once listening,
//! `flexbridge listening on http://HOST:PORT` (docs/architecture.md §2);
//! logs go to stderr. Ctrl-C or SIGTERM shuts down gracefully.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

mod flags;

pub use self::flags::SettingFlags;
use crate::config::{ProvisionSettings, ProvisionTarget, Settings, raw};
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

/// `serve`'s (and `doctor`'s) flags.
pub type ServeArgs = SettingFlags<raw::Serve>;
/// `provision`'s flags.
pub type ProvisionArgs = SettingFlags<raw::Provision>;
/// `dev`'s flags.
#[cfg(feature = "dev")]
pub type DevArgs = SettingFlags<raw::Dev>;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the bridge against Twilio (or any emulator, via TWILIO_API_BASE).
    Serve(Box<ServeArgs>),
    /// Runs the bridge and a local Flex emulator with its agent console in
    /// one process, provisioned automatically. No Twilio account needed.
    #[cfg(feature = "dev")]
    Dev(Box<DevArgs>),
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
        Command::Serve(args) => serve(&args).await,
        #[cfg(feature = "dev")]
        Command::Dev(args) => {
            let settings = crate::config::DevSettings::from_layers(&args.layers()?)?;
            crate::dev::run(settings, shutdown_on_signal()).await
        }
        Command::Provision(args) => provision(&args).await,
        Command::Doctor(args) => doctor(&args).await,
    }
}

async fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::from_layers(&args.layers()?)?;
    let app = Application::build(settings).await?;
    println!("flexbridge listening on http://{}", app.local_addr());
    tracing::info!(public_base_url = %app.public_base_url(), "serving");
    app.run_until_stopped(shutdown_on_signal()).await
}

async fn doctor(args: &ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::from_layers(&args.layers()?)?;
    let checks = crate::doctor::check(&settings).await;
    for check in &checks {
        println!("{check}");
    }
    if crate::doctor::failed(&checks) {
        anyhow::bail!("a check failed (FAIL above)");
    }
    Ok(())
}

async fn provision(args: &ProvisionArgs) -> anyhow::Result<()> {
    let settings = ProvisionSettings::from_layers(&args.layers()?)?;
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
    shutdown_signal::on_signal()
}
