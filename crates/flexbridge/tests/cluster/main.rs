//! Several bridges, one Flex: real `flexbridge serve` processes (this
//! package's binary) on one PostgreSQL and one Redis, nginx in front when
//! a test wants a load balancer (all three started by `testbed` on free
//! loopback ports, stopped when the test ends), and the Flex emulator in
//! this process (its control API plays the agents).
//!
//! Customers speak Socket.IO over websockets with the benchmark's client
//! (`flexbridge_bench::sio`): through nginx round-robin, a polling client
//! would need sticky sessions, a websocket needs none. A customer here
//! does what the web chat does on a lost connection: reconnect (through
//! nginx, so to whichever bridge) with its token and `lastSeq`, and send
//! the unacknowledged message again under the same client message id.
//!
//! Leases are short (`FLEXBRIDGE_OUTBOX_LEASE_MS`), so a killed bridge's
//! conversations are taken over within seconds.

mod failover;
mod fanout;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use flex_emulator::EmulatorConfig;
use flexbridge::config::{DevFlex, Settings};
use flexbridge::dev::{RunningEmulator, bridge_settings, start_emulator};
use flexbridge::flex::BackendKind;
use flexbridge::flex::client::RestAuth;
use flexbridge::flex::conversations::{Routing, RoutingKind};
use flexbridge_bench::sio::{Client, ClientError, ServerEvent};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use testbed::postgres::TestDatabase;
use testbed::redis::Redis;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// The lease of the tests' bridges.
pub const LEASE_MS: u64 = 1_500;

/// How long one step of a test may take before it fails (not a speed
/// requirement: a bound that turns a hang into a failure).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The emulator, the database and Redis that every bridge of a test shares.
pub struct Shared {
    pub emulator: RunningEmulator,
    pub emulator_url: String,
    pub database: TestDatabase,
    pub redis: Redis,
    /// What every bridge is told (Twilio, Flex, the database, Redis).
    env: Vec<(String, String)>,
    pub http: reqwest::Client,
    logs: tempfile::TempDir,
    emulator_shutdown: CancellationToken,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.emulator_shutdown.cancel();
    }
}

/// Starts the emulator (`agents` agents of `capacity` chats each), a
/// fresh database and Redis.
pub async fn shared(agents: usize, capacity: u32) -> Shared {
    flexbridge::telemetry::init_logging();
    let emulator_shutdown = CancellationToken::new();
    let config = EmulatorConfig::from_seed(9)
        .with_agents(agents)
        .with_chat_capacity(capacity);
    let emulator = start_emulator("127.0.0.1", 0, config, &emulator_shutdown)
        .await
        .expect("the emulator starts");
    let (database, redis) = tokio::task::spawn_blocking(|| {
        let database = testbed::postgres::shared_database().expect("a PostgreSQL database");
        let redis = Redis::start().expect("a Redis");
        (database, redis)
    })
    .await
    .expect("started");
    // Provisioning is the dev one's (the bridge's own address is unused).
    let unused = "127.0.0.1:9".parse().expect("an address");
    let flex = DevFlex {
        backend: BackendKind::Conversations,
        routing: RoutingKind::Interactions,
    };
    let settings = bridge_settings(&emulator, unused, database.url(), flex)
        .await
        .expect("provisioning the emulator");
    let env = bridge_env(&settings, database.url(), &redis.url());
    Shared {
        emulator_url: format!("http://{}", emulator.addr),
        emulator,
        database,
        redis,
        env,
        http: reqwest::Client::new(),
        logs: tempfile::Builder::new()
            .prefix("flexbridge-cluster-")
            // CLUSTER_KEEP_LOGS=1 keeps the bridges' logs for a look afterwards.
            .disable_cleanup(std::env::var_os("CLUSTER_KEEP_LOGS").is_some())
            .tempdir()
            .expect("a log directory"),
        emulator_shutdown,
    }
}

