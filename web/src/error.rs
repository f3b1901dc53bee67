//! Errors turned into HTTP responses in one place: a status and a JSON body
//! `{"error": {"code": "...", "message": "..."}}`. Internal detail is logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use otgate_broker::BrokerError;

/// A refusal or failure as the client sees it.
#[derive(Clone, Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
    /// The broker stored a specific event for this refusal already.
    recorded: bool,
}

/// The JSON body of every error.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code, e.g. `forbidden`, `invalid`, `conflict`.
    pub code: String,
    /// What went wrong and what to change.
    pub message: String,
}

/// Attached to error responses so the refusal recorder knows what was said.
#[derive(Clone, Debug)]
pub(crate) struct Refusal {
    pub code: &'static str,
    pub message: String,
    pub recorded: bool,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            recorded: false,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }
}

impl From<BrokerError> for ApiError {
    fn from(error: BrokerError) -> Self {
        let message = error.to_string();
        match error {
            BrokerError::Invalid(_) | BrokerError::Policy(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
            }
            BrokerError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "not_found", message),
            BrokerError::Conflict(_) => Self::new(StatusCode::CONFLICT, "conflict", message),
            BrokerError::Forbidden(_) => Self::new(StatusCode::FORBIDDEN, "forbidden", message),
            BrokerError::Unauthenticated(_) => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
            }
            BrokerError::LoginRefused {
                message,
                code,
                retry_after,
            } => Self {
                status: if retry_after.is_some() {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::UNAUTHORIZED
                },
                code,
                message,
                retry_after,
                recorded: true,
            },
            BrokerError::Storage(e) => {
                tracing::error!(error = %e, "storage failure");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage is unavailable: try again shortly",
                )
            }
            other => {
                tracing::error!(error = %other, "internal failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error: see the server log",
                )
            }
        }
    }
}

/// The generic body for statuses produced outside our handlers (unknown route, wrong method).
pub(crate) fn generic(status: StatusCode) -> ApiError {
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such endpoint: see /api/v1/openapi.json"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this endpoint does not take that method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("too_large", "the request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "send JSON with Content-Type: application/json",
        ),
        s if s.is_server_error() => ("internal", "internal error: see the server log"),
        _ => ("bad_request", "the request could not be read"),
    };
    ApiError::new(status, code, message)
}

impl ApiError {
    /// What went wrong, for people.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// The machine-readable code.
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    /// The same refusal as a page: `body` with this status, recorded as a refusal like the
    /// API's JSON errors.
    pub(crate) fn page(self, body: String) -> Response {
        let mut response = (self.status, axum::response::Html(body)).into_response();
        response.extensions_mut().insert(Refusal {
            code: self.code,
            message: self.message,
            recorded: self.recorded,
        });
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response.extensions_mut().insert(Refusal {
            code: self.code,
            message: self.message,
            recorded: self.recorded,
        });
        response
    }
}

/// Result of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
