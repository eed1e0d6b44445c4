//! A minimal Socket.IO v5 client over Engine.IO v4 long-polling, enough to
//! drive the bridge's customer side from Rust tests: connect with `auth`,
//! emit with an ack, and read the events the server sends. (The official
//! `socket.io-client` scenarios live in `tests/e2e/`.)

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// One Socket.IO packet from the server.
#[derive(Debug, Clone)]
enum Incoming {
    Connect,
    ConnectError(String),
    Event(String, Value),
    Ack(u64, Value),
    Closed,
}

pub struct SioClient {
    http: reqwest::Client,
    session_url: String,
    rx: mpsc::UnboundedReceiver<Incoming>,
    events: VecDeque<(String, Value)>,
    next_ack: u64,
    poller: JoinHandle<()>,
}

impl Drop for SioClient {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

const WAIT: Duration = Duration::from_secs(20);
const RECORD_SEPARATOR: char = '\u{1e}';

impl SioClient {
    /// Connects to namespace `/` with `auth`; `Err` carries the
    /// `connect_error` message.
    pub async fn connect(base: &str, auth: Value) -> Result<Self, String> {
        let http = reqwest::Client::new();
        let open = http
            .get(format!("{base}/socket.io/?EIO=4&transport=polling"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        let handshake: Value = serde_json::from_str(open.trim_start_matches('0'))
            .map_err(|e| format!("handshake {open:?}: {e}"))?;
        let sid = handshake["sid"].as_str().ok_or("no sid")?.to_owned();
        let session_url = format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}");
        post(&http, &session_url, format!("40{auth}")).await?;

        let (tx, rx) = mpsc::unbounded_channel();
        let poller = tokio::spawn(poll(http.clone(), session_url.clone(), tx));
        let mut client = Self {
            http,
            session_url,
            rx,
            events: VecDeque::new(),
            next_ack: 0,
            poller,
        };
        loop {
            match client.recv().await? {
                Incoming::Connect => return Ok(client),
                Incoming::ConnectError(message) => return Err(message),
                Incoming::Event(name, data) => client.events.push_back((name, data)),
                other => return Err(format!("unexpected {other:?} while connecting")),
            }
        }
    }

    async fn recv(&mut self) -> Result<Incoming, String> {
        match tokio::time::timeout(WAIT, self.rx.recv()).await {
            Ok(Some(Incoming::Closed)) | Ok(None) => Err("the connection closed".into()),
            Ok(Some(packet)) => Ok(packet),
            Err(_) => Err("timed out waiting for the server".into()),
        }
    }

    /// Leaves the namespace (a Socket.IO disconnect packet), as a client
    /// that closes its tab cleanly does.
    pub async fn disconnect(self) {
        post(&self.http, &self.session_url, "41".to_owned())
            .await
            .expect("disconnect");
    }

    /// Emits `event` with `data` and waits for the ack's first argument.
    pub async fn emit_with_ack(&mut self, event: &str, data: Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        let packet = serde_json::json!([event, data]);
        post(&self.http, &self.session_url, format!("42{id}{packet}"))
            .await
            .expect("emit");
        loop {
            match self.recv().await.expect("an ack") {
                Incoming::Ack(ack, value) if ack == id => return value,
                Incoming::Event(name, data) => self.events.push_back((name, data)),
                _ => {}
            }
        }
    }

    /// The next `event` the server sent (earlier other events stay queued).
    pub async fn next_event(&mut self, event: &str) -> Value {
        self.next_event_where(event, |_| true).await
    }

    /// The next `event` whose data satisfies `wanted` (others stay queued).
    pub async fn next_event_where(
        &mut self,
        event: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(at) = self
            .events
            .iter()
            .position(|(name, data)| name == event && wanted(data))
        {
            return self.events.remove(at).expect("present").1;
        }
        loop {
            match self.recv().await {
                Ok(Incoming::Event(name, data)) if name == event && wanted(&data) => return data,
                Ok(Incoming::Event(name, data)) => self.events.push_back((name, data)),
                Ok(_) => {}
                Err(e) => panic!("waiting for `{event}`: {e}"),
            }
        }
    }

    /// Every event received so far, without waiting.
    pub fn drain_events(&mut self) -> Vec<(String, Value)> {
        while let Ok(packet) = self.rx.try_recv() {
            if let Incoming::Event(name, data) = packet {
                self.events.push_back((name, data));
            }
        }
        self.events.drain(..).collect()
    }
}

async fn post(http: &reqwest::Client, url: &str, body: String) -> Result<(), String> {
    let response = http
        .post(url)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("POST answered {}", response.status()))
    }
}

async fn poll(http: reqwest::Client, url: String, tx: mpsc::UnboundedSender<Incoming>) {
    loop {
        let body = match http.get(&url).send().await {
            Ok(response) if response.status().is_success() => match response.text().await {
                Ok(body) => body,
                Err(_) => break,
            },
            _ => break,
        };
        for packet in body.split(RECORD_SEPARATOR) {
            match packet.chars().next() {
                Some('2') => {
                    let _ = post(&http, &url, "3".into()).await;
                }
                Some('4') => {
                    if let Some(incoming) = parse_socket_packet(&packet[1..]) {
                        let _ = tx.send(incoming);
                    }
                }
                Some('1') => {
                    let _ = tx.send(Incoming::Closed);
                    return;
                }
                _ => {}
            }
        }
    }
    let _ = tx.send(Incoming::Closed);
}

fn parse_socket_packet(packet: &str) -> Option<Incoming> {
    let kind = packet.chars().next()?;
    let rest = &packet[1..];
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let (id, json) = rest.split_at(digits);
    match kind {
        '0' => Some(Incoming::Connect),
        '1' => Some(Incoming::Closed),
        '2' => {
            let value: Value = serde_json::from_str(json).ok()?;
            let name = value.get(0)?.as_str()?.to_owned();
            Some(Incoming::Event(
                name,
                value.get(1).cloned().unwrap_or(Value::Null),
            ))
        }
        '3' => {
            let value: Value = serde_json::from_str(json).ok()?;
            Some(Incoming::Ack(id.parse().ok()?, value.get(0).cloned()?))
        }
        '4' => {
            let value: Value = serde_json::from_str(json).ok()?;
            Some(Incoming::ConnectError(
                value["message"].as_str()?.to_owned(),
            ))
        }
        _ => None,
    }
}
