//! # flex-emulator
//!
//! A local Twilio Flex: the REST subset the bridge uses (Flex v1 with
//! Interactions, Chat v2, Conversations v1, TaskRouter v1, Studio v2
//! executions), Flex's behaviour for both backends — Programmable Chat
//! (flows, channels) and Flex Conversations (conversations, interactions,
//! states and timers) — with Studio "Send to Flex", tasks, reservations,
//! agents and signed webhooks, a control API for tests, and an agent console
//! — all on one port, no Twilio account. Contracts: `docs/architecture.md` §3.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use flex_emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::new(EmulatorConfig::from_seed(7));
//! let account = emulator.credentials().account_sid.clone();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! emulator.run(listener, shutdown).await
//! # }
//! ```
//!
//! # Layout
//! - `config.rs`   [`EmulatorConfig`], and the [`Credentials`] and [`Bootstrap`] SIDs a seed derives
//! - `sid.rs`      deterministic SIDs (SplitMix64 seeded by `--seed`)
//! - `clock.rs`    Twilio timestamps (whole seconds in REST, milliseconds in webhooks), the
//!   `DateCreated`/`DateUpdated` a client may send, µs stamps for the benchmark
//! - `app.rs`      shared state: the world's one `Mutex`, the event bus, the background tasks
//! - `alarms.rs`   the alarm clock: wrap-ups and conversation timers ring the world when due
//! - `world/`      the emulated account in memory and everything Flex does to it
//! - `api/`        the Twilio REST surface: the route table, auth, faults, params, pages, handlers
//! - `webhooks/`   the dispatcher: per-channel/conversation FIFO, signatures, retries, delivery log
//! - `control/`    the `/_emulator/` control API, faults, SSE events
//! - `console.rs`  the agent console's static files

mod alarms;
mod app;
mod clock;
mod config;
mod console;
mod control;
mod sid;
mod webhooks;
mod world;

pub mod api;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::error::ApiError;
use crate::app::App;
pub use crate::config::{
    Bootstrap, BootstrapAgent, ConfigError, Credentials, DEFAULT_EVENT_BUFFER, EmulatorConfig,
    MAX_EVENT_BUFFER,
};

/// A running (or ready to run) emulator. Cheap to clone: clones share the
/// same account.
#[derive(Clone)]
pub struct Emulator {
    app: Arc<App>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("config", &self.app.config)
            .field("credentials", &self.app.credentials)
            .finish()
    }
}

impl Emulator {
    /// Builds the account the configuration describes (nothing listens yet).
    pub fn new(config: EmulatorConfig) -> Self {
        Self {
            app: Arc::new(App::new(config)),
        }
    }

    /// The credentials to call it with (and that sign its webhooks).
    pub fn credentials(&self) -> &Credentials {
        &self.app.credentials
    }

    /// The SIDs of the bootstrapped account.
    pub fn bootstrap(&self) -> &Bootstrap {
        &self.app.bootstrap
    }

    pub fn config(&self) -> &EmulatorConfig {
        &self.app.config
    }

    /// Every route: Twilio REST, `/_emulator/` control API, agent console.
    /// Starts the webhook dispatcher and the alarm clock on the current tokio runtime.
    pub fn router(&self) -> Router {
        self.app.start_workers();
        Router::new()
            .merge(api::router())
            .merge(control::router())
            .merge(console::router())
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(axum::middleware::from_fn(read_whole_body))
            .layer(DefaultBodyLimit::max(api::MAX_BODY_BYTES))
            .layer(tower_http::trace::TraceLayer::new_for_http())
            .with_state(self.app.clone())
    }

    /// Serves on `listener` until `shutdown` fires, then finishes the
    /// requests in flight (SSE streams are closed) and returns.
    pub fn run(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
        let app = self.app.clone();
        let router = self.router();
        async move {
            if app.config.public_url().is_none()
                && let Ok(address) = listener.local_addr()
            {
                app.lock().event_base_url = format!("http://{address}");
            }
            let streams = app.streams.clone();
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    shutdown.cancelled().await;
                    streams.cancel();
                })
                .await
        }
    }
}

/// Reads every request body (up to the limit) before any handler runs, so
/// that an early answer (401, 404, a fault) never leaves unread bytes that
/// would make hyper drop a keep-alive connection a client is about to reuse.
async fn read_whole_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    // A media upload may be larger than any form.
    let limit = if api::mcs::is_upload(parts.uri.path()) {
        api::mcs::MAX_MEDIA_BYTES
    } else {
        api::MAX_BODY_BYTES
    };
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(error) if error.to_string().contains("length limit") => {
            ApiError::payload_too_large(limit).into_response()
        }
        Err(error) => ApiError::bad_request(format!("The request body could not be read: {error}"))
            .into_response(),
    }
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}
