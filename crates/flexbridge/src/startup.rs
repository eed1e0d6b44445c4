//! Wiring: builds the store, the Flex backends, the core, the Socket.IO
//! side, the webhook routes and the outbox into one [`Application`] bound
//! to a listener, and runs them under one supervisor until a cancellation
//! token fires. Nothing here does work of its own: recovery after a
//! restart is the outbox's first step.
//!
//! `Application::build(settings)` binds `host:port` (port 0 picks one;
//! [`Application::port`] says which). `run_until_stopped(shutdown)` serves
//! until `shutdown` is cancelled — or until the HTTP server or the outbox
//! worker ends on its own, which stops the other and returns its error (a
//! bridge that acks messages it cannot deliver is worse than one that
//! stops) — then shuts down gracefully, in this order (each step waits
//! for the one before; [`Application::run_until_stopped`] is the list in
//! code, one block per step):
//!
//! 1. **Stop accepting**: the listener closes (no new HTTP connection)
//!    and a Socket.IO connection that still arrives on an open one is
//!    refused with `unavailable` (docs/protocol.md: retry later).
//! 2. **Drain**: the outbox starts no new job and finishes the ones in
//!    flight (`shutdown_grace`; what is cut short stays queued for the
//!    next start; each finished one releases its conversation's lease,
//!    so another bridge takes it on at once); webhook requests in flight
//!    finish ([`HTTP_GRACE`]).
//!    Connected customers keep their sockets meanwhile, so:
//! 3. **Tell customers**: what the drained work decided (a `delivery`, an
//!    agent's message) has reached their sockets by now.
//! 4. **Close sockets**: every customer transport closes (a transport
//!    close: socket.io-client reconnects by itself, through the load
//!    balancer to another instance
//!    or to this one restarted); a notice after this is dropped (the
//!    customer replays it from the store), never a panic.
//! 5. **HTTP**: the server's last connections end ([`HTTP_GRACE`]).
//! 6. (Leases, with several instances: released here, once nothing of
//!    this instance delivers any more.)
//! 7. **Store**: the database closes (SQLite checkpoints its WAL) and
//!    its lock is released.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};
use twilio_signature::RequestValidator;
use url::Url;

use crate::config::{OutboxSettings, PublicBaseUrl, Settings, TwilioSettings};
use crate::core::backend::{Backends, FlexBackend};
use crate::core::clock::Clock;
use crate::core::work::Wakeups;
use crate::core::{Bridge, BridgeParts};
use crate::customer::Customers;
use crate::flex::BackendKind;
use crate::flex::chat::ChatBackend;
use crate::flex::client::{Timeouts, TwilioClient};
use crate::flex::conversations::ConversationsBackend;
use crate::flex::health::{TwilioHealth, TwilioStatus};
use crate::flex::webhooks::{self, WebhookState};
use crate::outbox::{Outbox, OutboxConfig, OutboxParts};
use crate::store::lock::{DatabaseLock, Sharing};
use crate::store::{Dialect, LeaseHolder, Store};
use crate::web;

/// How long each shutdown step waits for HTTP work: webhooks in flight,
/// customer transports closing, the server's last connections.
pub const HTTP_GRACE: Duration = Duration::from_secs(10);

/// A built, bound, not yet running bridge.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    public_base_url: Url,
    router: Router,
    customers: Customers,
    /// The webhook requests in flight (shutdown waits for them).
    webhooks: TaskTracker,
    outbox: Outbox,
    store: Store,
    /// This bridge's claim on its database, released last: one bridge
    /// per SQLite file, and on PostgreSQL one unless Redis joins several
    /// (`store::lock`).
    lock: DatabaseLock,
    /// Twilio's health, probed in the background while serving.
    twilio: Option<TwilioHealth>,
    bridge: Bridge,
}

