//! One benchmark run: start what each target needs, run the scenarios in a
//! fixed order, stop every process, print the Markdown tables and write the
//! JSON. Any lost or duplicated message (or a scenario that could not run)
//! is a problem and makes the exit status non-zero.
//!
//! For each backend (`--backend`, default `conversations`; `--quick` both),
//! per target (default order echo, floor, bridge):
//! - `echo`: the floor in echo mode; scenario 1 (acks only). It has no
//!   upstream, so it runs once, with the first backend.
//! - `floor` / `bridge`: a fresh emulator (`--agents A --chat-capacity ⌈N/A⌉`),
//!   what the backend needs on it (chat: a Flex Flow), the server on that
//!   backend; scenarios 1 and 2; the server is stopped and a fresh one
//!   serves scenario 3 (so its RSS baseline is clean).
//!
//! Then scenario 4b for the backend on a fresh emulator, with the floor as
//! webhook sink.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};

use crate::cli::{Backend, RunArgs, Scenario, Which};
use crate::emulator::Emulator;
use crate::procs::{self, Process};
use crate::report::Report;
use crate::scenarios::{Target, capacity, emulator_alone, replies, throughput};
use crate::sio::Transport;
use crate::twilio::{Account, Route, Twilio, Upstream};

/// Every size a run uses, after `--quick` and the flags.
#[derive(Debug, Clone)]
struct Sizes {
    backends: Vec<Backend>,
    customers: usize,
    messages: usize,
    replies: usize,
    idle: Vec<usize>,
    timeout: Duration,
    paced_rate: Option<f64>,
    /// The scenarios to run (`--scenarios`, default all).
    scenarios: Vec<Scenario>,
}

impl Sizes {
    fn from(args: &RunArgs) -> Self {
        let q = args.quick;
        Sizes {
            backends: args.backend.clone().unwrap_or(if q {
                vec![Backend::Conversations, Backend::Chat]
            } else {
                vec![Backend::Conversations]
            }),
            customers: args.customers.unwrap_or(if q { 20 } else { 200 }),
            messages: args.messages.unwrap_or(if q { 5 } else { 20 }),
            replies: args.replies.unwrap_or(if q { 3 } else { 5 }),
            idle: args.idle.clone().unwrap_or(if q {
                vec![200]
            } else {
                vec![1000, 5000, 10000, 20000]
            }),
            timeout: Duration::from_secs(args.timeout_s.unwrap_or(if q { 30 } else { 120 })),
            paced_rate: Some(args.paced_rate.unwrap_or(if q { 100.0 } else { 200.0 }))
                .filter(|rate| *rate > 0.0),
            scenarios: args.scenarios.clone().unwrap_or_else(|| {
                vec![
                    Scenario::Messages,
                    Scenario::Replies,
                    Scenario::Idle,
                    Scenario::EmulatorAlone,
                ]
            }),
        }
    }

    fn runs(&self, scenario: Scenario) -> bool {
        self.scenarios.contains(&scenario)
    }
}

/// Binaries and output places.
struct Places {
    /// `--server-wrapper`, split: the floor and bridge run under it.
    wrapper: Vec<String>,
    bin_dir: PathBuf,
    out: PathBuf,
    logs: PathBuf,
    run_dir: PathBuf,
}

fn places(args: &RunArgs, unix: u64) -> anyhow::Result<Places> {
    let exe = std::env::current_exe().context("finding this executable")?;
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => exe
            .parent()
            .context("this executable has no directory")?
            .to_path_buf(),
    };
    // target/<profile>/ → target/bench/
    let bench_dir = bin_dir
        .parent()
        .map(|t| t.join("bench"))
        .unwrap_or_else(|| PathBuf::from("bench-results"));
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| bench_dir.join(format!("bench-{unix}.json")));
    let run_dir = bench_dir.join(format!("run-{unix}"));
    Ok(Places {
        wrapper: args
            .server_wrapper
            .as_deref()
            .map(|w| w.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        logs: run_dir.join("logs"),
        bin_dir,
        out,
        run_dir,
    })
}

