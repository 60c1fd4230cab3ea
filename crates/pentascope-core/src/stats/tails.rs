//! The display window of a float stream found exactly in the pass that
//! already reads it: the `keep` smallest and `keep` largest finite values
//! seen, so that any quantile whose rank lies within `keep` of either end
//! (the 0.1th and 99.9th percentiles of up to [`MAX_KEPT`] × 1000 values)
//! is exact without another pass over the data.

use super::binning::quantile_rank;

/// Values kept at each end, at most: 2 MiB of `f32`, twice that while
/// adding (kept values are trimmed when twice as many have gathered).
/// Enough for 524 million values, 32 planes of 4096².
pub const MAX_KEPT: usize = 1 << 19;

/// Values tested against the bounds at once before any is looked at alone.
const SCAN_PIECE: usize = 64;

/// The `keep` smallest and `keep` largest finite values of everything
/// added, whatever the order of `add` and `merge` calls.
#[derive(Debug, Clone)]
pub struct Tails {
    keep: usize,
    /// Finite values added.
    finite: u64,
    /// Holds the `keep` smallest finite values seen (and possibly larger
    /// ones since the last trim).
    low: Vec<f32>,
    /// Values at or above it can be left out without changing the `keep`
    /// smallest (a tie with it is already kept).
    low_bound: f32,
    /// As `low`, for the largest values.
    high: Vec<f32>,
    /// As `low_bound`, for the `keep` largest.
    high_bound: f32,
}

impl Tails {
    /// Tails that give each of `quantiles` exactly for any number of finite
    /// values up to `count`, or `None` when that would keep more than
    /// [`MAX_KEPT`] values at an end.
    pub fn for_quantiles(count: u64, quantiles: &[f64]) -> Option<Tails> {
        let mut keep = 1;
        for &q in quantiles {
            let rank = quantile_rank(q, count);
            // Both distances to an end grow with the count, so the largest
            // count bounds them; one more covers rounding of `q * (n - 1)`.
            let from_top = count.saturating_sub(1) - rank;
            keep = keep.max(rank.min(from_top) + 2);
        }
        let keep = usize::try_from(keep).ok().filter(|&k| k <= MAX_KEPT)?;
        Some(Tails {
            keep,
            finite: 0,
            low: Vec::new(),
            low_bound: f32::INFINITY,
            high: Vec::new(),
            high_bound: f32::NEG_INFINITY,
        })
    }

    /// Empty tails for more values of the same stream, which skip what
    /// cannot be among the extremes of everything `self` has seen: when
    /// they are merged back into `self` (or into what `self` is merged
    /// into), the result is as if they had started empty. Parts of one
    /// stream that start from the tails merged so far add little more than
    /// a comparison per value.
    pub fn fresh_like(&self) -> Tails {
        Tails {
            keep: self.keep,
            finite: 0,
            low: Vec::new(),
            low_bound: self.low_bound,
            high: Vec::new(),
            high_bound: self.high_bound,
        }
    }

    /// Adds `values`; NaN and infinities are counted out.
    pub fn add(&mut self, values: &[f32]) {
        self.finite += finite_count(values);
        let mut rest = values;
        while let Some(first) = first_outside(rest, self.low_bound, self.high_bound) {
            let piece;
            (piece, rest) = rest[first..].split_at(SCAN_PIECE.min(rest.len() - first));
            for &v in piece {
                // the bounds start infinite, so infinities are checked
                // only once a value has passed them
                if v < self.low_bound && v.is_finite() {
                    self.low.push(v);
                    if self.low.len() >= 2 * self.keep {
                        self.low_bound = trim(&mut self.low, self.keep, f32::total_cmp);
                    }
                }
                if v > self.high_bound && v.is_finite() {
                    self.high.push(v);
                    if self.high.len() >= 2 * self.keep {
                        self.high_bound = trim(&mut self.high, self.keep, |a, b| b.total_cmp(a));
                    }
                }
            }
        }
    }