impl Application {
    /// Binds `settings.host:settings.port` and builds everything.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((settings.host.as_str(), settings.port))
            .await
            .with_context(|| format!("binding {}:{}", settings.host, settings.port))?;
        Self::build_with_listener(settings, listener).await
    }

    /// Builds on an already bound listener: both backends, the one
    /// `settings` name opening new conversations.
    pub async fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let addr = listener
            .local_addr()
            .context("reading the listener's address")?;
        let public_base_url = resolve_public_base_url(&settings.public_base_url, addr)?;
        let backends = backends(&settings, &public_base_url)?;
        let twilio = check_twilio(&settings).await?;
        Self::build_parts(settings, listener, public_base_url, backends, Some(twilio)).await
    }

    /// Builds with given backends (tests use this to run against a fake;
    /// Twilio is neither checked nor probed).
    pub async fn build_with_backends(
        settings: Settings,
        listener: TcpListener,
        public_base_url: Url,
        backends: Backends,
    ) -> anyhow::Result<Self> {
        Self::build_parts(settings, listener, public_base_url, backends, None).await
    }

    async fn build_parts(
        settings: Settings,
        listener: TcpListener,
        public_base_url: Url,
        backends: Backends,
        twilio: Option<TwilioHealth>,
    ) -> anyhow::Result<Self> {
        let addr = listener
            .local_addr()
            .context("reading the listener's address")?;
        let sharing = sharing(&settings);
        let shown_url = crate::store::dialect::redact(&settings.database_url);
        let lock = DatabaseLock::acquire(&settings.database_url, sharing)
            .await
            .with_context(|| format!("taking the lock of the database {shown_url}"))?;
        let holder = LeaseHolder::new(settings.outbox.lease);
        let store = Store::connect_with(&settings.database_url, holder)
            .await
            .with_context(|| format!("opening the database {shown_url}"))?;
        let customers = match &settings.redis_url {
            Some(url) if sharing == Sharing::Shared => Customers::cluster(url).await?,
            // SQLite, or PostgreSQL alone: this bridge holds every socket.
            _ => Customers::local(),
        };
        let wakeups = Arc::new(Wakeups::default());
        let clock = Clock::system();
        let bridge = Bridge::new(BridgeParts {
            storage: Arc::new(store.clone()),
            fanout: customers.fanout(),
            backends: backends.clone(),
            wakeups: wakeups.clone(),
            rate_limit: settings.rate_limit,
            limits_in_storage: sharing == Sharing::Shared,
            clock,
            form: settings.widget.form.clone(),
            attachments: settings.widget.attachments.clone(),
        });
        customers.attach(bridge.clone()).await?;
        let outbox = Outbox::new(OutboxParts {
            bridge: bridge.clone(),
            store: store.clone(),
            backends: backends.clone(),
            wakeups,
            clock,
            config: outbox_config(&settings.outbox, sharing),
        });
        let webhook_state = WebhookState {
            bridge: bridge.clone(),
            backends,
            validator: RequestValidator::new(secrecy::ExposeSecret::expose_secret(
                &settings.auth_token,
            )),
            public_base_url: public_base_url.clone(),
        };
        crate::telemetry::metrics();
        let tracker = TaskTracker::new();
        let in_flight = tracker.clone();
        let webhook_routes = webhooks::routes(webhook_state).layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let token = in_flight.token();
                async move {
                    let response = next.run(request).await;
                    drop(token);
                    response
                }
            },
        ));
        let router = Router::new()
            .merge(web::routes(web::WebParts {
                store: store.clone(),
                bridge: bridge.clone(),
                public_base_url: public_base_url.clone(),
                allowed_origins: settings.allowed_origins.clone(),
                widget: settings.widget.clone(),
                twilio: twilio.clone(),
                redis: customers.redis().cloned(),
            }))
            .merge(webhook_routes);
        let router = customers.serve(router);
        let router = web::guard_sockets(router, &public_base_url, &settings.allowed_origins);
        Ok(Self {
            listener,
            addr,
            public_base_url,
            router,
            customers,
            webhooks: tracker,
            outbox,
            store,
            lock,
            twilio,
            bridge,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL Twilio is told to call (webhooks) and that signatures are
    /// checked against.
    pub fn public_base_url(&self) -> &Url {
        &self.public_base_url
    }

    /// The core (tests drive it directly).
    pub fn bridge(&self) -> &Bridge {
        &self.bridge
    }

    /// Serves until `shutdown` is cancelled or a part ends on its own, then
    /// shuts down in the order of the module doc.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            listener,
            router,
            customers,
            webhooks,
            outbox,
            store,
            lock,
            twilio,
            ..
        } = self;
        // Cancelled by `shutdown`, or by the supervisor when a part ended.
        let stop = shutdown.child_token();
        // The worker must not outlive this future: if it is dropped (its
        // task aborted), deliveries stop with it, as in a crash.
        let mut worker = AbortOnDropHandle::new(tokio::spawn(outbox.run(stop.clone())));
        let _probe = twilio.map(|t| AbortOnDropHandle::new(tokio::spawn(t.run(stop.clone()))));
        // Step 1's listener half: the server stops accepting once `stop`
        // fires; its connections go on until they end (step 5).
        let server =
            axum::serve(listener, router).with_graceful_shutdown(stop.clone().cancelled_owned());
        let mut server = std::pin::pin!(server.into_future());
        let mut failure = None;
        let (mut served, mut worked) = (false, false);
        tokio::select! {
            result = &mut server => {
                served = true;
                if let Err(error) = result {
                    failure = Some(anyhow::Error::new(error).context("serving HTTP"));
                } else if !stop.is_cancelled() {
                    failure = Some(anyhow::anyhow!("the HTTP server stopped on its own"));
                }
            }
            result = &mut worker => {
                worked = true;
                failure = worker_failure(result, stop.is_cancelled());
            }
            why = lock.lost() => {
                failure = Some(anyhow::anyhow!(why).context("the database lock"));
            }
            () = stop.cancelled() => {}
        }
        if let Some(error) = &failure {
            tracing::error!(error.cause_chain = %format!("{error:#}"), "a part of the bridge stopped; shutting down");
        }
        tracing::info!("shutting down: no new connections; draining deliveries and webhooks");

        // 1. Stop accepting.
        stop.cancel();
        customers.stop_accepting();

        // 2. Drain: the outbox's deliveries in flight, then the webhooks.
        if !worked && let Some(error) = worker_failure(worker.await, true) {
            failure.get_or_insert(error);
        }
        webhooks.close();
        if tokio::time::timeout(HTTP_GRACE, webhooks.wait())
            .await
            .is_err()
        {
            tracing::warn!("webhooks still running after the grace period");
        }

        // 3. Tell customers: done, what was drained was emitted as it
        //    settled (their sockets were open all along).
        // 4. Close sockets.
        tracing::info!("shutting down: closing customer connections");
        customers.close(HTTP_GRACE).await;

        // 5. HTTP: the server's last connections.
        if !served
            && let Ok(Err(error)) = tokio::time::timeout(HTTP_GRACE, &mut server)
                .await
                .inspect_err(|_| {
                    tracing::warn!("HTTP connections still open after the grace period; closing")
                })
        {
            failure.get_or_insert(anyhow::Error::new(error).context("serving HTTP"));
        }

        // 6. (Leases, when instances share a database: released here.)

        // 7. Store.
        store.close().await;
        drop(lock);
        tracing::info!("stopped");
        failure.map_or(Ok(()), Err)
    }
}

