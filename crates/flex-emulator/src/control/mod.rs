//! The control API under `/_emulator/` (docs/architecture.md §3.4): JSON,
//! no auth (a local tool bound to loopback). Tests and the agent console act
//! as agents through it (accept, reject, send, type, end, complete, go
//! available), inject faults, read the state and the webhook log, follow the
//! SSE stream, and reset. Errors use Twilio's error JSON, like the REST API.
//!
//! - `faults.rs` HTTP and webhook faults
//! - `state.rs`  `GET /_emulator/state` and the agents' work lists
//! - `sse.rs`    `GET /_emulator/events`

pub(crate) mod faults;
mod sse;
mod state;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use self::faults::{HttpFaultSpec, WebhookFaultSpec};
use crate::api::error::ApiError;
use crate::api::{MAX_BODY_BYTES, base_url};
use crate::app::App;
use crate::world::uploads::NewMedia;
use crate::world::{World, WorldError};

pub(crate) fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/_emulator/state", get(state::state))
        .route("/_emulator/events", get(sse::events))
        .route("/_emulator/agents", get(state::agents))
        .route("/_emulator/agents/{agent}", get(state::agent))
        .route(
            "/_emulator/agents/{agent}/reservations/{reservation}/accept",
            post(accept),
        )
        .route(
            "/_emulator/agents/{agent}/reservations/{reservation}/reject",
            post(reject),
        )
        .route(
            "/_emulator/agents/{agent}/tasks/{task}/messages",
            post(send),
        )
        .route("/_emulator/media/{sid}", get(media))
        .route(
            "/_emulator/agents/{agent}/tasks/{task}/typing",
            post(typing),
        )
        .route("/_emulator/agents/{agent}/tasks/{task}/end", post(end))
        .route(
            "/_emulator/agents/{agent}/tasks/{task}/complete",
            post(complete),
        )
        .route("/_emulator/agents/{agent}/activity", post(activity))
        .route("/_emulator/faults/http", post(add_http_fault))
        .route("/_emulator/faults/webhooks", post(add_webhook_fault))
        .route("/_emulator/faults", get(list_faults).delete(clear_faults))
        .route("/_emulator/webhooks", get(webhooks))
        .route("/_emulator/reset", post(reset))
}

/// The request path and its segments after `/_emulator/` (decoded), for
/// lookups and Twilio-shaped 404s. Undecodable paths are 404s.
pub(crate) struct Target {
    path: String,
    segments: Vec<String>,
    base_url: String,
}

impl Target {
    fn segment(&self, at: usize) -> &str {
        self.segments.get(at).map_or("", String::as_str)
    }

    /// `{agent}` in `/_emulator/agents/{agent}/…`.
    fn agent(&self) -> &str {
        self.segment(1)
    }

    /// The id after the agent's sub-collection (`{reservation}` or `{task}`).
    fn item(&self) -> &str {
        self.segment(3)
    }

    fn fail(&self, error: WorldError) -> ApiError {
        ApiError::from_world_control(error, &self.path)
    }
}

impl FromRequestParts<Arc<App>> for Target {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let path = parts.uri.path().to_owned();
        let segments = path
            .trim_start_matches("/_emulator/")
            .split('/')
            .map(|segment| {
                percent_encoding::percent_decode_str(segment)
                    .decode_utf8()
                    .map(|s| s.into_owned())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ApiError::not_found(&path))?;
        Ok(Self {
            base_url: base_url(app, &parts.headers),
            path,
            segments,
        })
    }
}

/// A JSON body (an empty body reads as `{}`), mapped to Twilio-shaped 400/413.
pub(crate) struct JsonBody<T>(T);

impl<T: DeserializeOwned> FromRequest<Arc<App>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, app: &Arc<App>) -> Result<Self, ApiError> {
        let bytes =
            Bytes::from_request(request, app)
                .await
                .map_err(|rejection: BytesRejection| {
                    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::payload_too_large(MAX_BODY_BYTES)
                    } else {
                        ApiError::bad_request(format!(
                            "The request body could not be read: {rejection}"
                        ))
                    }
                })?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(text)
            .map(JsonBody)
            .map_err(|error| ApiError::bad_request(format!("The JSON body is not valid: {error}")))
    }
}

