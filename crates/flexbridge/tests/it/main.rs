//! Integration tests: the real bridge on port 0 with a fresh SQLite file,
//! the Flex emulator in-process on port 0 (its control API plays the
//! agents and injects faults), customers over a real Socket.IO connection
//! (long-polling) or the core's API. One binary, several modules.

mod conversations;
mod delivery;
mod http;
mod socketio;
mod webhooks;

use std::time::{Duration, Instant};

use flex_emulator::EmulatorConfig;
use flexbridge::config::{PublicBaseUrl, Settings};
use flexbridge::core::ids::CustomerId;
use flexbridge::dev::{RunningEmulator, bridge_settings, start_emulator};
use flexbridge::startup::Application;
use flexbridge::store::{ConversationRecord, Store};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

pub use socketio::SioClient;

/// A reservation an agent got: who, and for which task and channel.
pub struct Work {
    pub agent: String,
    pub reservation: String,
    pub task: String,
    pub channel: String,
}

/// A registered customer with one open socket.
pub struct Customer {
    pub socket: SioClient,
    pub token: String,
    pub id: CustomerId,
}

/// A bridge running in its own runtime on its own thread, so that a
/// "crash" can drop every one of its tasks at once (connections included),
/// as killing the process would.
struct RunningBridge {
    /// Dropping (or sending) it crashes the bridge.
    crash: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningBridge {
    async fn start(settings: Settings, listener: std::net::TcpListener) -> Self {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (crash, crashed) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                listener.set_nonblocking(true).expect("non-blocking");
                let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
                let app = Application::build_with_listener(settings, listener)
                    .await
                    .expect("the bridge builds");
                let _ = ready_tx.send(());
                tokio::select! {
                    _ = app.run_until_stopped(CancellationToken::new()) => {}
                    _ = crashed => {}
                }
            });
            runtime.shutdown_background();
        });
        ready_rx.await.expect("the bridge started");
        Self {
            crash: Some(crash),
            thread: Some(thread),
        }
    }

    /// Drops every task of the bridge, without any shutdown work.
    async fn crash(&mut self) {
        drop(self.crash.take());
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .expect("joined")
                .expect("the bridge's thread ends");
        }
    }
}

impl Drop for RunningBridge {
    fn drop(&mut self) {
        drop(self.crash.take());
    }
}

/// A running bridge and emulator.
pub struct TestApp {
    /// The bridge's base URL (also its `PUBLIC_BASE_URL`).
    pub url: String,
    pub emulator_url: String,
    pub http: reqwest::Client,
    /// The bridge's database, through this test's own connection.
    pub store: Store,
    pub settings: Settings,
    /// The emulator's auth token (it signs webhooks with it).
    pub auth_token: String,
    pub emulator: RunningEmulator,
    bridge: Option<RunningBridge>,
    emulator_shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.emulator_shutdown.cancel();
    }
}

/// Starts the emulator and the bridge on port 0 with a fresh database.
pub async fn spawn_app() -> TestApp {
    flexbridge::telemetry::init_logging();
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", dir.path().join("bridge.db").display());
    let emulator_shutdown = CancellationToken::new();
    let emulator = start_emulator(
        "127.0.0.1",
        0,
        EmulatorConfig::from_seed(7).with_agents(2),
        &emulator_shutdown,
    )
    .await
    .expect("the emulator starts");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = listener.local_addr().expect("an address");
    let mut settings = bridge_settings(&emulator, addr, &database_url)
        .await
        .expect("provisioning the emulator");
    settings.outbox.sweep_interval = Duration::from_millis(200);
    settings.outbox.base_backoff = Duration::from_millis(50);
    settings.outbox.max_backoff = Duration::from_millis(500);
    let bridge = RunningBridge::start(settings.clone(), listener).await;
    let store = Store::connect(&database_url)
        .await
        .expect("the database opens");
    TestApp {
        url: format!("http://{addr}"),
        emulator_url: format!("http://{}", emulator.addr),
        http: reqwest::Client::new(),
        store,
        settings,
        auth_token: emulator.emulator.credentials().auth_token.clone(),
        emulator,
        bridge: Some(bridge),
        emulator_shutdown,
        _dir: dir,
    }
}

