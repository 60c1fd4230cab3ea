//! The strategy of 8- and 16-bit integers: one exact counter per possible
//! value, from which every statistic is derived exactly.

use super::binning::{quantile_rank, to_usize, Binner};
use super::{ChannelStats, Histogram, DISPLAY_HIGH_QUANTILE, DISPLAY_LOW_QUANTILE};
use crate::dtype::Sample;
use crate::error::CoreError;
use crate::wire::{WireReader, WireWriter};

/// Interleaved histogram lanes: consecutive samples go to different lanes so
/// that runs of equal values (flat backgrounds) do not serialise on one
/// counter's store-to-load forwarding.
const LANES: usize = 4;
/// How many samples may be counted before the `u32` counters are flushed
/// into the `u64` totals (no counter can overflow below this). Small in
/// tests so that the flush path is exercised.
#[cfg(not(test))]
const LANE_LIMIT: u64 = u32::MAX as u64;
#[cfg(test)]
const LANE_LIMIT: u64 = 1000;
/// Samples per piece for which [`repeats_often`] picks the counters.
const PIECE: usize = 16 * 1024;

/// Exact counts of every possible value of an 8- or 16-bit type, in `u32`
/// counters that are flushed into `u64` totals before they could overflow.
///
/// Each piece of samples goes to one of two sets of counters. Samples that
/// seldom repeat within a few places (structure plus noise) go to one
/// counter per bin: its table is a quarter of the lanes' size, so more of
/// the values in use stay in L1/L2 (3x faster on 16-bit microscopy-like
/// planes). Runs of repeats (flat backgrounds, padding, 8-bit images) go to
/// four interleaved lanes, which do not wait on the previous increment of
/// the same counter (2x faster there). Counts are exact either way.
#[derive(Clone)]
pub(super) struct ExactHistogram {
    /// Possible values of the sample type ([`Sample::HISTOGRAM_BINS`]).
    bins: usize,
    /// `bins` counters; empty until a piece without many repeats arrives.
    single: Vec<u32>,
    /// `bins * LANES` counters, lane-interleaved (`bin * LANES + lane`) so
    /// that the lanes of one bin share a cache line; empty until a piece
    /// with many repeats arrives.
    lanes: Vec<u32>,
    /// Samples counted in `single` and `lanes` since the last flush: bounds
    /// every counter.
    pending: u64,
    /// Flushed counts per bin; empty until the first flush.
    totals: Vec<u64>,
}

impl ExactHistogram {
    /// A histogram over `bins` values that allocates nothing yet.
    pub(super) fn new(bins: usize) -> Self {
        ExactHistogram {
            bins,
            single: Vec::new(),
            lanes: Vec::new(),
            pending: 0,
            totals: Vec::new(),
        }
    }

    /// Counts `samples` (of the type whose `HISTOGRAM_BINS` made `bins`).
    pub(super) fn add<T: Sample>(&mut self, samples: &[T]) {
        for piece in samples.chunks(PIECE.min(to_usize(LANE_LIMIT))) {
            if self.pending + piece.len() as u64 > LANE_LIMIT {
                self.flush();
            }
            if repeats_often(piece) {
                if self.lanes.is_empty() {
                    self.lanes = vec![0; self.bins * LANES];
                }
                count_into_lanes(&mut self.lanes, piece);
            } else {
                if self.single.is_empty() {
                    self.single = vec![0; self.bins];
                }
                count_into_single(&mut self.single, piece);
            }
            self.pending += piece.len() as u64;
        }
    }

    /// Moves the counters' counts into the `u64` totals.
    fn flush(&mut self) {
        if self.totals.is_empty() {
            self.totals = vec![0; self.bins];
        }
        add_counters(&mut self.totals, &self.single, &self.lanes);
        self.single.fill(0);
        self.lanes.fill(0);
        self.pending = 0;
    }

    /// Whether nothing was counted.
    fn is_empty(&self) -> bool {
        self.single.is_empty() && self.lanes.is_empty() && self.totals.is_empty()
    }

