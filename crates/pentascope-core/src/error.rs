//! The core layer's error type and the limits decoders are given.

use thiserror::Error;

/// What can go wrong when reading or computing on an image, by cause.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The bytes are not a TIFF at all (wrong magic, empty file).
    #[error("not a TIFF file: {0}")]
    NotTiff(String),
    /// A TIFF whose structure is broken (truncated, looping, inconsistent).
    #[error("malformed TIFF: {0}")]
    Format(String),
    /// A valid TIFF that uses something pentascope does not decode.
    #[error("unsupported TIFF: {0}")]
    Unsupported(String),
    /// The file declares more than the configured [`Limits`] allow.
    #[error("too large: {0}")]
    LimitsExceeded(String),
    /// An axis string that cannot describe the file.
    #[error("{0}")]
    InvalidAxes(String),
    /// A plane, channel or component index outside the image.
    #[error("{0}")]
    OutOfRange(String),
    /// A request that the data cannot answer (for example PCA on one channel).
    #[error("{0}")]
    InvalidRequest(String),
    /// Reading the file failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Limits checked before any large allocation, as image-tiff's `Limits`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest image accepted, in samples (T·Z·C·Y·X).
    pub max_samples: u64,
    /// Largest single plane accepted, in pixels (Y·X).
    pub max_plane_pixels: u64,
    /// Most IFDs (pages) a file may have.
    pub max_pages: u64,
    /// Largest decoded strip or tile, in bytes.
    pub max_chunk_bytes: u64,
    /// Largest metadata text (OME-XML, ImageJ description), in bytes.
    pub max_metadata_bytes: u64,
    /// Most channels (C, samples per pixel included) an image may have;
    /// default 1024. Per-channel state (statistics, display ranges, PCA)
    /// grows with it, so a file declaring 65535 samples per pixel on a
    /// 2×1 image is refused before any of it is allocated. Operators set
    /// it with `PENTASCOPE_MAX_CHANNELS`.
    pub max_channels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_samples: 1 << 34,
            max_plane_pixels: 1 << 32,
            max_pages: 1 << 20,
            max_chunk_bytes: 1 << 28,
            max_metadata_bytes: 1 << 26,
            max_channels: 1024,
        }
    }
}