impl TestApp {
    /// Kills the bridge (like SIGKILL: nothing in flight gets to finish),
    /// then starts it again on the same port and database.
    pub async fn crash_and_restart(&mut self) {
        self.crash().await;
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.settings.port))
            .expect("the bridge's port is free again");
        self.bridge = Some(RunningBridge::start(self.settings.clone(), listener).await);
    }

    /// Kills the bridge (like SIGKILL).
    pub async fn crash(&mut self) {
        if let Some(mut bridge) = self.bridge.take() {
            bridge.crash().await;
        }
    }

    /// Starts the (crashed) bridge again on the same database but another
    /// port, so with another `PUBLIC_BASE_URL`.
    pub async fn restart_elsewhere(&mut self) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let addr = listener.local_addr().expect("an address");
        self.url = format!("http://{addr}");
        self.settings.port = addr.port();
        self.settings.public_base_url =
            PublicBaseUrl::Fixed(url::Url::parse(&self.url).expect("a URL"));
        self.bridge = Some(RunningBridge::start(self.settings.clone(), listener).await);
    }

    /// A new customer over Socket.IO (its `session` already read).
    pub async fn customer(&self, name: &str) -> Customer {
        let mut socket = SioClient::connect(&self.url, json!({}))
            .await
            .expect("anonymous connect");
        let ack = socket
            .emit_with_ack("register", json!({ "name": name }))
            .await;
        let token = ack["ok"]["token"].as_str().expect("a token").to_owned();
        let id = CustomerId::parse(ack["ok"]["customerId"].as_str().expect("an id"))
            .expect("a customer id");
        socket.next_event("session").await;
        Customer { socket, token, id }
    }

    /// The Flex channel of `customer`'s current conversation, once open.
    pub async fn channel_of(&self, customer: &CustomerId) -> String {
        wait_for("the conversation has a Flex channel", || async {
            let conversation = self.conversation_of(customer).await;
            conversation.flex_channel_sid.map(|sid| sid.to_string())
        })
        .await
    }

    /// The customer's current (else latest) conversation.
    pub async fn conversation_of(&self, customer: &CustomerId) -> ConversationRecord {
        self.store
            .latest_conversation(customer)
            .await
            .expect("the store answers")
            .expect("a conversation")
    }

    /// The emulator's channel `sid` (from the state dump).
    pub async fn channel(&self, sid: &str) -> Value {
        self.channels()
            .await
            .into_iter()
            .find(|c| c["sid"] == json!(sid))
            .unwrap_or(Value::Null)
    }

    /// Another connection (tab) of the customer with `token`.
    pub async fn tab(&self, token: &str, last_seq: i64) -> SioClient {
        SioClient::connect(&self.url, json!({ "token": token, "lastSeq": last_seq }))
            .await
            .expect("token connect")
    }

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
        response.json().await.expect("JSON")
    }

    pub async fn state(&self) -> Value {
        self.emulator_get("/_emulator/state").await
    }

    /// Injects an HTTP fault into the emulator.
    pub async fn fault(&self, fault: Value) {
        self.emulator_post("/_emulator/faults/http", fault).await;
    }

    /// The emulator's chat channels whose Flex identity is `identity`-like
    /// (created for one customer), from the state dump.
    pub async fn channels(&self) -> Vec<Value> {
        self.state().await["chat"]["channels"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Bodies of the non-agent messages in `channel` (what customers sent).
    pub fn customer_bodies(channel: &Value) -> Vec<String> {
        channel["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| {
                m["from"]
                    .as_str()
                    .is_some_and(|from| from.starts_with("flexbridge_"))
            })
            .filter_map(|m| m["body"].as_str().map(str::to_owned))
            .collect()
    }

    /// The first pending reservation of `agent` (any agent when `None`),
    /// waiting for one.
    pub async fn pending_work(&self, agent: Option<&str>) -> Work {
        wait_for("an agent gets a reservation", || async {
            let agents = match agent {
                Some(agent) => vec![agent.to_owned()],
                None => self
                    .emulator_get("/_emulator/agents")
                    .await
                    .as_array()?
                    .iter()
                    .filter_map(|a| a["name"].as_str().map(str::to_owned))
                    .collect(),
            };
            for name in agents {
                let work = self
                    .emulator_get(&format!("/_emulator/agents/{name}"))
                    .await;
                let pending = work["work"].as_array().and_then(|items| {
                    items
                        .iter()
                        .find(|w| w["reservation"]["reservation_status"] == json!("pending"))
                        .cloned()
                });
                if let Some(w) = pending {
                    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                    return Some(Work {
                        agent: name,
                        reservation: text(&w["reservation"]["sid"]),
                        task: text(&w["task"]["sid"]),
                        channel: text(&w["channel_sid"]),
                    });
                }
            }
            None
        })
        .await
    }

    /// Accepts a pending reservation (of `agent`, or of whichever agent
    /// got one).
    pub async fn accept(&self, agent: Option<&str>) -> Work {
        let work = self.pending_work(agent).await;
        self.emulator_post(
            &format!(
                "/_emulator/agents/{}/reservations/{}/accept",
                work.agent, work.reservation
            ),
            json!({}),
        )
        .await;
        work
    }

    pub async fn agent_says(&self, agent: &str, task: &str, body: &str) {
        self.emulator_post(
            &format!("/_emulator/agents/{agent}/tasks/{task}/messages"),
            json!({ "body": body }),
        )
        .await;
    }

    pub async fn agent_ends(&self, agent: &str, task: &str) {
        self.emulator_post(
            &format!("/_emulator/agents/{agent}/tasks/{task}/end"),
            json!({}),
        )
        .await;
    }

    /// Posts a form to the bridge's Chat webhook route with `signature`.
    pub async fn post_webhook(
        &self,
        params: &[(&str, &str)],
        signature: Option<&str>,
    ) -> reqwest::StatusCode {
        let mut request = self
            .http
            .post(format!("{}/webhooks/chat", self.url))
            .form(params);
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Signature", signature);
        }
        request.send().await.expect("the bridge answers").status()
    }

    /// The signature Twilio (here: the emulator's token) puts on `params`.
    pub fn sign(&self, params: &[(&str, &str)]) -> String {
        twilio_signature::RequestValidator::new(&self.auth_token)
            .sign(&format!("{}/webhooks/chat", self.url), params)
    }
}

/// Polls `check` until it gives a value; fails (rather than hangs) after 20 s.
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Polls `check` until it holds; fails (rather than hangs) after 20 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_for(what, || {
        let fut = check();
        async move { fut.await.then_some(()) }
    })
    .await;
}
