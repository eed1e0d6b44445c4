//! Scenario 4b: the emulator's message-create route of one backend with no
//! relay in front, so a reader knows whether the emulator or the relay is
//! the bottleneck.
//!
//! The benchmark itself opens C channels or conversations the way the floor
//! does ([`Upstream::open`]: chat, a Flex channel with an `onMessageSent`
//! webhook; conversations, a conversation with its customer, an
//! `onMessageAdded` scoped webhook and an interaction), each webhook to a
//! sink (the floor's webhook routes, which answer 200). Then C concurrent
//! senders each post M messages one after the other (chat:
//! `POST /v2/Services/{IS}/Channels/{CH}/Messages`; conversations:
//! `POST /v1/Services/{IS}/Conversations/{CH}/Messages`; both with
//! `X-Twilio-Webhook-Enabled: true`): the emulator does exactly the work a
//! relayed customer message costs it (store, event, routing bookkeeping,
//! one signed webhook). One warm-up message per channel first (on chat it
//! starts the Studio execution and task), as in scenario 1.
//!
//! Latency is POST → 201 on the client's clock; "stored" is POST (wall
//! clock) → the emulator's `received_at_us`; "observed" is POST →
//! `message.added` on the event stream, i.e. what the observer of scenario 1
//! adds to a store it did not wait for.

use std::time::{Duration, Instant};

use crate::cli::Backend;
use crate::emulator::{Emulator, Observer, unix_us, wall_latency};
use crate::procs::Process;
use crate::report::EmulatorAlone;
use crate::stats::summarize;
use crate::twilio::{Account, Twilio, Upstream, webhook_path};

/// Sizes of one run of the scenario.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub channels: usize,
    pub messages: usize,
    pub timeout: Duration,
}

pub async fn run(
    backend: Backend,
    emulator: &Emulator,
    process: Option<&Process>,
    sink_url: &str,
    prefix: &str,
    plan: Plan,
) -> anyhow::Result<(EmulatorAlone, Vec<String>)> {
    let mut problems = Vec::new();
    let account = Account::from_state(&emulator.state().await?)?;
    let twilio = Twilio::new(&emulator.url, &account.account_sid, &account.auth_token)?;
    let upstream = Upstream::prepare(twilio, &account, backend).await?;
    let hook = format!(
        "{}{}",
        sink_url.trim_end_matches('/'),
        webhook_path(backend)
    );
    let mut channels = Vec::with_capacity(plan.channels);
    for i in 0..plan.channels {
        let identity = format!("{prefix}-e{i}");
        let channel = upstream.open(&identity, &identity, &hook).await?;
        channels.push((identity, channel));
    }
    // Warm-up: on chat, the first webhook-enabled message of a channel
    // starts its Studio execution and task; scenario 1 does that before its
    // clock starts, so this one does too (on both backends).
    let warmups = channels.iter().map(|(identity, channel)| {
        let body = format!("{prefix}-warm {identity}");
        let upstream = &upstream;
        async move { upstream.send(channel, identity, &body, "{}").await }
    });
    for result in futures::future::join_all(warmups).await {
        result?;
    }
    let observer = Observer::start(emulator).await?;
    let cpu_before = process.and_then(|p| p.cpu().ok());
    let own_before = crate::procs::own_cpu().ok();
    let started = Instant::now();
    let deadline = started + plan.timeout;
    let senders = channels.iter().enumerate().map(|(i, (identity, channel))| {
        let upstream = &upstream;
        async move {
            let mut done = Vec::with_capacity(plan.messages);
            for m in 0..plan.messages {
                if Instant::now() >= deadline {
                    break;
                }
                let token = format!("{prefix}-e{i}-m{m}");
                let body = format!("{token} hello from channel {i}");
                let at = Instant::now();
                let at_us = unix_us();
                let result = upstream.send(channel, identity, &body, "{}").await;
                done.push((token, at, at_us, Instant::now(), result.err()));
            }
            done
        }
    });
    let done: Vec<_> = futures::future::join_all(senders)
        .await
        .into_iter()
        .flatten()
        .collect();
    let elapsed = started.elapsed();
    let cpu_after = process.and_then(|p| p.cpu().ok());
    let own_after = crate::procs::own_cpu().ok();
    let tokens: Vec<String> = done.iter().map(|d| d.0.clone()).collect();
    observer.wait_for(&tokens, Duration::from_secs(10)).await;

    let mut latency = Vec::new();
    let mut stored = Vec::new();
    let mut observed = Vec::new();
    let mut failed = 0;
    for (token, at, at_us, answered, error) in &done {
        match error {
            Some(e) => {
                failed += 1;
                if failed <= 3 {
                    problems.push(format!("emulator alone: {token}: {e:#}"));
                }
            }
            None => latency.push(*answered - *at),
        }
        if let Some(us) = observer.stored_us(token) {
            stored.push(wall_latency(*at_us, us));
        }
        if let Some(seen) = observer.first_seen(token) {
            observed.push(seen.saturating_duration_since(*at));
        }
    }
    if failed > 3 {
        problems.push(format!("emulator alone: {failed} creates failed in all"));
    }
    let created = done.len() - failed;
    Ok((
        EmulatorAlone {
            backend,
            channels: plan.channels,
            messages_per_channel: plan.messages,
            created,
            failed,
            created_per_s: created as f64 / elapsed.as_secs_f64().max(1e-9),
            latency: summarize(&mut latency),
            stored: summarize(&mut stored),
            observed: summarize(&mut observed),
            emulator_cpu_s: cpu_after
                .zip(cpu_before)
                .map(|(a, b)| (a - b).as_secs_f64()),
            client_cpu_s: own_after
                .zip(own_before)
                .map(|(a, b)| (a - b).as_secs_f64()),
        },
        problems,
    ))
}
