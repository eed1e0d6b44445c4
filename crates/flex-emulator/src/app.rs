//! The state every handler shares: the world behind its one `Mutex`, the
//! event bus, and the two background tasks started with the first router:
//! the webhook dispatcher and the alarm clock (wrap-ups, conversation
//! timers). Dropping the last handle stops both.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::alarms::AlarmClock;
use crate::config::{Bootstrap, Credentials, EmulatorConfig};
use crate::webhooks::Dispatcher;
use crate::world::{Bus, Event, World};

pub(crate) struct App {
    world: Arc<Mutex<World>>,
    pub config: EmulatorConfig,
    pub credentials: Credentials,
    pub bootstrap: Bootstrap,
    pub events: broadcast::Sender<Event>,
    /// Taken and spawned by the first `router()` (needs a tokio runtime).
    workers: Mutex<Option<(Dispatcher<World>, AlarmClock<World>)>>,
    /// Stops the dispatcher and the alarm clock; fired when the app is dropped.
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
    /// Ends the SSE streams when `run`'s shutdown fires, so that graceful
    /// shutdown does not wait for them forever.
    pub streams: CancellationToken,
}

impl App {
    pub fn new(config: EmulatorConfig) -> Self {
        let (events, _) = broadcast::channel(config.event_buffer());
        let (webhooks, jobs) = mpsc::unbounded_channel();
        let (alarms, alarm_requests) = mpsc::unbounded_channel();
        let bus = Bus {
            events: events.clone(),
            webhooks,
            alarms,
        };
        let world = World::new(&config, bus);
        let credentials = world.credentials.clone();
        let bootstrap = world.bootstrap.clone();
        let world = Arc::new(Mutex::new(world));
        let dispatcher = Dispatcher::new(world.clone(), &credentials.auth_token, jobs);
        let clock = AlarmClock::new(world.clone(), alarm_requests);
        let stop = CancellationToken::new();
        Self {
            world,
            config,
            credentials,
            bootstrap,
            events,
            workers: Mutex::new(Some((dispatcher, clock))),
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
            streams: CancellationToken::new(),
        }
    }

    /// The world, locked. Keep the guard for one short, synchronous step.
    pub fn lock(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock cannot leave the world half-changed
        // in a way later requests must not see more than any bug would.
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spawns the webhook dispatcher and the alarm clock, once, on the
    /// current tokio runtime.
    pub fn start_workers(&self) {
        let mut slot = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                if let Some((dispatcher, clock)) = slot.take() {
                    runtime.spawn(dispatcher.run(self.stop.clone()));
                    runtime.spawn(clock.run(self.stop.clone()));
                }
            }
            Err(_) => tracing::warn!(
                "no tokio runtime: webhooks and timers will run once a router is built inside one"
            ),
        }
    }
}
