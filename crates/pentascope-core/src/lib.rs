//! # pentascope-core
//!
//! The computations pentascope runs on 5D images, with no HTTP, database or
//! object store; files are read and written by `pentascope-tiff`, whose
//! sample types and shapes are re-exported here:
//!
//! - [`dtype`]: the sample types (`uint8` … `float64`) and the [`Sample`] trait
//!   that hot loops are generic over;
//! - [`shape`]: the canonical `TZCYX` shape, plane indices and axis strings;
//! - [`stats`]: per-channel statistics and histograms accumulated in one pass;
//! - [`pca`]: streaming covariance and the eigendecomposition behind PCA;
//! - [`render`]: windowing to 8 bits, PNG and NumPy `.npy` encoding;
//! - [`bitshuffle`]: undoing blosc's bit shuffle, which stored chunks of
//!   camera data are decoded with;
//! - [`segment`]: Otsu thresholds, 1D k-means on intensities, connected
//!   components and region properties, streamed plane by plane and exact
//!   against scikit-image and scikit-learn.
//!
//! What does not live here: storage of pixels, metadata records, jobs and the
//! HTTP API (see `pentascope-store` and `pentascope-server`).
//!
//! ```
//! use pentascope_core::{DType, Shape5};
//! let shape = Shape5::new(2, 3, 1, 64, 64);
//! assert_eq!(shape.planes(), 6);
//! assert_eq!(DType::from_name("uint16"), Some(DType::U16));
//! ```

pub mod bitshuffle;
pub mod composite;
pub mod error;
pub mod json_f64;
pub mod limit;
pub mod pca;
pub mod pyramid;
pub mod render;
pub mod segment;
pub mod stats;
#[cfg(test)]
mod test_support;
pub mod wire;

pub use error::CoreError;
pub use limit::Limit;
pub use pentascope_tiff::{dispatch_dtype, dtype, shape, Limits};
pub use pentascope_tiff::{Axes, DType, PlaneIndex, Sample, Shape5};
