//! The alarm clock: the world asks to be woken at some instant about
//! something ([`Alarm`]) and a background task ([`AlarmClock`]) calls its
//! [`Wake::wake`] once that instant has passed. Wrap-ups that finish by
//! themselves and conversation timers (`Timers.Inactive` / `Timers.Closed`)
//! both run on it.
//!
//! - One pending wake-up per alarm: setting an alarm again replaces its
//!   instant (a conversation's timers move on with every message).
//! - Waking is advisory. The world re-checks, against the wall clock, what is
//!   really due, so an early, late or stale wake-up changes nothing it should
//!   not; a conversation re-arms its alarm when something is still pending.
//! - A reset voids alarms set before it (their generation is stale).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant as Deadline;
use tokio_util::sync::CancellationToken;

/// What to look at when an alarm rings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Alarm {
    /// Complete the task if it is still wrapping (`--wrapup-seconds`).
    Wrapup { task_sid: String },
    /// Apply the conversation's timers that are due.
    Conversation { sid: String },
}

/// The world's request: ring `alarm` after `delay`.
#[derive(Debug, Clone)]
pub(crate) struct AlarmRequest {
    /// The world generation that set it; a reset voids older alarms.
    pub generation: u64,
    pub alarm: Alarm,
    pub delay: Duration,
}

/// What the clock wakes: the world (`world/mod.rs` implements it), which
/// re-checks what is really due.
pub(crate) trait Wake {
    /// `alarm`, set by the world's generation `generation`, rang.
    fn wake(&mut self, alarm: &Alarm, generation: u64);
}

/// The background task that rings alarms.
pub(crate) struct AlarmClock<W> {
    world: Arc<Mutex<W>>,
    requests: mpsc::UnboundedReceiver<AlarmRequest>,
}

impl<W: Wake> AlarmClock<W> {
    pub fn new(world: Arc<Mutex<W>>, requests: mpsc::UnboundedReceiver<AlarmRequest>) -> Self {
        Self { world, requests }
    }

    /// Rings alarms until `shutdown` fires.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut pending: HashMap<Alarm, (Deadline, u64)> = HashMap::new();
        loop {
            let next = pending.values().map(|(at, _)| *at).min();
            tokio::select! {
                () = shutdown.cancelled() => break,
                request = self.requests.recv() => {
                    let Some(request) = request else { break };
                    let at = Deadline::now() + request.delay;
                    pending.insert(request.alarm, (at, request.generation));
                }
                () = sleep_until(next) => {
                    let now = Deadline::now();
                    let due: Vec<(Alarm, u64)> = pending
                        .iter()
                        .filter(|(_, (at, _))| *at <= now)
                        .map(|(alarm, (_, generation))| (alarm.clone(), *generation))
                        .collect();
                    for (alarm, generation) in due {
                        pending.remove(&alarm);
                        let mut world = self.world.lock().unwrap_or_else(PoisonError::into_inner);
                        world.wake(&alarm, generation);
                    }
                }
            }
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Deadline>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
