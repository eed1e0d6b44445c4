//! Scenario 4b: the emulator's message-create route with no relay in front,
//! so a reader knows whether the emulator or the relay is the bottleneck.
//!
//! The benchmark itself opens C Flex channels (`POST /v1/Channels`) with an
//! `onMessageSent` webhook to a sink (the floor's webhook route, which answers
//! 200), then C concurrent senders each post M messages one after the other
//! (`POST …/Messages`, `X-Twilio-Webhook-Enabled: true`): the emulator does
//! exactly the work a relayed customer message costs it (store, event,
//! Studio/task bookkeeping, one signed webhook); one warm-up message per
//! channel first starts its Studio execution and task, as in scenario 1.
//! Latency is POST → 201 on the
//! client's clock; "observed" is POST → `message.added` on the event stream,
//! i.e. what the observer of scenario 1 adds to a store it did not wait for.

use std::time::{Duration, Instant};

use crate::emulator::{Emulator, Observer};
use crate::procs::Process;
use crate::report::EmulatorAlone;
use crate::stats::summarize;
use crate::twilio::{Account, Twilio};

/// Sizes of one run of the scenario.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub channels: usize,
    pub messages: usize,
    pub timeout: Duration,
}

pub async fn run(
    emulator: &Emulator,
    process: Option<&Process>,
    sink_url: &str,
    prefix: &str,
    plan: Plan,
) -> anyhow::Result<(EmulatorAlone, Vec<String>)> {
    let mut problems = Vec::new();
    let account = Account::from_state(&emulator.state().await?)?;
    let twilio = Twilio::new(&emulator.url, &account.account_sid, &account.auth_token)?;
    let flow = twilio
        .create_flex_flow(&account.chat_service_sid, &account.studio_flow_sid)
        .await?;
    let hook = format!("{}/webhooks/chat", sink_url.trim_end_matches('/'));
    let mut channels = Vec::with_capacity(plan.channels);
    for i in 0..plan.channels {
        let identity = format!("{prefix}-e{i}");
        let channel = twilio
            .create_flex_channel(&flow, &identity, &identity)
            .await?;
        twilio
            .add_message_webhook(&account.chat_service_sid, &channel, &hook)
            .await?;
        channels.push((identity, channel));
    }
    // Warm-up: the first webhook-enabled message of a channel starts its
    // Studio execution and task; scenario 1 does that before its clock
    // starts, so this one does too.
    let warmups = channels.iter().map(|(identity, channel)| {
        let body = format!("{prefix}-warm {identity}");
        let twilio = &twilio;
        let service = &account.chat_service_sid;
        async move {
            twilio
                .create_message(service, channel, identity, &body, "{}")
                .await
        }
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
        let twilio = &twilio;
        let service = &account.chat_service_sid;
        async move {
            let mut done = Vec::with_capacity(plan.messages);
            for m in 0..plan.messages {
                if Instant::now() >= deadline {
                    break;
                }
                let token = format!("{prefix}-e{i}-m{m}");
                let body = format!("{token} hello from channel {i}");
                let at = Instant::now();
                let result = twilio
                    .create_message(service, channel, identity, &body, "{}")
                    .await;
                done.push((token, at, Instant::now(), result.err()));
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
    let mut observed = Vec::new();
    let mut failed = 0;
    for (token, at, answered, error) in &done {
        match error {
            Some(e) => {
                failed += 1;
                if failed <= 3 {
                    problems.push(format!("emulator alone: {token}: {e:#}"));
                }
            }
            None => latency.push(*answered - *at),
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
            channels: plan.channels,
            messages_per_channel: plan.messages,
            created,
            failed,
            created_per_s: created as f64 / elapsed.as_secs_f64().max(1e-9),
            latency: summarize(&mut latency),
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
