//! Scenario 1 (and 4 against the floor): N customers each send M messages;
//! the emulator must store every one exactly once.
//!
//! 1. Connect and register N customers (not timed here).
//! 2. Warm-up: each sends one message and waits until the emulator stored
//!    it, so every conversation (Flex channel, webhooks, task) exists before
//!    the clock starts: the measured phase is the steady message path.
//! 3. Measured phase: each customer sends its M messages one after the other
//!    (the next emit waits for the previous ack: N messages in flight, a
//!    closed loop; latencies therefore include queueing at saturation).
//! 4. Wait (bounded) until the observer saw every message stored, then count
//!    every body token in `/_emulator/state` among the messages of the
//!    target's backend (chat channels or conversations): each must be there
//!    exactly once.
//! 5. With a paced rate R: the same again as an open loop (message m of
//!    customer i due at (m·N + i)/R s, emitted without waiting for earlier
//!    acks, latencies counted from the due time), for latencies below
//!    saturation.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::customer::Customer;
use crate::emulator::{Observer, token_of, unix_us, wall_latency};
use crate::procs;
use crate::report::Throughput;
use crate::stats::summarize;

use super::{Target, connect_customers, cpu_s};

/// Sizes of one run of the scenario.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub customers: usize,
    pub messages: usize,
    /// Bound on the measured phase plus the wait for the store.
    pub timeout: Duration,
    pub connect_parallel: usize,
    /// Also run an open-loop phase at this aggregate rate (messages/s).
    pub paced_rate: Option<f64>,
}

/// One message's life on the generator's clock.
struct Sent {
    token: String,
    /// When the emit was due (closed loop: when it was made).
    emitted: Instant,
    /// The same instant on the wall clock (unix µs), to compare with the
    /// emulator's own stamp of the store (`received_at_us`).
    emitted_unix_us: i64,
    /// When the ack arrived, or why there was none.
    outcome: Result<Instant, String>,
}

fn token(prefix: &str, customer: usize, message: &str) -> String {
    format!("{prefix}-c{customer}-{message}")
}

fn body(token: &str, customer: usize) -> String {
    format!("{token} hello from customer {customer}, how can I change my order?")
}

/// Runs the scenario; returns its result, the still-connected customers
/// (scenario 2 uses them) and the problems found.
pub async fn run(
    target: &Target<'_>,
    prefix: &str,
    plan: Plan,
) -> anyhow::Result<(Vec<Throughput>, Vec<Customer>, Vec<String>)> {
    let mut problems = Vec::new();
    let (customers, error) =
        connect_customers(target.url, prefix, 0, plan.customers, plan.connect_parallel).await;
    if let Some(error) = error {
        anyhow::bail!(
            "{}: only {} of {} customers connected and registered: {error}",
            target.who(),
            customers.len(),
            plan.customers
        );
    }
    let observer = match target.emulator {
        Some((emulator, _)) => Some(Observer::start(emulator).await?),
        None => None,
    };

    // Warm-up: open every conversation.
    let warmups: Vec<String> = (0..customers.len())
        .map(|i| token(prefix, i, "w"))
        .collect();
    let sends = customers
        .iter()
        .zip(&warmups)
        .enumerate()
        .map(|(i, (c, t))| async move { c.send(t, &body(t, i)).await });
    for (i, result) in futures::future::join_all(sends)
        .await
        .into_iter()
        .enumerate()
    {
        if let Err(e) = result {
            anyhow::bail!(
                "{}: warm-up message of customer {i} failed: {e}",
                target.who()
            );
        }
    }
    if let Some(observer) = &observer {
        let missing = observer.wait_for(&warmups, plan.timeout).await;
        if missing > 0 && observer.lagged() == 0 {
            anyhow::bail!(
                "{}: {missing} warm-up messages never reached the emulator",
                target.who()
            );
        }
    }

    let mut results = Vec::new();
    let (closed, found) =
        measure(target, observer.as_ref(), &customers, prefix, plan, None).await?;
    results.push(closed);
    problems.extend(found);
    if let Some(rate) = plan.paced_rate {
        let (paced, found) = measure(
            target,
            observer.as_ref(),
            &customers,
            prefix,
            plan,
            Some(rate),
        )
        .await?;
        results.push(paced);
        problems.extend(found);
    }
    Ok((results, customers, problems))
}

