//! Plain HTTP: the customer web chat (embedded at build time by `build.rs`
//! from `widget/`), its settings as JSON, the embed loader, the
//! transcript download, `/healthz`, `/readyz` (the database answers, Redis
//! too when it joins several bridges, and Twilio did at its last probe:
//! `crate::flex::health`) and `/metrics` (and an empty `/favicon.ico`).
//!
//! - `/` (the chat page), `/widget.js`, `/widget.css`: a strict
//!   Content-Security-Policy (`default-src 'self'`; scripts, styles and
//!   connections only to this origin, plus its ws/wss form for Socket.IO;
//!   images also from the logo's origin), `nosniff`, no referrer, and
//!   framing only by the bridge itself and the sites of `ALLOWED_ORIGINS`
//!   ([`policy`]). The same page is the full page at `/` and, framed, the
//!   panel of the embed (`?embed=1`).
//! - `/embed.js`: the loader a site includes (`docs/embedding.md`); it may
//!   be loaded from anywhere (`Cross-Origin-Resource-Policy: cross-origin`),
//!   but does anything only on a listed site: it needs `/widget.json`.
//! - `/widget.json`: the `[widget]` settings ([`widget_config`]); CORS for
//!   the listed sites only (the embed's launcher reads it), never `*`.
//! - `/transcript`: one of the customer's conversations as text, for the
//!   holder of their resume token ([`transcript`]).
//! - `/attachments`, `/attachments/{id}`: a customer's uploads and the
//!   files of their messages, for the holder of their token ([`attachments`]).
//!
//! Static files are served with `Cache-Control: no-cache` and an `ETag`,
//! so a browser revalidates cheaply and never runs a stale widget.
//! Socket.IO's own origin check is [`guard_sockets`].

pub mod attachments;
pub mod policy;
pub mod transcript;
pub mod widget_config;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest as _, Sha256};
use url::Url;

pub use self::policy::{OriginPolicy, content_security_policy, guard_sockets};
use crate::config::{AllowedOrigins, WidgetSettings};
use crate::core::Bridge;
use crate::core::ids::hex;
use crate::customer::cluster::RedisFabric;
use crate::flex::health::TwilioHealth;
use crate::store::Store;

/// One embedded file.
struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
}

const INDEX: Asset = Asset {
    bytes: include_bytes!(concat!(env!("OUT_DIR"), "/widget/index.html")),
    content_type: "text/html; charset=utf-8",
};
const SCRIPT: Asset = Asset {
    bytes: include_bytes!(concat!(env!("OUT_DIR"), "/widget/widget.js")),
    content_type: "text/javascript; charset=utf-8",
};
const STYLE: Asset = Asset {
    bytes: include_bytes!(concat!(env!("OUT_DIR"), "/widget/widget.css")),
    content_type: "text/css; charset=utf-8",
};
const EMBED: Asset = Asset {
    bytes: include_bytes!(concat!(env!("OUT_DIR"), "/widget/embed.js")),
    content_type: "text/javascript; charset=utf-8",
};

/// What the web routes serve from.
pub struct WebParts {
    pub store: Store,
    pub bridge: Bridge,
    pub public_base_url: Url,
    pub allowed_origins: AllowedOrigins,
    pub widget: WidgetSettings,
    /// Twilio's last answer to the health probe (none: not checked, e.g.
    /// a test's fake Flex).
    pub twilio: Option<TwilioHealth>,
    /// The Redis that joins this bridge's rooms to others' (none: alone).
    pub redis: Option<RedisFabric>,
}

#[derive(Clone)]
struct WebState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    bridge: Bridge,
    csp: HeaderValue,
    origins: OriginPolicy,
    /// `/widget.json`'s body, made once.
    widget_json: Bytes,
    /// For the transcript's heading.
    widget: WidgetSettings,
    twilio: Option<TwilioHealth>,
    redis: Option<RedisFabric>,
}

