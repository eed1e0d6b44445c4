//! Who may use the web chat from where: the page's
//! Content-Security-Policy (whose `frame-ancestors` lists the sites that
//! may frame it) and the origin check in front of Socket.IO, both made
//! from one list, `ALLOWED_ORIGINS` (`docs/embedding.md`).
//!
//! "Same origin" is the bridge's own: its `PUBLIC_BASE_URL`, or the
//! request's own `Host` (a browser sets `Host` to the address it
//! connects to, so a page of another origin never matches it). A request
//! without an `Origin` header is not from a page (browsers send one on
//! every websocket handshake and every cross-origin request), so the
//! check lets it through: a phone app or a bot is no page. What the check
//! stops is a page of another site opening a socket with a customer's
//! token (stolen, or planted by that page).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::config::AllowedOrigins;

/// The origins a page may come from: the bridge's own and the listed ones.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    own: String,
    allowed: Vec<String>,
}

impl OriginPolicy {
    pub fn new(public_base_url: &Url, allowed: &AllowedOrigins) -> Self {
        Self {
            own: public_base_url.origin().ascii_serialization(),
            allowed: allowed.serialized(),
        }
    }

    /// Whether a request's `Origin` may use the chat (`host` is the
    /// request's `Host`).
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        if origin == self.own || self.allowed.iter().any(|a| a == origin) {
            return true;
        }
        // The request's own host: `scheme://host[:port]` with that authority.
        let authority = origin.split_once("://").map(|(_, rest)| rest);
        matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
    }

    /// Whether `origin` is one of the listed sites (not the bridge's own).
    pub fn lists(&self, origin: &str) -> bool {
        self.allowed.iter().any(|a| a == origin)
    }

    /// `frame-ancestors`: the bridge itself and the listed sites.
    pub fn frame_ancestors(&self) -> String {
        let mut sources = vec!["'self'".to_owned()];
        sources.extend(self.allowed.iter().cloned());
        sources.join(" ")
    }

    /// `X-Frame-Options`, for browsers without `frame-ancestors`: it cannot
    /// list sites, so it is sent only when no site is listed.
    pub fn x_frame_options(&self) -> Option<HeaderValue> {
        self.allowed
            .is_empty()
            .then_some(HeaderValue::from_static("SAMEORIGIN"))
    }
}

/// The page's policy: this origin only (plus the logo's, for images);
/// Socket.IO's websocket to the public host; framing by
/// [`OriginPolicy::frame_ancestors`].
pub fn content_security_policy(
    public_base_url: &Url,
    policy: &OriginPolicy,
    logo: Option<&Url>,
) -> HeaderValue {
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
    let images = logo
        .map(|url| format!(" {}", url.origin().ascii_serialization()))
        .unwrap_or_default();
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:{images}; \
         connect-src 'self'{sockets}; base-uri 'none'; form-action 'self'; \
         frame-ancestors {}; object-src 'none'",
        policy.frame_ancestors()
    );
    HeaderValue::from_str(&csp).unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
}

/// Puts the origin check in front of Socket.IO (`/socket.io/`) on
/// `router` (which must already carry the Socket.IO layer): a page from an
/// origin that is neither the bridge's nor listed gets 403 before
/// Engine.IO sees the request, on both transports.
pub fn guard_sockets(router: Router, public_base_url: &Url, allowed: &AllowedOrigins) -> Router {
    let policy = Arc::new(OriginPolicy::new(public_base_url, allowed));
    router.layer(middleware::from_fn_with_state(policy, guard))
}

async fn guard(State(policy): State<Arc<OriginPolicy>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let refused = is_socket_path(request.uri().path())
        && origin_of(headers).is_some_and(|origin| !policy.allows(origin, host_of(headers)));
    if refused {
        metrics::counter!(crate::telemetry::families::SOCKET_ORIGIN_REFUSED).increment(1);
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "this site may not open the chat (ALLOWED_ORIGINS)",
        )
            .into_response();
    }
    next.run(request).await
}

fn is_socket_path(path: &str) -> bool {
    path == "/socket.io" || path.starts_with("/socket.io/")
}

/// The request's `Origin`, unless absent or `null` (`null` is a page
/// with an opaque origin: a sandboxed frame, a file; refused like any
/// other unknown one, so it is returned as is).
pub fn origin_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

pub fn host_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(list: &str) -> OriginPolicy {
        OriginPolicy::new(
            &Url::parse("https://chat.example.com").unwrap(),
            &AllowedOrigins::parse(list).unwrap(),
        )
    }

    #[test]
    fn only_the_bridge_its_host_and_the_listed_sites_are_allowed() {
        let p = policy("https://www.shop.example");
        assert!(p.allows("https://chat.example.com", None));
        assert!(p.allows("https://www.shop.example", None));
        assert!(p.allows("http://127.0.0.1:4000", Some("127.0.0.1:4000")));
        assert!(!p.allows("https://evil.example", Some("chat.example.com")));
        assert!(!p.allows("null", Some("chat.example.com")));
        assert!(!p.allows("https://www.shop.example.evil", None));
        assert!(p.lists("https://www.shop.example") && !p.lists("https://chat.example.com"));
    }

    #[test]
    fn framing_follows_the_list_and_the_default_is_the_bridge_alone() {
        let alone = policy("");
        assert_eq!(alone.frame_ancestors(), "'self'");
        assert_eq!(alone.x_frame_options().unwrap(), "SAMEORIGIN");
        let listed = policy("https://a.example, http://localhost:8080");
        assert_eq!(
            listed.frame_ancestors(),
            "'self' https://a.example http://localhost:8080"
        );
        assert!(listed.x_frame_options().is_none());
    }

    #[test]
    fn the_page_policy_allows_only_this_origin_its_websocket_and_the_logo() {
        let base = Url::parse("https://chat.example.com").unwrap();
        let logo = Url::parse("https://cdn.example.net/logo.png").unwrap();
        let csp = content_security_policy(&base, &policy(""), Some(&logo));
        let csp = csp.to_str().unwrap();
        assert!(csp.starts_with("default-src 'self';"));
        assert!(csp.contains("connect-src 'self' ws://chat.example.com wss://chat.example.com;"));
        assert!(csp.contains("img-src 'self' data: blob: https://cdn.example.net;"));
        assert!(csp.contains("frame-ancestors 'self';"));
        assert!(!csp.contains("unsafe-inline"));
        let local = content_security_policy(
            &Url::parse("http://127.0.0.1:3000").unwrap(),
            &policy(""),
            None,
        );
        assert!(local.to_str().unwrap().contains("ws://127.0.0.1:3000"));
    }
}
