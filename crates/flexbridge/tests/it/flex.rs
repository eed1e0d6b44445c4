//! The emulator, read and driven in the terms of the app's backend: its
//! "channels" are Chat channels or conversations, a customer message's
//! author is `from` or `author`, each backend has its own REST paths (for
//! fault injection), webhook route and webhook forms. Agents act through
//! the control API, whichever backend runs.

use flexbridge::flex::BackendKind;
use serde_json::{Value, json};

use crate::{TestApp, wait_for};

/// A reservation an agent got: who, and for which task and channel.
pub struct Work {
    pub agent: String,
    pub reservation: String,
    pub task: String,
    pub channel: String,
}

/// What differs between the backends, as the tests see it.
pub struct Flavour {
    /// The REST path (fault pattern) that creates a channel/conversation.
    pub open_path: &'static str,
    /// The REST path (fault pattern) of a customer message.
    pub messages_path: &'static str,
    /// The bridge's webhook route.
    pub webhook_path: &'static str,
    /// The webhook event of a message.
    pub message_event: &'static str,
    /// How many webhooks of the bridge a channel/conversation has.
    pub bridge_webhooks: usize,
}

pub fn flavour(backend: BackendKind) -> Flavour {
    match backend {
        BackendKind::Chat => Flavour {
            open_path: "/v1/Channels",
            messages_path: "/v2/Services/*/Channels/*/Messages",
            webhook_path: "/webhooks/chat",
            message_event: "onMessageSent",
            bridge_webhooks: 2,
        },
        BackendKind::Conversations => Flavour {
            open_path: "/v1/Services/*/Conversations",
            messages_path: "/v1/Services/*/Conversations/*/Messages",
            webhook_path: "/webhooks/conversations",
            message_event: "onMessageAdded",
            bridge_webhooks: 1,
        },
    }
}

impl TestApp {
    /// What differs in this app's backend.
    pub fn flavour(&self) -> Flavour {
        flavour(self.backend)
    }

    /// The emulator's channels of `backend` (Chat channels, or
    /// conversations), each with its messages and webhooks.
    pub async fn channels_of(&self, backend: BackendKind) -> Vec<Value> {
        let state = self.state().await;
        let list = match backend {
            BackendKind::Chat => &state["chat"]["channels"],
            BackendKind::Conversations => &state["conversations"],
        };
        list.as_array().cloned().unwrap_or_default()
    }

    /// The emulator's channels of this app's backend.
    pub async fn channels(&self) -> Vec<Value> {
        self.channels_of(self.backend).await
    }

    /// The emulator's channel or conversation `sid`.
    pub async fn channel(&self, sid: &str) -> Value {
        for backend in BackendKind::ALL {
            if let Some(found) = self
                .channels_of(backend)
                .await
                .into_iter()
                .find(|c| c["sid"] == json!(sid))
            {
                return found;
            }
        }
        Value::Null
    }

    /// Bodies of the customers' messages in `channel` (either backend).
    pub fn customer_bodies(channel: &Value) -> Vec<String> {
        channel["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| {
                m["from"]
                    .as_str()
                    .or_else(|| m["author"].as_str())
                    .is_some_and(|author| author.starts_with("flexbridge_"))
            })
            .filter_map(|m| m["body"].as_str().map(str::to_owned))
            .collect()
    }

    /// The URLs of the bridge's webhooks on `channel`.
    pub fn bridge_webhook_urls(&self, channel: &Value) -> Vec<String> {
        let path = self.flavour().webhook_path;
        channel["webhooks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|w| w["configuration"]["url"].as_str())
            .filter(|url| url.ends_with(path))
            .map(str::to_owned)
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

    /// The form of an agent's message webhook in this app's backend.
    pub fn agent_message_form(
        &self,
        channel: &str,
        message_sid: &str,
        body: &str,
    ) -> Vec<(String, String)> {
        let pairs: Vec<(&str, &str)> = match self.backend {
            BackendKind::Chat => vec![
                ("AccountSid", "AC00000000000000000000000000000000"),
                ("EventType", "onMessageSent"),
                ("ChannelSid", channel),
                ("MessageSid", message_sid),
                ("Index", "1"),
                ("Body", body),
                ("From", "alice"),
                ("Source", "SDK"),
                ("RetryCount", "0"),
            ],
            BackendKind::Conversations => vec![
                ("AccountSid", "AC00000000000000000000000000000000"),
                ("EventType", "onMessageAdded"),
                ("Source", "SDK"),
                ("ClientIdentity", "alice"),
                ("ConversationSid", channel),
                ("MessageSid", message_sid),
                ("Index", "1"),
                ("Body", body),
                ("Author", "alice"),
                ("RetryCount", "0"),
            ],
        };
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Posts a form to the bridge's webhook route of this app's backend.
    pub async fn post_webhook(
        &self,
        params: &[(String, String)],
        signature: Option<&str>,
    ) -> reqwest::StatusCode {
        let mut request = self
            .http
            .post(format!("{}{}", self.url, self.flavour().webhook_path))
            .form(params);
        if let Some(signature) = signature {
            request = request.header("X-Twilio-Signature", signature);
        }
        request.send().await.expect("the bridge answers").status()
    }

    /// The signature Twilio (here: the emulator's token) puts on `params`
    /// sent to `base` + this backend's webhook path.
    pub fn sign_for(&self, base: &str, token: &str, params: &[(String, String)]) -> String {
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        twilio_signature::RequestValidator::new(token)
            .sign(&format!("{base}{}", self.flavour().webhook_path), &pairs)
    }

    /// The signature Twilio puts on `params` posted to this bridge.
    pub fn sign(&self, params: &[(String, String)]) -> String {
        self.sign_for(&self.url, &self.auth_token, params)
    }
}
