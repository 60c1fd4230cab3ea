//! Otsu's threshold, exactly as scikit-image's `threshold_otsu(data)` with
//! the default `nbins=256` computes it (checked against scikit-image 0.26).
//!
//! What scikit-image does, and so what this module does:
//!
//! - **Histogram.** Integer data get one bin per integer value from the
//!   minimum to the maximum (`skimage.exposure.histogram` uses `bincount`
//!   and ignores `nbins`), bin centres being the values themselves. Float
//!   data get `numpy.histogram(data, bins=256)` over `[min, max]`, computed
//!   in the data's precision (float32 edges for float32 data, from
//!   `numpy.linspace`), with centres `(edges[:-1] + edges[1:]) / 2`.
//! - **Counts as float32.** `_validate_image_histogram` converts the counts
//!   to `float32`, so the class weights are float32 cumulative sums (which
//!   round beyond 2^24 samples), and for float32 data the whole computation
//!   is done in float32; for integer and float64 data the class means are
//!   float64. This module repeats each of those operations in the same
//!   precision and order, so the threshold is equal to the bit.
//! - **Choice.** The between-class variance
//!   `w1[:-1] * w2[1:] * (m1[:-1] - m2[1:]) ** 2` is maximised with
//!   `argmax` (the first maximum), and the threshold is that bin's centre:
//!   an integer for integer data, a float32 for float32 data. It is always
//!   a value of the sample type, so [`OtsuHistogram::threshold`] returns a
//!   `T` and `data > threshold` is exact.
//!
//! Differences, on purpose: a constant image is an error here (scikit-image
//! returns the constant), and NaN or infinite samples are refused by
//! [`SampleRange`] (NumPy raises as well). 64-bit integer data whose values
//! exceed `i64::MAX` are binned by their true value (scikit-image wraps them).

use rayon::prelude::*;

use super::float::{EqualBins, Float};
use super::{int_sample, int_value, same, with_int_slice, Kind, SampleRange};
use crate::dtype::Sample;
use crate::error::CoreError;

/// Bins of the float histogram (scikit-image's default `nbins`).
pub const OTSU_BINS: usize = 256;

/// Default bound on the bins of an integer histogram (one per value from
/// min to max): 2^24 bins, 128 MiB of counters. Every 8- and 16-bit image
/// fits; 32- and 64-bit integer images fit when their values span at most
/// 2^24 consecutive integers.
pub const DEFAULT_MAX_INTEGER_BINS: usize = 1 << 24;

/// Samples per piece when a large slice is binned in parallel.
const PAR_PIECE: usize = 1 << 18;
/// Largest histogram that a parallel worker copies (bigger ones bin
/// sequentially: zeroing and merging per-worker copies would dominate).
const PAR_MAX_BINS: usize = 1 << 16;

/// How samples of one type are binned.
#[derive(Debug, Clone)]
enum Binning {
    /// One bin per integer from `min`.
    Int {
        min: i128,
    },
    F32(EqualBins<f32>),
    F64(EqualBins<f64>),
}

/// Pass 2 of Otsu's threshold: the histogram scikit-image builds, filled
/// from samples added in any number of pieces (in any order).
#[derive(Debug, Clone)]
pub struct OtsuHistogram<T: Sample> {
    range: SampleRange<T>,
    binning: Binning,
    counts: Vec<u64>,
    /// Samples outside `range` (the caller fed other data than in pass 1).
    outside: u64,
}

impl<T: Sample> OtsuHistogram<T> {
    /// An empty histogram over `range` (from pass 1).
    ///
    /// Errors ([`CoreError::InvalidRequest`]): a constant image (Otsu's
    /// threshold is undefined), or integer data spanning more than
    /// `max_integer_bins` values (the error names the limit; the caller may
    /// raise it, at 8 bytes per bin). Float data always take 256 bins.
    pub fn new(range: &SampleRange<T>, max_integer_bins: usize) -> Result<Self, CoreError> {
        if range.is_constant() {
            return Err(CoreError::InvalidRequest(format!(
                "Otsu's threshold is undefined for a constant image (every sample is {:?})",
                range.min
            )));
        }
        let (binning, bins) = match Kind::of::<T>() {
            Kind::Int => {
                let (Some(min), Some(max)) = (int_value(range.min), int_value(range.max)) else {
                    unreachable!("integer kinds have integer values");
                };
                let span = max - min + 1;
                if span > max_integer_bins as i128 {
                    return Err(CoreError::InvalidRequest(format!(
                        "Otsu's threshold on {} data spanning {min}..={max} needs {span} histogram \
                         bins (one per value), more than the limit max_integer_bins = {max_integer_bins}",
                        T::DTYPE
                    )));
                }
                (Binning::Int { min }, span as usize)
            }
            Kind::F16 => return Err(super::float16_refused("Otsu's threshold")),
            Kind::F32 => {
                let (lo, hi) = (
                    same::<T, f32>(&[range.min])[0],
                    same::<T, f32>(&[range.max])[0],
                );
                check_width(hi - lo)?;
                (Binning::F32(EqualBins::new(lo, hi, OTSU_BINS)), OTSU_BINS)
            }
            Kind::F64 => {
                let (lo, hi) = (
                    same::<T, f64>(&[range.min])[0],
                    same::<T, f64>(&[range.max])[0],
                );
                check_width(hi - lo)?;
                (Binning::F64(EqualBins::new(lo, hi, OTSU_BINS)), OTSU_BINS)
            }
        };
        Ok(OtsuHistogram {
            range: *range,
            binning,
            counts: vec![0; bins],
            outside: 0,
        })
    }

