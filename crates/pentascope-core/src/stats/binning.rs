//! What both strategies share: NumPy-compatible binning, quantile ranks and
//! count arithmetic.

use super::DISPLAY_BINS;

/// The rank of quantile `q` among `n` sorted values: `floor(q * (n - 1))`,
/// evaluated in `f64` as the definition (and a NumPy reference) does.
pub(super) fn quantile_rank(q: f64, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    ((q * (n - 1) as f64).floor() as u64).min(n - 1)
}

/// NumPy's binning for equal-width bins over `[min, max]`.
pub(super) struct Binner {
    min: f64,
    max: f64,
    step: f64,
    norm: f64,
    pub(super) bins: usize,
}

impl Binner {
    /// [`DISPLAY_BINS`] bins, or one when the range is a single value.
    pub(super) fn new(min: f64, max: f64) -> Binner {
        let bins = if min < max { DISPLAY_BINS } else { 1 };
        Binner {
            min,
            max,
            step: (max - min) / bins as f64,
            norm: bins as f64 / (max - min),
            bins,
        }
    }

    /// `edge[i]` as `numpy.linspace` computes it (the last edge is `max`).
    fn edge(&self, i: usize) -> f64 {
        if i == self.bins {
            self.max
        } else {
            i as f64 * self.step + self.min
        }
    }

    /// The bin of `v` (which lies in `[min, max]`): an estimate corrected
    /// against the edges exactly as `numpy.histogram` corrects it.
    pub(super) fn index(&self, v: f64) -> usize {
        if self.bins == 1 {
            return 0;
        }
        let mut i = (((v - self.min) * self.norm) as usize).min(self.bins - 1);
        if i > 0 && v < self.edge(i) {
            i -= 1;
        }
        if i + 1 < self.bins && v >= self.edge(i + 1) {
            i += 1;
        }
        i
    }
}

/// Scales counts of a sample so that they add up to `target`, rounding by
/// largest remainder (ties to the lower bin) so the total is exact.
pub(super) fn scale_counts(counts: &mut [u64], target: u64) {
    let have: u64 = counts.iter().sum();
    if have == target || have == 0 {
        return;
    }
    let mut remainders = Vec::with_capacity(counts.len());
    let mut assigned = 0u64;
    for (i, c) in counts.iter_mut().enumerate() {
        let p = u128::from(*c) * u128::from(target);
        let q = (p / u128::from(have)) as u64;
        remainders.push((p % u128::from(have), i));
        assigned += q;
        *c = q;
    }
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders.iter().take(to_usize(target - assigned)) {
        counts[i] += 1;
    }
}

/// A count or stride as an index, saturating on 32-bit targets (where such
/// values cannot index a slice anyway).
pub(super) fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_counts_keep_total() {
        let mut c = vec![1, 1, 1];
        scale_counts(&mut c, 10);
        assert_eq!(c, vec![4, 3, 3]);
    }
}
