//! Pass 1 of thresholds and k-means: the extremes of the data.

use crate::dtype::Sample;
use crate::error::CoreError;

/// The extremes of some samples, all finite: what the histograms of
/// [`super::otsu`] and [`super::kmeans`] are laid over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRange<T: Sample> {
    /// Smallest sample.
    pub min: T,
    /// Largest sample.
    pub max: T,
    /// Number of samples.
    pub count: u64,
}

impl<T: Sample> SampleRange<T> {
    /// The range of a slice (pass 1 in one call).
    pub fn of_slice(samples: &[T]) -> Result<Self, CoreError> {
        let mut acc = RangeAccumulator::new();
        acc.add(samples);
        acc.finish()
    }

    /// Whether every sample is the same value.
    pub fn is_constant(&self) -> bool {
        self.min == self.max
    }
}

/// Accumulates the [`SampleRange`] of samples added in any number of pieces.
#[derive(Debug, Clone, Copy)]
pub struct RangeAccumulator<T: Sample> {
    min: T,
    max: T,
    count: u64,
    /// NaN or infinite samples seen (float types only).
    non_finite: u64,
}

impl<T: Sample> Default for RangeAccumulator<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Sample> RangeAccumulator<T> {
    /// An accumulator that has seen nothing.
    pub fn new() -> Self {
        RangeAccumulator {
            min: T::default(),
            max: T::default(),
            count: 0,
            non_finite: 0,
        }
    }

    /// Adds a slice of samples (any length, including 0).
    pub fn add(&mut self, samples: &[T]) {
        let mut finite = samples.iter().copied().filter(|v| v.to_f64().is_finite());
        let Some(first) = finite.next() else {
            self.non_finite += samples.len() as u64;
            return;
        };
        let (mut lo, mut hi) = (first, first);
        let mut n = 1u64;
        for v in finite {
            n += 1;
            if v < lo {
                lo = v;
            }
            if v > hi {
                hi = v;
            }
        }
        self.non_finite += samples.len() as u64 - n;
        self.include(lo, hi, n);
    }

    fn include(&mut self, lo: T, hi: T, n: u64) {
        if n == 0 {
            return;
        }
        if self.count == 0 {
            (self.min, self.max) = (lo, hi);
        } else {
            if lo < self.min {
                self.min = lo;
            }
            if hi > self.max {
                self.max = hi;
            }
        }
        self.count += n;
    }

    /// Adds what `other` accumulated.
    pub fn merge(&mut self, other: &Self) {
        self.non_finite += other.non_finite;
        self.include(other.min, other.max, other.count);
    }

    /// The range of everything added.
    ///
    /// Errors ([`CoreError::InvalidRequest`]): no samples at all, or any NaN
    /// or infinite sample (NumPy's histogram refuses a non-finite range, and
    /// k-means is undefined on them).
    pub fn finish(&self) -> Result<SampleRange<T>, CoreError> {
        if self.non_finite > 0 {
            return Err(CoreError::InvalidRequest(format!(
                "the data contain {} NaN or infinite sample{}; thresholds and k-means need finite data",
                self.non_finite,
                if self.non_finite == 1 { "" } else { "s" }
            )));
        }
        if self.count == 0 {
            return Err(CoreError::InvalidRequest(
                "no samples: thresholds and k-means need at least one sample".into(),
            ));
        }
        Ok(SampleRange {
            min: self.min,
            max: self.max,
            count: self.count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremes_and_refusals() {
        let mut acc = RangeAccumulator::<i16>::new();
        acc.add(&[]);
        assert!(acc.finish().is_err());
        acc.add(&[3, -7, 12]);
        let mut other = RangeAccumulator::new();
        other.add(&[100]);
        acc.merge(&other);
        let r = acc.finish().unwrap();
        assert_eq!((r.min, r.max, r.count), (-7, 100, 4));

        let mut acc = RangeAccumulator::<f32>::new();
        acc.add(&[1.0, f32::NAN, 2.0]);
        let e = acc.finish().unwrap_err().to_string();
        assert!(e.contains("1 NaN or infinite sample;"), "{e}");
        assert!(SampleRange::of_slice(&[f64::INFINITY]).is_err());
        assert!(SampleRange::of_slice(&[5u8, 5]).unwrap().is_constant());
    }
}