/// The worker SID of the agent the path names.
fn agent_sid(world: &World, target: &Target) -> Result<String, ApiError> {
    world
        .agent(target.agent())
        .map(|worker| worker.sid.clone())
        .map_err(|e| target.fail(e))
}

/// `{reservation, task}` for a reservation.
fn reservation_answer(world: &World, target: &Target, sid: &str) -> Result<Value, ApiError> {
    let render = world.render(&target.base_url);
    let tr = &world.taskrouter;
    let reservation = tr
        .reservations
        .get(sid)
        .ok_or_else(|| ApiError::not_found(&target.path))?;
    let task = tr
        .tasks
        .get(&reservation.task_sid)
        .map(|t| tr.task_json(t, &render));
    Ok(json!({"reservation": tr.reservation_json(reservation, &render), "task": task}))
}

/// `{task}` for a task.
fn task_answer(world: &World, target: &Target, sid: &str) -> Result<Value, ApiError> {
    let render = world.render(&target.base_url);
    let tr = &world.taskrouter;
    let task = tr
        .tasks
        .get(sid)
        .ok_or_else(|| ApiError::not_found(&target.path))?;
    Ok(json!({"task": tr.task_json(task, &render)}))
}

async fn accept(State(app): State<Arc<App>>, target: Target) -> Result<Json<Value>, ApiError> {
    let mut world = app.lock();
    let agent = agent_sid(&world, &target)?;
    world
        .accept_reservation(target.item(), Some(&agent))
        .map_err(|e| target.fail(e))?;
    reservation_answer(&world, &target, target.item()).map(Json)
}

async fn reject(State(app): State<Arc<App>>, target: Target) -> Result<Json<Value>, ApiError> {
    let mut world = app.lock();
    let agent = agent_sid(&world, &target)?;
    world
        .reject_reservation(target.item(), Some(&agent))
        .map_err(|e| target.fail(e))?;
    reservation_answer(&world, &target, target.item()).map(Json)
}

#[derive(serde::Deserialize)]
struct MessageBody {
    body: Option<String>,
    /// A file the agent sends (uploaded to MCS, then the message's `MediaSid`).
    media: Option<AgentMedia>,
}

#[derive(serde::Deserialize)]
struct AgentMedia {
    filename: Option<String>,
    content_type: Option<String>,
    /// The file, base64.
    content_base64: String,
}

async fn send(
    State(app): State<Arc<App>>,
    target: Target,
    JsonBody(message): JsonBody<MessageBody>,
) -> Result<Response, ApiError> {
    use base64::Engine as _;
    let body = message.body.filter(|body| !body.trim().is_empty());
    let media = match message.media {
        Some(media) => Some(NewMedia {
            filename: media.filename,
            content_type: media
                .content_type
                .unwrap_or_else(|| "application/octet-stream".into()),
            content: base64::engine::general_purpose::STANDARD
                .decode(media.content_base64.trim())
                .map_err(|e| ApiError::invalid_param("media.content_base64", e.to_string()))?,
            author: String::new(),
        }),
        None => None,
    };
    if body.is_none() && media.is_none() {
        return Err(ApiError::missing_param("body"));
    }
    let mut world = app.lock();
    let agent = agent_sid(&world, &target)?;
    let (place, message_sid) = world
        .agent_send(&agent, target.item(), body.as_deref(), media)
        .map_err(|e| target.fail(e))?;
    let render = world.render(&target.base_url);
    let message = state::messages(&world, &place, &render)
        .into_iter()
        .find(|m| m["sid"] == message_sid.as_str());
    Ok((StatusCode::CREATED, Json(json!({ "message": message }))).into_response())
}

