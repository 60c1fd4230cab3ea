//! The limits a reader is given: every size a file declares is checked
//! against them before it drives an allocation or a loop.
//!
//! A refusal says which limit it hit ([`Limit`]) so that the caller can
//! tell its user how to raise it in the caller's own terms (a command-line
//! flag, an environment variable, a field): this crate knows none of them.

/// Limits checked before any large allocation, as image-tiff's `Limits`.
///
/// New limits may be added in later versions, so the struct is built from
/// [`Limits::default`] and the `with_` methods:
///
/// ```
/// use pentascope_tiff::Limits;
/// let limits = Limits::default().with_max_pages(10_000).with_max_channels(64);
/// assert_eq!(limits.max_pages, 10_000);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
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
    /// 2×1 image is refused before any of it is allocated.
    pub max_channels: u64,
    /// Most series (images) one file may hold, each stored as an image of
    /// its own: an SVS's slide, thumbnail, label and macro, an OME-TIFF's
    /// `Image`s, a plain file's pages of different shapes; default 1024
    /// (a 384-well plate imaged at two fields). A file declaring more is
    /// refused before any of them is read.
    pub max_series: u64,
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
            max_series: 1024,
        }
    }
}

impl Limits {
    /// These limits with [`Limits::max_samples`] set to `value`.
    pub fn with_max_samples(self, value: u64) -> Limits {
        Limits {
            max_samples: value,
            ..self
        }
    }

    /// These limits with [`Limits::max_plane_pixels`] set to `value`.
    pub fn with_max_plane_pixels(self, value: u64) -> Limits {
        Limits {
            max_plane_pixels: value,
            ..self
        }
    }

    /// These limits with [`Limits::max_pages`] set to `value`.
    pub fn with_max_pages(self, value: u64) -> Limits {
        Limits {
            max_pages: value,
            ..self
        }
    }

    /// These limits with [`Limits::max_chunk_bytes`] set to `value`.
    pub fn with_max_chunk_bytes(self, value: u64) -> Limits {
        Limits {
            max_chunk_bytes: value,
            ..self
        }
    }

    /// These limits with [`Limits::max_metadata_bytes`] set to `value`.
    pub fn with_max_metadata_bytes(self, value: u64) -> Limits {
        Limits {
            max_metadata_bytes: value,
            ..self
        }
    }

    /// These limits with [`Limits::max_channels`] set to `value`.
    pub fn with_max_channels(self, value: u64) -> Limits {
        Limits {
            max_channels: value,
            ..self
        }
    }

    /// These limits with [`Limits::max_series`] set to `value`.
    pub fn with_max_series(self, value: u64) -> Limits {
        Limits {
            max_series: value,
            ..self
        }
    }
}

/// Which limit a file exceeded, carried by
/// [`TiffError::LimitsExceeded`](crate::TiffError::LimitsExceeded): one
/// variant per field of [`Limits`], and [`Limit::Fixed`] for the caps built
/// into the reader, which no setting changes.
///
/// ```
/// use pentascope_tiff::{Limit, TiffError};
/// # fn refused() -> TiffError { TiffError::LimitsExceeded { limit: Limit::MaxSeries, message: "2000 series".into() } }
/// match refused() {
///     TiffError::LimitsExceeded { limit: Limit::MaxSeries, .. } => println!("raise max_series"),
///     e => println!("{e}"),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`Limits::max_samples`].
    MaxSamples,
    /// [`Limits::max_plane_pixels`].
    MaxPlanePixels,
    /// [`Limits::max_pages`].
    MaxPages,
    /// [`Limits::max_chunk_bytes`].
    MaxChunkBytes,
    /// [`Limits::max_metadata_bytes`].
    MaxMetadataBytes,
    /// [`Limits::max_channels`].
    MaxChannels,
    /// [`Limits::max_series`].
    MaxSeries,
    /// A cap of the reader or the writer itself (files of one dataset,
    /// metadata indirections, sizes past 2^64 or a TIFF page's 2^32
    /// pixels): no [`Limits`] field raises it.
    Fixed,
}

impl Limit {
    /// Every limit, for callers that keep a table of them (and test it).
    pub const ALL: [Limit; 8] = [
        Limit::MaxSamples,
        Limit::MaxPlanePixels,
        Limit::MaxPages,
        Limit::MaxChunkBytes,
        Limit::MaxMetadataBytes,
        Limit::MaxChannels,
        Limit::MaxSeries,
        Limit::Fixed,
    ];
}