/// The widget, embed, transcript, health and metrics routes.
pub fn routes(parts: WebParts) -> Router {
    let origins = OriginPolicy::new(&parts.public_base_url, &parts.allowed_origins);
    let csp = content_security_policy(
        &parts.public_base_url,
        &origins,
        parts.widget.logo_url.as_ref(),
    );
    let state = WebState {
        inner: Arc::new(Inner {
            store: parts.store,
            bridge: parts.bridge,
            csp,
            origins,
            widget_json: Bytes::from(widget_config::to_json(&parts.widget).to_string()),
            widget: parts.widget,
            twilio: parts.twilio,
            redis: parts.redis,
        }),
    };
    Router::new()
        .route("/", get(index))
        .route("/widget.js", get(script))
        .route("/widget.css", get(style))
        .route("/embed.js", get(embed))
        .route(
            "/widget.json",
            get(widget_json).options(widget_json_preflight),
        )
        .route("/transcript", get(transcript::download))
        .route("/attachments", axum::routing::post(attachments::upload))
        .route("/attachments/{id}", get(attachments::download))
        .route("/favicon.ico", get(favicon))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// `bytes` as `content_type`, revalidated by `ETag` (no copy: `Bytes` of
/// a static file, or of the settings made once).
fn cached(bytes: Bytes, content_type: &'static str, request: &HeaderMap) -> Response {
    let etag = format!("\"{}\"", &hex(&Sha256::digest(&bytes))[..32]);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            bytes,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A file of the chat page, with the page's policy.
fn serve(asset: &Asset, request: &HeaderMap, state: &WebState) -> Response {
    let mut response = cached(Bytes::from_static(asset.bytes), asset.content_type, request);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, state.inner.csp.clone());
    if let Some(value) = state.inner.origins.x_frame_options() {
        headers.insert(header::X_FRAME_OPTIONS, value);
    }
    response
}

async fn index(State(state): State<WebState>, headers: HeaderMap) -> Response {
    serve(&INDEX, &headers, &state)
}

async fn script(State(state): State<WebState>, headers: HeaderMap) -> Response {
    serve(&SCRIPT, &headers, &state)
}

async fn style(State(state): State<WebState>, headers: HeaderMap) -> Response {
    serve(&STYLE, &headers, &state)
}

/// The loader other sites include: loadable from anywhere, it works only
/// where `/widget.json` (CORS) and framing (`frame-ancestors`) let it.
async fn embed(headers: HeaderMap) -> Response {
    let mut response = cached(
        Bytes::from_static(EMBED.bytes),
        EMBED.content_type,
        &headers,
    );
    response.headers_mut().insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    );
    response
}

async fn widget_json(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let mut response = cached(
        state.inner.widget_json.clone(),
        "application/json",
        &headers,
    );
    allow_listed_origin(&state, &headers, response.headers_mut());
    response
}

/// The preflight a listed site's `fetch` may send.
async fn widget_json_preflight(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if allow_listed_origin(&state, &headers, response.headers_mut()) {
        let out = response.headers_mut();
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(Method::GET.as_str()),
        );
        out.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

/// CORS for a listed site only (the bridge's own pages need none).
fn allow_listed_origin(state: &WebState, request: &HeaderMap, out: &mut HeaderMap) -> bool {
    out.insert(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = policy::origin_of(request).filter(|o| state.inner.origins.lists(o)) else {
        return false;
    };
    if let Ok(value) = HeaderValue::from_str(origin) {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    true
}

/// No icon; answering 204 keeps browsers from logging a 404 on every load.
async fn favicon() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=86400"),
        )],
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready: the database answers, Redis too (with several bridges: without
/// it their customers miss each other's fan-out), and Twilio did at its
/// last probe (and took the credentials); otherwise 503 with the reason.
async fn readyz(State(state): State<WebState>) -> Response {
    if let Err(error) = state.inner.store.ping().await {
        tracing::warn!(error.cause_chain = %crate::telemetry::chain(&error), "not ready");
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
    }
    if let Some(redis) = &state.inner.redis
        && let Err(error) = redis.ping().await
    {
        tracing::warn!(%error, "not ready: Redis does not answer");
        return (StatusCode::SERVICE_UNAVAILABLE, "redis unavailable").into_response();
    }
    let twilio = state.inner.twilio.as_ref();
    if let Some(why) = twilio.and_then(|t| t.status().not_ready()) {
        return (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    }
    "ready".into_response()
}

/// The metrics, with the store's counts (live conversations, outbox
/// depth) read now: exact at every scrape, whatever queued or settled
/// since. A store that cannot answer leaves the last values.
async fn metrics(State(state): State<WebState>) -> Response {
    use crate::telemetry::families::{CONVERSATIONS_OPEN, OUTBOX_DEPTH};
    let store = &state.inner.store;
    match store.conversations().count_live().await {
        Ok(live) => metrics::gauge!(CONVERSATIONS_OPEN).set(live as f64),
        Err(error) => {
            tracing::warn!(error.cause_chain = %crate::telemetry::chain(&error), "counting live conversations")
        }
    }
    match store.outbox().depth().await {
        Ok(depth) => metrics::gauge!(OUTBOX_DEPTH).set(depth as f64),
        Err(error) => {
            tracing::warn!(error.cause_chain = %crate::telemetry::chain(&error), "counting the outbox")
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        crate::telemetry::render(),
    )
        .into_response()
}
