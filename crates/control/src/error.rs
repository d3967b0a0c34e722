//! The API's one error type: `{"error": {"code": …, "message": …}}` with the right status.
//! 5xx faults of the platform are logged in full and answered without internals.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edgefn_runtime::{InvokeError, PrepareError};
use edgefn_store::StoreError;

use crate::openapi::{ErrorBody, ErrorDetail};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds after which the client may try again (`Retry-After`), for 429 and 503.
    retry_after: Option<u32>,
}

impl ApiError {
    /// Any status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }
    /// The same error, telling the client to try again after `seconds` (`Retry-After`).
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }
    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// 400 `disallowed_import`: the module imports a host function its class is not granted.
    pub fn ungranted(import: &str, class: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "disallowed_import",
            format!("module imports `{import}`, a host function that modules of class `{class}` are not granted"),
        )
    }
    /// 500 `internal`: logs the detail, answers without it.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
    }
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message } };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => Self::not_found(format!("{what} not found")),
            StoreError::Conflict(message) => Self::new(StatusCode::CONFLICT, "conflict", message),
            other => Self::internal(other),
        }
    }
}

impl From<PrepareError> for ApiError {
    fn from(err: PrepareError) -> Self {
        match err {
            PrepareError::TooLarge { .. } => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", err.to_string()),
            PrepareError::Invalid(_) => Self::new(StatusCode::BAD_REQUEST, "invalid_wasm", err.to_string()),
            PrepareError::DisallowedImport { .. } => Self::new(StatusCode::BAD_REQUEST, "disallowed_import", err.to_string()),
            PrepareError::CompileTimeout { .. } => Self::new(StatusCode::BAD_REQUEST, "compile_timeout", err.to_string()),
            PrepareError::CompilerBusy { .. } => Self::new(StatusCode::TOO_MANY_REQUESTS, "compiler_busy", err.to_string()).retry_after(5),
            PrepareError::Internal(e) => Self::internal(format!("{e:#}")),
        }
    }
}

impl From<&InvokeError> for ApiError {
    fn from(err: &InvokeError) -> Self {
        match err {
            InvokeError::UnknownFunction { .. } => Self::new(StatusCode::BAD_REQUEST, "unknown_function", err.to_string()),
            InvokeError::BadArguments { .. } => Self::new(StatusCode::BAD_REQUEST, "bad_arguments", err.to_string()),
            InvokeError::Timeout { .. } => Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", err.to_string()),
            InvokeError::Busy(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", err.to_string()).retry_after(1),
            InvokeError::Trap(_) | InvokeError::BadResult(_) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "trap", err.to_string()),
            InvokeError::Internal(e) => Self::internal(format!("{e:#}")),
        }
    }
}
