//! The emulator as the benchmark uses it: its control API (state, agents,
//! accept, agent messages; docs/architecture.md §3.4) and an observer of its
//! event stream (`GET /_emulator/events`) that stamps every stored chat
//! message with the instant the benchmark saw it.
//!
//! The observer is how "emit → stored in Flex" is timed on one clock: the
//! emulator emits `message.added` from inside the critical section that
//! stores the message, the observer reads it on a kept-open HTTP connection
//! and stamps it with `Instant::now()`. The stamp is therefore the store
//! instant plus the SSE push (measured alone in the emulator-capacity
//! scenario), an upper bound, never a lower one.
//!
//! The emulator also says when it created each message, to the millisecond,
//! in the `DateCreated` of the `onMessageSent` webhook it sends; the observer
//! reads it from the `webhook.delivery` events of the same stream. That
//! stamp is on the emulator's side of the SSE push (a second measure of the
//! same thing, with 1 ms resolution and the wall clock as common clock).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

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

    /// Every chat message body in the state, with how often each occurs.
    pub async fn stored_bodies(&self) -> anyhow::Result<HashMap<String, usize>> {
        let state = self.state().await?;
        let mut counts = HashMap::new();
        let channels = state
            .pointer("/chat/channels")
            .and_then(Value::as_array)
            .context("/_emulator/state has no chat.channels")?;
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

/// The benchmark writes a unique token as the first word of every body.
pub fn token_of(body: &str) -> &str {
    body.split_whitespace().next().unwrap_or("")
}

/// Stamps of stored messages, by body token, as the event stream shows them.
#[derive(Debug, Default)]
struct Seen {
    stamps: HashMap<String, Vec<Instant>>,
    /// The emulator's own creation time of each message (unix ms), read from
    /// the `DateCreated` of its `onMessageSent` webhook delivery.
    created_ms: HashMap<String, i64>,
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
}

#[derive(Deserialize)]
struct DeliveryEvent {
    delivery: Delivery,
}

#[derive(Deserialize)]
struct Delivery {
    event_type: String,
    params: HashMap<String, String>,
}

/// Unix milliseconds of an RFC 3339 timestamp (`2026-11-25T17:20:00.123Z`).
pub fn unix_ms(timestamp: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
        .ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

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

    /// The emulator's creation time of the message with `token` (unix ms,
    /// whole milliseconds), when its `onMessageSent` delivery was seen.
    pub fn created_ms(&self, token: &str) -> Option<i64> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.created_ms.get(token).copied()
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

    /// Waits until the emulator's creation stamp of every token arrived (its
    /// webhook deliveries may trail the stores), or `timeout`.
    pub async fn wait_for_stamps(&self, tokens: &[String], timeout: Duration) -> usize {
        self.wait_until(tokens, timeout, |seen, t| seen.created_ms.contains_key(t))
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
                "message.added" => {
                    let body = serde_json::from_str::<MessageAdded>(&data)
                        .ok()
                        .and_then(|m| m.message)
                        .and_then(|m| m.body);
                    if let Some(body) = body {
                        let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                        seen.stamps
                            .entry(token_of(&body).to_owned())
                            .or_default()
                            .push(at);
                    }
                }
                "webhook.delivery" => {
                    let Ok(event) = serde_json::from_str::<DeliveryEvent>(&data) else {
                        continue;
                    };
                    let d = event.delivery;
                    if d.event_type != "onMessageSent" {
                        continue;
                    }
                    let (Some(body), Some(created)) =
                        (d.params.get("Body"), d.params.get("DateCreated"))
                    else {
                        continue;
                    };
                    if let Some(ms) = unix_ms(created) {
                        let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                        seen.created_ms
                            .entry(token_of(body).to_owned())
                            .or_insert(ms);
                    }
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
    fn webhook_timestamps_become_unix_milliseconds() {
        assert_eq!(unix_ms("1970-01-01T00:00:01.234Z"), Some(1234));
        assert_eq!(unix_ms("2022-01-18T10:33:50.399Z"), Some(1_642_502_030_399));
        assert_eq!(unix_ms("not a date"), None);
    }

    #[test]
    fn the_token_is_the_first_word_of_a_body() {
        assert_eq!(token_of("b1c2m3 hello there"), "b1c2m3");
        assert_eq!(token_of(""), "");
    }
}
