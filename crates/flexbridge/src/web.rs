//! Plain HTTP: the customer web chat (embedded at build time by `build.rs`
//! from `widget/`), `/healthz`, `/readyz` (the database answers, and Twilio
//! did at its last probe: `crate::flex::health`) and `/metrics` (and an
//! empty `/favicon.ico`).
//!
//! The widget's files are served with a strict Content-Security-Policy
//! (`default-src 'self'`; scripts, styles and connections only to this
//! origin, plus its ws/wss form for Socket.IO), `nosniff`, no referrer, no
//! framing, and `Cache-Control: no-cache` with an `ETag` so a browser
//! revalidates cheaply and never runs a stale widget. No CORS headers are
//! sent: the widget is same-origin.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::core::ids::hex;
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

#[derive(Clone)]
struct WebState {
    store: Store,
    /// Twilio's last answer to the health probe (none: not checked, e.g.
    /// a test's fake Flex).
    twilio: Option<TwilioHealth>,
    csp: HeaderValue,
}

/// The widget, health and metrics routes.
pub fn routes(store: Store, public_base_url: &Url, twilio: Option<TwilioHealth>) -> Router {
    let state = WebState {
        store,
        twilio,
        csp: content_security_policy(public_base_url),
    };
    Router::new()
        .route("/", get(index))
        .route("/widget.js", get(script))
        .route("/widget.css", get(style))
        .route("/favicon.ico", get(favicon))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The policy: this origin only; Socket.IO's websocket to the public host.
pub fn content_security_policy(public_base_url: &Url) -> HeaderValue {
    let host = match (public_base_url.host_str(), public_base_url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => String::new(),
    };
    let sockets = if host.is_empty() {
        String::new()
    } else {
        format!(" ws://{host} wss://{host}")
    };
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{sockets}; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'; object-src 'none'"
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
}

fn serve(asset: &Asset, request: &HeaderMap, csp: &HeaderValue) -> Response {
    let etag = format!("\"{}\"", &hex(&Sha256::digest(asset.bytes))[..32]);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.bytes,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn index(State(state): State<WebState>, headers: HeaderMap) -> Response {
    serve(&INDEX, &headers, &state.csp)
}

async fn script(State(state): State<WebState>, headers: HeaderMap) -> Response {
    serve(&SCRIPT, &headers, &state.csp)
}

async fn style(State(state): State<WebState>, headers: HeaderMap) -> Response {
    serve(&STYLE, &headers, &state.csp)
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

/// Ready: the database answers, and Twilio did at its last probe (and took
/// the credentials); otherwise 503 with the reason.
async fn readyz(State(state): State<WebState>) -> Response {
    if let Err(error) = state.store.ping().await {
        tracing::warn!(error.cause_chain = %crate::telemetry::chain(&error), "not ready");
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
    }
    if let Some(why) = state.twilio.as_ref().and_then(|t| t.status().not_ready()) {
        return (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    }
    "ready".into_response()
}

async fn metrics() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        crate::telemetry::metrics().render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_only_this_origin_and_its_websocket() {
        let csp = content_security_policy(&Url::parse("https://chat.example.com").unwrap());
        let csp = csp.to_str().unwrap();
        assert!(csp.starts_with("default-src 'self';"));
        assert!(csp.contains("connect-src 'self' ws://chat.example.com wss://chat.example.com;"));
        assert!(!csp.contains("unsafe-inline"));
        let local = content_security_policy(&Url::parse("http://127.0.0.1:3000").unwrap());
        assert!(local.to_str().unwrap().contains("ws://127.0.0.1:3000"));
    }
}
