//! Segmentation of intensity images: thresholds, 1D k-means on intensities,
//! connected components and region properties, each streamed plane by plane
//! so that a volume never has to be held whole.
//!
//! Every algorithm matches a Python reference exactly (see each module):
//!
//! - [`otsu`]: scikit-image's `threshold_otsu(data)` (default `nbins=256`),
//!   to the bit, including its float32 arithmetic. Foreground is
//!   `data > threshold`.
//! - [`kmeans`]: k-means on the intensities (1D), solved by dynamic
//!   programming on a histogram (the global optimum for integer data whose
//!   range fits the histogram) and refined by Lloyd passes over the exact
//!   data otherwise. Its inertia is never worse than scikit-learn's
//!   `KMeans(n_clusters, random_state=42)`.
//! - [`label`]: `skimage.measure.label(foreground)` with the default full
//!   connectivity (8 neighbours in 2D, 26 in 3D) and the same numbering
//!   (raster order of each object's first pixel), plus the `regionprops`
//!   `area`, `centroid`, `bbox` and intensity mean/min/max of every object.
//!
//! # Streaming
//!
//! Thresholds and k-means need the value range before they can bin, so they
//! take two passes over the data (three or more for k-means on floats):
//!
//! 1. [`RangeAccumulator`] finds the extremes ([`SampleRange`]); NaN and
//!    infinities are refused, as NumPy's histogram refuses them.
//! 2. [`otsu::OtsuHistogram`] or [`kmeans::KMeansHistogram`] counts the
//!    samples; `threshold()` / `solve()` give the result.
//! 3. For k-means on float data (or integers spanning more values than the
//!    histogram allows), [`kmeans::LloydPass`] refines the centres on the
//!    exact samples, one pass per iteration, until it reports convergence.
//!
//! Labelling then takes one pass in Z order ([`label::Labeler`]) that writes
//! provisional labels for the caller to store, and a second, cheap pass in
//! which the caller maps each stored plane through [`label::Labels::relabel`].
//!
//! The range, Otsu and k-means accumulators and [`kmeans::LloydPass`] can
//! be split over planes or pieces (and threads) and merged; their results
//! depend only on the samples, never on the split, except for the last bits
//! of the float sums of a Lloyd pass. The labeler is sequential: planes go
//! in Z order, one at a time.
//!
//! Data are never held whole: the largest state is an integer histogram
//! (bounded by `max_integer_bins` / `max_bins`), two planes of `u32` in the
//! labeler, and its table of provisional labels (bounded by
//! `max_provisional_labels`).
//!
//! The `*_slice` functions (`otsu::threshold_slice`, `kmeans::kmeans_slice`,
//! `label::label_slice`) run the whole pipeline on data held in memory.
//!
//! ```
//! use pentascope_core::segment::{kmeans, label, otsu, RangeAccumulator};
//! // A 2×3×4 volume, fed plane by plane as a store hands it out.
//! #[rustfmt::skip]
//! let planes: [[u16; 12]; 2] = [
//!     [ 0, 0, 90, 0,
//!       0, 0, 90, 0,
//!      80, 0,  0, 0],
//!     [ 0, 0,  0, 85,
//!       0, 0,  0, 0,
//!       0, 0,  0, 0],
//! ];
//! // Pass 1: the range.
//! let mut range = RangeAccumulator::new();
//! for p in &planes {
//!     range.add(p);
//! }
//! let range = range.finish()?;
//!
//! // Pass 2: Otsu's histogram and threshold.
//! let mut hist = otsu::OtsuHistogram::new(&range, otsu::DEFAULT_MAX_INTEGER_BINS)?;
//! for p in &planes {
//!     hist.add(p);
//! }
//! let threshold = hist.threshold()?;
//! assert_eq!(threshold, 0);
//!
//! // Labelling: provisional labels stored plane by plane, then rewritten.
//! let mut labeler = label::Labeler::new(3, 4, label::DEFAULT_MAX_PROVISIONAL_LABELS)?;
//! let mut stored = vec![vec![0u32; 12]; 2];
//! for (p, out) in planes.iter().zip(&mut stored) {
//!     labeler.add_plane(p, |v| v > threshold, out)?;
//! }
//! assert_eq!(stored[1][3], 3, "provisional: plane 1's piece is new");
//! let labels = labeler.finish();
//! for out in &mut stored {
//!     labels.relabel(out);
//! }
//! assert_eq!(stored[0], [0, 0, 1, 0, 0, 0, 1, 0, 2, 0, 0, 0]);
//! assert_eq!(stored[1][3], 1, "it touches object 1 diagonally across planes");
//! assert_eq!(labels.regions[0].area, 3);
//! assert_eq!(labels.regions[0].bbox, [0, 0, 2, 2, 2, 4]);
//! assert_eq!(labels.regions[1].mean_intensity, 80.0);
//!
//! // k-means: a histogram, solved; Lloyd passes over the data when the
//! // histogram was binned (float data), until converged.
//! let mut hist = kmeans::KMeansHistogram::new(&range, kmeans::DEFAULT_KMEANS_BINS)?;
//! for p in &planes {
//!     hist.add(p);
//! }
//! let mut model = hist.solve(2)?;
//! for _ in 0..kmeans::DEFAULT_MAX_PASSES {
//!     if model.converged {
//!         break;
//!     }
//!     let mut pass = kmeans::LloydPass::new(&model)?;
//!     for p in &planes {
//!         pass.add(p);
//!     }
//!     model = pass.finish();
//! }
//! assert_eq!(model.centres, [0.0, 86.25]);
//! assert_eq!(model.counts, [20, 4]);
//! assert_eq!(model.inertia, 68.75);
//! assert_eq!(model.assigner().cluster_of(43.125), 0);
//! # Ok::<(), pentascope_core::CoreError>(())
//! ```

