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
//! Storage only: the passes that stream pixels between a TIFF, the store
//! and the core computations (ingest, statistics, PCA, segmentation) are
//! `pentascope-passes`'s. Nothing here knows HTTP, jobs or configuration;
//! the use cases that combine records and pixels live in `pentascope-app`.
//! Errors are [`StoreError`]; an outage of the database or the object store
//! is told from a fault here, as [`StoreError::Unavailable`].

pub mod error;
pub mod pixels;
pub mod record;
pub mod records;

pub use error::StoreError;
pub use record::{ImageId, ImageKind, ImageRecord};
