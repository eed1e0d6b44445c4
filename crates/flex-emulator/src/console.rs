//! The agent console's static files (`console/`, maintained with the
//! console): `GET /` → `index.html`, `/console.js`, `/console.css`, embedded
//! in the binary. The page talks to the control API and the SSE stream.
//!
//! The page is served with a strict Content-Security-Policy (scripts,
//! styles and connections from this origin only; no inline scripts or
//! `style` attributes): customer text can never run as code, even if the
//! page forgot to escape it.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::app::App;

const INDEX_HTML: &str = include_str!("../console/index.html");
const CONSOLE_JS: &str = include_str!("../console/console.js");
const CONSOLE_CSS: &str = include_str!("../console/console.css");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
                   form-action 'self'";

pub(crate) fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(index))
        .route("/console.js", get(script))
        .route("/console.css", get(style))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
}

async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", CONSOLE_JS)
}

async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", CONSOLE_CSS)
}
