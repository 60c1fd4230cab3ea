//! The core layer's error type.

use pentascope_tiff::TiffError;
use thiserror::Error;

use crate::Limit;

/// What can go wrong when reading or computing on an image, by cause.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The file could not be read (not a TIFF, malformed, unsupported, too
    /// large for the reader's limits, bad axes).
    #[error(transparent)]
    Tiff(#[from] TiffError),
    /// A computation would need more than its configured limit allows.
    #[error("too large: {message}")]
    LimitsExceeded {
        /// Which limit: the front door names it.
        limit: Limit,
        /// What was needed and the limit's value.
        message: String,
    },
    /// A plane, channel or component index outside the image.
    #[error("{0}")]
    OutOfRange(String),
    /// A request that the data cannot answer (for example PCA on one channel).
    #[error("{0}")]
    InvalidRequest(String),
    /// Writing an encoded result failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl CoreError {
    /// A refusal for exceeding `limit`.
    pub fn too_large(limit: impl Into<Limit>, message: impl Into<String>) -> CoreError {
        CoreError::LimitsExceeded {
            limit: limit.into(),
            message: message.into(),
        }
    }

    /// The limit this error is a refusal for, the reader's included.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            CoreError::LimitsExceeded { limit, .. } => Some(*limit),
            CoreError::Tiff(e) => e.limit().map(Limit::from),
            _ => None,
        }
    }
}
