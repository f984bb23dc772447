use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::ports::{QueueError, StoreError};

/// Every error answer: `{"error": {"code", "message"}}` (CONTRACT.md).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// More, for programs: where a transform failed, say.
    pub details: Option<Box<serde_json::Value>>,
    /// Seconds to wait before retrying (`Retry-After`), when not the 5 of a 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// A 404 saying `message` in full.
    pub fn not_found_message(message: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// The store or a queue cannot answer now (a full disk, an outage):
    /// logged in full, answered as a 503 to retry (with `Retry-After`).
    pub fn storage(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(context, %error, "storage unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the service cannot store this now; retry shortly",
        )
    }

    /// A failure of ours, not the caller's: logged in full, answered vaguely.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(context, %error, "internal error");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service could not complete the request; retry shortly",
        )
    }
}

/// Every error answer (CONTRACT.md).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// What went wrong, for programs: `not_found`, `invalid_name`, ...
    pub code: &'static str,
    /// What went wrong, for people, naming the field or value at fault.
    pub message: String,
    /// More, for programs: where a transform failed, say.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                details: self.details.map(|d| *d),
            },
        });
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        // Ours and passing, or the account's limits: say when to come back.
        let retry_after = match self.retry_after {
            Some(seconds) => Some(seconds),
            None if self.status == StatusCode::SERVICE_UNAVAILABLE => Some(5),
            None => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidCursor => ApiError::bad_request(
                "invalid_cursor",
                "the cursor is not one this list answered; start again without it",
            ),
            StoreError::TooLarge(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", m),
            StoreError::Conflict => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the resource changed meanwhile; retry",
            ),
            StoreError::Backend(m) => ApiError::storage("store", m),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::TooLarge(n) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("{n} bytes is too large to queue"),
            ),
            other => ApiError::storage("queue", other),
        }
    }
}

impl From<crate::error::Error> for ApiError {
    fn from(e: crate::error::Error) -> Self {
        use crate::error::Error;
        match e {
            Error::BadRequest { code, message } => ApiError::bad_request(code, message),
            Error::Invalid {
                code,
                message,
                details,
            } => {
                let mut answer = ApiError::invalid(code, message);
                answer.details = details.map(Box::new);
                answer
            }
            Error::NotFound(message) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            Error::Unauthorized(message) => ApiError::unauthorized(message),
            Error::Busy(message) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message),
            Error::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            Error::Forbidden { code, message } => {
                ApiError::new(StatusCode::FORBIDDEN, code, message)
            }
            Error::Limited {
                code,
                message,
                retry_after,
            } => {
                let mut answer = ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message);
                answer.retry_after = Some(retry_after);
                answer
            }
            Error::Store(e) => e.into(),
            Error::Queue(e) => e.into(),
            Error::Internal { context, message } => ApiError::internal(context, message),
        }
    }
}