/// A media's content for the console (an agent sees every file of the account).
async fn media(
    State(app): State<Arc<App>>,
    axum::extract::Path(sid): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let world = app.lock();
    let media = world
        .media
        .get(&sid)
        .ok_or_else(|| ApiError::not_found(&format!("/_emulator/media/{sid}")))?;
    let headers = [
        (axum::http::header::CONTENT_TYPE, media.content_type.clone()),
        (
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            "nosniff".to_owned(),
        ),
        // An uploaded SVG or HTML file must not run as a page of the console.
        (
            axum::http::header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox".to_owned(),
        ),
        (
            axum::http::header::CONTENT_DISPOSITION,
            format!(
                "inline; filename=\"{}\"",
                media.filename.as_deref().unwrap_or("file").replace('"', "")
            ),
        ),
    ];
    Ok((headers, media.content.clone()).into_response())
}

async fn typing(State(app): State<Arc<App>>, target: Target) -> Result<StatusCode, ApiError> {
    let mut world = app.lock();
    let agent = agent_sid(&world, &target)?;
    world
        .agent_typing(&agent, target.item())
        .map_err(|e| target.fail(e))?;
    Ok(StatusCode::NO_CONTENT)
}

async fn end(State(app): State<Arc<App>>, target: Target) -> Result<Json<Value>, ApiError> {
    let mut world = app.lock();
    let agent = agent_sid(&world, &target)?;
    world
        .end_chat(&agent, target.item())
        .map_err(|e| target.fail(e))?;
    task_answer(&world, &target, target.item()).map(Json)
}

async fn complete(State(app): State<Arc<App>>, target: Target) -> Result<Json<Value>, ApiError> {
    let mut world = app.lock();
    let agent = agent_sid(&world, &target)?;
    world
        .agent_task(&agent, target.item())
        .map_err(|e| target.fail(e))?;
    world
        .complete_task(target.item(), "completed by the agent")
        .map_err(|e| target.fail(e))?;
    task_answer(&world, &target, target.item()).map(Json)
}

#[derive(serde::Deserialize)]
struct ActivityBody {
    available: Option<bool>,
}

async fn activity(
    State(app): State<Arc<App>>,
    target: Target,
    JsonBody(body): JsonBody<ActivityBody>,
) -> Result<Json<Value>, ApiError> {
    let available = body
        .available
        .ok_or_else(|| ApiError::missing_param("available"))?;
    let mut world = app.lock();
    let agent = agent_sid(&world, &target)?;
    world
        .set_agent_available(&agent, available)
        .map_err(|e| target.fail(e))?;
    let worker = world.agent(&agent).map_err(|e| target.fail(e))?;
    Ok(Json(world.agent_json(worker)))
}

async fn add_http_fault(
    State(app): State<Arc<App>>,
    JsonBody(spec): JsonBody<HttpFaultSpec>,
) -> Result<Response, ApiError> {
    let id = app
        .lock()
        .faults
        .add_http(spec)
        .map_err(ApiError::bad_request)?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

async fn add_webhook_fault(
    State(app): State<Arc<App>>,
    JsonBody(spec): JsonBody<WebhookFaultSpec>,
) -> Result<Response, ApiError> {
    let id = app
        .lock()
        .faults
        .add_webhook(spec)
        .map_err(ApiError::bad_request)?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

async fn list_faults(State(app): State<Arc<App>>) -> Json<Value> {
    Json(app.lock().faults.to_json())
}

async fn clear_faults(State(app): State<Arc<App>>) -> StatusCode {
    app.lock().faults = faults::Faults::default();
    StatusCode::NO_CONTENT
}

async fn webhooks(State(app): State<Arc<App>>) -> Json<Value> {
    Json(app.lock().deliveries.to_json())
}

async fn reset(State(app): State<Arc<App>>) -> Json<Value> {
    let mut world = app.lock();
    world.reset();
    Json(json!({ "generation": world.generation, "bootstrap": world.bootstrap }))
}
