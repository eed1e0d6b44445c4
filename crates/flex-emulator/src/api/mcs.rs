//! The Media Content Service (`mcs.us1.twilio.com` at Twilio; here on the
//! same port as the rest): no OpenAPI file covers it, so these routes are
//! outside the spec-checked table ([`super::ROUTES`]) and follow Twilio's
//! pages "Conversations Media Resource" and "Media Support in
//! Conversations" (docs/architecture.md §3.5 says what was matched).
//!
//! - `POST /v1/Services/{ChatServiceSid}/Media`: the file as the body
//!   (any `Content-Type` but a form; the name from `Content-Disposition:
//!   …; filename="…"` when sent), at most [`MAX_MEDIA_BYTES`] (413
//!   beyond) → 201, the media resource.
//! - `GET /v1/Services/{ChatServiceSid}/Media/{Sid}` → the resource, with
//!   a fresh `links.content_direct_temporary`.
//! - `GET /v1/Services/{ChatServiceSid}/Media/{Sid}/Content` → the bytes
//!   (authenticated).
//! - `GET /_media/{Sid}?Token=…` → the bytes, without credentials, while
//!   the link works (`world::media::TEMPORARY_LINK_SECONDS`); then 404.
//!
//! HTTP Basic and the HTTP faults apply as to every REST route, so a test
//! can make uploads answer 500 or 429.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::error::ApiError;
use super::{auth, base_url};
use crate::app::App;
use crate::control::faults::HttpFaultAction;
use crate::world::uploads::NewMedia;

/// The largest upload: 16 MiB, Flex's limit for a web-chat file.
pub const MAX_MEDIA_BYTES: usize = 16 * 1024 * 1024;

/// Whether `path` is an upload (read with [`MAX_MEDIA_BYTES`]).
pub fn is_upload(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    matches!(segments.as_slice(), ["", "v1", "Services", _, "Media"])
}

/// The routes (path parameters named by position, as the REST table's:
/// sibling routes must agree on names).
pub(crate) fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/Services/{p0}/Media", axum::routing::post(upload))
        .route("/v1/Services/{p0}/Media/{p1}", get(fetch))
        .route("/v1/Services/{p0}/Media/{p1}/Content", get(content))
        .route("/_media/{sid}", get(temporary))
}

/// Basic auth, then the HTTP faults: an answer to give instead, or the
/// fault's late effect to apply after the request ran.
fn admit(
    app: &App,
    method: &str,
    path: &str,
    headers: &HeaderMap,
) -> Result<Option<HttpFaultAction>, ApiError> {
    auth::check(headers, &app.credentials)?;
    let fault = app.lock().faults.take_http(method, path);
    match fault {
        Some(HttpFaultAction::Error {
            status,
            lands: false,
        }) => Err(ApiError::injected(status)),
        Some(HttpFaultAction::RateLimit {
            retry_after,
            lands: false,
        }) => Err(ApiError::rate_limited(retry_after)),
        other => Ok(other),
    }
}

/// `answer`, or the error a landing fault answers instead.
async fn after(fault: Option<HttpFaultAction>, answer: Response) -> Response {
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

/// The file name of `Content-Disposition: …; filename="…"`.
fn filename_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_DISPOSITION)?.to_str().ok()?;
    let (_, rest) = value.split_once("filename=")?;
    let name = rest.split(';').next()?.trim().trim_matches('"');
    (!name.is_empty()).then(|| name.to_owned())
}

async fn upload(
    State(app): State<Arc<App>>,
    Path(service): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let fault = match admit(&app, "POST", parts.uri.path(), &parts.headers) {
        Ok(fault) => fault,
        Err(answer) => return answer.into_response(),
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/octet-stream".into());
    if content_type == "application/x-www-form-urlencoded" {
        return ApiError::bad_request("Send the media's bytes as the body, with its Content-Type")
            .into_response();
    }
    let content = match axum::body::to_bytes(body, MAX_MEDIA_BYTES).await {
        Ok(bytes) => bytes.to_vec(),
        Err(_) => return ApiError::payload_too_large(MAX_MEDIA_BYTES).into_response(),
    };
    let new = NewMedia {
        filename: filename_of(&parts.headers),
        content_type,
        content,
        author: "system".into(),
    };
    let base = base_url(&app, &parts.headers);
    let answer = {
        let mut world = app.lock();
        let created = world
            .upload_media(&service, new)
            .and_then(|sid| world.media_with_link(&service, &sid, &base));
        match created {
            Ok((media, link)) => {
                let json = media.to_json(&world.render(&base), &link);
                (StatusCode::CREATED, axum::Json(json)).into_response()
            }
            Err(e) => ApiError::from_world(e, parts.uri.path()).into_response(),
        }
    };
    after(fault, answer).await
}

async fn fetch(
    State(app): State<Arc<App>>,
    Path((service, sid)): Path<(String, String)>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let fault = match admit(&app, "GET", uri.path(), &headers) {
        Ok(fault) => fault,
        Err(answer) => return answer.into_response(),
    };
    let base = base_url(&app, &headers);
    let answer = {
        let mut world = app.lock();
        match world.media_with_link(&service, &sid, &base) {
            Ok((media, link)) => {
                axum::Json(media.to_json(&world.render(&base), &link)).into_response()
            }
            Err(e) => ApiError::from_world(e, uri.path()).into_response(),
        }
    };
    after(fault, answer).await
}

fn bytes_response(content_type: &str, filename: Option<&str>, content: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(content));
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Some(value) = filename
        .map(|f| format!("attachment; filename=\"{}\"", f.replace('"', "")))
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

async fn content(
    State(app): State<Arc<App>>,
    Path((service, sid)): Path<(String, String)>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let fault = match admit(&app, "GET", uri.path(), &headers) {
        Ok(fault) => fault,
        Err(answer) => return answer.into_response(),
    };
    let answer = {
        let world = app.lock();
        match world.media.get(&sid).filter(|m| m.service_sid == service) {
            Some(m) => bytes_response(&m.content_type, m.filename.as_deref(), m.content.clone()),
            None => ApiError::not_found(uri.path()).into_response(),
        }
    };
    after(fault, answer).await
}

#[derive(Debug, Deserialize)]
struct TemporaryQuery {
    #[serde(rename = "Token")]
    token: Option<String>,
}

async fn temporary(
    State(app): State<Arc<App>>,
    Path(sid): Path<String>,
    Query(query): Query<TemporaryQuery>,
    uri: axum::http::Uri,
) -> Response {
    let world = app.lock();
    let token = query.token.unwrap_or_default();
    match world.temporary_content(&sid, &token) {
        Some(m) => bytes_response(&m.content_type, m.filename.as_deref(), m.content.clone()),
        None => ApiError::not_found(uri.path()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_collection_is_an_upload() {
        assert!(is_upload("/v1/Services/IS123/Media"));
        assert!(is_upload("/v1/Services/IS123/Media/"));
        assert!(!is_upload("/v1/Services/IS123/Media/ME1"));
        assert!(!is_upload("/v1/Services/IS123/Conversations"));
    }

    #[test]
    fn the_file_name_comes_from_content_disposition() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"report.pdf\""),
        );
        assert_eq!(filename_of(&headers).as_deref(), Some("report.pdf"));
        assert_eq!(filename_of(&HeaderMap::new()), None);
    }
}