/// Asks Twilio whether it takes the configured credentials: refused (401/
/// 403) stops the start, naming the settings, unless
/// `FLEXBRIDGE_SKIP_TWILIO_CHECK`; unreachable only warns (messages queue
/// until it answers). Either way `/readyz` says so until a later probe
/// finds Twilio well.
async fn check_twilio(settings: &Settings) -> anyhow::Result<TwilioHealth> {
    let health = TwilioHealth::new(
        twilio_client(&settings.twilio)?,
        settings.flex.chat_service_sid.clone(),
        settings.twilio.credential_settings(),
    );
    match health.probe().await {
        TwilioStatus::Refused {
            status,
            settings: names,
        } if !settings.skip_twilio_check => {
            anyhow::bail!(
                "Twilio refused the bridge's credentials (HTTP {status}): check {names} \
                 (or set FLEXBRIDGE_SKIP_TWILIO_CHECK=true to start anyway, not ready)"
            )
        }
        TwilioStatus::Unreachable(why) => {
            tracing::warn!(%why, "Twilio does not answer at start; starting (not ready until it does)")
        }
        _ => {}
    }
    Ok(health)
}

/// Why the outbox worker's end is a failure (`None`: it ended as asked).
fn worker_failure(
    ended: Result<anyhow::Result<()>, tokio::task::JoinError>,
    asked_to_stop: bool,
) -> Option<anyhow::Error> {
    match ended {
        Ok(Ok(())) if asked_to_stop => None,
        Ok(Ok(())) => Some(anyhow::anyhow!("the outbox worker stopped on its own")),
        Ok(Err(error)) => Some(error.context("the outbox worker failed")),
        Err(error) => Some(anyhow::Error::new(error).context("the outbox worker panicked")),
    }
}

