//! Test harness: the real emulator on port 0 (in process), a reqwest client
//! speaking Basic auth, a local webhook receiver that records what Twilio
//! would POST, and `eventually` for conditions reached asynchronously
//! (a generous bound, never a speed assertion).
//!
//! - `chat.rs`          Flex Flows, Flex and chat channels, channel webhooks
//! - `conversations.rs` conversations, participants, scoped webhooks, interactions
//! - `tasks.rs`         tasks, reservations, agents acting through the control API
//! - `events.rs`        the SSE stream read event by event
//! - `fixtures.rs`      resources every REST route can be pointed at

#![allow(dead_code)]

pub mod chat;
pub mod conversations;
pub mod events;
pub mod fixtures;
pub mod tasks;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use flex_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long `eventually` waits before failing the test.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Microseconds since the Unix epoch, now: the clock the emulator's
/// `received_at_us` / `sent_at_us` / `answered_at_us` are read on.
pub fn now_us() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    u64::try_from(since_epoch.as_micros()).expect("µs fit in u64")
}

pub struct TestEmulator {
    pub url: String,
    pub emulator: Emulator,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for TestEmulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An answer: status, headers and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("reading the body");
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{status}: body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Self {
            status,
            headers,
            json,
        }
    }

    /// The body's `sid`.
    pub fn sid(&self) -> String {
        self.json["sid"]
            .as_str()
            .unwrap_or_else(|| panic!("no sid in {}", self.json))
            .to_owned()
    }

    /// `field` of every item of a list page: the array `meta.key` names.
    pub fn listed(&self, field: &str) -> Vec<String> {
        assert_eq!(self.status, 200, "{}", self.json);
        let key = self.json["meta"]["key"]
            .as_str()
            .unwrap_or_else(|| panic!("no meta.key in {}", self.json));
        self.json[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key} array in {}", self.json))
            .iter()
            .map(|item| item[field].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Asserts Twilio's error shape and returns it.
    pub fn twilio_error(&self, status: u16, code: u64) -> &Value {
        assert_eq!(self.status, status, "{}", self.json);
        assert_eq!(self.json["status"], status, "{}", self.json);
        assert_eq!(self.json["code"], code, "{}", self.json);
        assert!(self.json["message"].is_string(), "{}", self.json);
        assert_eq!(
            self.json["more_info"],
            format!("https://www.twilio.com/docs/errors/{code}"),
            "{}",
            self.json
        );
        &self.json
    }

    /// Asserts a 400 (code 20001) whose message names `name`, as Twilio's
    /// `Missing required parameter X` / `Invalid parameter X: …` do.
    pub fn refused_naming(&self, name: &str) {
        let message = self.twilio_error(400, 20001)["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains(name), "{message:?} should name {name}");
    }
}

impl TestEmulator {
    pub async fn start() -> Self {
        Self::with(EmulatorConfig::from_seed(1)).await
    }

    pub async fn with(config: EmulatorConfig) -> Self {
        let emulator = Emulator::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let shutdown = CancellationToken::new();
        tokio::spawn(emulator.run(listener, shutdown.clone()));
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        Self {
            url,
            emulator,
            http,
            shutdown,
        }
    }

    pub fn bootstrap(&self) -> &flex_emulator::Bootstrap {
        self.emulator.bootstrap()
    }

    pub fn service(&self) -> String {
        self.bootstrap().chat_service_sid.clone()
    }

    fn authed(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let credentials = self.emulator.credentials();
        builder.basic_auth(&credentials.account_sid, Some(&credentials.auth_token))
    }

    pub async fn get(&self, path: &str) -> Answer {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.url)
        };
        Answer::read(self.authed(self.http.get(url)).send().await.expect("GET")).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let request = self
            .authed(self.http.post(format!("{}{path}", self.url)))
            .form(form);
        Answer::read(request.send().await.expect("POST")).await
    }

    /// A POST with `X-Twilio-Webhook-Enabled: true`.
    pub async fn post_hooked(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let request = self
            .authed(self.http.post(format!("{}{path}", self.url)))
            .header("X-Twilio-Webhook-Enabled", "true")
            .form(form);
        Answer::read(request.send().await.expect("POST")).await
    }

    /// A DELETE with `X-Twilio-Webhook-Enabled: true`.
    pub async fn delete_hooked(&self, path: &str) -> Answer {
        let request = self
            .authed(self.http.delete(format!("{}{path}", self.url)))
            .header("X-Twilio-Webhook-Enabled", "true");
        Answer::read(request.send().await.expect("DELETE")).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        Answer::read(
            self.authed(self.http.delete(format!("{}{path}", self.url)))
                .send()
                .await
                .expect("DELETE"),
        )
        .await
    }

    /// A control-API call (`/_emulator/...`, JSON, no auth).
    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}/_emulator{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        Answer::read(request.send().await.expect("control call")).await
    }

    pub async fn state(&self) -> Value {
        self.control(reqwest::Method::GET, "/state", None)
            .await
            .json
    }
}

