//! `flexbridge-bench`: wiring only (see the library's docs).

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use flexbridge_bench::cli::{Backend, Cli, Command, FloorArgs};
use flexbridge_bench::{floor, hold, run, twilio};
use tokio::net::TcpListener;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Some(Command::Floor(args)) => serve_floor(args).await.map(|()| ExitCode::SUCCESS),
            Some(Command::Hold(args)) => hold::serve(args).await.map(|()| ExitCode::SUCCESS),
            None => {
                let command = std::env::args().collect::<Vec<_>>().join(" ");
                // On Ctrl-C or SIGTERM the run is dropped, and with it every
                // child process (they are killed on drop).
                let report = tokio::select! {
                    report = run::run(&cli.run, command) => report?,
                    signal = shutdown_signal::signal() => anyhow::bail!("stopped by {signal}"),
                };
                println!("{}", report.markdown());
                Ok(if report.problems.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    eprintln!(
                        "{} problem(s): see PROBLEM lines above",
                        report.problems.len()
                    );
                    ExitCode::FAILURE
                })
            }
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_floor(args: FloorArgs) -> anyhow::Result<()> {
    let upstream = if args.echo {
        None
    } else {
        let need = |v: Option<String>, name: &str| {
            v.with_context(|| format!("the floor needs {name} (or --echo)"))
        };
        let base = need(args.emulator, "TWILIO_API_BASE")?;
        let twilio = twilio::Twilio::new(
            &base,
            &need(args.account_sid, "TWILIO_ACCOUNT_SID")?,
            &need(args.auth_token, "TWILIO_AUTH_TOKEN")?,
        )?;
        let route = match args.backend {
            Backend::Chat => twilio::Route::Chat {
                flex_flow_sid: need(args.flex_flow_sid, "FLEX_FLOW_SID")?,
            },
            Backend::Conversations => twilio::Route::Conversations {
                workspace_sid: need(args.workspace_sid, "TASKROUTER_WORKSPACE_SID")?,
                workflow_sid: need(args.workflow_sid, "TASKROUTER_WORKFLOW_SID")?,
            },
        };
        Some(twilio::Upstream {
            twilio,
            chat_service_sid: need(args.chat_service_sid, "FLEX_CHAT_SERVICE")?,
            route,
        })
    };
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("binding {}:{}", args.host, args.port))?;
    let address = listener.local_addr()?;
    println!("floor listening on http://{address}");
    std::io::stdout().flush().ok();
    let shutdown = shutdown_signal::on_signal();
    floor::run(listener, upstream, args.public_url, shutdown).await
}