    /// Adds `other`'s counts; exact in any order.
    pub(super) fn merge(&mut self, other: ExactHistogram) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = other;
            return;
        }
        if self.pending + other.pending > LANE_LIMIT {
            self.flush();
        }
        add_table(&mut self.single, other.single);
        add_table(&mut self.lanes, other.lanes);
        self.pending += other.pending;
        if !other.totals.is_empty() {
            if self.totals.is_empty() {
                self.totals = other.totals;
            } else {
                for (a, b) in self.totals.iter_mut().zip(&other.totals) {
                    *a += b;
                }
            }
        }
    }

    /// Writes the non-zero counts as (bin, count) pairs: a 16-bit image
    /// rarely uses more than a few thousand of its 65,536 values.
    pub(super) fn encode(&self, w: &mut WireWriter) {
        let pairs: Vec<u64> = if self.is_empty() {
            Vec::new()
        } else {
            self.counts()
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .flat_map(|(b, &c)| [b as u64, c])
                .collect()
        };
        w.u64s(&pairs);
    }

    /// Reads what [`Self::encode`] wrote for a histogram over `bins` values
    /// of `count` samples: the counts must add up to it (so that merging
    /// decoded histograms cannot overflow where the originals would not).
    pub(super) fn decode(
        bins: usize,
        count: u64,
        r: &mut WireReader<'_>,
    ) -> Result<Self, CoreError> {
        let pairs = r.u64s()?;
        let mut histogram = ExactHistogram::new(bins);
        let bad = || CoreError::InvalidRequest("malformed partial result: histogram".into());
        if pairs.is_empty() {
            return if count == 0 {
                Ok(histogram)
            } else {
                Err(bad())
            };
        }
        if pairs.len() % 2 != 0 {
            return Err(bad());
        }
        histogram.totals = vec![0; bins];
        let mut total = 0u64;
        for pair in pairs.chunks_exact(2) {
            let bin = usize::try_from(pair[0]).map_err(|_| bad())?;
            *histogram.totals.get_mut(bin).ok_or_else(bad)? = pair[1];
            total = total.checked_add(pair[1]).ok_or_else(bad)?;
        }
        if total != count {
            return Err(bad());
        }
        Ok(histogram)
    }

    /// Count per bin.
    fn counts(&self) -> Vec<u64> {
        let mut counts = if self.totals.is_empty() {
            vec![0u64; self.bins]
        } else {
            self.totals.clone()
        };
        add_counters(&mut counts, &self.single, &self.lanes);
        counts
    }

    /// Statistics of `count` (> 0) samples of type `T`: all exact except for
    /// the final rounding of mean and std.
    pub(super) fn finish<T: Sample>(&self, count: u64) -> ChannelStats {
        let counts = self.counts();
        let mut sum: i128 = 0;
        let mut first = None;
        let mut last = 0;
        for (b, &c) in counts.iter().enumerate() {
            if c > 0 {
                sum += i128::from(c) * T::from_bin(b) as i128;
                first.get_or_insert(b);
                last = b;
            }
        }
        let first = first.unwrap_or(0);
        let mean = sum as f64 / count as f64;
        let mut sq = 0.0;
        for (b, &c) in counts.iter().enumerate().take(last + 1).skip(first) {
            let d = T::from_bin(b) - mean;
            sq += c as f64 * d * d;
        }
        let min = T::from_bin(first);
        let max = T::from_bin(last);

        let at_rank = |rank: u64| {
            let mut cum = 0;
            for (b, &c) in counts.iter().enumerate().skip(first) {
                cum += c;
                if cum > rank {
                    return T::from_bin(b);
                }
            }
            max
        };
        let display_min = at_rank(quantile_rank(DISPLAY_LOW_QUANTILE, count));
        let display_max = at_rank(quantile_rank(DISPLAY_HIGH_QUANTILE, count));

        let binner = Binner::new(min, max);
        let mut hist = vec![0u64; binner.bins];
        for (b, &c) in counts.iter().enumerate().take(last + 1).skip(first) {
            if c > 0 {
                hist[binner.index(T::from_bin(b))] += c;
            }
        }
        ChannelStats {
            count,
            mean,
            std: (sq / count as f64).sqrt(),
            min,
            max,
            display_min,
            display_max,
            histogram: Histogram {
                min,
                max,
                counts: hist,
            },
        }
    }
}

/// Adds `other`'s counters to `table`'s (same length, or either empty).
fn add_table(table: &mut Vec<u32>, other: Vec<u32>) {
    if table.is_empty() {
        *table = other;
    } else {
        for (a, b) in table.iter_mut().zip(&other) {
            *a += b;
        }
    }
}

/// Adds the counts of `single` and `lanes` (either may be empty) per bin.
fn add_counters(totals: &mut [u64], single: &[u32], lanes: &[u32]) {
    for (total, &c) in totals.iter_mut().zip(single) {
        *total += u64::from(c);
    }
    for (total, lanes) in totals.iter_mut().zip(lanes.chunks_exact(LANES)) {
        *total += lanes.iter().map(|&c| u64::from(c)).sum::<u64>();
    }
}

