//! The float arithmetic NumPy does in an array's own precision, for `f32`
//! and `f64` alike.

use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Sub};

/// `f32` or `f64`, with exactly the conversions NumPy applies.
pub(super) trait Float:
    Copy
    + Debug
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Send
    + Sync
    + 'static
{
    const ZERO: Self;
    /// A small integer (a bin index or count of bins), exactly.
    fn from_usize(n: usize) -> Self;
    /// An `f32` widened (exact).
    fn from_f32(v: f32) -> Self;
    /// `self as intp` for a finite, non-negative value (truncation).
    fn trunc_index(self) -> usize;
    fn is_nan(self) -> bool;
    fn is_finite(self) -> bool;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn from_usize(n: usize) -> Self {
        n as f32
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn trunc_index(self) -> usize {
        self as usize
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    #[inline(always)]
    fn from_usize(n: usize) -> Self {
        n as f64
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        f64::from(v)
    }
    #[inline(always)]
    fn trunc_index(self) -> usize {
        self as usize
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}

/// `numpy.histogram(a, bins=n)`'s equal-width bins over `[first, last]`,
/// computed in the data's precision as NumPy computes them: edges from
/// `numpy.linspace(first, last, n + 1, dtype=F)`, and a sample's bin
/// estimated from `(v - first) / (last - first) * n`, then corrected by one
/// against the edges.
#[derive(Debug, Clone)]
pub(super) struct EqualBins<F: Float> {
    first: F,
    last: F,
    denom: F,
    /// `n + 1` edges, the last one `last`.
    edges: Vec<F>,
}

impl<F: Float> EqualBins<F> {
    /// `n >= 1` bins over `[first, last]` with `first < last` and a finite
    /// width (callers check).
    pub(super) fn new(first: F, last: F, n: usize) -> Self {
        let delta = last - first;
        let div = F::from_usize(n);
        let step = delta / div;
        let mut edges: Vec<F> = (0..=n)
            .map(|i| {
                let y = F::from_usize(i);
                // linspace: `y * step + start`, or for a step that
                // underflows to zero, `y / div * delta + start`.
                if step == F::ZERO {
                    y / div * delta + first
                } else {
                    y * step + first
                }
            })
            .collect();
        edges[n] = last;
        EqualBins {
            first,
            last,
            denom: delta,
            edges,
        }
    }

    pub(super) fn bins(&self) -> usize {
        self.edges.len() - 1
    }

    /// Whether `v` is in `[first, last]` (false for NaN).
    #[inline(always)]
    pub(super) fn contains(&self, v: F) -> bool {
        v >= self.first && v <= self.last
    }

    /// The bin of `v`, which lies in `[first, last]`.
    #[inline(always)]
    pub(super) fn index(&self, v: F) -> usize {
        let n = self.bins();
        let f = (v - self.first) / self.denom * F::from_usize(n);
        let mut i = f.trunc_index().min(n - 1);
        if i > 0 && v < self.edges[i] {
            i -= 1;
        }
        if i != n - 1 && v >= self.edges[i + 1] {
            i += 1;
        }
        i
    }

    /// Bin centres as scikit-image computes them:
    /// `(edges[:-1] + edges[1:]) / 2.0` in the data's precision.
    pub(super) fn centres(&self) -> Vec<F> {
        let two = F::from_usize(2);
        self.edges.windows(2).map(|e| (e[0] + e[1]) / two).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_follow_linspace() {
        let b = EqualBins::<f64>::new(0.0, 1.0, 4);
        assert_eq!(b.edges, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(b.index(0.0), 0);
        assert_eq!(b.index(0.25), 1);
        assert_eq!(b.index(0.2499), 0);
        assert_eq!(b.index(1.0), 3);
        assert_eq!(b.centres(), vec![0.125, 0.375, 0.625, 0.875]);
        // A step that underflows: numpy divides first.
        let tiny = EqualBins::<f32>::new(0.0, f32::from_bits(3), 256);
        assert_eq!(tiny.edges[256], f32::from_bits(3));
        assert!(tiny.edges.windows(2).all(|e| e[0] <= e[1]));
    }
}
