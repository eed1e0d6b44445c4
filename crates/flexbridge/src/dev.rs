//! `flexbridge dev`: the Flex emulator (with its agent console) and the
//! bridge in one process, no Twilio account needed.
//!
//! 1. The emulator (the `flex_emulator` library) starts on
//!    `--emulator-port` (default 3001) and announces itself.
//! 2. Provisioning runs against it (the same code as `flexbridge
//!    provision`), for both backends, so one dev database can switch
//!    `--backend` (each conversation stays with the backend that opened
//!    it): the Conversations backend's workflow and task channel in the
//!    bootstrapped workspace (the "Flex Chat Service", workspace and
//!    "Webchat Flow" SIDs are the emulator's bootstrap ones, given and so
//!    checked rather than looked up by name), and the Chat backend's
//!    custom-channel Flex Flow on the "Flex Chat Service" and "Webchat
//!    Flow".
//! 3. The bridge starts on `--port` (default 3000) with `--backend`
//!    (default `conversations`; `--routing studio` for Studio routing), the emulator as its
//!    Twilio API base, REST calls authenticated with the emulator's API key
//!    (webhook signatures checked with its auth token, as with Twilio), its
//!    own URL as `PUBLIC_BASE_URL`, and a database file (default
//!    `flexbridge-dev.db`).
//! 4. Both "listening on" lines are printed, then the two URLs to open,
//!    then the emulator's account SID and auth token (what `doctor` and
//!    `provision` against it need). Without `--seed` the emulator is a new
//!    account each run: its SIDs never repeat against the dev database.
//!
//! Its settings ([`DevSettings`]) are layered like `serve`'s (defaults →
//! file → environment → flags), under their own names (`[dev]`,
//! `FLEXBRIDGE_DEV_*`). Built only with the cargo feature `dev` (on by
//! default): a bridge built without it carries no emulator.
//!
//! [`start_emulator`] and [`bridge_settings`] are also how the integration
//! tests run the real thing on port 0 with a temporary database.

use std::net::SocketAddr;

use anyhow::Context as _;
use flex_emulator::{Emulator, EmulatorConfig};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

pub use crate::config::DevFlex;
use crate::config::{
    AllowedOrigins, DEFAULT_FLOW_NAME, DevSettings, FlexSettings, OutboxSettings, PublicBaseUrl,
    Settings, TwilioSettings, WidgetSettings,
};
use crate::core::rate_limit::RateLimit;
use crate::flex::client::RestAuth;
use crate::flex::conversations::{InteractionRouting, Routing, RoutingKind, Timers};
use crate::flex::provision::conversations::{self as conversations_provision, Wanted};
use crate::flex::provision::{FlowSpec, ensure_flex_flow};
use crate::flex::sid::{
    AccountSid, ApiKeySid, ChatServiceSid, StudioFlowSid, TaskChannelName, WorkspaceSid,
};
use crate::startup::{Application, twilio_client};

/// A running emulator.
pub struct RunningEmulator {
    pub emulator: Emulator,
    pub addr: SocketAddr,
    /// Serving until the shutdown token given to [`start_emulator`] fires.
    pub task: JoinHandle<std::io::Result<()>>,
}

/// Starts the emulator on `host:port` (0 picks a port).
pub async fn start_emulator(
    host: &str,
    port: u16,
    config: EmulatorConfig,
    shutdown: &CancellationToken,
) -> anyhow::Result<RunningEmulator> {
    let emulator = Emulator::new(config);
    let listener = TcpListener::bind((host, port))
        .await
        .with_context(|| format!("binding the emulator to {host}:{port}"))?;
    let addr = listener
        .local_addr()
        .context("reading the emulator's address")?;
    let task = tokio::spawn(emulator.run(listener, shutdown.clone()));
    Ok(RunningEmulator {
        emulator,
        addr,
        task,
    })
}

