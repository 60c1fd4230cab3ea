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
/// How many samples may go into the `u32` lanes before they are flushed into
/// the `u64` totals (no lane counter can overflow below this). Small in tests
/// so that the flush path is exercised.
#[cfg(not(test))]
const LANE_LIMIT: u64 = u32::MAX as u64;
#[cfg(test)]
const LANE_LIMIT: u64 = 1000;

/// Exact counts of every possible value of an 8- or 16-bit type, in `u32`
/// lanes that are flushed into `u64` totals before they could overflow.
#[derive(Clone)]
pub(super) struct ExactHistogram {
    /// Possible values of the sample type ([`Sample::HISTOGRAM_BINS`]).
    bins: usize,
    /// `bins * LANES` counters, lane-interleaved (`bin * LANES + lane`) so
    /// that the lanes of one bin share a cache line; empty until the first
    /// samples arrive.
    lanes: Vec<u32>,
    /// Samples counted in `lanes` since the last flush: bounds every counter.
    pending: u64,
    /// Flushed counts per bin; empty until the first flush.
    totals: Vec<u64>,
}

impl ExactHistogram {
    /// A histogram over `bins` values that allocates nothing yet.
    pub(super) fn new(bins: usize) -> Self {
        ExactHistogram {
            bins,
            lanes: Vec::new(),
            pending: 0,
            totals: Vec::new(),
        }
    }

    /// Counts `samples` (of the type whose `HISTOGRAM_BINS` made `bins`).
    pub(super) fn add<T: Sample>(&mut self, samples: &[T]) {
        if self.lanes.is_empty() {
            self.lanes = vec![0; self.bins * LANES];
        }
        for piece in samples.chunks(to_usize(LANE_LIMIT)) {
            if self.pending + piece.len() as u64 > LANE_LIMIT {
                self.flush();
            }
            count_into_lanes(&mut self.lanes, piece);
            self.pending += piece.len() as u64;
        }
    }

    /// Moves the lane counts into the `u64` totals.
    fn flush(&mut self) {
        if self.totals.is_empty() {
            self.totals = vec![0; self.bins];
        }
        for (total, lanes) in self.totals.iter_mut().zip(self.lanes.chunks_exact(LANES)) {
            *total += lanes.iter().map(|&c| u64::from(c)).sum::<u64>();
        }
        self.lanes.fill(0);
        self.pending = 0;
    }

    /// Whether nothing was counted.
    fn is_empty(&self) -> bool {
        self.lanes.is_empty() && self.totals.is_empty()
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
        if !other.lanes.is_empty() {
            if self.lanes.is_empty() {
                self.lanes = other.lanes;
                self.pending = other.pending;
            } else {
                if self.pending + other.pending > LANE_LIMIT {
                    self.flush();
                }
                for (a, b) in self.lanes.iter_mut().zip(&other.lanes) {
                    *a += b;
                }
                self.pending += other.pending;
            }
        }
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
        let mut counts = vec![0u64; self.bins];
        for (c, lanes) in counts.iter_mut().zip(self.lanes.chunks_exact(LANES)) {
            *c = lanes.iter().map(|&l| u64::from(l)).sum();
        }
        for (c, t) in counts.iter_mut().zip(&self.totals) {
            *c += t;
        }
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

/// The ingest hot loop: one increment per sample, four independent lanes.
#[inline]
fn count_into_lanes<T: Sample>(lanes: &mut [u32], samples: &[T]) {
    let Some(bins) = T::HISTOGRAM_BINS else {
        return;
    };
    // A length known at compile time lets the compiler drop bounds checks
    // for 8- and 16-bit bins.
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
