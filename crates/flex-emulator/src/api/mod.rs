//! The Twilio REST surface. The route table [`ROUTES`] is data — method,
//! path template, the spec's `operationId`, the parameters the handler may
//! read — and it both builds the router and feeds the spec-conformance test
//! (`tests/spec_conformance.rs`), so nothing is served that the specs do not
//! declare.
//!
//! Every route runs through `serve`: Basic auth → HTTP faults → body
//! (≤ 1 MiB, form-encoded) and query decoding → the handler, which runs
//! synchronously under the world lock → the answer (and a fault's late
//! effect: `lands`, delay).
//!
//! - `error.rs`   Twilio's error JSON
//! - `auth.rs`    HTTP Basic with account or API key credentials
//! - `params.rs`  strict form decoding, typed parameter getters
//! - `page.rs`    `PageSize`/`Page`/`PageToken` and the `meta` envelope
//! - `webhook_config.rs` the `Configuration.*` of Chat channel and conversation-scoped webhooks
//! - `mcs.rs`     the Media Content Service (uploads, media, temporary content), outside the table
//! - `flex.rs`, `chat.rs`, `messaging.rs`, `taskrouter.rs`, `studio.rs`,
//!   `conversations.rs`, `interactions.rs`: handlers

pub mod error;

mod auth;
mod chat;
mod conversations;
mod flex;
mod interactions;
pub mod mcs;
mod messaging;
mod page;
mod params;
mod routes;
mod studio;
mod taskrouter;
mod webhook_config;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, RawPathParams, Request};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use serde_json::Value;

use self::error::ApiError;
pub use self::page::PageLimits;
use self::params::{Params, decode_pairs};
pub use self::routes::ROUTES;
use crate::app::App;
use crate::control::faults::HttpFaultAction;
use crate::world::{Actor, Render, World, WorldError};

/// The largest request body accepted (413 beyond).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Which Twilio product (and so which spec file) a route belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Flex,
    Chat,
    Conversations,
    TaskRouter,
    Studio,
}

impl Api {
    /// The spec file in `spec/twilio-oai/` that declares the route.
    pub fn spec_file(self) -> &'static str {
        match self {
            Api::Flex => "twilio_flex_v1.json",
            Api::Chat => "twilio_chat_v2.json",
            Api::Conversations => "twilio_conversations_v1.json",
            Api::TaskRouter => "twilio_taskrouter_v1.json",
            Api::Studio => "twilio_studio_v2.json",
        }
    }
}

/// An HTTP method the REST routes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Delete => MethodFilter::DELETE,
        }
    }
}

/// What a handler answers.
#[derive(Debug)]
pub(crate) enum Reply {
    Created(Value),
    Ok(Value),
    NoContent,
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Created(body) => (StatusCode::CREATED, axum::Json(body)).into_response(),
            Reply::Ok(body) => (StatusCode::OK, axum::Json(body)).into_response(),
            Reply::NoContent => StatusCode::NO_CONTENT.into_response(),
        }
    }
}

pub(crate) type Handler = fn(&mut World, &Call) -> Result<Reply, ApiError>;

/// One served Twilio operation.
#[derive(Clone, Copy)]
pub struct Route {
    pub api: Api,
    pub verb: Verb,
    /// The spec's path template, e.g. `/v1/FlexFlows/{Sid}`.
    pub path: &'static str,
    pub operation_id: &'static str,
    /// The form (POST) or query (GET, DELETE) parameters the handler reads.
    pub params: &'static [&'static str],
    /// `Some` for list operations (which also take `PageSize`, `Page`, `PageToken`).
    pub page: Option<PageLimits>,
    /// Whether the operation takes the `X-Twilio-Webhook-Enabled` header.
    pub webhook_header: bool,
    pub(crate) handler: Handler,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({})",
            self.verb.as_str(),
            self.path,
            self.operation_id
        )
    }
}

impl Route {
    /// The names of the path parameters, in order (`ServiceSid`, `Sid`, …).
    pub fn path_params(&self) -> impl Iterator<Item = &'static str> {
        self.path.split('/').filter_map(|segment| {
            segment
                .strip_prefix('{')
                .and_then(|rest| rest.strip_suffix('}'))
        })
    }

    /// The template as axum wants it: parameters renamed by position
    /// (`{p0}`, `{p1}`, …) so that sibling routes never disagree on a name.
    fn axum_path(&self) -> String {
        let mut index = 0;
        self.path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    index += 1;
                    format!("{{p{}}}", index - 1)
                } else {
                    segment.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// One request, decoded, as a handler sees it.
pub(crate) struct Call {
    pub route: &'static Route,
    path_values: Vec<String>,
    pub params: Params,
    /// Base of absolute URLs (`--public-url`, or `http://{Host}`).
    pub base_url: String,
    /// The request path, for page URLs and 404 messages.
    pub path: String,
    webhook_enabled: bool,
}

impl Call {
    /// A path parameter by its spec name.
    pub fn path_param(&self, name: &str) -> &str {
        let value = self
            .route
            .path_params()
            .position(|candidate| candidate == name)
            .and_then(|at| self.path_values.get(at));
        debug_assert!(
            value.is_some(),
            "{:?} has no path parameter {name}",
            self.route
        );
        value.map_or("", String::as_str)
    }

    pub fn render<'a>(&'a self, world: &'a World) -> Render<'a> {
        world.render(&self.base_url)
    }

    /// Who acts: the REST API, firing webhooks only with the header.
    pub fn actor(&self) -> Actor {
        Actor::api(self.webhook_enabled)
    }

    /// Turns a refused change into Twilio's error for this request.
    pub fn fail(&self, error: WorldError) -> ApiError {
        ApiError::from_world(error, &self.path)
    }
}

/// The router of every REST route (state: the app).
pub(crate) fn router() -> Router<Arc<App>> {
    let mut by_path: Vec<(String, MethodRouter<Arc<App>>)> = Vec::new();
    for route in ROUTES.iter() {
        let path = route.axum_path();
        let handler = move |axum::extract::State(app): axum::extract::State<Arc<App>>,
                            request: Request| serve(app, route, request);
        match by_path.iter_mut().find(|(existing, _)| *existing == path) {
            Some((_, methods)) => {
                let merged = std::mem::take(methods).on(route.verb.filter(), handler);
                *methods = merged;
            }
            None => by_path.push((path, MethodRouter::new().on(route.verb.filter(), handler))),
        }
    }
    by_path
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(&path, methods)
        })
        .merge(mcs::router())
}