    /// Adds a slice of samples (any length). Large slices are binned on all
    /// cores; the counts are the same either way.
    pub fn add(&mut self, samples: &[T]) {
        let bins = self.counts.len();
        if samples.len() >= 2 * PAR_PIECE && bins <= PAR_MAX_BINS {
            let binning = &self.binning;
            let (counts, outside) = samples
                .par_chunks(PAR_PIECE)
                .fold(
                    || (vec![0u64; bins], 0u64),
                    |(mut counts, mut outside), piece| {
                        outside += bin_into::<T>(binning, piece, &mut counts);
                        (counts, outside)
                    },
                )
                .reduce_with(|(mut a, oa), (b, ob)| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    (a, oa + ob)
                })
                .unwrap_or_else(|| (vec![0; bins], 0));
            self.counts
                .iter_mut()
                .zip(&counts)
                .for_each(|(x, y)| *x += y);
            self.outside += outside;
        } else {
            self.outside += bin_into::<T>(&self.binning, samples, &mut self.counts);
        }
    }

    /// Adds what `other` counted. Errors if it was laid over another range.
    pub fn merge(&mut self, other: &Self) -> Result<(), CoreError> {
        if other.range != self.range {
            return Err(CoreError::InvalidRequest(
                "cannot merge Otsu histograms over different ranges".into(),
            ));
        }
        self.counts
            .iter_mut()
            .zip(&other.counts)
            .for_each(|(x, y)| *x += y);
        self.outside += other.outside;
        Ok(())
    }

    /// The histogram's counts (one per value for integer data, 256 bins for
    /// float data).
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Otsu's threshold: foreground is `sample > threshold`.
    ///
    /// Errors ([`CoreError::InvalidRequest`]): samples were added that lie
    /// outside the range the histogram was made for (pass 1 and pass 2 saw
    /// different data), or none were added.
    pub fn threshold(&self) -> Result<T, CoreError> {
        if self.outside > 0 {
            return Err(CoreError::InvalidRequest(format!(
                "{} samples lie outside the range {:?}..={:?} found in the first pass; \
                 both passes must see the same data",
                self.outside, self.range.min, self.range.max
            )));
        }
        if self.counts.iter().all(|&c| c == 0) {
            return Err(CoreError::InvalidRequest(
                "no samples were added to the Otsu histogram".into(),
            ));
        }
        // skimage: `counts.astype('float32')`.
        let counts: Vec<f32> = self.counts.iter().map(|&c| c as f32).collect();
        let value = match &self.binning {
            Binning::Int { min } => {
                // Centres are int64; `float32 counts * int64 centres` is
                // float64.
                let centres: Vec<f64> = (0..counts.len())
                    .map(|i| (min + i as i128) as f64)
                    .collect();
                int_sample::<T>(min + best_bin(&counts, &centres) as i128)
            }
            Binning::F32(bins) => {
                let centres = bins.centres();
                Some(same::<f32, T>(&[centres[best_bin(&counts, &centres)]])[0])
            }
            Binning::F64(bins) => {
                let centres = bins.centres();
                Some(same::<f64, T>(&[centres[best_bin(&counts, &centres)]])[0])
            }
        };
        // A bin centre of integer data is a value between min and max.
        value.ok_or_else(|| CoreError::InvalidRequest("Otsu's threshold is out of range".into()))
    }
}

fn check_width(width: impl Float) -> Result<(), CoreError> {
    if width.is_finite() {
        Ok(())
    } else {
        Err(CoreError::InvalidRequest(
            "the data's range (max - min) overflows the sample type; no histogram can be laid over it"
                .into(),
        ))
    }
}

/// Counts `samples` into `counts`; returns how many fell outside the range.
fn bin_into<T: Sample>(binning: &Binning, samples: &[T], counts: &mut [u64]) -> u64 {
    let mut outside = 0u64;
    match binning {
        Binning::Int { min } => {
            let n = counts.len() as i128;
            with_int_slice!(T, samples, s => {
                for &v in s {
                    let d = i128::from(v) - min;
                    if (0..n).contains(&d) {
                        counts[d as usize] += 1;
                    } else {
                        outside += 1;
                    }
                }
            }, outside = samples.len() as u64)
        }
        Binning::F32(bins) => bin_floats(bins, same::<T, f32>(samples), counts, &mut outside),
        Binning::F64(bins) => bin_floats(bins, same::<T, f64>(samples), counts, &mut outside),
    }
    outside
}

