//! Scenario 2: agents reply; every reply must reach its customer's socket
//! exactly once.
//!
//! 1. Every agent accepts its pending reservations (the emulator runs with
//!    enough agents × chat capacity for every conversation of scenario 1).
//! 2. For every accepted task, the agent sends R replies one after the other
//!    through `POST /_emulator/agents/{agent}/tasks/{WT}/messages`; the clock
//!    starts just before each POST (all conversations at once).
//! 3. Each customer socket is read until its R replies arrived (bounded);
//!    latency = POST issued → `message` event read (generator clock). That
//!    is the agent's send as the control API takes it, through the
//!    emulator's store and webhook dispatch and the relay, to the customer.
//! 4. Two more measures on the wall clock, from the emulator's own stamps
//!    (µs, read off the event stream) to the socket's receipt:
//!    - *stored → socket*: from the reply's `received_at_us` (stored under
//!      the emulator's lock; its webhook is queued right after): the
//!      dispatcher queue (a conversation's webhooks go one after the other,
//!      each after the previous one was answered), the signed POST, the
//!      relay and the socket;
//!    - *webhook sent → socket*: from the `sent_at_us` of the reply's
//!      webhook delivery (`onMessageSent` or `onMessageAdded`, the first
//!      attempt): the signed POST, the relay and the socket — the issue's
//!      "from the emulator's webhook send".

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::customer::{Customer, MessageIn};
use crate::emulator::{Emulator, Observer, token_of, unix_us, wall_latency};
use crate::report::Replies;
use crate::stats::summarize;

use super::Target;

/// Sizes of one run of the scenario.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub replies: usize,
    pub timeout: Duration,
}