fn binary(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} not found (build it: cargo build -p {name}; or pass --bin-dir)",
            path.display()
        );
    }
    Ok(path)
}

/// A port that was free a moment ago (for servers that must know their own
/// public URL before they start).
fn free_port() -> anyhow::Result<u16> {
    let listener = StdListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A started emulator with what the relays of one backend need on it.
struct Flex {
    process: Process,
    client: Emulator,
    account: Account,
    upstream: Upstream,
}

async fn start_emulator(
    places: &Places,
    label: &str,
    agents: usize,
    capacity: usize,
    backend: Backend,
) -> anyhow::Result<Flex> {
    let program = binary(&places.bin_dir, "flex-emulator")?;
    let args: Vec<String> = [
        "--port",
        "0",
        "--agents",
        &agents.to_string(),
        "--chat-capacity",
        &capacity.to_string(),
        "--seed",
        "5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let process = Process::spawn(label, &program, &args, &[], &places.logs).await?;
    let client = Emulator::new(&process.url)?;
    let account = Account::from_state(&client.state().await?)?;
    let twilio = Twilio::new(&process.url, &account.account_sid, &account.auth_token)?;
    let upstream = Upstream::prepare(twilio, &account, backend).await?;
    Ok(Flex {
        process,
        client,
        account,
        upstream,
    })
}

/// The environment both relays read (the bridge's variable names).
fn relay_env(flex: &Flex) -> Vec<(String, String)> {
    let up = &flex.upstream;
    let mut env: Vec<(String, String)> = vec![
        (
            "TWILIO_ACCOUNT_SID".into(),
            flex.account.account_sid.clone(),
        ),
        ("TWILIO_AUTH_TOKEN".into(), flex.account.auth_token.clone()),
        ("TWILIO_API_BASE".into(), flex.process.url.clone()),
        ("FLEX_BACKEND".into(), up.backend().name().into()),
        ("FLEX_CHAT_SERVICE".into(), up.chat_service_sid.clone()),
    ];
    match &up.route {
        Route::Chat { flex_flow_sid } => {
            env.push(("FLEX_FLOW_SID".into(), flex_flow_sid.clone()));
        }
        // The bridge's default routing (`FLEX_ROUTING=interactions`).
        Route::Conversations {
            workspace_sid,
            workflow_sid,
        } => {
            env.push(("TASKROUTER_WORKSPACE_SID".into(), workspace_sid.clone()));
            env.push(("TASKROUTER_WORKFLOW_SID".into(), workflow_sid.clone()));
        }
    }
    env
}

async fn start_server(
    which: Which,
    places: &Places,
    flex: Option<&Flex>,
    label: &str,
    extra_env: &[(String, String)],
) -> anyhow::Result<Process> {
    match which {
        Which::Echo => {
            let exe = std::env::current_exe()?;
            let args = ["floor", "--port", "0", "--echo"].map(String::from);
            Process::spawn(label, &exe, &args, &[], &places.logs).await
        }
        Which::Floor => {
            let flex = flex.context("the floor needs an emulator")?;
            let exe = std::env::current_exe()?;
            let args = ["floor", "--port", "0"].map(String::from);
            let mut env = relay_env(flex);
            env.extend(extra_env.iter().cloned());
            spawn_wrapped(places, label, &exe, &args, &env).await
        }
        Which::Bridge => {
            let flex = flex.context("the bridge needs an emulator")?;
            let program = binary(&places.bin_dir, "flexbridge")?;
            let port = free_port()?;
            let mut env = relay_env(flex);
            env.push(("PUBLIC_BASE_URL".into(), format!("http://127.0.0.1:{port}")));
            std::fs::create_dir_all(&places.run_dir)?;
            let db = places.run_dir.join(format!("{label}.db"));
            env.push((
                "DATABASE_URL".into(),
                format!("sqlite://{}?mode=rwc", db.display()),
            ));
            // The per-customer rate limit (default 5/s, burst 20) guards
            // against one abusive customer; this benchmark measures the
            // aggregate of many, so it is lifted (and said so in the notes).
            env.push(("FLEXBRIDGE_RATE_BURST".into(), "1000000".into()));
            env.push(("FLEXBRIDGE_RATE_PER_SECOND".into(), "1000000".into()));
            env.extend(extra_env.iter().cloned());
            let args = ["serve", "--port", &port.to_string()].map(String::from);
            spawn_wrapped(places, label, &program, &args, &env).await
        }
    }
}

/// A relay's process, under `--server-wrapper` when given.
async fn spawn_wrapped(
    places: &Places,
    label: &str,
    program: &Path,
    args: &[String],
    env: &[(String, String)],
) -> anyhow::Result<Process> {
    match places.wrapper.split_first() {
        None => Process::spawn(label, program, args, env, &places.logs).await,
        Some((wrapper, wrapper_args)) => {
            let mut all = wrapper_args.to_vec();
            all.push(program.display().to_string());
            all.extend(args.iter().cloned());
            Process::spawn(label, Path::new(wrapper), &all, env, &places.logs).await
        }
    }
}

/// Runs everything `args` asks for and returns the report.
pub async fn run(args: &RunArgs, command: String) -> anyhow::Result<Report> {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let sizes = Sizes::from(args);
    let places = places(args, unix)?;
    let nofile = procs::raise_nofile_limit()?;
    let bridge_env_note = (!args.bridge_env.is_empty()).then(|| {
        let pairs: Vec<String> = args
            .bridge_env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("extra bridge environment: {}", pairs.join(" "))
    });
    let prefix = format!("b{:x}", unix % 0xfffff);
    let mut report = Report {
        command,
        quick: args.quick,
        backends: sizes.backends.clone(),
        unix_time: unix,
        load_before: procs::load_average(),
        load_after: None,
        bin_dir: places.bin_dir.display().to_string(),
        throughput: Vec::new(),
        replies: Vec::new(),
        capacity: Vec::new(),
        emulator_alone: Vec::new(),
        notes: vec![
            format!("open-files limit raised to {nofile}"),
            "the bridge runs with its per-customer rate limit lifted (FLEXBRIDGE_RATE_BURST/PER_SECOND=1000000)".into(),
        ],
        problems: Vec::new(),
    };
    report.notes.extend(bridge_env_note);
    if !args.floor_env.is_empty() {
        let pairs: Vec<String> = args
            .floor_env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        report
            .notes
            .push(format!("extra floor environment: {}", pairs.join(" ")));
    }
    let agents = args.agents.max(1);
    let capacity = sizes.customers.div_ceil(agents).max(1);

    if let (Some(bridge), Some(emulator)) = (&args.bridge_url, &args.emulator_url) {
        let [backend] = sizes.backends[..] else {
            bail!("a bridge given by URL runs one backend: say which with --backend");
        };
        report.notes.push(
            "bridge and emulator given by URL: no RSS or CPU measured, scenario 2 needs enough agents"
                .into(),
        );
        let client = Emulator::new(emulator)?;
        let target = Target {
            name: "bridge",
            backend: Some(backend),
            url: bridge,
            process: None,
            emulator: Some((&client, None)),
        };
        run_target(
            &target,
            &sizes,
            args,
            &format!("{prefix}-bridge"),
            nofile,
            &mut report,
        )
        .await;
    } else {
        let targets = args
            .targets
            .clone()
            .unwrap_or_else(|| vec![Which::Echo, Which::Floor, Which::Bridge]);
        for (round, &backend) in sizes.backends.iter().enumerate() {
            for &which in &targets {
                if which == Which::Echo && (round > 0 || !sizes.runs(Scenario::Messages)) {
                    continue;
                }
                let spawned = Spawned {
                    which,
                    backend,
                    agents,
                    capacity,
                };
                if let Err(e) =
                    run_spawned(spawned, &places, &sizes, args, &prefix, nofile, &mut report).await
                {
                    report
                        .problems
                        .push(format!("{} ({}): {e:#}", which.name(), backend.name()));
                }
            }
            if !args.no_emulator_alone
                && sizes.runs(Scenario::EmulatorAlone)
                && let Err(e) =
                    run_emulator_alone(backend, &places, &sizes, &prefix, &mut report).await
            {
                report
                    .problems
                    .push(format!("emulator alone ({}): {e:#}", backend.name()));
            }
        }
    }
    report.load_after = procs::load_average();
    report
        .notes
        .push(format!("process logs: {}", places.logs.display()));
    write_json(&places.out, &report)?;
    report.notes.push(format!("JSON: {}", places.out.display()));
    Ok(report)
}

fn write_json(out: &Path, report: &Report) -> anyhow::Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(out, json).with_context(|| format!("writing {}", out.display()))
}

/// One target this run starts, on one backend.
#[derive(Debug, Clone, Copy)]
struct Spawned {
    which: Which,
    backend: Backend,
    /// Agents of its emulator, and the chat capacity of each.
    agents: usize,
    capacity: usize,
}

/// Scenarios 1–3 against a target this run starts.
async fn run_spawned(
    spawned: Spawned,
    places: &Places,
    sizes: &Sizes,
    args: &RunArgs,
    prefix: &str,
    nofile: u64,
    report: &mut Report,
) -> anyhow::Result<()> {
    let Spawned {
        which,
        backend,
        agents,
        capacity,
    } = spawned;
    let name = which.name();
    if which == Which::Echo {
        let prefix = format!("{prefix}-{name}");
        let server = start_server(which, places, None, "echo", &[]).await?;
        let target = Target {
            name,
            backend: None,
            url: &server.url,
            process: Some(&server),
            emulator: None,
        };
        let plan = throughput::Plan {
            customers: sizes.customers,
            messages: sizes.messages,
            timeout: sizes.timeout,
            connect_parallel: args.connect_parallel,
            paced_rate: None,
        };
        let result = throughput::run(&target, &prefix, plan).await;
        server.stop().await;
        let (results, _customers, problems) = result?;
        report.throughput.extend(results);
        report.problems.extend(problems);
        return Ok(());
    }
    // Names of processes, logs and tokens carry the backend.
    let label = format!("{name}-{}", backend.name());
    let prefix = format!("{prefix}-{label}");
    let flex = start_emulator(
        places,
        &format!("emulator-{label}"),
        agents,
        capacity,
        backend,
    )
    .await?;
    let outcome = async {
        if sizes.runs(Scenario::Messages) {
            let server =
                start_server(which, places, Some(&flex), &label, env_of(which, args)).await?;
            let target = Target {
                name,
                backend: Some(backend),
                url: &server.url,
                process: Some(&server),
                emulator: Some((&flex.client, Some(&flex.process))),
            };
            run_target(&target, sizes, args, &prefix, nofile, report).await;
            server.stop().await;
        }
        if sizes.runs(Scenario::Idle) {
            for &transport in &args.transports {
                let idle = run_capacity_fresh(
                    which, places, &flex, sizes, args, &prefix, nofile, transport,
                )
                .await?;
                report.capacity.push(idle);
            }
        }
        anyhow::Ok(())
    }
    .await;
    flex.process.stop().await;
    outcome
}

/// The extra environment of a target's server (`--bridge-env`, `--floor-env`).
fn env_of(which: Which, args: &RunArgs) -> &[(String, String)] {
    match which {
        Which::Bridge => &args.bridge_env,
        Which::Floor => &args.floor_env,
        Which::Echo => &[],
    }
}

fn capacity_plan(
    sizes: &Sizes,
    args: &RunArgs,
    log_dir: &Path,
    nofile: u64,
    transport: Transport,
) -> capacity::Plan {
    capacity::Plan {
        steps: sizes.idle.clone(),
        parallel: args.connect_parallel,
        nofile_limit: nofile,
        transport,
        per_process: args.hold_per_process,
        log_dir: log_dir.to_path_buf(),
        timeout: sizes.timeout.max(Duration::from_secs(120)),
    }
}

/// Scenarios 1 and 2 on `target` (2 when asked for); when this run did not
/// start the server, 3 on `target` itself too (without RSS): else the
/// caller runs 3 on a fresh server ([`run_capacity_fresh`]).
async fn run_target(
    target: &Target<'_>,
    sizes: &Sizes,
    args: &RunArgs,
    prefix: &str,
    nofile: u64,
    report: &mut Report,
) {
    if sizes.runs(Scenario::Messages) {
        let plan = throughput::Plan {
            customers: sizes.customers,
            messages: sizes.messages,
            timeout: sizes.timeout,
            connect_parallel: args.connect_parallel,
            paced_rate: sizes.paced_rate,
        };
        match throughput::run(target, prefix, plan).await {
            Ok((results, customers, problems)) => {
                report.throughput.extend(results);
                report.problems.extend(problems);
                if sizes.runs(Scenario::Replies) {
                    let plan = replies::Plan {
                        replies: sizes.replies,
                        timeout: sizes.timeout,
                    };
                    match replies::run(target, prefix, customers, plan).await {
                        Ok((result, customers, problems)) => {
                            report.replies.push(result);
                            report.problems.extend(problems);
                            drop(customers);
                        }
                        Err(e) => report
                            .problems
                            .push(format!("{} scenario 2: {e:#}", target.name)),
                    }
                }
            }
            Err(e) => report
                .problems
                .push(format!("{} scenario 1: {e:#}", target.name)),
        }
    }
    if target.process.is_none() && sizes.runs(Scenario::Idle) {
        let log_dir = std::env::temp_dir().join(format!("{prefix}-hold"));
        for &transport in &args.transports {
            let plan = capacity_plan(sizes, args, &log_dir, nofile, transport);
            report.capacity.push(
                capacity::run(
                    target,
                    &format!("{prefix}-idle-{}", transport.name()),
                    &plan,
                )
                .await,
            );
        }
    }
}

/// Scenario 3 on a fresh server, over one transport.
#[allow(clippy::too_many_arguments)]
async fn run_capacity_fresh(
    which: Which,
    places: &Places,
    flex: &Flex,
    sizes: &Sizes,
    args: &RunArgs,
    prefix: &str,
    nofile: u64,
    transport: Transport,
) -> anyhow::Result<crate::report::Capacity> {
    let backend = flex.upstream.backend();
    let label = format!(
        "{}-{}-idle-{}",
        which.name(),
        backend.name(),
        transport.name()
    );
    let server = start_server(which, places, Some(flex), &label, env_of(which, args)).await?;
    let target = Target {
        name: which.name(),
        backend: Some(backend),
        url: &server.url,
        process: Some(&server),
        emulator: Some((&flex.client, Some(&flex.process))),
    };
    let plan = capacity_plan(sizes, args, &places.logs, nofile, transport);
    let result = capacity::run(
        &target,
        &format!("{prefix}-idle-{}", transport.name()),
        &plan,
    )
    .await;
    server.stop().await;
    Ok(result)
}

async fn run_emulator_alone(
    backend: Backend,
    places: &Places,
    sizes: &Sizes,
    prefix: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let label = format!("alone-{}", backend.name());
    let flex = start_emulator(places, &format!("emulator-{label}"), 1, 1, backend).await?;
    let outcome = async {
        let sink = start_server(
            Which::Floor,
            places,
            Some(&flex),
            &format!("webhook-sink-{}", backend.name()),
            &[],
        )
        .await?;
        let plan = emulator_alone::Plan {
            channels: sizes.customers,
            messages: sizes.messages,
            timeout: sizes.timeout,
        };
        let result = emulator_alone::run(
            backend,
            &flex.client,
            Some(&flex.process),
            &sink.url,
            &format!("{prefix}-{label}"),
            plan,
        )
        .await;
        sink.stop().await;
        result
    }
    .await;
    flex.process.stop().await;
    let (result, problems) = outcome?;
    report.emulator_alone.push(result);
    report.problems.extend(problems);
    Ok(())
}
