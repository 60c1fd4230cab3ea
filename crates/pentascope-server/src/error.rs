//! The HTTP layer's error type and the one place errors become statuses.
//!
//! Every error leaves as `{"error": "<message>"}`. User mistakes are 4xx
//! with a message that says what to change; only faults of the service
//! itself are 5xx. A refusal for a limit names the setting that raises it
//! ([`crate::settings`]), here and nowhere below.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pentascope_app::{AppError, PassError};
use pentascope_core::CoreError;
use pentascope_store::StoreError;
use pentascope_tiff::TiffError;

use crate::settings::{describe, with_setting};

/// Every error answer: a message for a person that says what went wrong
/// and what to change.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "Error", example = error_example())]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// More about it, where `error` keeps the original service's text
    /// (uploads without a file: `No file part in the request`, `No selected
    /// file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn error_example() -> ErrorBody {
    ErrorBody {
        error: "z=9 is out of range: valid z values are 0..=3 (size 4)".into(),
        detail: None,
    }
}

/// An error with the HTTP status it is answered with.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// What went wrong, for a person (the `error` key).
    pub message: String,
    /// More about it (the `detail` key), where `error` keeps the original
    /// service's text for its clients.
    pub detail: Option<String>,
}

impl ApiError {
    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            detail: None,
        }
    }

    /// 404: nothing at that path.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            detail: None,
        }
    }

    /// 507: the disk holding uploads or pixels is full.
    pub fn storage_full(e: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::INSUFFICIENT_STORAGE,
            message: format!("the server is out of disk space: {e}"),
            detail: None,
        }
    }

    /// 500: a fault of the service.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            detail: None,
        }
    }

    /// Logs a refusal (4xx) at WARN with its status and reason, so that an
    /// operator can tell a user why a request failed; faults (5xx) are
    /// logged when answered. `request` is the method and path only: the
    /// query and a signed link's token may hold secrets (as may
    /// headers), and messages never quote them.
    pub fn log_refusal(&self, request: &str) {
        if self.status.is_client_error() {
            tracing::warn!(
                status = self.status.as_u16(),
                reason = %self.message,
                detail = self.detail.as_deref().unwrap_or(""),
                "{request} refused"
            );
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        let status = match e {
            AppError::Store(store) => return store.into(),
            AppError::Pass(pass) => return pass.into(),
            AppError::InvalidArguments(_)
            | AppError::OverLimit { .. }
            | AppError::MalformedArguments(_)
            | AppError::UnknownTask { .. } => StatusCode::BAD_REQUEST,
            AppError::JobNotFound(_) | AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Archive { unsupported, .. } => {
                if unsupported {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
            }
            // tus' checksum extension: "460 Checksum Mismatch"
            AppError::ChecksumMismatch(_) => {
                StatusCode::from_u16(460).expect("460 is a valid status code")
            }
            AppError::QueueUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            message: describe(&e),
            detail: None,
        }
    }
}

impl From<TiffError> for ApiError {
    fn from(e: TiffError) -> ApiError {
        let status = match &e {
            TiffError::NotTiff(_) | TiffError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            TiffError::Format(_) => StatusCode::UNPROCESSABLE_ENTITY,
            TiffError::LimitsExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            TiffError::InvalidAxes(_) | TiffError::OutOfRange(_) | TiffError::InvalidRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            message: with_setting(&e, e.limit().map(Into::into)),
            detail: None,
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> ApiError {
        if let CoreError::Tiff(tiff) = e {
            return tiff.into();
        }
        let status = match &e {
            CoreError::LimitsExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            CoreError::OutOfRange(_) | CoreError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            message: with_setting(&e, e.limit()),
            detail: None,
        }
    }
}

impl From<PassError> for ApiError {
    fn from(e: PassError) -> ApiError {
        match e {
            PassError::Core(core) => core.into(),
            PassError::Store(store) => store.into(),
            PassError::Cancelled => ApiError {
                status: StatusCode::CONFLICT,
                message: "the request was cancelled: its image was deleted meanwhile".into(),
                detail: None,
            },
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Core(core) => core.into(),
            StoreError::NotFound(_) => ApiError::not_found(e.to_string()),
            StoreError::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
                ApiError::storage_full(io)
            }
            StoreError::StorageFull(_) => ApiError {
                status: StatusCode::INSUFFICIENT_STORAGE,
                message: e.to_string(),
                detail: None,
            },
            StoreError::Unavailable { .. } => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: e.to_string(),
                detail: None,
            },
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, "{}", self.message);
        }
        let body = ErrorBody {
            error: self.message,
            detail: self.detail,
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750: say how to authenticate
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"pentascope\""),
            );
        }
        response
    }
}
