//! Integration tests: the real bridge on port 0 with a fresh database, the
//! Flex emulator in-process on port 0 (its control API plays the agents and
//! injects faults), customers over a real Socket.IO connection
//! (long-polling) or the core's API. One binary, several modules.
//!
//! Every scenario that involves Flex or the store runs against both backends and both
//! databases: [`on_both_backends!`] turns `async fn scenario(backend:
//! BackendKind)` into the tests `scenario::chat` and
//! `scenario::conversations` (on SQLite) and `scenario::chat_on_postgres`
//! and `scenario::conversations_on_postgres`; [`on_both_databases!`] turns
//! `async fn scenario()` into `scenario::sqlite` and `scenario::postgres`.
//! The database reaches [`spawn_app`] through the task-local [`DATABASE`]
//! (SQLite when unset), so a scenario reads the same on both. PostgreSQL
//! is a fresh database on the run's throwaway server (`testbed`). The
//! helpers in [`flex`] read the emulator in the backend's terms.

mod attachments;
mod conversations;
mod conversations_only;
mod delivery;
mod doctor;
mod ending;
mod flex;
mod http;
mod metrics;
mod migration;
mod protocol;
mod reliability;
mod scale;
mod socketio;
mod webchat;
mod webhooks;
mod websocket;

use std::time::{Duration, Instant};

use flex_emulator::EmulatorConfig;
use flexbridge::config::{PublicBaseUrl, Settings};
use flexbridge::core::ids::CustomerId;
use flexbridge::core::model::ConversationRecord;
use flexbridge::dev::{DevFlex, RunningEmulator, bridge_settings, start_emulator};
use flexbridge::flex::BackendKind;
use flexbridge::flex::conversations::RoutingKind;
use flexbridge::startup::Application;
use flexbridge::store::Store;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

pub use flex::Work;
pub use socketio::SioClient;

/// Runs each `async fn scenario(backend: BackendKind)` once per backend
/// and database, as the tests `scenario::chat`, `scenario::conversations`
/// (SQLite), `scenario::chat_on_postgres` and
/// `scenario::conversations_on_postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                use flexbridge::flex::BackendKind;
                use $crate::Database;

                #[tokio::test]
                async fn chat() {
                    Database::Sqlite.run(super::$scenario(BackendKind::Chat)).await;
                }

                #[tokio::test]
                async fn conversations() {
                    Database::Sqlite.run(super::$scenario(BackendKind::Conversations)).await;
                }

                #[tokio::test]
                async fn chat_on_postgres() {
                    Database::Postgres.run(super::$scenario(BackendKind::Chat)).await;
                }

                #[tokio::test]
                async fn conversations_on_postgres() {
                    Database::Postgres.run(super::$scenario(BackendKind::Conversations)).await;
                }
            }
        )+
    };
}

/// Runs each `async fn scenario()` once per database, as the tests
/// `scenario::sqlite` and `scenario::postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test]
                async fn sqlite() {
                    $crate::Database::Sqlite.run(super::$scenario()).await;
                }

                #[tokio::test]
                async fn postgres() {
                    $crate::Database::Postgres.run(super::$scenario()).await;
                }
            }
        )+
    };
}

/// Which database the bridges of a test run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    /// The database of the running scenario (set by the macros above).
    pub static DATABASE: Database;
}

impl Database {
    /// Runs `scenario` with this database as [`DATABASE`].
    pub async fn run<F: std::future::Future<Output = ()>>(self, scenario: F) {
        DATABASE.scope(self, scenario).await;
    }

    /// The running scenario's database (SQLite outside the macros).
    pub fn current() -> Self {
        DATABASE
            .try_with(|database| *database)
            .unwrap_or(Self::Sqlite)
    }

    /// A fresh, empty database of this kind.
    pub async fn fresh(self) -> FreshDatabase {
        match self {
            Self::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("bridge.db").display());
                FreshDatabase {
                    url,
                    _keep: Keep::Dir { _dir: dir },
                }
            }
            Self::Postgres => {
                let database = tokio::task::spawn_blocking(testbed::postgres::shared_database)
                    .await
                    .expect("joined")
                    .expect("a database on the test PostgreSQL server");
                FreshDatabase {
                    url: database.url().to_owned(),
                    _keep: Keep::Postgres {
                        _database: database,
                    },
                }
            }
        }
    }
}

/// A test's database: removed when dropped.
pub struct FreshDatabase {
    pub url: String,
    _keep: Keep,
}

