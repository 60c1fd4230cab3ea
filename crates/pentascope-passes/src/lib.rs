//! # pentascope-passes
//!
//! The passes that stream pixels between a TIFF, the store and the core
//! computations, a few bands at a time whatever the image's size:
//!
//! - [`ingest`]: a TIFF file into the pixel store (staged), per-channel
//!   statistics gathered in the same pass;
//! - [`stream`]: the same while an upload arrives, pages stored as they
//!   pass, the rest spooled;
//! - [`analysis`]: statistics and PCA from the store, cut into parts that
//!   other workers can run, and PCA scores served as a virtual image;
//! - [`segment`]: thresholds, k-means and object labels from the store into
//!   a stored labels image;
//! - [`cancel`]: how a pass is stopped within a band.
//!
//! Storage itself (pixels, records) is `pentascope-store`'s, the
//! computations on samples are `pentascope-core`'s, and the use cases that
//! run these passes are `pentascope-app`'s. A pass fails with a
//! [`PassError`]: the file or the computation refused (the core's error),
//! the storage under it failed (the store's), or it was cancelled.

pub mod analysis;
pub mod cancel;
pub mod error;
pub mod ingest;
pub mod segment;
pub mod stream;

pub use error::PassError;
