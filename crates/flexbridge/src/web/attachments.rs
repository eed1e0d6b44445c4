//! Files over plain HTTP, for the holder of a customer's resume token
//! (`Authorization: Bearer <token>`, as for `/transcript`; never in the
//! URL). `docs/protocol.md` §"Attachments" is the contract.
//!
//! - `POST /attachments?name=<file name>`: the file as the body, its type
//!   as `Content-Type`. The body may be at most the configured limit (the
//!   route reads no more; 413 beyond); the type must be allowed and match
//!   the bytes' own (a PNG declared `text/html` is refused). Answered 201
//!   `{attachment: {id, name, type, size}}` once the bytes are committed;
//!   a refusal is `{error: {code, message}}` and stores nothing. The
//!   customer then sends `message {clientMessageId, attachment: id}`.
//! - `GET /attachments/{id}`: the customer's own file (theirs or an
//!   agent's to them); any other id, another customer's included, is 404.
//!   Always `Content-Disposition: attachment` with the file's name,
//!   `X-Content-Type-Options: nosniff`, a sandboxing CSP and `no-store`;
//!   only images, PDF and plain text keep their type, anything else (SVG,
//!   HTML) is `application/octet-stream`.
//!
//! No CORS headers: only the chat's own page (same origin) and non-browser
//! clients use these routes.

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::WebState;
use super::transcript::bearer;
use crate::core::attachment::{Attachment, AttachmentId, UploadRefused};
use crate::core::bridge::{FileError, UploadError};
use crate::core::chain;
use crate::core::ids::ResumeToken;
use crate::core::model::CustomerRecord;

#[derive(Debug, Deserialize)]
pub(super) struct UploadQuery {
    name: Option<String>,
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": code, "message": message.into()}});
    (
        status,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(body),
    )
        .into_response()
}

/// The customer holding the request's token, or the answer to give.
async fn customer(state: &WebState, headers: &HeaderMap) -> Result<CustomerRecord, Response> {
    let unauthorized = |message| error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    let Some(token) = bearer(headers).and_then(|t| ResumeToken::parse(t).ok()) else {
        return Err(unauthorized(
            "send the resume token: Authorization: Bearer <token>",
        ));
    };
    match state.inner.bridge.authenticate(&token).await {
        Ok(Some(customer)) => Ok(customer),
        Ok(None) => Err(unauthorized("unknown token")),
        Err(e) => {
            tracing::error!(error.cause_chain = %chain(&e), "checking a resume token");
            Err(unavailable())
        }
    }
}

fn unavailable() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "internal",
        "try again later",
    )
}

fn refused(refusal: &UploadRefused) -> Response {
    let status = match refusal {
        UploadRefused::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        UploadRefused::TypeNotAllowed(..) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        UploadRefused::Empty | UploadRefused::ContentMismatch { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    error(status, refusal.code(), refusal.to_string())
}

pub(super) async fn upload(
    State(state): State<WebState>,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let customer = match customer(&state, &headers).await {
        Ok(customer) => customer,
        Err(answer) => return answer,
    };
    let bridge = &state.inner.bridge;
    let policy = bridge.attachment_policy();
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(crate::core::attachment::AttachmentPolicy::normalise)
        .unwrap_or_default();
    // Refuse before reading what will not be kept.
    if let Err(refusal) = policy.check_type(&declared) {
        return refused(&refusal);
    }
    let too_large = UploadRefused::TooLarge {
        max: policy.max_bytes,
    };
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|n| n > policy.max_bytes as u64) {
        return refused(&too_large);
    }
    // The limit of this route: one byte more than allowed tells "too large".
    let bytes = match axum::body::to_bytes(request.into_body(), policy.max_bytes + 1).await {
        Ok(bytes) if bytes.len() > policy.max_bytes => return refused(&too_large),
        Ok(bytes) => bytes,
        Err(_) => return refused(&too_large),
    };
    let name = query.name.unwrap_or_default();
    match bridge
        .upload(&customer, &declared, &name, bytes.to_vec())
        .await
    {
        Ok(attachment) => (
            StatusCode::CREATED,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            axum::Json(json!({"attachment": payload(&attachment)})),
        )
            .into_response(),
        Err(UploadError::Refused(refusal)) => refused(&refusal),
        Err(UploadError::Bridge(e)) => {
            tracing::error!(error.cause_chain = %chain(&e), "storing an upload");
            unavailable()
        }
    }
}

/// `{id, name, type, size}`, as in a message's `attachment`.
fn payload(a: &Attachment) -> serde_json::Value {
    json!({"id": a.id.as_str(), "name": a.filename, "type": a.content_type, "size": a.size})
}

pub(super) async fn download(
    State(state): State<WebState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let customer = match customer(&state, &headers).await {
        Ok(customer) => customer,
        Err(answer) => return answer,
    };
    let not_found = || error(StatusCode::NOT_FOUND, "not_found", "no such attachment");
    let Ok(id) = AttachmentId::parse(&id) else {
        return not_found();
    };
    match state.inner.bridge.file(&customer.id, &id).await {
        Ok(Some((attachment, bytes))) => file_response(&attachment, bytes),
        Ok(None) => not_found(),
        Err(FileError::Bridge(e)) => {
            tracing::error!(error.cause_chain = %chain(&e), "reading an attachment");
            unavailable()
        }
        Err(e) => {
            tracing::warn!(error.cause_chain = %chain(&e), attachment = %id, "fetching an agent's file from Flex");
            error(
                StatusCode::BAD_GATEWAY,
                "unavailable",
                "the file could not be fetched from Flex; try again later",
            )
        }
    }
}

/// The file as a download that no browser renders as a page.
fn file_response(attachment: &Attachment, bytes: Vec<u8>) -> Response {
    let content_type = if attachment.inline_safe() {
        attachment.content_type.as_str()
    } else {
        "application/octet-stream"
    };
    let ascii: String = attachment
        .filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .filter(|c| !matches!(c, '"' | '\\'))
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(
        &attachment.filename,
        percent_encoding::NON_ALPHANUMERIC,
    );
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    let value = |v: &str| {
        HeaderValue::from_str(v)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
    };
    headers.insert(header::CONTENT_TYPE, value(content_type));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition)
            .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    headers.insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, kind: &str) -> Attachment {
        Attachment {
            id: AttachmentId::generate(),
            filename: name.into(),
            content_type: kind.into(),
            size: 3,
        }
    }

    #[test]
    fn a_download_is_never_rendered_as_a_page() {
        let response = file_response(&file("a\"b.svg", "image/svg+xml"), b"<svg".to_vec());
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], "application/octet-stream");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(
            headers[header::CONTENT_DISPOSITION],
            "attachment; filename=\"ab.svg\"; filename*=UTF-8''a%22b%2Esvg"
        );
        assert!(
            headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("sandbox")
        );

        let png = file_response(&file("shot.png", "image/png"), vec![1, 2, 3]);
        assert_eq!(png.headers()[header::CONTENT_TYPE], "image/png");
        assert!(
            png.headers()[header::CONTENT_DISPOSITION]
                .to_str()
                .unwrap()
                .starts_with("attachment;")
        );
    }
}