/// What keeps a test's database until the test ends (dropped, it goes).
enum Keep {
    Dir {
        _dir: tempfile::TempDir,
    },
    Postgres {
        _database: testbed::postgres::TestDatabase,
    },
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
pub struct RunningBridge {
    /// Dropping (or sending) it crashes the bridge.
    crash: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningBridge {
    pub async fn start(settings: Settings, listener: std::net::TcpListener) -> Self {
        match Self::try_start(settings, listener).await {
            Ok(bridge) => bridge,
            Err(error) => panic!("the bridge builds: {error}"),
        }
    }

    /// Starts a bridge, or says why it would not build.
    pub async fn try_start(
        settings: Settings,
        listener: std::net::TcpListener,
    ) -> Result<Self, String> {
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), String>>();
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
                let app = match Application::build_with_listener(settings, listener).await {
                    Ok(app) => app,
                    Err(error) => {
                        let _ = ready_tx.send(Err(format!("{error:#}")));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                tokio::select! {
                    _ = app.run_until_stopped(CancellationToken::new()) => {}
                    _ = crashed => {}
                }
            });
            runtime.shutdown_background();
        });
        let started = ready_rx.await.expect("the bridge's thread answers");
        let mut bridge = Self {
            crash: Some(crash),
            thread: Some(thread),
        };
        match started {
            Ok(()) => Ok(bridge),
            Err(error) => {
                bridge.crash().await;
                Err(error)
            }
        }
    }

    /// Drops every task of the bridge, without any shutdown work.
    pub async fn crash(&mut self) {
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
    /// The backend new conversations open with.
    pub backend: BackendKind,
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
    _database: FreshDatabase,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.emulator_shutdown.cancel();
    }
}

/// Starts the emulator and a bridge with `backend` on port 0 with a fresh
/// database.
pub async fn spawn_app(backend: BackendKind) -> TestApp {
    spawn_app_with(
        DevFlex {
            backend,
            routing: RoutingKind::Interactions,
        },
        |_| {},
    )
    .await
}

/// [`spawn_app`] with `flex` and the settings changed by `adjust`.
pub async fn spawn_app_with(flex: DevFlex, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    flexbridge::telemetry::init_logging();
    let database = Database::current().fresh().await;
    let database_url = database.url.clone();
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
    let mut settings = bridge_settings(&emulator, addr, &database_url, flex)
        .await
        .expect("provisioning the emulator");
    settings.outbox.sweep_interval = Duration::from_millis(200);
    settings.outbox.base_backoff = Duration::from_millis(50);
    settings.outbox.max_backoff = Duration::from_millis(500);
    adjust(&mut settings);
    let bridge = RunningBridge::start(settings.clone(), listener).await;
    let store = Store::connect(&settings.database_url)
        .await
        .expect("the database opens");
    TestApp {
        backend: flex.backend,
        url: format!("http://{addr}"),
        emulator_url: format!("http://{}", emulator.addr),
        http: reqwest::Client::new(),
        store,
        settings,
        auth_token: emulator.emulator.credentials().auth_token.clone(),
        emulator,
        bridge: Some(bridge),
        emulator_shutdown,
        _database: database,
    }
}

impl TestApp {
    /// Kills the bridge (like SIGKILL: nothing in flight gets to finish),
    /// then starts it again on the same port and database.
    pub async fn crash_and_restart(&mut self) {
        self.crash().await;
        self.restart().await;
    }

    /// Starts the (crashed) bridge again on the same port and database,
    /// with `self.settings` as they are now.
    pub async fn restart(&mut self) {
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

    /// Stops the emulator and starts a fresh one made from `config` (a
    /// Flex account that knows nothing of the old one's channels), with
    /// the bridge's settings pointed at it; the bridge, when it runs,
    /// keeps the old settings until [`TestApp::restart`].
    pub async fn replace_emulator(&mut self, config: EmulatorConfig) {
        self.emulator_shutdown.cancel();
        self.emulator_shutdown = CancellationToken::new();
        self.emulator = start_emulator("127.0.0.1", 0, config, &self.emulator_shutdown)
            .await
            .expect("the emulator starts");
        self.emulator_url = format!("http://{}", self.emulator.addr);
        self.auth_token = self.emulator.emulator.credentials().auth_token.clone();
        let addr = std::net::SocketAddr::new([127, 0, 0, 1].into(), self.settings.port);
        let flex = DevFlex {
            backend: self.backend,
            routing: RoutingKind::Interactions,
        };
        let fresh = bridge_settings(&self.emulator, addr, &self.settings.database_url, flex)
            .await
            .expect("provisioning the new emulator");
        self.settings.twilio = fresh.twilio;
        self.settings.auth_token = fresh.auth_token;
        self.settings.flex = fresh.flex;
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
            conversation.flex_channel.map(|sid| sid.to_string())
        })
        .await
    }

    /// The customer's current (else latest) conversation.
    pub async fn conversation_of(&self, customer: &CustomerId) -> ConversationRecord {
        self.store
            .conversations()
            .latest_of(customer)
            .await
            .expect("the store answers")
            .expect("a conversation")
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
}

/// Sends a message and waits for its ack, which must be `ok`.
pub async fn say(socket: &mut SioClient, id: &str, body: &str) -> Value {
    let ack = socket
        .emit_with_ack("message", json!({"clientMessageId": id, "body": body}))
        .await;
    assert!(ack["ok"].is_object(), "{ack}");
    ack["ok"].clone()
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