/// `settings` as the environment of `flexbridge serve`.
fn bridge_env(settings: &Settings, database_url: &str, redis_url: &str) -> Vec<(String, String)> {
    let mut env = vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("REDIS_URL", redis_url.to_owned()),
        (
            "TWILIO_ACCOUNT_SID",
            settings.twilio.account_sid.to_string(),
        ),
        (
            "TWILIO_AUTH_TOKEN",
            settings.auth_token.expose_secret().to_owned(),
        ),
        (
            "TWILIO_API_BASE",
            settings
                .twilio
                .api_base
                .as_ref()
                .expect("the emulator")
                .to_string(),
        ),
        ("FLEX_BACKEND", "conversations".to_owned()),
        (
            "FLEX_CHAT_SERVICE",
            settings.flex.chat_service_sid.to_string(),
        ),
        ("FLEXBRIDGE_OUTBOX_LEASE_MS", LEASE_MS.to_string()),
        // The per-customer limit guards against one abusive customer;
        // these customers send as fast as their acks come back.
        ("FLEXBRIDGE_RATE_BURST", "1000000".to_owned()),
        ("FLEXBRIDGE_RATE_PER_SECOND", "1000000".to_owned()),
    ];
    if let RestAuth::ApiKey { sid, secret } = &settings.twilio.rest_auth {
        env.push(("TWILIO_API_KEY", sid.to_string()));
        env.push(("TWILIO_API_SECRET", secret.expose_secret().to_owned()));
    }
    if let Some(flow) = &settings.flex.flex_flow_sid {
        env.push(("FLEX_FLOW_SID", flow.to_string()));
    }
    if let Some(Routing::Interactions(routing)) = &settings.flex.routing {
        env.push(("TASKROUTER_WORKSPACE_SID", routing.workspace.to_string()));
        env.push(("TASKROUTER_WORKFLOW_SID", routing.workflow.to_string()));
    }
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A free loopback port (for a bridge that must know its URL first).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("an address")
        .port()
}

/// One `flexbridge serve` process.
pub struct Bridge {
    pub name: String,
    pub port: u16,
    pub public_base_url: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Bridge {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: nothing in flight gets to finish.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("SIGKILL sent");
            child.wait().await.expect("reaped");
        }
    }

    /// SIGTERM, then waits for the process to end; its exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().expect("a pid");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM sent");
        tokio::time::timeout(PATIENCE, child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not stop after SIGTERM:\n{}", self.name, self.log()))
            .expect("reaped")
    }

    /// What the bridge logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /metrics`, the value of the sample `name` (0 when absent).
    pub async fn metric(&self, http: &reqwest::Client, name: &str) -> f64 {
        let text = http
            .get(format!("{}/metrics", self.url()))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("text");
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once(' '))
            .filter(|(sample, _)| *sample == name || sample.starts_with(&format!("{name}{{")))
            .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
            .sum()
    }
}

impl Shared {
    /// Starts bridge `name` on a free port, telling Twilio `public` as its
    /// URL (its own when `None`), and waits until it listens.
    pub async fn bridge(&self, name: &str, public: Option<&str>) -> Bridge {
        let port = free_port();
        self.bridge_on(name, port, public).await
    }

