//! The core layer's error type.

use pentascope_tiff::TiffError;
use thiserror::Error;

/// What can go wrong when reading or computing on an image, by cause.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The file could not be read (not a TIFF, malformed, unsupported, too
    /// large for the reader's limits, bad axes).
    #[error(transparent)]
    Tiff(#[from] TiffError),
    /// A computation would need more than its configured limit allows.
    #[error("too large: {0}")]
    LimitsExceeded(String),
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
