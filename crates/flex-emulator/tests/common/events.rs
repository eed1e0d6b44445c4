//! `GET /_emulator/events` read as a client reads it: one [`SseEvent`] per
//! Server-Sent Event, with its type and its JSON data.

use serde_json::Value;

use super::{PATIENCE, TestEmulator};

/// One event of the stream.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// The `event:` line (`message.added`, `lagged`, …).
    pub kind: String,
    /// The `data:` line, parsed.
    pub data: Value,
}

/// An open subscription to the emulator's event stream.
pub struct EventStream {
    response: reqwest::Response,
    /// Text read but not yet split into events.
    pending: String,
}

impl EventStream {
    /// Subscribes and reads up to the stream's opening `ready` event.
    pub async fn open(emu: &TestEmulator) -> Self {
        let response = emu
            .http
            .get(format!("{}/_emulator/events", emu.url))
            .send()
            .await
            .expect("subscribing to the events");
        let content_type = response.headers()["content-type"].to_str().unwrap_or("");
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        let mut stream = Self {
            response,
            pending: String::new(),
        };
        let first = stream.next().await;
        assert_eq!(first.kind, "ready", "{first:?}");
        stream
    }

    /// The next event, failing the test after [`PATIENCE`].
    pub async fn next(&mut self) -> SseEvent {
        tokio::time::timeout(PATIENCE, self.read_event())
            .await
            .unwrap_or_else(|_| panic!("no event within {PATIENCE:?}; unread: {}", self.pending))
    }

    /// Reads events until one of `kind` satisfies `wanted`; returns it and
    /// every event read on the way (itself included).
    pub async fn until(
        &mut self,
        kind: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> (SseEvent, Vec<SseEvent>) {
        let mut seen = Vec::new();
        loop {
            let event = self.next().await;
            seen.push(event.clone());
            if event.kind == kind && wanted(&event.data) {
                return (event, seen);
            }
        }
    }

    /// Reads events until each of `kinds` has come at least once; returns
    /// every event read.
    pub async fn until_every(&mut self, kinds: &[&str]) -> Vec<SseEvent> {
        let mut seen: Vec<SseEvent> = Vec::new();
        while let Some(missing) = kinds.iter().find(|k| seen.iter().all(|e| e.kind != **k)) {
            let read = tokio::time::timeout(PATIENCE, self.read_event()).await;
            let event = read.unwrap_or_else(|_| {
                let kinds: Vec<&str> = seen.iter().map(|e| e.kind.as_str()).collect();
                panic!("no {missing} event within {PATIENCE:?}; read {kinds:?}")
            });
            seen.push(event);
        }
        seen
    }

    async fn read_event(&mut self) -> SseEvent {
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return event;
                }
                continue;
            }
            let chunk = self
                .response
                .chunk()
                .await
                .expect("reading the events")
                .expect("the event stream ended");
            self.pending.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// One `event:` / `data:` block; `None` for a keep-alive comment.
fn parse(block: &str) -> Option<SseEvent> {
    let mut kind = None;
    let mut data = String::new();
    for line in block.lines() {
        let field = |name: &str| {
            line.strip_prefix(name)
                .map(|rest| rest.strip_prefix(' ').unwrap_or(rest).to_owned())
        };
        if let Some(value) = field("event:") {
            kind = Some(value);
        } else if let Some(value) = field("data:") {
            data.push_str(&value);
        }
    }
    let kind = kind?;
    let data = serde_json::from_str(&data)
        .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {block}"));
    Some(SseEvent { kind, data })
}
