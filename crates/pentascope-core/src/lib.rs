//! # pentascope-core
//!
//! Everything pentascope knows about 5D images that does not involve HTTP, a
//! database or an object store:
//!
//! - [`dtype`]: the sample types (`uint8` … `float64`) and the [`Sample`] trait
//!   that hot loops are generic over;
//! - [`shape`]: the canonical `TZCYX` shape, plane indices and axis strings;
//! - [`tiff`]: TIFF flavours (OME, ImageJ, ScanImage, plain) mapped onto one
//!   [`tiff::Series`] model, and a streaming, band-by-band pixel reader with
//!   explicit [`Limits`], and a streaming OME-TIFF writer ([`tiff::writer`]);
//! - [`stats`]: per-channel statistics and histograms accumulated in one pass;
//! - [`pca`]: streaming covariance and the eigendecomposition behind PCA;
//! - [`render`]: windowing to 8 bits, PNG and NumPy `.npy` encoding;
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

pub mod composite;
pub mod dtype;
pub mod error;
pub mod json_f64;
pub mod pca;
pub mod pyramid;
pub mod render;
pub mod segment;
pub mod shape;
pub mod stats;
pub mod tiff;
pub mod wire;

pub use dtype::{DType, Sample};
pub use error::{CoreError, Limits};
pub use shape::{Axes, PlaneIndex, Shape5};
