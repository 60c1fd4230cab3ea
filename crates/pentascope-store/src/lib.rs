//! # pentascope-store
//!
//! Where images live once ingested, behind small traits:
//!
//! - [`pixels`]: chunked pixels behind [`pixels::PixelStore`], as OME-Zarr
//!   (NGFF 0.5, Zarr v3, blosc LZ4 or zstd) on a local directory or an S3-compatible
//!   object store; images are staged and published whole.
//! - [`records`]: the metadata database, [`records::ImageRepo`] for image
//!   records and [`records::JobRepo`] for background jobs, on SQLite or
//!   PostgreSQL through `sqlx` with migrations; ids are allocated by the
//!   database.
//!
//! On top of those, the passes that stream pixels between a TIFF, the store
//! and the core computations: [`ingest`] (TIFF → store, statistics in the
//! same pass) and [`analysis`] (statistics and PCA from the store, PCA
//! scores as a virtual image) and [`segment`] (thresholds, k-means and
//! object labels from the store into a stored labels image).
//!
//! Nothing here knows HTTP, jobs or configuration; the use cases that combine
//! records and pixels live in `pentascope-app`. Errors are [`StoreError`].

pub mod analysis;
pub mod cancel;
pub mod error;
pub mod ingest;
pub mod pixels;
pub mod record;
pub mod records;
pub mod segment;
pub mod stream;

pub use error::StoreError;
pub use record::{ImageId, ImageKind, ImageRecord};