/// Whether samples of `piece` often equal one of the three before them, so
/// that one counter per bin would wait on its own increments: judged on
/// four windows of 16 samples spread over the piece (a quarter of the
/// samples compared is where one counter stops being faster).
fn repeats_often<T: Sample>(piece: &[T]) -> bool {
    const WINDOW: usize = 16;
    let windows: [&[T]; 4] = if piece.len() < 4 * WINDOW {
        [piece, &[], &[], &[]]
    } else {
        let step = piece.len() / 4;
        [0, 1, 2, 3].map(|i| &piece[i * step..i * step + WINDOW])
    };
    let (mut compared, mut repeats) = (0usize, 0usize);
    for window in windows {
        for w in window.windows(4) {
            let v = w[3].bin();
            compared += 1;
            repeats += usize::from(v == w[0].bin() || v == w[1].bin() || v == w[2].bin());
        }
    }
    repeats * 4 > compared
}

/// The hot loop of samples that seldom repeat: one increment per sample.
#[inline]
fn count_into_single<T: Sample>(single: &mut [u32], samples: &[T]) {
    let Some(bins) = T::HISTOGRAM_BINS else {
        return;
    };
    // A length known at compile time lets the compiler drop bounds checks
    // for 8- and 16-bit bins.
    let single = &mut single[..bins];
    for v in samples {
        single[v.bin()] += 1;
    }
}

/// The hot loop of runs of repeats: one increment per sample, four
/// independent lanes.
#[inline]
fn count_into_lanes<T: Sample>(lanes: &mut [u32], samples: &[T]) {
    let Some(bins) = T::HISTOGRAM_BINS else {
        return;
    };
    let lanes = &mut lanes[..bins * LANES];
    let mut quads = samples.chunks_exact(LANES);
    for q in &mut quads {
        lanes[q[0].bin() * LANES] += 1;
        lanes[q[1].bin() * LANES + 1] += 1;
        lanes[q[2].bin() * LANES + 2] += 1;
        lanes[q[3].bin() * LANES + 3] += 1;
    }
    for (lane, v) in quads.remainder().iter().enumerate() {
        lanes[v.bin() * LANES + lane] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::xorshift;

    /// Pieces of flat background (few values, runs of repeats) and of
    /// structure plus noise (values seldom repeat), alternating.
    fn mixed(len: usize, seed: u64) -> Vec<u16> {
        let mut next = xorshift(seed);
        (0..len)
            .map(|i| {
                let r = next();
                if (i / 700) % 2 == 0 {
                    100 + (r % 3) as u16
                } else {
                    (20_000 + i % 9_000) as u16 ^ (r % 512) as u16
                }
            })
            .collect()
    }

    fn counted(values: &[u16]) -> Vec<u64> {
        let mut counts = vec![0u64; 65_536];
        for &v in values {
            counts[usize::from(v)] += 1;
        }
        counts
    }

    #[test]
    fn repeats_pick_the_lanes_and_noise_one_counter_per_bin() {
        let flat = vec![5u16; 1000];
        let mut next = xorshift(1);
        let noisy: Vec<u16> = (0..1000).map(|_| next() as u16).collect();
        assert!(repeats_often(&flat));
        assert!(!repeats_often(&noisy));
        assert!(repeats_often(&flat[..10]));
        assert!(!repeats_often(&noisy[..10]));
        assert!(!repeats_often::<u16>(&[]));
    }

    #[test]
    fn both_kinds_of_counters_and_their_merges_count_exactly() {
        // LANE_LIMIT is 1000 in tests: pieces of 1000 alternate between
        // the kinds, and flushes happen between them.
        let values = mixed(25_000, 7);
        let mut whole = ExactHistogram::new(65_536);
        whole.add(&values);
        assert_eq!(whole.counts(), counted(&values));

        let (flat, noisy) = (&values[..700], &values[700..1400]);
        let mut only_lanes = ExactHistogram::new(65_536);
        only_lanes.add(flat);
        assert!(only_lanes.single.is_empty() && !only_lanes.lanes.is_empty());
        let mut only_single = ExactHistogram::new(65_536);
        only_single.add(noisy);
        assert!(!only_single.single.is_empty() && only_single.lanes.is_empty());
        let mut merged = only_lanes.clone();
        merged.merge(only_single.clone());
        merged.merge(whole.clone());
        only_single.merge(only_lanes);
        let mut all = values.clone();
        all.extend_from_slice(&values[..1400]);
        assert_eq!(merged.counts(), counted(&all));
        assert_eq!(only_single.counts(), counted(&values[..1400]));
    }
}
