//! The signed inbound routes: `POST {backend.webhook_path()}` for every
//! backend (`/webhooks/conversations`, `/webhooks/chat`), one code path;
//! only the form's parser is the backend's.
//!
//! 1. The body is limited (64 KiB) on these routes only.
//! 2. `X-Twilio-Signature` is validated over the URL Twilio called, which
//!    is the configured `PUBLIC_BASE_URL` + the request's path and query
//!    (never the `Host` header, which a client controls), with the
//!    `twilio-signature` crate (port tolerance, constant time). Missing or
//!    bad → 403, and nothing is stored or delivered (the form is decoded
//!    once, for the signature and then the event).
//! 3. The form becomes a typed [`FlexEvent`] at this edge (malformed → 400).
//! 4. The core applies it; the answer (200, empty) comes only once the effect is
//!    committed, so Twilio's retry of a failed delivery is meaningful
//!    (store failure → 500). An event for an unknown channel is answered
//!    200 and logged: retrying cannot help.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use twilio_signature::{RequestValidator, SIGNATURE_HEADER, SignatureError};
use url::Url;

use crate::core::backend::{Backends, FlexBackend, FlexEvent, WebhookParseError};
use crate::core::bridge::{Bridge, BridgeError, EventOutcome};
use crate::core::chain;
use crate::telemetry::families;

/// Largest webhook body accepted.
pub const MAX_WEBHOOK_BYTES: usize = 64 * 1024;

/// What the webhook routes need.
#[derive(Clone)]
pub struct WebhookState {
    pub bridge: Bridge,
    pub backends: Backends,
    /// Built from the account's auth token: Twilio signs with it even when
    /// REST calls use an API key.
    pub validator: RequestValidator,
    pub public_base_url: Url,
}

/// One route's state: the shared state and the backend whose path it is.
#[derive(Clone)]
struct RouteState {
    shared: WebhookState,
    backend: Arc<dyn FlexBackend>,
}

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("invalid webhook signature: {0}")]
    BadSignature(#[from] SignatureError),
    #[error("webhooks must be application/x-www-form-urlencoded")]
    NotAForm,
    #[error(transparent)]
    Malformed(#[from] WebhookParseError),
    #[error("applying the webhook")]
    Internal(#[from] BridgeError),
}

impl WebhookError {
    /// Why it was refused (`flexbridge_webhooks_rejected_total`'s
    /// `reason`); `None` for a webhook that failed in the bridge.
    fn rejection(&self) -> Option<&'static str> {
        match self {
            Self::BadSignature(_) => Some("bad_signature"),
            Self::NotAForm => Some("not_a_form"),
            Self::Malformed(_) => Some("malformed"),
            Self::Internal(_) => None,
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::BadSignature(_) => StatusCode::FORBIDDEN,
            Self::NotAForm => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let text = match &self {
            // Say nothing about why a signature failed.
            Self::BadSignature(_) => "forbidden".to_owned(),
            Self::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        (status, text).into_response()
    }
}

/// The webhook route of every backend in `state.backends`.
pub fn routes(state: WebhookState) -> Router {
    let mut router = Router::new();
    for backend in state.backends.all() {
        let route = RouteState {
            shared: state.clone(),
            backend: backend.clone(),
        };
        router = router.route(backend.webhook_path(), post(receive).with_state(route));
    }
    router.layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
}

async fn receive(
    State(state): State<RouteState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match handle(&state, &uri, &headers, &body).await {
        Ok(outcome) => {
            metrics::counter!(families::WEBHOOKS, "result" => outcome.as_str()).increment(1);
            StatusCode::OK.into_response()
        }
        Err(error) => {
            let result = match error.rejection() {
                Some(reason) => {
                    metrics::counter!(families::WEBHOOKS_REJECTED, "reason" => reason).increment(1);
                    "rejected"
                }
                None => "error",
            };
            metrics::counter!(families::WEBHOOKS, "result" => result).increment(1);
            if let WebhookError::Internal(_) = &error {
                tracing::error!(path = uri.path(), error.cause_chain = %chain(&error), "webhook failed");
            } else {
                tracing::warn!(path = uri.path(), error = %error, "webhook refused");
            }
            error.into_response()
        }
    }
}

async fn handle(
    route: &RouteState,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<EventOutcome, WebhookError> {
    let state = &route.shared;
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let url = format!(
        "{}{}",
        state.public_base_url.as_str().trim_end_matches('/'),
        path_and_query
    );
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok());
    // Decoded once, for the signature and the event; nothing of it is
    // used before the signature holds.
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    state
        .validator
        .validate_decoded(&url, body, &params, signature)?;
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(WebhookError::NotAForm);
    }
    let event = route.backend.parse_webhook(&params)?;
    if let FlexEvent::Ignored { event_type, reason } = &event {
        tracing::debug!(%event_type, %reason, "webhook ignored");
    }
    let header = event.header().cloned();
    let outcome = state
        .bridge
        .apply_flex_event(&route.backend.name(), event)
        .await?;
    if let (EventOutcome::UnknownChannel, Some(header)) = (outcome, header) {
        tracing::warn!(event_type = %header.event_type, channel = %header.channel, "webhook for a channel no conversation has");
    }
    Ok(outcome)
}