/// Base of the absolute URLs in an answer.
pub(crate) fn base_url(app: &App, headers: &HeaderMap) -> String {
    if let Some(url) = app.config.public_url() {
        return url.to_owned();
    }
    headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .filter(|host| !host.is_empty() && !host.contains(['/', ' ', '@']))
        .map_or_else(
            || "http://localhost".to_owned(),
            |host| format!("http://{host}"),
        )
}

async fn serve(app: Arc<App>, route: &'static Route, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    if let Err(error) = auth::check(&parts.headers, &app.credentials) {
        return error.into_response();
    }
    let fault = app
        .lock()
        .faults
        .take_http(parts.method.as_str(), parts.uri.path());
    match fault {
        Some(HttpFaultAction::Error {
            status,
            lands: false,
        }) => {
            return ApiError::injected(status).into_response();
        }
        Some(HttpFaultAction::RateLimit {
            retry_after,
            lands: false,
        }) => {
            return ApiError::rate_limited(retry_after).into_response();
        }
        _ => {}
    }
    let answer = match decode(&app, route, &mut parts, body).await {
        Ok(call) => {
            let result = (route.handler)(&mut app.lock(), &call);
            result.into_response()
        }
        Err(error) => error.into_response(),
    };
    match fault {
        Some(HttpFaultAction::Error {
            status,
            lands: true,
        }) => ApiError::injected(status).into_response(),
        Some(HttpFaultAction::RateLimit {
            retry_after,
            lands: true,
        }) => ApiError::rate_limited(retry_after).into_response(),
        Some(HttpFaultAction::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            answer
        }
        _ => answer,
    }
}

/// Decodes path, query, body and headers into a [`Call`].
async fn decode(
    app: &App,
    route: &'static Route,
    parts: &mut Parts,
    body: Body,
) -> Result<Call, ApiError> {
    let path = parts.uri.path().to_owned();
    let path_values = match axum::RequestPartsExt::extract::<RawPathParams>(parts).await {
        Ok(raw) => raw.iter().map(|(_, value)| value.to_owned()).collect(),
        Err(_) => return Err(ApiError::not_found(&path)),
    };
    let pairs = match route.verb {
        Verb::Post => {
            let bytes = read_body(parts, body).await?;
            decode_pairs(&bytes)
        }
        Verb::Get | Verb::Delete => decode_pairs(parts.uri.query().unwrap_or_default().as_bytes()),
    }
    .map_err(|error| ApiError::bad_request(format!("The request could not be decoded: {error}")))?;
    let webhook_enabled = if route.webhook_header {
        match parts
            .headers
            .get("X-Twilio-Webhook-Enabled")
            .map(|v| v.to_str())
        {
            None => false,
            Some(Ok(value)) if value.eq_ignore_ascii_case("true") => true,
            Some(Ok(value)) if value.eq_ignore_ascii_case("false") => false,
            Some(_) => {
                return Err(ApiError::invalid_param(
                    "X-Twilio-Webhook-Enabled",
                    "must be true or false",
                ));
            }
        }
    } else {
        false
    };
    Ok(Call {
        route,
        path_values,
        params: Params::new(pairs, route.params),
        base_url: base_url(app, &parts.headers),
        path,
        webhook_enabled,
    })
}

/// The body, at most [`MAX_BODY_BYTES`], which must be a form when present.
async fn read_body(parts: &Parts, body: Body) -> Result<Bytes, ApiError> {
    let request = Request::from_parts(parts.clone(), body);
    let bytes = Bytes::from_request(request, &())
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(MAX_BODY_BYTES)
            } else {
                ApiError::bad_request(format!("The request body could not be read: {rejection}"))
            }
        })?;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    match content_type.as_deref() {
        _ if bytes.is_empty() => Ok(bytes),
        None | Some("application/x-www-form-urlencoded") => Ok(bytes),
        Some(other) => Err(ApiError::bad_request(format!(
            "Unsupported Content-Type {other}: send application/x-www-form-urlencoded"
        ))),
    }
}
