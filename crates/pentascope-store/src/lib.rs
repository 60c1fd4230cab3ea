//! # pentascope-store
//!
//! Where images live once ingested, behind two small traits:
//!
//! - [`pixels::PixelStore`]: chunked pixels. [`pixels::ZarrStore`] writes
//!   OME-Zarr (NGFF 0.5, Zarr v3, zstd) with `zarrs` on a local directory;
//!   images are written to a staging area and published by one rename.
//!   [`s3::S3Store`] keeps the same layout on an S3-compatible object store.
//!   [`pixels::open_store`] picks one from a storage URL.
//! - [`db::MetadataRepo`]: image records. [`db::SqliteRepo`] keeps them in
//!   SQLite through `sqlx` with migrations; ids are allocated by the database.
//!
//! On top of those, the operations that stream pixels between a TIFF, the
//! store and the core computations: [`ingest`] (TIFF → store, statistics in
//! the same pass) and [`analysis`] (PCA from the store, scores written as a
//! derived image).
//!
//! Nothing here knows HTTP; errors are [`StoreError`].

pub mod analysis;
pub mod db;
pub mod error;
pub mod ingest;
pub mod jobs;
pub mod ops;
pub mod pixels;
pub mod record;
pub mod s3;

pub use error::StoreError;
pub use record::{ImageId, ImageKind, ImageRecord};
