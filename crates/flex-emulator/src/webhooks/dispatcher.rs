//! The webhook dispatcher: one background task that takes jobs from the
//! world's queue and delivers them, never blocking a REST answer.
//!
//! - Order: jobs with the same key (the channel) are delivered strictly one
//!   after the other, in the order they were queued; different channels are
//!   delivered concurrently.
//! - Each attempt is form-encoded (or, for `GET` webhooks, put in the query
//!   string), carries `RetryCount` = the attempt number (0 first), and is
//!   signed with `X-Twilio-Signature` over the exact URL called, with the
//!   account's auth token (`twilio-signature`). Every copy and retry of one
//!   delivery carries the same `I-Twilio-Idempotency-Token`, as Twilio's do.
//! - A 2xx answer is success. Anything else (status, 5 s timeout, connection
//!   error) is retried up to the webhook's `RetryCount` more times, after
//!   [`RETRY_BACKOFF`].
//! - Webhook faults apply here, once per delivery: `drop` logs and sends
//!   nothing; `duplicate` sends the whole delivery `copies` times.
//! - Every attempt (and every drop) is logged (`GET /_emulator/webhooks`) and
//!   published as a `webhook.delivery` SSE event, with `sent_at_us` (just
//!   before the request goes to the HTTP client) and `answered_at_us` (the
//!   answer's headers arrived), in µs since the Unix epoch.
//! - A reset voids jobs queued before it (their generation is stale).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use twilio_signature::{RequestValidator, SIGNATURE_HEADER};

use super::job::{HookMethod, Job};
use super::log::{DeliveryRecord, Outcome};
use crate::clock::{Instant, unix_micros};
use crate::control::faults::WebhookFaultAction;

/// What the dispatcher needs from the world it delivers for (`world/mod.rs`
/// implements it): whether a job is still current, the webhook faults to
/// apply, and where attempts are logged.
pub(crate) trait Ledger {
    /// The current generation; a job queued by another one is void.
    fn generation(&self) -> u64;
    /// The webhook fault for one delivery of `event_type`, if one is armed
    /// (taking it uses it up).
    fn take_webhook_fault(&mut self, event_type: &str) -> Option<WebhookFaultAction>;
    /// Logs an attempt (`GET /_emulator/webhooks`) and publishes it as a
    /// `webhook.delivery` event.
    fn record_delivery(&mut self, record: DeliveryRecord);
}

/// How long one attempt may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The pause before a retry.
const RETRY_BACKOFF: Duration = Duration::from_millis(250);

pub(crate) struct Dispatcher<W> {
    world: Arc<Mutex<W>>,
    /// The HTTP client, or why it could not be built (then every attempt
    /// fails with that reason, visibly, in the delivery log).
    client: Result<reqwest::Client, String>,
    signer: RequestValidator,
    jobs: mpsc::UnboundedReceiver<Job>,
}

/// What one delivery needs, shared by the concurrent deliveries.
struct Courier<W> {
    world: Arc<Mutex<W>>,
    client: Result<reqwest::Client, String>,
    signer: RequestValidator,
}

impl<W> Clone for Courier<W> {
    fn clone(&self) -> Self {
        Self {
            world: self.world.clone(),
            client: self.client.clone(),
            signer: self.signer.clone(),
        }
    }
}

impl<W: Ledger + Send + 'static> Dispatcher<W> {
    pub fn new(world: Arc<Mutex<W>>, auth_token: &str, jobs: mpsc::UnboundedReceiver<Job>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent("TwilioProxy/1.1")
            .build()
            .map_err(|error| {
                tracing::error!(error.cause_chain = ?error, "cannot build the webhook HTTP client");
                format!(
                    "the webhook HTTP client could not be built: {}",
                    error_chain(&error)
                )
            });
        Self {
            world,
            client,
            signer: RequestValidator::new(auth_token),
            jobs,
        }
    }

    /// Delivers jobs until `shutdown` fires.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let courier = Courier {
            world: self.world.clone(),
            client: self.client.clone(),
            signer: self.signer.clone(),
        };
        let mut waiting: HashMap<String, VecDeque<Job>> = HashMap::new();
        let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut deliveries = JoinSet::new();
        let mut sequence: u64 = 0;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                job = self.jobs.recv() => {
                    let Some(job) = job else { break };
                    if running.values().any(|key| *key == job.queue) {
                        waiting.entry(job.queue.clone()).or_default().push_back(job);
                    } else {
                        sequence += 1;
                        let key = job.queue.clone();
                        let handle = deliveries.spawn(courier.clone().deliver(job, sequence));
                        running.insert(handle.id(), key);
                    }
                }
                Some(done) = deliveries.join_next_with_id() => {
                    let id = match done {
                        Ok((id, ())) => id,
                        Err(error) => {
                            tracing::error!(%error, "a webhook delivery task failed");
                            error.id()
                        }
                    };
                    let Some(key) = running.remove(&id) else { continue };
                    let next = waiting.get_mut(&key).and_then(VecDeque::pop_front);
                    match next {
                        Some(job) => {
                            sequence += 1;
                            let handle = deliveries.spawn(courier.clone().deliver(job, sequence));
                            running.insert(handle.id(), key);
                        }
                        None => {
                            waiting.remove(&key);
                        }
                    }
                }
            }
        }
        deliveries.abort_all();
    }
}