/// One backend of each kind, the configured one current. The other serves
/// the conversations it opened before a switch (and opens none unless its
/// own settings are complete).
fn backends(settings: &Settings, public_base_url: &Url) -> anyhow::Result<Backends> {
    let flex = &settings.flex;
    let client = twilio_client(&settings.twilio)?;
    let chat: Arc<dyn FlexBackend> = Arc::new(ChatBackend::new(
        client.clone(),
        flex.flex_flow_sid.clone(),
        flex.chat_service_sid.clone(),
        public_base_url,
    )?);
    let conversations: Arc<dyn FlexBackend> = Arc::new(ConversationsBackend::new(
        client,
        flex.chat_service_sid.clone(),
        public_base_url,
        flex.routing.clone(),
        flex.timers.clone(),
    )?);
    Ok(match flex.backend {
        BackendKind::Chat => Backends::new(chat, vec![conversations]),
        BackendKind::Conversations => Backends::new(conversations, vec![chat]),
    })
}

/// A REST client for the account `twilio` configures.
pub fn twilio_client(twilio: &TwilioSettings) -> anyhow::Result<TwilioClient> {
    TwilioClient::new(
        twilio.account_sid.clone(),
        twilio.rest_auth.clone(),
        twilio.api_base.clone(),
        Timeouts::default(),
    )
}

/// How this bridge uses its database: alone, unless it is PostgreSQL and
/// Redis joins several bridges on it.
pub fn sharing(settings: &Settings) -> Sharing {
    let postgres = Dialect::of_url(&settings.database_url) == Some(Dialect::Postgres);
    if postgres && settings.redis_url.is_some() {
        Sharing::Shared
    } else {
        Sharing::Alone
    }
}

/// The outbox's configuration from the settings.
fn outbox_config(settings: &OutboxSettings, sharing: Sharing) -> OutboxConfig {
    OutboxConfig {
        concurrency: settings.concurrency,
        base_backoff: settings.base_backoff,
        max_backoff: settings.max_backoff,
        give_up_after: settings.give_up_after,
        sweep_interval: settings.sweep_interval,
        shutdown_grace: settings.shutdown_grace,
        alone: sharing == Sharing::Alone,
        resync_interval: settings.resync_interval,
    }
}

/// `PUBLIC_BASE_URL`, or for `auto` the listener's own URL (an unspecified
/// address becomes loopback).
pub fn resolve_public_base_url(
    configured: &PublicBaseUrl,
    addr: SocketAddr,
) -> anyhow::Result<Url> {
    match configured {
        PublicBaseUrl::Fixed(url) => Ok(url.clone()),
        PublicBaseUrl::FromListener => {
            let ip = if addr.ip().is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                addr.ip()
            };
            let url = format!("http://{}", SocketAddr::new(ip, addr.port()));
            Url::parse(&url).with_context(|| format!("building the public URL {url}"))
        }
    }
}