/// One measured phase: closed loop (`pace` = None) or paced at `pace`
/// messages per second in aggregate.
async fn measure(
    target: &Target<'_>,
    observer: Option<&Observer>,
    customers: &[Customer],
    prefix: &str,
    plan: Plan,
    pace: Option<f64>,
) -> anyhow::Result<(Throughput, Vec<String>)> {
    let mut problems = Vec::new();
    let tag = if pace.is_some() { "p" } else { "m" };
    let at = pace
        .map(|rate| format!(" @ {rate:.0}/s"))
        .unwrap_or_default();
    let target_name = format!("{}{at}", target.name);
    // Problems name the backend too.
    let label = format!("{}{at}", target.who());
    // Measured phase.
    let cpu_before = (
        cpu_s(target.process),
        target.emulator.and_then(|(_, p)| cpu_s(p)),
        procs::own_cpu().map(|d| d.as_secs_f64()).unwrap_or(0.0),
    );
    let started = Instant::now();
    let deadline = started + plan.timeout;
    let mut sent = Vec::new();
    match pace {
        None => {
            // Closed loop: each customer's next emit waits for its ack.
            let per_customer = customers
                .iter()
                .enumerate()
                .map(|(i, customer)| async move {
                    let mut sent = Vec::with_capacity(plan.messages);
                    for m in 0..plan.messages {
                        if Instant::now() >= deadline {
                            break;
                        }
                        let token = token(prefix, i, &format!("{tag}{m}"));
                        sent.push(emit(customer, token, i, Instant::now()).await);
                    }
                    sent
                });
            for s in futures::future::join_all(per_customer).await {
                sent.extend(s);
            }
        }
        Some(rate) => {
            // Open loop: message m of customer i is due at (m·N + i) / rate;
            // latency counts from the due time, so a late generator shows.
            let n = customers.len();
            let emits = (0..plan.messages).flat_map(|m| {
                customers.iter().enumerate().map(move |(i, customer)| {
                    let due = started + Duration::from_secs_f64((m * n + i) as f64 / rate);
                    async move {
                        tokio::time::sleep_until(due.into()).await;
                        let token = token(prefix, i, &format!("{tag}{m}"));
                        emit(customer, token, i, due).await
                    }
                })
            });
            sent = futures::future::join_all(emits).await;
        }
    }
    let failures = sent
        .iter()
        .filter_map(|s| {
            s.outcome
                .as_ref()
                .err()
                .map(|e| format!("{label}: {}: {e}", s.token))
        })
        .collect();
    problems.extend(super::capped(failures, 5));
    let expected = customers.len() * plan.messages;
    if sent.len() < expected {
        problems.push(format!(
            "{label}: only {} of {expected} messages were emitted within {:?}",
            sent.len(),
            plan.timeout
        ));
    }
    let last_ack = sent
        .iter()
        .filter_map(|s| s.outcome.as_ref().ok())
        .max()
        .copied();
    let tokens: Vec<String> = sent.iter().map(|s| s.token.clone()).collect();
    if let Some(observer) = observer {
        let left = deadline.saturating_duration_since(Instant::now());
        observer
            .wait_for(&tokens, left.max(Duration::from_secs(5)))
            .await;
    }
    let cpu_after = (
        cpu_s(target.process),
        target.emulator.and_then(|(_, p)| cpu_s(p)),
        procs::own_cpu().map(|d| d.as_secs_f64()).unwrap_or(0.0),
    );
    let wall = started.elapsed();

    // Exactly once, from the store itself.
    let acked = sent.iter().filter(|s| s.outcome.is_ok()).count();
    let (mut stored_once, mut lost, mut duplicated) = (acked, 0, 0);
    if let (Some((emulator, _)), Some(backend)) = (target.emulator, target.backend) {
        let mut counts = emulator.stored_bodies(backend).await?;
        // Let the store settle if anything is missing (slow outbox), bounded.
        let settle = Instant::now() + Duration::from_secs(10);
        while tokens.iter().any(|t| !counts.contains_key(t)) && Instant::now() < settle {
            tokio::time::sleep(Duration::from_millis(250)).await;
            counts = emulator.stored_bodies(backend).await?;
        }
        (stored_once, lost, duplicated) = (0, 0, 0);
        let mut dups = Vec::new();
        for t in &tokens {
            match counts.get(t).copied().unwrap_or(0) {
                0 => lost += 1,
                1 => stored_once += 1,
                n => {
                    duplicated += 1;
                    dups.push(format!("{label}: {t} stored {n} times"));
                }
            }
        }
        problems.extend(super::capped(dups, 5));
        if lost > 0 {
            let examples: Vec<&String> = tokens
                .iter()
                .filter(|t| !counts.contains_key(*t))
                .take(5)
                .collect();
            problems.push(format!(
                "{label}: {lost} of {} messages never stored (e.g. {examples:?})",
                tokens.len()
            ));
        }
        let phase = format!("{prefix}-c");
        let unexpected = counts
            .keys()
            .filter(|k| {
                k.starts_with(&phase)
                    && k.rsplit('-').next().is_some_and(|m| m.starts_with(tag))
                    && !tokens.contains(k)
            })
            .count();
        if unexpected > 0 {
            problems.push(format!("{label}: {unexpected} stored messages nobody sent"));
        }
    } else if acked < sent.len() {
        lost = sent.len() - acked;
    }

    let first_emit = sent.iter().map(|s| s.emitted).min().unwrap_or(started);
    let mut ack_latency: Vec<Duration> = sent
        .iter()
        .filter_map(|s| {
            s.outcome
                .as_ref()
                .ok()
                .map(|a| a.saturating_duration_since(s.emitted))
        })
        .collect();
    let mut stored_latency = Vec::new();
    let mut stamp_latency = Vec::new();
    let mut last_stored = None;
    let mut lagged = 0;
    let mut seen_twice = Vec::new();
    if let Some(observer) = observer {
        lagged = observer.lagged();
        for s in &sent {
            if let Some(stored) = observer.stored_us(&s.token) {
                stamp_latency.push(wall_latency(s.emitted_unix_us, stored));
            }
        }
        let emitted: HashMap<&str, Instant> = sent
            .iter()
            .map(|s| (token_of(&s.token), s.emitted))
            .collect();
        for (t, at) in &emitted {
            if let Some(seen) = observer.first_seen(t) {
                stored_latency.push(seen.saturating_duration_since(*at));
                last_stored = last_stored.max(Some(seen));
            }
            if observer.times_seen(t) > 1 {
                seen_twice.push(format!(
                    "{label}: the event stream showed {t} stored {} times",
                    observer.times_seen(t)
                ));
            }
        }
    }
    problems.extend(super::capped(seen_twice, 5));
    let rate = |end: Option<Instant>, n: usize| {
        end.map(|end| n as f64 / end.duration_since(first_emit).as_secs_f64().max(1e-9))
    };
    let server_cpu = cpu_after.0.zip(cpu_before.0).map(|(a, b)| a - b);
    let per_message = if target.emulator.is_some() {
        stored_once
    } else {
        acked
    };
    let result = Throughput {
        target: target_name,
        backend: target.backend,
        offered_per_s: pace,
        customers: customers.len(),
        messages_per_customer: plan.messages,
        sent: sent.len(),
        acked,
        stored_once,
        lost,
        duplicated,
        acked_per_s: rate(last_ack, acked).unwrap_or(0.0),
        // When the observer lagged, the last store it saw may not be the
        // last one: the rate is then marked approximate in the report.
        stored_per_s: if observer.is_some() {
            rate(last_stored, stored_once)
        } else {
            None
        },
        ack: summarize(&mut ack_latency),
        stored: summarize(&mut stored_latency),
        stored_stamp: summarize(&mut stamp_latency),
        server_cpu_s: server_cpu,
        emulator_cpu_s: cpu_after.1.zip(cpu_before.1).map(|(a, b)| a - b),
        generator_cpu_s: cpu_after.2 - cpu_before.2,
        server_cpu_ms_per_message: server_cpu
            .filter(|_| per_message > 0)
            .map(|cpu| cpu * 1000.0 / per_message as f64),
        server_rss_kib: target.process.and_then(|p| p.rss_kib().ok()),
        observer_lagged: lagged,
        wall_s: wall.as_secs_f64(),
    };
    Ok((result, problems))
}

/// Emits one message and waits for its ack; `emitted` is when it was due.
async fn emit(customer: &Customer, token: String, i: usize, emitted: Instant) -> Sent {
    let late = Instant::now().saturating_duration_since(emitted);
    let emitted_unix_us = unix_us() - i64::try_from(late.as_micros()).unwrap_or(0);
    let text = body(&token, i);
    let outcome = match customer.send(&token, &text).await {
        Ok((accepted, at)) if accepted.client_message_id == token => Ok(at),
        Ok((accepted, _)) => Err(format!("acked as {:?}", accepted.client_message_id)),
        Err(e) => Err(e.to_string()),
    };
    Sent {
        token,
        emitted,
        emitted_unix_us,
        outcome,
    }
}
