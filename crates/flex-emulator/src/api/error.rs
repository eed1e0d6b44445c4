//! Twilio's error answer: `{code, message, more_info, status}` with the
//! HTTP status, used by every route of the emulator (REST and control API).
//!
//! Codes: 20001 bad or missing parameter (400), 20003 authentication (401,
//! with `WWW-Authenticate`), 20004 method not allowed (405), 20404 not found,
//! 20409 control-API action in the wrong state, 20413 body too large, 20429 rate limited (with `Retry-After`), 20500 and
//! other `20000 + status` codes for server errors; Chat's own codes where
//! Twilio has one (50201 user exists, 50307 channel unique name taken,
//! 50321 too many channel webhooks, 50404 member exists).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::world::WorldError;

/// An error answer, in Twilio's shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> u32 {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            20404,
            format!("The requested resource {path} was not found"),
        )
    }

    pub fn missing_param(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            20001,
            format!("Missing required parameter {name} in the post body"),
        )
    }

    pub fn invalid_param(name: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            20001,
            format!("Invalid parameter {name}: {why}"),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 20001, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, 20003, "Authenticate")
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            20004,
            format!("Method {method} not allowed on {path}"),
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            20413,
            format!("The request body is larger than {limit} bytes"),
        )
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests")
        }
    }

    /// The answer of an injected error fault.
    pub fn injected(status: u16) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let reason = status.canonical_reason().unwrap_or("Error");
        Self::new(
            status,
            20000 + u32::from(status.as_u16()),
            format!("{reason} (injected by an emulator fault)"),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, 20500, message)
    }

    /// A refused control-API action: like [`ApiError::from_world`], except
    /// that an action the resource is not in a state for is a 409.
    pub(crate) fn from_world_control(error: WorldError, path: &str) -> Self {
        match error {
            WorldError::State { message, .. } => Self::new(StatusCode::CONFLICT, 20409, message),
            other => Self::from_world(other, path),
        }
    }

    /// A refused change; `path` is the request path (for 404 messages).
    pub(crate) fn from_world(error: WorldError, path: &str) -> Self {
        match error {
            WorldError::NotFound { .. } => Self::not_found(path),
            WorldError::Invalid { message, .. } | WorldError::State { message, .. } => {
                Self::bad_request(message)
            }
            WorldError::Conflict { code, message } => {
                Self::new(StatusCode::CONFLICT, code, message)
            }
            WorldError::Refused { code, message } => {
                Self::new(StatusCode::BAD_REQUEST, code, message)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status.as_u16(),
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
