//! The storage layer's error type.

use pentascope_core::CoreError;
use thiserror::Error;

/// What can go wrong storing or reading images and records.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No image with that id (or it is not published yet).
    #[error("image {0} not found")]
    NotFound(String),
    /// The image data could not be decoded or computed on.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The chunked pixel store failed.
    #[error("pixel store error: {0}")]
    Pixels(String),
    /// The metadata database failed (a fault, not an outage: outages are
    /// [`StoreError::Unavailable`]).
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// Applying database migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A stored record could not be read back.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A service the store depends on does not answer (an outage, not a
    /// fault of the request); `component` names it for the error message.
    #[error("the {component} is unavailable: {message}")]
    Unavailable {
        /// The service, e.g. "S3 object store".
        component: &'static str,
        /// What failed.
        message: String,
    },
    /// A chunk of a published image is missing (deleted meanwhile, or
    /// lost from the store).
    #[error("{0}")]
    MissingChunk(String),
    /// The disk (or object store) holding pixels is full.
    #[error("the pixel store is out of space: {0}")]
    StorageFull(String),
    /// Local I/O failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// A file the reader refuses keeps its cause (malformed, unsupported, too
/// large …), as any other core error.
impl From<pentascope_tiff::TiffError> for StoreError {
    fn from(e: pentascope_tiff::TiffError) -> StoreError {
        StoreError::Core(e.into())
    }
}

/// A database that cannot be reached (connection lost, pool exhausted or
/// closed) is an outage; anything else is a fault.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        match e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                StoreError::Unavailable {
                    component: "metadata database",
                    message: e.to_string(),
                }
            }
            other => StoreError::Database(other),
        }
    }
}

impl StoreError {
    /// A pixel store error with `e`'s message.
    pub fn pixels(e: impl std::fmt::Display) -> StoreError {
        StoreError::Pixels(e.to_string())
    }
}

impl StoreError {
    /// The limit this error is a refusal for, if it is one.
    pub fn limit(&self) -> Option<pentascope_core::Limit> {
        match self {
            StoreError::Core(e) => e.limit(),
            _ => None,
        }
    }
}
