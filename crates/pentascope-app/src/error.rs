//! The use-case layer's error type.

use pentascope_core::{CoreError, Limit};
use pentascope_passes::PassError;
use pentascope_store::StoreError;

/// What can go wrong in a use case, by cause. Front doors map it once:
/// the HTTP layer to a status, the Celery worker to a Python exception, the
/// CLI to a message and an exit status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The stores or the core computation failed (including unknown images
    /// and refused files).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A pass over pixels failed (a refused file or computation, the
    /// storage under it) or was cancelled.
    #[error(transparent)]
    Pass(#[from] PassError),
    /// Argument values the use case refuses (out of range, not what the
    /// image can answer), with what is valid: the one way a use case
    /// raises a 400 (a Celery client sees `ValueError`).
    #[error("{0}")]
    InvalidArguments(String),
    /// Arguments without the shape a task takes (unknown or missing
    /// fields, wrong types): a Celery client sees `TypeError`, as Python
    /// raises for a call with such arguments.
    #[error("{0}")]
    MalformedArguments(String),
    /// A job name that no task has.
    #[error("unknown task {name:?}; known tasks: {known}")]
    UnknownTask {
        /// The name asked for.
        name: String,
        /// The registered task names.
        known: String,
    },
    /// No credentials, or credentials that are not valid (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credentials that do not allow this (403).
    #[error("{0}")]
    Forbidden(String),
    /// Something that exists already.
    #[error("{0}")]
    Conflict(String),
    /// Argument values past a configured bound (a name too long, too many
    /// tags): a 400 as [`AppError::InvalidArguments`], with the limit, for
    /// the front door to say how it is raised.
    #[error("{message}")]
    OverLimit {
        /// Which limit.
        limit: Limit,
        /// The value given and the limit's value.
        message: String,
    },
    /// A request body larger than a configured limit (413).
    #[error("{message}")]
    TooLarge {
        /// Which limit.
        limit: Limit,
        /// The size and the limit's value.
        message: String,
    },
    /// A ZIP archive that cannot be read (415 for what is not read, such
    /// as encrypted entries; 422 for a broken archive).
    #[error("{message}")]
    Archive {
        /// Whether the archive is valid but uses what is not read.
        unsupported: bool,
        /// What is wrong, naming the entry.
        message: String,
    },
    /// Bytes whose checksum is not the one the client sent.
    #[error("{0}")]
    ChecksumMismatch(String),
    /// A record other than an image that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// No job with that id.
    #[error("job {0:?} not found")]
    JobNotFound(String),
    /// A job whose workers kept stopping before it finished.
    #[error("the job was interrupted {0} times (its worker stopped); giving up")]
    Interrupted(i64),
    /// The job queue does not answer.
    #[error("the job queue ({component}) is unavailable: {message}")]
    QueueUnavailable {
        /// The queue's backend, e.g. "Redis".
        component: &'static str,
        /// What failed.
        message: String,
    },
    /// Background work failed outside the use case (a panicked thread).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<CoreError> for AppError {
    fn from(e: CoreError) -> AppError {
        AppError::Store(StoreError::Core(e))
    }
}

impl From<pentascope_tiff::TiffError> for AppError {
    fn from(e: pentascope_tiff::TiffError) -> AppError {
        AppError::Store(e.into())
    }
}

impl AppError {
    /// The limit this error is a refusal for, if it is one (a file's or a
    /// computation's included): the front door names its setting.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            AppError::OverLimit { limit, .. } | AppError::TooLarge { limit, .. } => Some(*limit),
            AppError::Store(e) => e.limit(),
            AppError::Pass(e) => e.limit(),
            _ => None,
        }
    }
}