    /// Adds what `other` kept (made for the same quantiles and count, or
    /// by [`Self::fresh_like`] from these tails or ones merged into them).
    pub fn merge(&mut self, other: Tails) {
        self.finite += other.finite;
        self.low.extend(other.low);
        self.high.extend(other.high);
        // Each bound is true of everything the merged tails will see (a
        // fresh part's bound comes from tails it is merged into): the
        // tighter holds, and trimming gives one at least as tight.
        self.low_bound = self.low_bound.min(other.low_bound);
        self.high_bound = self.high_bound.max(other.high_bound);
        if self.low.len() >= self.keep {
            self.low_bound = trim(&mut self.low, self.keep, f32::total_cmp);
        }
        if self.high.len() >= self.keep {
            self.high_bound = trim(&mut self.high, self.keep, |a, b| b.total_cmp(a));
        }
    }

    /// Finite values added.
    pub fn finite(&self) -> u64 {
        self.finite
    }

    /// Quantile `q` of the finite values (the value of rank
    /// `floor(q * (n - 1))`, as NumPy's lower interpolation), or `None` when
    /// there are none or its rank is not within `keep` of an end.
    pub fn quantile(&self, q: f64) -> Option<f32> {
        if self.finite == 0 {
            return None;
        }
        let rank = quantile_rank(q, self.finite);
        let from_top = self.finite - 1 - rank;
        let nth = |side: &[f32], i: u64, order: fn(&f32, &f32) -> std::cmp::Ordering| {
            let i = usize::try_from(i).ok()?;
            if i >= self.keep.min(side.len()) {
                return None;
            }
            let mut copy = side.to_vec();
            Some(*copy.select_nth_unstable_by(i, order).1)
        };
        nth(&self.low, rank, f32::total_cmp)
            .or_else(|| nth(&self.high, from_top, |a, b| b.total_cmp(a)))
    }
}

/// Where the first piece of [`SCAN_PIECE`] values that holds one below
/// `low` or above `high` starts (never for NaN): one vectorised test per
/// piece, compiled for AVX2 too.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn first_outside(values: &[f32], low: f32, high: f32) -> Option<usize> {
    values
        .chunks(SCAN_PIECE)
        .position(|piece| {
            piece
                .iter()
                .fold(false, |any, &v| any | (v < low) | (v > high))
        })
        .map(|i| i * SCAN_PIECE)
}

/// How many of `values` are finite: their exponent bits are not all ones.
/// In 32-bit lanes and pieces whose counts fit them (the `u64` count of
/// `is_finite` compiled to four 64-bit lanes of SSE2, half of
/// [`Tails::add`]'s time).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2"))]
fn finite_count(values: &[f32]) -> u64 {
    values
        .chunks(1 << 20)
        .map(|piece| {
            let finite: u32 = piece
                .iter()
                .map(|v| u32::from(v.to_bits() & 0x7fff_ffff < 0x7f80_0000))
                .sum();
            u64::from(finite)
        })
        .sum()
}