/// Runs `flexbridge dev` until `shutdown`.
pub async fn run(dev: DevSettings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let seeded = dev
        .seed
        .map_or_else(EmulatorConfig::random, EmulatorConfig::from_seed);
    let config = seeded.with_agents(dev.agents);
    let emulator = start_emulator(&dev.host, dev.emulator_port, config, &shutdown).await?;
    let listener = TcpListener::bind((dev.host.as_str(), dev.port))
        .await
        .with_context(|| format!("binding the bridge to {}:{}", dev.host, dev.port))?;
    let addr = listener
        .local_addr()
        .context("reading the bridge's address")?;
    let mut settings = bridge_settings(&emulator, addr, &dev.database_url, dev.flex).await?;
    settings.allowed_origins = dev.allowed_origins;
    settings.widget = dev.widget;
    let app = Application::build_with_listener(settings, listener).await?;
    println!("flex-emulator listening on http://{}", emulator.addr);
    println!("flexbridge listening on http://{}", app.local_addr());
    println!();
    println!("Customer chat: http://localhost:{}", app.port());
    println!("Agent console: http://localhost:{}", emulator.addr.port());
    // What `doctor` and `provision` against this emulator need (a local
    // development tool: printing its generated secret is the point).
    let credentials = emulator.emulator.credentials();
    println!();
    println!(
        "Emulator account (seed {}): TWILIO_ACCOUNT_SID={} TWILIO_AUTH_TOKEN={} TWILIO_API_BASE=http://{}",
        emulator.emulator.config().seed(),
        credentials.account_sid,
        credentials.auth_token,
        emulator.addr
    );
    let served = app.run_until_stopped(shutdown.clone()).await;
    shutdown.cancel();
    match emulator.task.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "the emulator stopped with an error"),
        Err(error) => tracing::warn!(%error, "the emulator task failed"),
    }
    served
}

/// The settings of a bridge on `bridge_addr` against `running`,
/// provisioning both backends in the emulator (idempotently).
pub async fn bridge_settings(
    running: &RunningEmulator,
    bridge_addr: SocketAddr,
    database_url: &str,
    flex: DevFlex,
) -> anyhow::Result<Settings> {
    let credentials = running.emulator.credentials();
    let bootstrap = running.emulator.bootstrap();
    let api_base = Url::parse(&format!("http://{}", running.addr)).context("the emulator's URL")?;
    let public = Url::parse(&format!("http://{bridge_addr}")).context("the bridge's URL")?;
    let twilio = TwilioSettings {
        account_sid: AccountSid::parse(&credentials.account_sid)
            .context("the emulator's account SID")?,
        rest_auth: RestAuth::ApiKey {
            sid: ApiKeySid::parse(&credentials.api_key_sid).context("the emulator's API key")?,
            secret: SecretString::from(credentials.api_key_secret.clone()),
        },
        api_base: Some(api_base),
    };
    let chat_service_sid = ChatServiceSid::parse(&bootstrap.chat_service_sid)
        .context("the emulator's chat service")?;
    let workspace =
        WorkspaceSid::parse(&bootstrap.workspace_sid).context("the emulator's workspace")?;
    let studio_flow =
        StudioFlowSid::parse(&bootstrap.studio_flow_sid).context("the emulator's Studio flow")?;
    let client = twilio_client(&twilio)?;
    let task_channel = TaskChannelName::chat();
    let found = conversations_provision::find(
        &client,
        &Wanted {
            chat_service: Some(&chat_service_sid),
            workspace: Some(&workspace),
            workflow: None,
            task_channel: &task_channel,
            routing: flex.routing,
            studio_flow: Some(&studio_flow),
        },
    )
    .await
    .context("finding the emulator's workspace, workflow and task channel")?;
    let provisioned = ensure_flex_flow(
        &client,
        &FlowSpec {
            friendly_name: DEFAULT_FLOW_NAME,
            chat_service: &chat_service_sid,
            studio_flow: &studio_flow,
        },
    )
    .await
    .context("provisioning the emulator's Flex Flow")?;
    let routing = match flex.routing {
        RoutingKind::Interactions => Routing::Interactions(InteractionRouting {
            workspace: found.workspace.sid,
            workflow: found.workflow.sid,
            task_channel,
        }),
        RoutingKind::Studio => Routing::Studio { flow: studio_flow },
    };
    Ok(Settings {
        host: bridge_addr.ip().to_string(),
        port: bridge_addr.port(),
        public_base_url: PublicBaseUrl::Fixed(public),
        database_url: database_url.to_owned(),
        redis_url: None,
        twilio,
        auth_token: SecretString::from(credentials.auth_token.clone()),
        skip_twilio_check: false,
        flex: FlexSettings {
            backend: flex.backend,
            chat_service_sid,
            flex_flow_sid: Some(provisioned.flow_sid),
            routing: Some(routing),
            timers: Timers::default(),
        },
        outbox: OutboxSettings::default(),
        rate_limit: RateLimit::default(),
        allowed_origins: AllowedOrigins::default(),
        widget: WidgetSettings::default(),
    })
}
