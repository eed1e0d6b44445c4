//! The emulator as the benchmark uses it: its control API (state, agents,
//! accept, agent messages; docs/architecture.md §3.4) and an observer of its
//! event stream (`GET /_emulator/events`) that records, for every stored
//! message (Chat or Conversations), when the benchmark saw it and the
//! emulator's own microsecond stamps.
//!
//! Two ways to time "stored in Flex":
//! - *seen*: the emulator emits `message.added` from inside the critical
//!   section that stores the message; the observer reads it on a kept-open
//!   HTTP connection and stamps it with `Instant::now()`: the store instant
//!   plus the SSE push (measured alone in scenario 4b), an upper bound.
//! - *emulator stamp*: the same event carries `received_at_us` (µs since the
//!   Unix epoch, taken when the emulator stored the message); the
//!   benchmark, on the same machine, compares it with its own wall clock.
//!
//! And one for "the emulator sent the webhook": each `webhook.delivery`
//! event carries `sent_at_us` (just before the request went to the HTTP
//! client); the observer keeps the earliest attempt of each message's
//! `onMessageSent` (chat) or `onMessageAdded` (conversations) delivery.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::cli::Backend;

/// A control-API client for one emulator.
#[derive(Debug, Clone)]
pub struct Emulator {
    http: reqwest::Client,
    pub url: String,
}

/// One reservation held by an agent, as `GET /_emulator/agents/{agent}` shows it.
#[derive(Debug, Clone)]
pub struct Work {
    pub reservation_sid: String,
    pub task_sid: String,
    pub pending: bool,
    pub customer_identity: Option<String>,
    pub customer_name: Option<String>,
}

