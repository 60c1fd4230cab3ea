//! What can go wrong when reading or writing a TIFF.

use thiserror::Error;

use crate::Limit;

/// What can go wrong when reading a TIFF, by cause: callers map the causes
/// onto their own answers (a web service onto 400, 413, 415 and 500).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TiffError {
    /// The bytes are not a TIFF at all (wrong magic, empty file).
    #[error("not a TIFF file: {0}")]
    NotTiff(String),
    /// A TIFF whose structure is broken (truncated, looping, inconsistent).
    #[error("malformed TIFF: {0}")]
    Format(String),
    /// A valid TIFF that uses something this crate does not decode.
    #[error("unsupported TIFF: {0}")]
    Unsupported(String),
    /// The file declares more than the configured [`Limits`](crate::Limits)
    /// allow, or more than the reader can hold.
    #[error("too large: {message}")]
    LimitsExceeded {
        /// Which limit: the caller names it in its own terms.
        limit: Limit,
        /// What was declared and the limit's value.
        message: String,
    },
    /// An axis string that cannot describe the file.
    #[error("{0}")]
    InvalidAxes(String),
    /// A plane, channel or sample index outside the image.
    #[error("{0}")]
    OutOfRange(String),
    /// An argument the caller gave that the file cannot answer (a band
    /// outside the page, an empty shape to write).
    #[error("{0}")]
    InvalidRequest(String),
    /// Reading the file failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl TiffError {
    /// A refusal for exceeding `limit`.
    pub fn too_large(limit: Limit, message: impl Into<String>) -> TiffError {
        TiffError::LimitsExceeded {
            limit,
            message: message.into(),
        }
    }

    /// The limit this error is a refusal for, if it is one.
    pub fn limit(&self) -> Option<Limit> {
        match self {
            TiffError::LimitsExceeded { limit, .. } => Some(*limit),
            _ => None,
        }
    }
}
