//! What can go wrong when reading or writing a TIFF.

use thiserror::Error;

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
    /// allow.
    #[error("too large: {0}")]
    LimitsExceeded(String),
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