impl Emulator {
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            url: url.trim_end_matches('/').to_owned(),
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        if !status.is_success() {
            bail!("GET {path} answered {status}");
        }
        response
            .json()
            .await
            .with_context(|| format!("reading GET {path}"))
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("POST {path} answered {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `GET /_emulator/state`.
    pub async fn state(&self) -> anyhow::Result<Value> {
        self.get("/_emulator/state").await
    }

    /// Names of every agent.
    pub async fn agent_names(&self) -> anyhow::Result<Vec<String>> {
        let agents = self.get("/_emulator/agents").await?;
        Ok(agents
            .as_array()
            .context("/_emulator/agents is not a list")?
            .iter()
            .filter_map(|a| a.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    /// The reservations an agent holds.
    pub async fn work(&self, agent: &str) -> anyhow::Result<Vec<Work>> {
        let view = self.get(&format!("/_emulator/agents/{agent}")).await?;
        let items = view
            .get("work")
            .and_then(Value::as_array)
            .context("agent view has no work list")?;
        let text = |item: &Value, pointer: &str| {
            item.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Ok(items
            .iter()
            .filter_map(|item| {
                Some(Work {
                    reservation_sid: text(item, "/reservation/sid")?,
                    task_sid: text(item, "/task/sid")?,
                    pending: text(item, "/reservation/reservation_status").as_deref()
                        == Some("pending"),
                    customer_identity: text(item, "/customer/identity"),
                    customer_name: text(item, "/customer/name"),
                })
            })
            .collect())
    }

    /// `POST /_emulator/agents/{agent}/reservations/{WR}/accept`.
    pub async fn accept(&self, agent: &str, reservation_sid: &str) -> anyhow::Result<()> {
        self.post(
            &format!("/_emulator/agents/{agent}/reservations/{reservation_sid}/accept"),
            &json!({}),
        )
        .await
        .map(drop)
    }

    /// `POST /_emulator/agents/{agent}/tasks/{WT}/messages` (an SDK message).
    pub async fn agent_says(&self, agent: &str, task_sid: &str, body: &str) -> anyhow::Result<()> {
        self.post(
            &format!("/_emulator/agents/{agent}/tasks/{task_sid}/messages"),
            &json!({ "body": body }),
        )
        .await
        .map(drop)
    }

    /// The body token of every message `backend` stores (chat channels, or
    /// conversations), with how often each occurs. Reading only that
    /// backend's messages also checks the relay spoke it.
    pub async fn stored_bodies(&self, backend: Backend) -> anyhow::Result<HashMap<String, usize>> {
        let state = self.state().await?;
        let mut counts = HashMap::new();
        let pointer = match backend {
            Backend::Chat => "/chat/channels",
            Backend::Conversations => "/conversations",
        };
        let channels = state
            .pointer(pointer)
            .and_then(Value::as_array)
            .with_context(|| format!("/_emulator/state has no {pointer}"))?;
        for channel in channels {
            for message in channel
                .get("messages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(body) = message.get("body").and_then(Value::as_str) {
                    *counts.entry(token_of(body).to_owned()).or_insert(0) += 1;
                }
            }
        }
        Ok(counts)
    }
}

/// Now on the wall clock the emulator's stamps use: µs since the Unix epoch.
pub fn unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// `to - from` of two wall-clock stamps (µs), as a latency. Two reads of
/// one clock on one machine; a step of the clock between them could make
/// it negative: counted as 0.
pub fn wall_latency(from_us: i64, to_us: i64) -> Duration {
    Duration::from_micros(to_us.saturating_sub(from_us).max(0).unsigned_abs())
}

/// A stamp of the emulator (`u64` µs) as [`unix_us`] spells it.
fn stamp(us: u64) -> i64 {
    i64::try_from(us).unwrap_or(i64::MAX)
}

/// The benchmark writes a unique token as the first word of every body.
pub fn token_of(body: &str) -> &str {
    body.split_whitespace().next().unwrap_or("")
}

/// Stamps of stored messages, by body token, as the event stream shows them.
#[derive(Debug, Default)]
struct Seen {
    /// When the observer read each `message.added` (one per store).
    stamps: HashMap<String, Vec<Instant>>,
    /// The emulator's `received_at_us` of the (first) stored message, as
    /// [`unix_us`] spells it.
    stored_us: HashMap<String, i64>,
    /// The earliest `sent_at_us` of the message's webhook deliveries, the same.
    webhook_sent_us: HashMap<String, i64>,
}

impl Seen {
    /// Records what a `message.added` or `webhook.delivery` event (`data`,
    /// read at `at`) says about a message; other events are ignored.
    fn record(&mut self, event: &str, data: &str, at: Instant) {
        match event {
            "message.added" => {
                let Some(message) = serde_json::from_str::<MessageAdded>(data)
                    .ok()
                    .and_then(|m| m.message)
                else {
                    return;
                };
                let Some(body) = message.body else {
                    return;
                };
                let token = token_of(&body).to_owned();
                if let Some(us) = message.received_at_us {
                    self.stored_us.entry(token.clone()).or_insert(stamp(us));
                }
                self.stamps.entry(token).or_default().push(at);
            }
            "webhook.delivery" => {
                let Ok(event) = serde_json::from_str::<DeliveryEvent>(data) else {
                    return;
                };
                let d = event.delivery;
                if !MESSAGE_EVENTS.contains(&d.event_type.as_str()) {
                    return;
                }
                let (Some(body), Some(sent)) = (d.params.get("Body"), d.sent_at_us.map(stamp))
                else {
                    return;
                };
                self.webhook_sent_us
                    .entry(token_of(body).to_owned())
                    .and_modify(|first| *first = (*first).min(sent))
                    .or_insert(sent);
            }
            _ => {}
        }
    }
}

/// Follows `/_emulator/events` until dropped.
#[derive(Debug)]
pub struct Observer {
    seen: Arc<Mutex<Seen>>,
    lagged: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Deserialize)]
struct MessageAdded {
    message: Option<StoredMessage>,
}

#[derive(Deserialize)]
struct StoredMessage {
    body: Option<String>,
    received_at_us: Option<u64>,
}

#[derive(Deserialize)]
struct DeliveryEvent {
    delivery: Delivery,
}

#[derive(Deserialize)]
struct Delivery {
    event_type: String,
    params: HashMap<String, String>,
    /// `None` for a dropped delivery.
    sent_at_us: Option<u64>,
}

/// The webhook events that carry a new message (chat, conversations).
const MESSAGE_EVENTS: [&str; 2] = ["onMessageSent", "onMessageAdded"];

impl Observer {
    /// Connects to the event stream and returns once its `ready` event arrived.
    pub async fn start(emulator: &Emulator) -> anyhow::Result<Observer> {
        let response = emulator
            .http
            .get(format!("{}/_emulator/events", emulator.url))
            .timeout(Duration::from_secs(24 * 3600))
            .send()
            .await
            .context("GET /_emulator/events")?;
        if !response.status().is_success() {
            bail!("GET /_emulator/events answered {}", response.status());
        }
        let seen = Arc::new(Mutex::new(Seen::default()));
        let lagged = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = oneshot::channel();
        let task = tokio::spawn(follow(response, seen.clone(), lagged.clone(), ready_tx));
        tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .context("no `ready` event from /_emulator/events")?
            .context("the event stream ended before `ready`")?;
        Ok(Observer { seen, lagged, task })
    }

    /// First sighting of each token (absent when not seen).
    pub fn first_seen(&self, token: &str) -> Option<Instant> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.stamps.get(token).and_then(|s| s.first().copied())
    }

    /// How many times the stream showed `token` stored.
    pub fn times_seen(&self, token: &str) -> usize {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.stamps.get(token).map_or(0, Vec::len)
    }

    /// When the emulator stored the message with `token` (its
    /// `received_at_us`: µs since the Unix epoch, as [`unix_us`]), once seen.
    pub fn stored_us(&self, token: &str) -> Option<i64> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.stored_us.get(token).copied()
    }

    /// When the emulator sent the (first) webhook of the message with
    /// `token` (its `sent_at_us`, as [`unix_us`]), once that delivery's
    /// event was seen.
    pub fn webhook_sent_us(&self, token: &str) -> Option<i64> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.webhook_sent_us.get(token).copied()
    }