/// Accepts pending reservations until `wanted` tasks are accepted (or the
/// timeout); returns `(agent, task, customer identity, customer name)`.
async fn accept_all(
    emulator: &Emulator,
    wanted: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<(String, String, Option<String>, Option<String>)>> {
    let agents = emulator.agent_names().await?;
    let deadline = Instant::now() + timeout;
    loop {
        let mut accepted = Vec::new();
        for agent in &agents {
            for work in emulator.work(agent).await? {
                if work.pending {
                    emulator
                        .accept(agent, &work.reservation_sid)
                        .await
                        .with_context(|| format!("{agent} accepting {}", work.reservation_sid))?;
                }
                accepted.push((
                    agent.clone(),
                    work.task_sid,
                    work.customer_identity,
                    work.customer_name,
                ));
            }
        }
        if accepted.len() >= wanted || Instant::now() >= deadline {
            return Ok(accepted);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads agent `message` events on one socket until `expected` tokens all
/// arrived or `deadline`; then a short grace to catch duplicates. Returns
/// every token read with the instant(s) it arrived.
/// `expected` shrinks when an agent's POST is refused (that reply will
/// never come), so a reader does not wait for the deadline in vain.
async fn read_replies(
    customer: &mut Customer,
    prefix: &str,
    expected: &AtomicUsize,
    deadline: Instant,
) -> HashMap<String, Vec<Instant>> {
    let mut got: HashMap<String, Vec<Instant>> = HashMap::new();
    let mut grace_until: Option<Instant> = None;
    loop {
        if grace_until.is_none() && got.len() >= expected.load(Ordering::Relaxed) {
            grace_until = Some(Instant::now() + Duration::from_millis(300));
        }
        let until = grace_until.unwrap_or(deadline);
        if Instant::now() >= until {
            return got;
        }
        // Wake up now and then to notice a shrinking `expected`.
        let wake = until.min(Instant::now() + Duration::from_millis(100));
        let event = match tokio::time::timeout_at(wake.into(), customer.next_event()).await {
            Ok(Some(event)) => event,
            Ok(None) => return got,
            Err(_) => continue,
        };
        if event.name != "message" {
            continue;
        }
        let Some(message) = event
            .args
            .first()
            .and_then(|a| serde_json::from_value::<MessageIn>(a.clone()).ok())
        else {
            continue;
        };
        let token = token_of(&message.body);
        if message.direction == "agent" && token.starts_with(prefix) {
            got.entry(token.to_owned()).or_default().push(event.at);
        }
    }
}

/// Runs the scenario on the customers of scenario 1 (indexed as registered).
pub async fn run(
    target: &Target<'_>,
    prefix: &str,
    customers: Vec<Customer>,
    plan: Plan,
) -> anyhow::Result<(Replies, Vec<Customer>, Vec<String>)> {
    let mut problems = Vec::new();
    let (emulator, _) = target.emulator.context("scenario 2 needs an emulator")?;
    let tasks = accept_all(emulator, customers.len(), plan.timeout).await?;
    // Which customer is behind which task: by registered id, else by name.
    let by_identity: HashMap<String, usize> = customers
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.registered.as_ref().map(|r| (r.customer_id.clone(), i)))
        .collect();
    let name_prefix = format!("{prefix}-c");
    let mut work: Vec<(String, String, usize)> = Vec::new();
    for (agent, task, identity, name) in tasks {
        let index = identity
            .as_ref()
            .and_then(|id| by_identity.get(id).copied())
            .or_else(|| {
                name.as_deref()
                    .and_then(|n| n.strip_prefix(&name_prefix))
                    .and_then(|i| i.parse().ok())
            });
        if let Some(index) = index.filter(|i| *i < customers.len()) {
            work.push((agent, task, index));
        }
    }
    if work.len() < customers.len() {
        problems.push(format!(
            "{}: only {} of {} conversations were assigned to an agent and matched to a customer",
            target.who(),
            work.len(),
            customers.len()
        ));
    }

    let observer = Observer::start(emulator).await?;
    // One (monotonic, wall clock) pair to put socket receipts on the wall
    // clock the emulator's microsecond stamps use.
    let anchor = (Instant::now(), unix_us());
    let wall_us = |at: Instant| -> i64 {
        let after = at.saturating_duration_since(anchor.0).as_micros();
        anchor
            .1
            .saturating_add(i64::try_from(after).unwrap_or(i64::MAX))
    };
    let since = |stamp_us: i64, at: Instant| wall_latency(stamp_us, wall_us(at));
    let reply_prefix = format!("{prefix}-r");
    let started = Instant::now();
    let deadline = started + plan.timeout;
    let mut readers = Vec::new();
    let expected: Vec<Arc<AtomicUsize>> = (0..customers.len())
        .map(|_| Arc::new(AtomicUsize::new(0)))
        .collect();
    for (_, _, index) in &work {
        expected[*index].fetch_add(plan.replies, Ordering::Relaxed);
    }
    for (index, mut customer) in customers.into_iter().enumerate() {
        let reply_prefix = reply_prefix.clone();
        let expected = expected[index].clone();
        readers.push(tokio::spawn(async move {
            let got = if expected.load(Ordering::Relaxed) > 0 {
                read_replies(&mut customer, &reply_prefix, &expected, deadline).await
            } else {
                HashMap::new()
            };
            (customer, got)
        }));
    }
    let senders = work.iter().map(|(agent, task, index)| {
        let reply_prefix = &reply_prefix;
        let expected = &expected[*index];
        async move {
            let mut sent = Vec::new();
            for r in 0..plan.replies {
                let token = format!("{reply_prefix}{index}-{r}");
                let body = format!("{token} thanks for waiting, let me check that for you");
                let at = Instant::now();
                let result = emulator.agent_says(agent, task, &body).await;
                if result.is_err() {
                    expected.fetch_sub(1, Ordering::Relaxed);
                }
                sent.push((token, at, result.err().map(|e| format!("{e:#}"))));
            }
            sent
        }
    });
    let sent: Vec<(String, Instant, Option<String>)> = futures::future::join_all(senders)
        .await
        .into_iter()
        .flatten()
        .collect();
    let mut received: HashMap<String, Vec<Instant>> = HashMap::new();
    let mut customers = Vec::new();
    for reader in readers {
        let (customer, got) = reader.await.context("a reader task failed")?;
        customers.push(customer);
        received.extend(got);
    }

    // A webhook.delivery event comes after the webhook's answer, so the
    // last ones may trail the socket receipts.
    let delivered: Vec<String> = sent
        .iter()
        .filter(|(_, _, error)| error.is_none())
        .map(|(token, _, _)| token.clone())
        .collect();
    observer
        .wait_for_webhooks(&delivered, Duration::from_secs(5))
        .await;
    let mut latency = Vec::new();
    let mut from_stored = Vec::new();
    let mut from_webhook = Vec::new();

    let (mut once, mut lost, mut duplicated) = (0, 0, 0);
    let mut last = None;
    let mut refused = Vec::new();
    for (token, at, error) in &sent {
        if let Some(error) = error {
            refused.push(format!(
                "{}: agent reply {token} refused: {error}",
                target.who()
            ));
        }
        match received.get(token).map(Vec::as_slice) {
            None | Some([]) => lost += 1,
            Some([first]) => {
                once += 1;
                latency.push(first.saturating_duration_since(*at));
                last = last.max(Some(*first));
                if let Some(stored) = observer.stored_us(token) {
                    from_stored.push(since(stored, *first));
                }
                if let Some(sent) = observer.webhook_sent_us(token) {
                    from_webhook.push(since(sent, *first));
                }
            }
            Some(many) => {
                duplicated += 1;
                latency.push(many[0].saturating_duration_since(*at));
                problems.push(format!(
                    "{}: reply {token} reached the customer {} times",
                    target.who(),
                    many.len()
                ));
            }
        }
    }
    problems.extend(super::capped(refused, 3));
    if lost > 0 {
        problems.push(format!(
            "{}: {lost} of {} agent replies never reached the customer",
            target.who(),
            sent.len()
        ));
    }
    let elapsed = last.map_or(0.0, |l| l.duration_since(started).as_secs_f64());
    let result = Replies {
        target: target.name.to_owned(),
        backend: target.backend,
        conversations: work.len(),
        replies_per_conversation: plan.replies,
        sent: sent.len(),
        received_once: once,
        lost,
        duplicated,
        latency: summarize(&mut latency),
        stored_to_socket: summarize(&mut from_stored),
        webhook_to_socket: summarize(&mut from_webhook),
        received_per_s: if elapsed > 0.0 {
            (once + duplicated) as f64 / elapsed
        } else {
            0.0
        },
    };
    Ok((result, customers, problems))
}