pub mod kmeans;
pub mod label;
pub mod otsu;

mod float;
mod range;

pub use kmeans::{KMeansHistogram, KMeansModel, LloydPass};
pub use label::{Labeler, Labels, RegionProps, RegionTable};
pub use otsu::OtsuHistogram;
pub use range::{RangeAccumulator, SampleRange};

use crate::dtype::{DType, Sample};
use crate::CoreError;

/// How a sample type is binned: integers one bin per value, floats with
/// NumPy's arithmetic in their own precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    /// Half precision: not binned (scikit-image's float16 arithmetic is
    /// not reproduced); refused with a message.
    F16,
    F32,
    F64,
}

impl Kind {
    fn of<T: Sample>() -> Kind {
        match T::DTYPE {
            DType::F16 => Kind::F16,
            DType::F32 => Kind::F32,
            DType::F64 => Kind::F64,
            _ => Kind::Int,
        }
    }
}

/// Reinterprets a slice of `T` as a slice of `U` when both are the same
/// type (callers check `T::DTYPE` first). Dispatching once per slice this
/// way keeps the public API bound by [`Sample`] alone while the loops run on
/// the concrete type.
fn same<T: Sample, U: Sample>(samples: &[T]) -> &[U] {
    debug_assert_eq!(T::DTYPE, U::DTYPE);
    bytemuck::cast_slice(samples)
}

/// Calls `$body` with `$s` bound to `$samples` as a slice of the concrete
/// integer type of `$T` (the arm for float types is never taken: callers
/// check [`Kind`] first, and it yields `$float`).
macro_rules! with_int_slice {
    ($T:ty, $samples:expr, $s:ident => $body:expr, $float:expr) => {{
        use $crate::dtype::DType;
        use $crate::segment::same;
        match <$T as $crate::dtype::Sample>::DTYPE {
            DType::U8 => {
                let $s: &[u8] = same::<$T, u8>($samples);
                $body
            }
            DType::U16 => {
                let $s: &[u16] = same::<$T, u16>($samples);
                $body
            }
            DType::U32 => {
                let $s: &[u32] = same::<$T, u32>($samples);
                $body
            }
            DType::U64 => {
                let $s: &[u64] = same::<$T, u64>($samples);
                $body
            }
            DType::I8 => {
                let $s: &[i8] = same::<$T, i8>($samples);
                $body
            }
            DType::I16 => {
                let $s: &[i16] = same::<$T, i16>($samples);
                $body
            }
            DType::I32 => {
                let $s: &[i32] = same::<$T, i32>($samples);
                $body
            }
            DType::I64 => {
                let $s: &[i64] = same::<$T, i64>($samples);
                $body
            }
            DType::F16 | DType::F32 | DType::F64 => $float,
        }
    }};
}
pub(crate) use with_int_slice;

/// The value of an integer sample type `T` as `i128` (exact for every
/// integer type); `None` for float types.
fn int_value<T: Sample>(v: T) -> Option<i128> {
    let one = [v];
    with_int_slice!(T, &one[..], s => Some(i128::from(s[0])), None)
}

/// The sample of integer type `T` with value `v`, if `T` is an integer type
/// that holds `v`.
fn int_sample<T: Sample>(v: i128) -> Option<T> {
    fn cast<U: Sample + TryFrom<i128>, T: Sample>(v: i128) -> Option<T> {
        let u = U::try_from(v).ok()?;
        Some(bytemuck::cast_slice::<U, T>(&[u])[0])
    }
    match T::DTYPE {
        DType::U8 => cast::<u8, T>(v),
        DType::U16 => cast::<u16, T>(v),
        DType::U32 => cast::<u32, T>(v),
        DType::U64 => cast::<u64, T>(v),
        DType::I8 => cast::<i8, T>(v),
        DType::I16 => cast::<i16, T>(v),
        DType::I32 => cast::<i32, T>(v),
        DType::I64 => cast::<i64, T>(v),
        DType::F16 | DType::F32 | DType::F64 => None,
    }
}

/// The refusal of a histogram over float16 samples.
fn float16_refused(what: &str) -> CoreError {
    CoreError::InvalidRequest(format!(
        "{what} of float16 images is not supported; convert the image to float32 first"
    ))
}

/// Neumaier's compensated sum: accurate to the last bit or two however many
/// terms are added.
///
/// ```
/// use pentascope_core::segment::CompensatedSum;
/// let mut sum = CompensatedSum::default();
/// for v in [1e16, 1.0, -1e16] {
///     sum.add(v);
/// }
/// assert_eq!(sum.value(), 1.0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CompensatedSum {
    sum: f64,
    compensation: f64,
}

impl CompensatedSum {
    /// Adds `v`.
    #[inline(always)]
    pub fn add(&mut self, v: f64) {
        let t = self.sum + v;
        self.compensation += if self.sum.abs() >= v.abs() {
            (self.sum - t) + v
        } else {
            (v - t) + self.sum
        };
        self.sum = t;
    }

    /// Adds what another sum holds (a thread's, a part's).
    pub fn merge(&mut self, other: CompensatedSum) {
        self.add(other.sum);
        self.add(other.compensation);
    }

    /// The sum.
    pub fn value(self) -> f64 {
        self.sum + self.compensation
    }
}