fn bin_floats<F: Float>(bins: &EqualBins<F>, samples: &[F], counts: &mut [u64], outside: &mut u64) {
    for &v in samples {
        if bins.contains(v) {
            counts[bins.index(v)] += 1;
        } else {
            *outside += 1;
        }
    }
}

/// The index scikit-image's `threshold_otsu` picks, in precision `A` (the
/// precision of `counts * bin_centers`: float32 for float32 data, float64
/// otherwise):
///
/// ```text
/// weight1 = np.cumsum(counts)                      # float32
/// weight2 = np.cumsum(counts[::-1])[::-1]          # float32
/// mean1 = np.cumsum(counts * bin_centers) / weight1
/// mean2 = (np.cumsum((counts * bin_centers)[::-1]) / weight2[::-1])[::-1]
/// variance12 = weight1[:-1] * weight2[1:] * (mean1[:-1] - mean2[1:]) ** 2
/// idx = np.argmax(variance12)
/// ```
fn best_bin<A: Float>(counts: &[f32], centres: &[A]) -> usize {
    let n = counts.len();
    if n < 2 {
        return 0;
    }
    let products: Vec<A> = counts
        .iter()
        .zip(centres)
        .map(|(&c, &x)| A::from_f32(c) * x)
        .collect();
    // Suffix sums, accumulated from the top as NumPy's reversed cumsum.
    let mut weight2 = vec![0f32; n];
    let mut mean2 = vec![A::ZERO; n];
    let (mut w, mut s) = (0f32, A::ZERO);
    for i in (0..n).rev() {
        w += counts[i];
        s = s + products[i];
        weight2[i] = w;
        mean2[i] = s / A::from_f32(w);
    }
    let (mut w1, mut s1) = (0f32, A::ZERO);
    let mut best: Option<(usize, A)> = None;
    for i in 0..n - 1 {
        w1 += counts[i];
        s1 = s1 + products[i];
        let mean1 = s1 / A::from_f32(w1);
        let d = mean1 - mean2[i + 1];
        let v = A::from_f32(w1 * weight2[i + 1]) * (d * d);
        if v.is_nan() {
            // numpy.argmax returns the first NaN.
            return i;
        }
        match best {
            Some((_, b)) if v <= b => {}
            _ => best = Some((i, v)),
        }
    }
    best.map_or(0, |(i, _)| i)
}

/// Otsu's threshold of samples held in memory (both passes).
pub fn threshold_slice<T: Sample>(samples: &[T], max_integer_bins: usize) -> Result<T, CoreError> {
    let range = SampleRange::of_slice(samples)?;
    let mut hist = OtsuHistogram::new(&range, max_integer_bins)?;
    hist.add(samples);
    hist.threshold()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_levels_split_at_the_lower() {
        // Bins 10..=20: variance is largest for every split between the two
        // populated values; the first maximum is bin 10.
        let data = [10u8, 10, 20, 20];
        assert_eq!(threshold_slice(&data, 16).unwrap(), 10);
        let data = [-5i16, -5, -5, 7, 7, 100];
        let t = threshold_slice(&data, 1 << 16).unwrap();
        assert_eq!(t, 7);
    }

    #[test]
    fn hand_checked_float() {
        // Two values: 256 bins over [0, 1]; the first maximum of the
        // between-class variance is bin 0, centre 1/512.
        let t = threshold_slice(&[0.0f64, 1.0], 0).unwrap();
        assert_eq!(t, 1.0 / 512.0);
        let t = threshold_slice(&[0.0f32, 0.0, 1.0], 0).unwrap();
        assert_eq!(t, 1.0 / 512.0);
    }

    #[test]
    fn refusals() {
        let e = threshold_slice(&[3u16; 5], 1 << 16)
            .unwrap_err()
            .to_string();
        assert!(e.contains("constant image"), "{e}");
        let e = threshold_slice(&[0u32, 1 << 30], 1 << 24)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_integer_bins = 16777216"), "{e}");
        assert!(threshold_slice::<u8>(&[], 256).is_err());
        assert!(threshold_slice(&[42.0f32], 256).is_err());
        assert!(threshold_slice(&[f64::MIN, f64::MAX], 256).is_err());
        // Pass 2 sees data outside pass 1's range.
        let range = SampleRange::of_slice(&[1u8, 5]).unwrap();
        let mut h = OtsuHistogram::new(&range, 256).unwrap();
        h.add(&[1, 5, 9]);
        assert!(h.threshold().unwrap_err().to_string().contains("outside"));
    }

    #[test]
    fn parallel_binning_matches_sequential() {
        let data: Vec<u16> = (0..(3 * PAR_PIECE as u32))
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 20) as u16)
            .collect();
        let range = SampleRange::of_slice(&data).unwrap();
        let mut par = OtsuHistogram::new(&range, 1 << 16).unwrap();
        par.add(&data);
        let mut seq = OtsuHistogram::new(&range, 1 << 16).unwrap();
        for piece in data.chunks(1000) {
            seq.add(piece);
        }
        assert_eq!(par.counts(), seq.counts());
        assert_eq!(par.threshold().unwrap(), seq.threshold().unwrap());
    }
}