/// A resource's `attributes` (JSON text, as Twilio answers them), parsed.
pub fn attributes(resource: &Value) -> Value {
    let text = resource["attributes"]
        .as_str()
        .unwrap_or_else(|| panic!("no attributes in {resource}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("attributes are not JSON ({e}): {text}"))
}

/// Polls `check` until it yields `Some`, failing the test after [`PATIENCE`].
pub async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One request the webhook receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// The full URL called (what Twilio signs).
    pub url: String,
    pub signature: Option<String>,
    pub idempotency_token: Option<String>,
    pub content_type: Option<String>,
    pub params: Vec<(String, String)>,
    /// When the receiver got it ([`now_us`]).
    pub received_at_us: u64,
}

impl Received {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct ReceiverState {
    requests: Vec<Received>,
    /// Statuses to answer next, in order (then 200).
    plan: VecDeque<u16>,
}

/// A local HTTP server standing in for the bridge's webhook endpoint.
pub struct Receiver {
    pub url: String,
    base: String,
    state: Arc<Mutex<ReceiverState>>,
    shutdown: CancellationToken,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn record(
    State(state): State<(Arc<Mutex<ReceiverState>>, String)>,
    uri: Uri,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let received_at_us = now_us();
    let (state, base) = state;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut params: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    if method == axum::http::Method::GET {
        params = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    }
    let received = Received {
        method: method.to_string(),
        url: format!("{base}{uri}"),
        signature: header("X-Twilio-Signature"),
        idempotency_token: header("I-Twilio-Idempotency-Token"),
        content_type: header("content-type"),
        params,
        received_at_us,
    };
    let mut state = state.lock().unwrap();
    state.requests.push(received);
    StatusCode::from_u16(state.plan.pop_front().unwrap_or(200)).unwrap()
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let router = axum::Router::new()
            .fallback(record)
            .with_state((state.clone(), base.clone()));
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        Self {
            url: format!("{base}/flex/webhook?tenant=t1"),
            base,
            state,
            shutdown,
        }
    }

    /// Answer these statuses to the next requests (then 200 again).
    pub fn answer_next(&self, statuses: &[u16]) {
        self.state.lock().unwrap().plan.extend(statuses);
    }

    pub fn requests(&self) -> Vec<Received> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests of one event type.
    pub fn events(&self, event_type: &str) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.param("EventType") == Some(event_type))
            .collect()
    }

    /// Waits for a request matching `predicate`.
    pub async fn wait_for(&self, predicate: impl Fn(&Received) -> bool) -> Received {
        eventually(|| async { self.requests().into_iter().find(|r| predicate(r)) }).await
    }

    /// Waits until `count` requests match `predicate`.
    pub async fn wait_for_count(
        &self,
        count: usize,
        predicate: impl Fn(&Received) -> bool,
    ) -> Vec<Received> {
        eventually(|| async {
            let found: Vec<Received> = self
                .requests()
                .into_iter()
                .filter(|r| predicate(r))
                .collect();
            (found.len() >= count).then_some(found)
        })
        .await
    }

    pub fn base(&self) -> &str {
        &self.base
    }
}

/// True when the request's `X-Twilio-Signature` validates for `token`.
pub fn signed_with(request: &Received, token: &str) -> bool {
    let validator = twilio_signature::RequestValidator::new(token);
    let Some(signature) = request.signature.as_deref() else {
        return false;
    };
    if request.method == "GET" {
        validator
            .validate_form::<&str, &str>(&request.url, &[], signature)
            .is_ok()
    } else {
        validator
            .validate_form(&request.url, &request.params, signature)
            .is_ok()
    }
}