    /// Events the emulator dropped for this subscriber (it fell behind).
    pub fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }

    /// Waits until every token was seen, or `timeout`; returns how many are missing.
    pub async fn wait_for(&self, tokens: &[String], timeout: Duration) -> usize {
        self.wait_until(tokens, timeout, |seen, t| seen.stamps.contains_key(t))
            .await
    }

    /// Waits until a webhook delivery of every token was seen (a delivery's
    /// event comes after its answer, so it trails the store), or `timeout`.
    pub async fn wait_for_webhooks(&self, tokens: &[String], timeout: Duration) -> usize {
        self.wait_until(tokens, timeout, |seen, t| {
            seen.webhook_sent_us.contains_key(t)
        })
        .await
    }

    async fn wait_until(
        &self,
        tokens: &[String],
        timeout: Duration,
        has: impl Fn(&Seen, &str) -> bool,
    ) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let missing = {
                let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
                tokens.iter().filter(|t| !has(&seen, t.as_str())).count()
            };
            if missing == 0 || Instant::now() >= deadline || self.lagged() > 0 {
                return missing;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn follow(
    mut response: reqwest::Response,
    seen: Arc<Mutex<Seen>>,
    lagged: Arc<AtomicU64>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let at = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some((event, data)) = next_sse_event(&mut buffer) {
            match event.as_str() {
                "ready" => {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                "lagged" => {
                    let missed = serde_json::from_str::<Value>(&data)
                        .ok()
                        .and_then(|v| v.get("missed").and_then(Value::as_u64))
                        .unwrap_or(1);
                    lagged.fetch_add(missed, Ordering::Relaxed);
                }
                "message.added" | "webhook.delivery" => {
                    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                    seen.record(&event, &data, at);
                }
                _ => {}
            }
        }
    }
}

/// Takes one complete SSE event (`event:` name, joined `data:` lines) off
/// the front of `buffer`; `None` until a blank line ends one.
fn next_sse_event(buffer: &mut String) -> Option<(String, String)> {
    loop {
        let normalized_end = buffer.find("\n\n")?;
        let block: String = buffer.drain(..normalized_end + 2).collect();
        let mut event = String::from("message");
        let mut data = Vec::new();
        for line in block.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(v) = line.strip_prefix("event:") {
                event = v.trim_start().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        // A block of comments only (keep-alive `:`) carries no event.
        if !data.is_empty() {
            return Some((event, data.join("\n")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_cut_at_blank_lines_and_comments_are_skipped() {
        let mut buffer = String::from(
            ":\n\nevent: ready\ndata: {\"generation\":0}\n\nevent: message.added\nid: 7\ndata: {\"a\":\ndata: 1}\n\nevent: part",
        );
        assert_eq!(
            next_sse_event(&mut buffer),
            Some(("ready".into(), "{\"generation\":0}".into()))
        );
        assert_eq!(
            next_sse_event(&mut buffer),
            Some(("message.added".into(), "{\"a\":\n1}".into()))
        );
        assert_eq!(next_sse_event(&mut buffer), None);
        assert_eq!(buffer, "event: part");
    }

    #[test]
    fn message_events_give_the_store_stamp_and_the_first_webhook_send() {
        let mut seen = Seen::default();
        let at = Instant::now();
        let added = |body: &str, us: u64| {
            json!({ "channel_sid": "CH1", "message": { "body": body, "received_at_us": us } })
                .to_string()
        };
        seen.record("message.added", &added("t-1 hi", 100), at);
        seen.record("message.added", &added("t-1 hi", 200), at);
        let delivery = |event_type: &str, body: &str, sent: Value| {
            json!({ "delivery": {
                "event_type": event_type,
                "params": { "Body": body, "EventType": event_type },
                "sent_at_us": sent,
                "answered_at_us": null,
            }})
            .to_string()
        };
        seen.record(
            "webhook.delivery",
            &delivery("onMessageAdded", "t-1 hi", json!(300)),
            at,
        );
        seen.record(
            "webhook.delivery",
            &delivery("onMessageSent", "t-1 hi", json!(250)),
            at,
        );
        seen.record(
            "webhook.delivery",
            &delivery("onMessageAdded", "t-2 x", Value::Null),
            at,
        );
        seen.record(
            "webhook.delivery",
            &delivery("onParticipantAdded", "t-3 x", json!(1)),
            at,
        );
        assert_eq!(seen.stamps["t-1"].len(), 2, "each store is counted");
        assert_eq!(seen.stored_us["t-1"], 100, "the first store's stamp");
        assert_eq!(seen.webhook_sent_us["t-1"], 250, "the earliest attempt");
        assert!(
            !seen.webhook_sent_us.contains_key("t-2"),
            "a drop sent nothing"
        );
        assert!(
            !seen.webhook_sent_us.contains_key("t-3"),
            "not a message event"
        );
    }

    #[test]
    fn wall_latencies_are_never_negative() {
        assert_eq!(wall_latency(1_000, 3_500), Duration::from_micros(2_500));
        assert_eq!(wall_latency(3_500, 1_000), Duration::ZERO);
        assert_eq!(stamp(u64::MAX), i64::MAX);
    }

    #[test]
    fn the_token_is_the_first_word_of_a_body() {
        assert_eq!(token_of("b1c2m3 hello there"), "b1c2m3");
        assert_eq!(token_of(""), "");
    }
}