impl<W: Ledger> Courier<W> {
    fn world(&self) -> std::sync::MutexGuard<'_, W> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn deliver(self, job: Job, sequence: u64) {
        let fault = {
            let mut world = self.world();
            if world.generation() != job.generation {
                return;
            }
            world.take_webhook_fault(&job.event_type)
        };
        let copies = match fault {
            Some(WebhookFaultAction::Drop) => {
                let dropped = Attempt::failed("dropped by a webhook fault".into());
                self.log(&job, 0, 1, dropped, Outcome::Dropped);
                return;
            }
            Some(WebhookFaultAction::Duplicate { copies }) => copies.max(1),
            None => 1,
        };
        let token = format!("{}-{}-{sequence}", job.webhook_sid, job.generation);
        for copy in 1..=copies {
            for attempt in 0..=job.retries {
                let answer = self.attempt(&job, attempt, &token).await;
                let delivered = answer.status.is_some_and(|s| (200..300).contains(&s));
                let outcome = if delivered {
                    Outcome::Delivered
                } else {
                    Outcome::Failed
                };
                if !self.log(&job, attempt, copy, answer, outcome) {
                    return;
                }
                if delivered {
                    break;
                }
                if attempt < job.retries {
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
            }
        }
    }

    /// One signed request: its status or error, and when it went and came back.
    async fn attempt(&self, job: &Job, attempt: u8, token: &str) -> Attempt {
        let client = match &self.client {
            Ok(client) => client,
            Err(why) => return Attempt::failed(why.clone()),
        };
        let mut params = job.params.clone();
        params.push(("RetryCount".into(), attempt.to_string()));
        let request = match job.method {
            HookMethod::Post => {
                let signature = self.signer.sign(&job.url, &params);
                let body = encode(&params);
                client
                    .post(&job.url)
                    .header(SIGNATURE_HEADER, signature)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body)
            }
            HookMethod::Get => {
                let separator = if job.url.contains('?') { '&' } else { '?' };
                let url = format!("{}{separator}{}", job.url, encode(&params));
                let signature = self.signer.sign::<&str, &str>(&url, &[]);
                client.get(url).header(SIGNATURE_HEADER, signature)
            }
        };
        let request = request.header("I-Twilio-Idempotency-Token", token);
        let sent_at_us = Some(unix_micros());
        match request.send().await {
            Ok(response) => {
                let answered_at_us = Some(unix_micros());
                let status = response.status();
                // Read the body so the connection can be reused.
                let _ignored = response.bytes().await;
                let error = (!status.is_success()).then(|| format!("answered {status}"));
                Attempt {
                    status: Some(status.as_u16()),
                    error,
                    sent_at_us,
                    answered_at_us,
                }
            }
            Err(error) => {
                let why = if error.is_timeout() {
                    format!("timed out after {TIMEOUT:?}")
                } else {
                    error_chain(&error)
                };
                Attempt {
                    sent_at_us,
                    ..Attempt::failed(why)
                }
            }
        }
    }

    /// Logs an attempt; false when the world was reset meanwhile (stop).
    fn log(&self, job: &Job, attempt: u8, copy: u32, answer: Attempt, outcome: Outcome) -> bool {
        let mut world = self.world();
        if world.generation() != job.generation {
            return false;
        }
        let mut params = job.params.clone();
        params.push(("RetryCount".into(), attempt.to_string()));
        world.record_delivery(DeliveryRecord {
            url: job.url.clone(),
            method: job.method,
            event_type: job.event_type.clone(),
            webhook_sid: job.webhook_sid.clone(),
            channel_sid: job.channel_sid.clone(),
            params,
            attempt,
            copy,
            status: answer.status,
            error: answer.error,
            outcome,
            at: Instant::now(),
            sent_at_us: answer.sent_at_us,
            answered_at_us: answer.answered_at_us,
        });
        true
    }
}

/// What became of one attempt.
struct Attempt {
    status: Option<u16>,
    error: Option<String>,
    /// Just before the request went to the HTTP client (µs since the epoch).
    sent_at_us: Option<u64>,
    /// When the answer's status and headers arrived.
    answered_at_us: Option<u64>,
}

impl Attempt {
    /// Nothing was answered (and, unless the caller says so, nothing sent).
    fn failed(why: String) -> Self {
        Self {
            status: None,
            error: Some(why),
            sent_at_us: None,
            answered_at_us: None,
        }
    }
}

fn encode(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