/// Keeps the `keep` first values of `side` in `order` and returns the last
/// of them: the bound past which a value cannot be among them.
fn trim(side: &mut Vec<f32>, keep: usize, order: impl Fn(&f32, &f32) -> std::cmp::Ordering) -> f32 {
    let bound = *side.select_nth_unstable_by(keep - 1, order).1;
    side.truncate(keep);
    bound
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `floor(q * (n - 1))`-th of the sorted finite values: the reference.
    fn sorted_quantile(values: &[f32], q: f64) -> Option<f32> {
        let mut finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
        finite.sort_unstable_by(f32::total_cmp);
        let n = finite.len();
        (n > 0).then(|| finite[((q * (n - 1) as f64).floor() as usize).min(n - 1)])
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng(seed);
        (0..n)
            .map(|i| match rng.next() % 1000 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                // repeats, so that ties at the bounds happen
                r if r < 500 => (rng.next() % 97) as f32 - 48.0,
                _ => (rng.next() % 1_000_000) as f32 / 7.0 - 70_000.0 + i as f32 * 1e-3,
            })
            .collect()
    }

    #[test]
    fn finite_count_is_is_finite() {
        let mut v = values(100_003, 9);
        v.extend([-0.0, f32::MIN_POSITIVE / 2.0, f32::MAX, f32::MIN, -f32::NAN]);
        let expected = v.iter().filter(|x| x.is_finite()).count() as u64;
        assert_eq!(finite_count(&v), expected);
        assert!(expected < v.len() as u64 && expected > 99_000);
        assert_eq!(finite_count(&[]), 0);
    }

    const QUANTILES: [f64; 2] = [0.001, 0.999];

    #[test]
    fn quantiles_are_exact_in_any_pieces_and_merge_order() {
        for (n, seed) in [(1, 3), (5, 4), (2_000, 5), (250_000, 6)] {
            let all = values(n, seed);
            let mut whole = Tails::for_quantiles(n as u64, &QUANTILES).unwrap();
            whole.add(&all);
            // pieces of uneven sizes, merged last to first
            let mut parts: Vec<Tails> = all
                .chunks(n / 7 + 1)
                .map(|piece| {
                    let mut t = Tails::for_quantiles(n as u64, &QUANTILES).unwrap();
                    for small in piece.chunks(333) {
                        t.add(small);
                    }
                    t
                })
                .collect();
            let mut merged = parts.pop().unwrap();
            while let Some(p) = parts.pop() {
                merged.merge(p);
            }
            let finite = all.iter().filter(|v| v.is_finite()).count() as u64;
            for t in [&whole, &merged] {
                assert_eq!(t.finite(), finite);
                for q in QUANTILES {
                    let expected = sorted_quantile(&all, q);
                    assert_eq!(
                        t.quantile(q).map(f32::to_bits),
                        expected.map(f32::to_bits),
                        "n {n} q {q}"
                    );
                }
            }
        }
    }

    #[test]
    fn parts_started_from_the_merged_tails_give_the_same_quantiles() {
        let n = 300_000;
        let all = values(n, 9);
        let mut merged = Tails::for_quantiles(n as u64, &QUANTILES).unwrap();
        let mut skipped = 0;
        for piece in all.chunks(20_000) {
            let mut part = merged.fresh_like();
            part.add(piece);
            skipped += piece.len() - part.low.len() - part.high.len();
            merged.merge(part);
        }
        // later parts keep almost nothing
        assert!(skipped > n * 9 / 10, "{skipped} of {n} skipped");
        for q in QUANTILES {
            assert_eq!(
                merged.quantile(q).map(f32::to_bits),
                sorted_quantile(&all, q).map(f32::to_bits),
                "q {q}"
            );
        }
    }

    #[test]
    fn sorted_streams_in_both_directions_stay_bounded_and_exact() {
        let n = 100_000;
        let up: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let down: Vec<f32> = up.iter().rev().copied().collect();
        for stream in [up, down] {
            let mut t = Tails::for_quantiles(n as u64, &QUANTILES).unwrap();
            for piece in stream.chunks(4096) {
                t.add(piece);
                assert!(t.low.len() < 2 * t.keep && t.high.len() < 2 * t.keep);
            }
            assert_eq!(t.quantile(0.001), Some(99.0));
            assert_eq!(t.quantile(0.999), Some(99_899.0));
        }
    }

    #[test]
    fn a_rank_beyond_the_kept_values_is_not_guessed() {
        let n = 10_000u64;
        let mut t = Tails::for_quantiles(n, &QUANTILES).unwrap();
        t.add(&(0..n).map(|i| i as f32).collect::<Vec<_>>());
        assert_eq!(t.quantile(0.5), None);
        assert_eq!(
            Tails::for_quantiles(u64::MAX, &QUANTILES).map(|t| t.keep),
            None
        );
        assert!(Tails::for_quantiles((MAX_KEPT as u64 - 2) * 1000, &QUANTILES).is_some());
        let none = Tails::for_quantiles(0, &QUANTILES).unwrap();
        assert_eq!(none.quantile(0.001), None);
    }
}
