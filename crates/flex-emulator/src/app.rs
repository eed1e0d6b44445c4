//! The state every handler shares: the world behind its one `Mutex`, the
//! event bus, the webhook dispatcher (started with the first router) and
//! the timers that finish wrap-up. Dropping the last handle stops the
//! dispatcher and the timers.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::config::{Bootstrap, Credentials, EmulatorConfig};
use crate::webhooks::Dispatcher;
use crate::world::taskrouter::TaskStatus;
use crate::world::{Bus, Event, World};

/// How many SSE events a slow subscriber may fall behind before it misses some.
const EVENT_BUFFER: usize = 1024;

pub(crate) struct App {
    world: Arc<Mutex<World>>,
    pub config: EmulatorConfig,
    pub credentials: Credentials,
    pub bootstrap: Bootstrap,
    pub events: broadcast::Sender<Event>,
    /// Taken and spawned by the first `router()` (needs a tokio runtime).
    dispatcher: Mutex<Option<Dispatcher>>,
    /// Stops the dispatcher and timers; fired when the app is dropped.
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
    /// Ends the SSE streams when `run`'s shutdown fires, so that graceful
    /// shutdown does not wait for them forever.
    pub streams: CancellationToken,
}

impl App {
    pub fn new(config: EmulatorConfig) -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (webhooks, jobs) = mpsc::unbounded_channel();
        let bus = Bus {
            events: events.clone(),
            webhooks,
        };
        let world = World::new(&config, bus);
        let credentials = world.credentials.clone();
        let bootstrap = world.bootstrap.clone();
        let world = Arc::new(Mutex::new(world));
        let dispatcher = Dispatcher::new(world.clone(), &credentials.auth_token, jobs);
        let stop = CancellationToken::new();
        Self {
            world,
            config,
            credentials,
            bootstrap,
            events,
            dispatcher: Mutex::new(Some(dispatcher)),
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

    /// Spawns the webhook dispatcher, once, on the current tokio runtime.
    pub fn start_dispatcher(&self) {
        let mut slot = self
            .dispatcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                if let Some(dispatcher) = slot.take() {
                    runtime.spawn(dispatcher.run(self.stop.clone()));
                }
            }
            Err(_) => tracing::warn!(
                "no tokio runtime: webhooks will be delivered once a router is built inside one"
            ),
        }
    }

    /// Completes `task_sid` after the wrap-up time, if it is still wrapping
    /// in the same world generation by then.
    pub fn schedule_wrapup(&self, task_sid: String) {
        let world = self.world.clone();
        let stop = self.stop.clone();
        let wrapup = self.config.wrapup();
        let generation = self.lock().generation;
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wrapup) => {}
            }
            let mut world = world.lock().unwrap_or_else(PoisonError::into_inner);
            let still_wrapping = world.generation == generation
                && world
                    .taskrouter
                    .tasks
                    .get(&task_sid)
                    .is_some_and(|task| task.status == TaskStatus::Wrapping);
            if still_wrapping && let Err(error) = world.complete_task(&task_sid, "wrap-up finished")
            {
                tracing::warn!(%error, task_sid, "could not complete a task after wrap-up");
            }
        });
    }
}