    /// [`Shared::bridge`] on a given port (a restart where it was).
    pub async fn bridge_on(&self, name: &str, port: u16, public: Option<&str>) -> Bridge {
        let public_base_url =
            public.map_or_else(|| format!("http://127.0.0.1:{port}"), str::to_owned);
        let log = self
            .logs
            .path()
            .join(format!("{name}-{}.log", rand::random::<u32>()));
        let stderr = std::fs::File::create(&log).expect("a log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_flexbridge"))
            .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string()])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("PUBLIC_BASE_URL", &public_base_url)
            .env(
                "RUST_LOG",
                "info,sqlx=warn,socketioxide=warn,engineioxide=warn",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("flexbridge starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let announced = tokio::time::timeout(PATIENCE, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains(" listening on ") {
                    return true;
                }
            }
            false
        })
        .await;
        let bridge = Bridge {
            name: name.to_owned(),
            port,
            public_base_url,
            child: Some(child),
            log,
        };
        assert!(
            matches!(announced, Ok(true)),
            "{name} did not start:\n{}",
            bridge.log()
        );
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        bridge
    }

    /// `GET` on the emulator's control API.
    pub async fn emulator_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.emulator_url))
            .send()
            .await
            .expect("the emulator answers")
            .json()
            .await
            .expect("JSON")
    }

    /// `POST` on the emulator's control API.
    pub async fn emulator_post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.emulator_url))
            .json(&body)
            .send()
            .await
            .expect("the emulator answers");
        assert!(
            response.status().is_success(),
            "POST {path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    /// Every conversation in the emulator with the bodies of its customer
    /// messages, in order.
    pub async fn flex_conversations(&self) -> Vec<(String, Vec<String>)> {
        let state = self.emulator_get("/_emulator/state").await;
        state["conversations"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|conversation| {
                let sid = conversation["sid"].as_str().unwrap_or_default().to_owned();
                let bodies = conversation["messages"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .filter(|message| is_customers(message))
                    .filter_map(|message| message["body"].as_str().map(str::to_owned))
                    .collect();
                (sid, bodies)
            })
            .collect()
    }

    /// Accepts every pending reservation; each accepted task with its
    /// agent and customer name.
    pub async fn accept_all(&self) -> Vec<(String, String, String)> {
        let agents = self.emulator_get("/_emulator/agents").await;
        let mut accepted = Vec::new();
        for agent in agents.as_array().cloned().unwrap_or_default() {
            let agent = agent["name"].as_str().expect("an agent name").to_owned();
            let view = self
                .emulator_get(&format!("/_emulator/agents/{agent}"))
                .await;
            for work in view["work"].as_array().cloned().unwrap_or_default() {
                if work["reservation"]["reservation_status"] != "pending" {
                    continue;
                }
                let reservation = work["reservation"]["sid"].as_str().expect("a WR");
                let task = work["task"]["sid"].as_str().expect("a WT").to_owned();
                let name = work["customer"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                self.emulator_post(
                    &format!("/_emulator/agents/{agent}/reservations/{reservation}/accept"),
                    json!({}),
                )
                .await;
                accepted.push((agent.clone(), task, name));
            }
        }
        accepted
    }

    /// The agent says `body` in `task`.
    pub async fn agent_says(&self, agent: &str, task: &str, body: &str) {
        self.emulator_post(
            &format!("/_emulator/agents/{agent}/tasks/{task}/messages"),
            json!({ "body": body }),
        )
        .await;
    }

    /// The URLs the emulator delivered webhooks to.
    pub async fn webhook_urls(&self) -> Vec<String> {
        let deliveries = self.emulator_get("/_emulator/webhooks").await;
        deliveries
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|delivery| delivery["url"].as_str().map(str::to_owned))
            .collect()
    }
}

/// Whether an emulator message is the customer's: its author is the
/// bridge's identity for the customer (`flexbridge_…`), not an agent.
fn is_customers(message: &Value) -> bool {
    message["author"]
        .as_str()
        .is_some_and(|author| author.starts_with("flexbridge_"))
}

/// One connection of a customer, with every event it got.
pub struct Tab {
    pub client: Client,
    pub events: Vec<ServerEvent>,
}

impl Tab {
    /// Connects to `base` with `auth`.
    pub async fn connect(base: &str, auth: Value) -> Result<Tab, ClientError> {
        let client = Client::connect(base, Some(&auth), Duration::from_secs(5)).await?;
        Ok(Tab {
            client,
            events: Vec::new(),
        })
    }

    /// Waits for the next event named `name` (keeping every event read).
    pub async fn next(&mut self, name: &str) -> Option<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let event = tokio::time::timeout(left, self.client.next_event())
                .await
                .ok()??;
            let matched = event.name == name;
            let arg = event.args.first().cloned().unwrap_or(Value::Null);
            self.events.push(event);
            if matched {
                return Some(arg);
            }
        }
    }

    /// Waits for a `message` event with `body`; its payload.
    pub async fn message(&mut self, body: &str) -> Value {
        loop {
            let message = self
                .next("message")
                .await
                .unwrap_or_else(|| panic!("no message {body:?} arrived"));
            if message["body"] == body {
                return message;
            }
        }
    }

    /// Reads what arrives for `quiet` (to see whether something comes twice).
    pub async fn settle(&mut self, quiet: Duration) {
        while let Ok(Some(event)) = tokio::time::timeout(quiet, self.client.next_event()).await {
            self.events.push(event);
        }
    }

    /// How many `message` events with `body` arrived.
    pub fn count(&self, body: &str) -> usize {
        self.events
            .iter()
            .filter(|event| event.name == "message")
            .filter(|event| event.args.first().is_some_and(|m| m["body"] == body))
            .count()
    }

    /// Emits `message` and waits for its ack.
    pub async fn say(&self, client_message_id: &str, body: &str) -> Result<Value, ClientError> {
        let ack = self
            .client
            .emit_with_ack(
                "message",
                &json!({ "clientMessageId": client_message_id, "body": body }),
                Duration::from_secs(10),
            )
            .await?;
        Ok(ack.args.first().cloned().unwrap_or(Value::Null))
    }
}

/// Registers a new customer named `name` on `base`: its tab (the
/// `session` read), token and id.
pub async fn register(base: &str, name: &str) -> (Tab, String, String) {
    let mut tab = Tab::connect(base, json!({})).await.expect("connects");
    let ack = tab
        .client
        .emit_with_ack(
            "register",
            &json!({ "name": name }),
            Duration::from_secs(10),
        )
        .await
        .expect("register acked");
    let ok = &ack.args[0]["ok"];
    let token = ok["token"].as_str().expect("a token").to_owned();
    let id = ok["customerId"].as_str().expect("an id").to_owned();
    tab.next("session").await.expect("a session");
    (tab, token, id)
}

/// Polls `check` until it gives a value; fails after [`PATIENCE`].
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
