//! Per-channel statistics accumulated in one streaming pass: count, mean,
//! population standard deviation, extremes, the auto-contrast display window
//! (0.1th/99.9th percentiles) and a 256-bin histogram.
//!
//! [`StatsAccumulator`] picks one of two strategies at compile time, from
//! [`Sample::HISTOGRAM_BINS`]:
//!
//! - **8- and 16-bit integers** keep a full, exact histogram (one counter per
//!   possible value). Everything is derived from it in [`StatsAccumulator::finish`]:
//!   the sum is exact (`i128`), percentiles are exact, and the 256-bin
//!   histogram is re-binned from it. Adding a sample is one counter increment.
//! - **Wider types** (32/64-bit integers, floats) keep moments (count, mean,
//!   `M2`) merged with Chan's parallel formula, the extremes, and a bounded
//!   deterministic sample (every `k`-th finite sample, at most 2^16 kept) from
//!   which the percentiles and the histogram are estimated. While fewer than
//!   2^16 finite samples have been seen, the sample is the whole data and the
//!   estimates are exact.
//!
//! NaN follows NumPy: any NaN makes mean, std, min and max NaN; infinities
//! propagate into mean/min/max as NumPy's do (and make std NaN). Percentiles
//! and histogram only consider finite samples.

use crate::dtype::Sample;
use rayon::prelude::*;
use std::fmt;
use std::marker::PhantomData;

/// Bins of the served histogram.
const DISPLAY_BINS: usize = 256;
/// Quantile of the lower end of the default display window.
const DISPLAY_LOW_QUANTILE: f64 = 0.001;
/// Quantile of the upper end of the default display window.
const DISPLAY_HIGH_QUANTILE: f64 = 0.999;

/// Samples per piece that [`accumulate_par`] hands to one `add` call.
const PAR_PIECE: usize = 256 * 1024;
/// Pieces one rayon job accumulates at least: each job owns a full histogram
/// (1 MiB for 16-bit types) that has to be zeroed and merged, so jobs must be
/// large enough for that to be noise.
const PAR_MIN_PIECES: usize = 4;

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

/// Samples summed into one partial `f64` sum: keeps the rounding error of the
/// mean near `eps * log(n)` rather than `eps * n`.
const SUM_BLOCK: usize = 4096;
/// Samples whose moments are computed with two passes before being merged:
/// small enough that the second pass reads from cache.
const MOMENT_CHUNK: usize = 32 * 1024;
/// Most samples kept for percentiles and histogram of wide types.
const SAMPLE_CAP: usize = 1 << 16;

/// Summary of one channel over T, Z, Y, X, as stored and served.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChannelStats {
    /// Number of samples (NaN included).
    pub count: u64,
    /// Mean, as `arr.astype(float64).mean()`.
    #[serde(with = "crate::json_f64")]
    pub mean: f64,
    /// Population standard deviation (ddof = 0), as `arr.astype(float64).std()`.
    #[serde(with = "crate::json_f64")]
    pub std: f64,
    /// Smallest sample (NaN if any sample is NaN).
    #[serde(with = "crate::json_f64")]
    pub min: f64,
    /// Largest sample (NaN if any sample is NaN).
    #[serde(with = "crate::json_f64")]
    pub max: f64,
    /// 0.1th percentile of the finite samples, the lower end of the default
    /// display window (auto-contrast).
    #[serde(with = "crate::json_f64")]
    pub display_min: f64,
    /// 99.9th percentile of the finite samples, the upper end of the default
    /// display window.
    #[serde(with = "crate::json_f64")]
    pub display_max: f64,
    /// 256-bin histogram over the finite range (`counts.len() == 256`, or 1
    /// bin when min == max).
    pub histogram: Histogram,
}

impl ChannelStats {
    /// The statistics of no samples at all: everything zero.
    fn empty() -> Self {
        ChannelStats {
            count: 0,
            mean: 0.0,
            std: 0.0,
            min: 0.0,
            max: 0.0,
            display_min: 0.0,
            display_max: 0.0,
            histogram: Histogram {
                min: 0.0,
                max: 0.0,
                counts: vec![0],
            },
        }
    }
}

/// A histogram with equal-width bins over `[min, max]`, binned as
/// `numpy.histogram(a, bins=len(counts), range=(min, max))` bins: bin `i`
/// holds `edge[i] <= v < edge[i + 1]` with `edge = linspace(min, max, n + 1)`,
/// and the last bin also holds `max`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Histogram {
    /// Left edge of the first bin.
    #[serde(with = "crate::json_f64")]
    pub min: f64,
    /// Right edge of the last bin.
    #[serde(with = "crate::json_f64")]
    pub max: f64,
    /// Samples per bin. For 8- and 16-bit integer images these are exact.
    /// For wider types they are exact up to 2^16 finite samples; beyond that
    /// they are counted on the deterministic sample and scaled so that they
    /// add up to the number of finite samples.
    pub counts: Vec<u64>,
}

/// Accumulates [`ChannelStats`] of one channel from slices of samples, in
/// one pass, with bounded memory (about 1 MiB for 16-bit types, 512 KiB for
/// wide types, a few KiB for 8-bit types).
///
/// Results depend only on the samples and the order of `add` and `merge`
/// calls, never on timing; [`accumulate_par`] gives the same result as adding
/// its input sequentially in pieces of 256 Ki samples.
#[derive(Clone)]
pub struct StatsAccumulator<T: Sample> {
    /// Samples added, NaN included.
    count: u64,
    /// Full histogram (8- and 16-bit types only).
    full: FullHistogram,
    /// Moments (wide types only).
    moments: Moments,
    /// Deterministic sample of the finite values (wide types only):
    /// `kept[j]` is finite sample number `j * stride`.
    kept: Vec<f64>,
    /// Distance between kept samples, a power of two.
    stride: u64,
    /// Finite samples seen (wide types only), the position of the next one.
    finite_seen: u64,
    _type: PhantomData<T>,
}

impl<T: Sample> fmt::Debug for StatsAccumulator<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The histogram lanes are far too long to print.
        f.debug_struct("StatsAccumulator")
            .field("dtype", &T::DTYPE)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl<T: Sample> Default for StatsAccumulator<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Sample> StatsAccumulator<T> {
    /// An accumulator that has seen nothing. Allocates nothing until the
    /// first samples arrive.
    pub fn new() -> Self {
        StatsAccumulator {
            count: 0,
            full: FullHistogram::default(),
            moments: Moments::EMPTY,
            kept: Vec::new(),
            stride: 1,
            finite_seen: 0,
            _type: PhantomData,
        }
    }

    /// Adds a slice of samples (any length, including 0).
    pub fn add(&mut self, samples: &[T]) {
        if samples.is_empty() {
            return;
        }
        self.count += samples.len() as u64;
        if let Some(bins) = T::HISTOGRAM_BINS {
            self.full.add(samples, bins);
        } else {
            let m = Moments::of_slice(samples);
            self.moments.merge(&m);
            self.sample(samples, &m);
        }
    }

    /// Adds what `other` accumulated, as if its samples had been added after
    /// this accumulator's. For 8- and 16-bit types the result is exactly
    /// that of a single pass. For wider types the moments agree with a
    /// single pass up to rounding, and the percentile sample keeps the same
    /// stride but `other`'s part may be shifted by less than one stride.
    pub fn merge(&mut self, other: Self) {
        self.count += other.count;
        if let Some(bins) = T::HISTOGRAM_BINS {
            self.full.merge(other.full, bins);
        } else {
            self.moments.merge(&other.moments);
            self.merge_sample(other);
        }
    }

    /// The statistics of everything added so far (all zero if nothing was).
    pub fn finish(&self) -> ChannelStats {
        if self.count == 0 {
            return ChannelStats::empty();
        }
        match T::HISTOGRAM_BINS {
            Some(bins) => self.finish_full(bins),
            None => self.finish_sampled(),
        }
    }

    /// Extends the deterministic sample with the finite samples of `samples`
    /// whose position is a multiple of the (possibly doubled) stride.
    fn sample(&mut self, samples: &[T], m: &Moments) {
        let seen = self.finite_seen + m.finite;
        let stride = stride_for(seen).max(self.stride);
        thin(&mut self.kept, stride / self.stride);
        gather(
            samples,
            m.finite == samples.len() as u64,
            self.finite_seen,
            stride,
            &mut self.kept,
        );
        self.stride = stride;
        self.finite_seen = seen;
        // Only after a merge (whose phase is approximate) can this trigger.
        while self.kept.len() > SAMPLE_CAP {
            thin(&mut self.kept, 2);
            self.stride *= 2;
        }
    }

    /// Combines two deterministic samples: keeps positions that are
    /// multiples of the common stride in the concatenated sequence (exact for
    /// this accumulator's part; `other`'s part is aligned to the nearest
    /// position its own stride allows).
    fn merge_sample(&mut self, other: Self) {
        if other.finite_seen == 0 {
            return;
        }
        if self.finite_seen == 0 {
            self.kept = other.kept;
            self.stride = other.stride;
            self.finite_seen = other.finite_seen;
            return;
        }
        let total = self.finite_seen + other.finite_seen;
        let mut stride = stride_for(total).max(self.stride).max(other.stride);
        loop {
            let mut out = Vec::with_capacity(SAMPLE_CAP.min(self.kept.len() + other.kept.len()));
            out.extend(self.kept.iter().step_by(to_usize(stride / self.stride)));
            let step = stride / other.stride;
            let wanted = (stride - self.finite_seen % stride) % stride;
            let phase = wanted / other.stride;
            out.extend(
                other
                    .kept
                    .iter()
                    .skip(to_usize(phase))
                    .step_by(to_usize(step)),
            );
            if out.len() <= SAMPLE_CAP {
                self.kept = out;
                break;
            }
            stride *= 2;
        }
        self.stride = stride;
        self.finite_seen = total;
    }

    /// Statistics from the full histogram: all exact except for the final
    /// rounding of mean and std.
    fn finish_full(&self, bins: usize) -> ChannelStats {
        let counts = self.full.counts(bins);
        let count = self.count;
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

    /// Statistics from moments and the deterministic sample.
    fn finish_sampled(&self) -> ChannelStats {
        let m = &self.moments;
        let non_finite = m.nan || m.pos_inf || m.neg_inf;
        // NumPy: NaN wins; +inf and -inf together make inf - inf = NaN.
        let mean = if m.nan || (m.pos_inf && m.neg_inf) {
            f64::NAN
        } else if m.pos_inf {
            f64::INFINITY
        } else if m.neg_inf {
            f64::NEG_INFINITY
        } else {
            m.mean
        };
        // NumPy computes std from x - mean, which is NaN next to any infinity.
        let std = if non_finite {
            f64::NAN
        } else {
            (m.m2 / m.n as f64).sqrt()
        };
        let (min, max) = if m.nan {
            (f64::NAN, f64::NAN)
        } else {
            (m.min, m.max)
        };

        let mut sorted = self.kept.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        let (display_min, display_max) = if sorted.is_empty() {
            (0.0, 0.0)
        } else {
            let n = sorted.len() as u64;
            (
                sorted[to_usize(quantile_rank(DISPLAY_LOW_QUANTILE, n))],
                sorted[to_usize(quantile_rank(DISPLAY_HIGH_QUANTILE, n))],
            )
        };

        let histogram = if m.finite == 0 {
            Histogram {
                min: 0.0,
                max: 0.0,
                counts: vec![0],
            }
        } else {
            let binner = Binner::new(m.finite_min, m.finite_max);
            let mut counts = vec![0u64; binner.bins];
            for &v in &sorted {
                counts[binner.index(v)] += 1;
            }
            scale_counts(&mut counts, m.finite);
            Histogram {
                min: m.finite_min,
                max: m.finite_max,
                counts,
            }
        };
        ChannelStats {
            count: self.count,
            mean,
            std,
            min,
            max,
            display_min,
            display_max,
            histogram,
        }
    }
}

/// One accumulator per channel, shared by parallel workers that merge their
/// partial results into it (ingest, statistics from the store, PCA scores).
pub struct SharedChannelStats<T: Sample> {
    channels: Vec<std::sync::Mutex<StatsAccumulator<T>>>,
}

impl<T: Sample> SharedChannelStats<T> {
    /// Accumulators for `channels` channels.
    pub fn new(channels: usize) -> Self {
        SharedChannelStats {
            channels: (0..channels)
                .map(|_| std::sync::Mutex::new(StatsAccumulator::new()))
                .collect(),
        }
    }

    /// Merges a partial result into channel `channel`.
    pub fn merge(&self, channel: usize, partial: StatsAccumulator<T>) {
        self.channels[channel]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .merge(partial);
    }

    /// Adds `samples` to channel `channel` (accumulated without the lock,
    /// then merged).
    pub fn add(&self, channel: usize, samples: &[T]) {
        let mut partial = StatsAccumulator::new();
        partial.add(samples);
        self.merge(channel, partial);
    }

    /// The statistics of every channel.
    pub fn finish(self) -> Vec<ChannelStats> {
        self.channels
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()).finish())
            .collect()
    }
}

/// Accumulates `samples` using all cores: pieces of 256 Ki samples are
/// accumulated in parallel and merged. The result equals (up to rounding of
/// the moments) adding the pieces one after another, and does not depend on
/// the number of threads.
pub fn accumulate_par<T: Sample>(samples: &[T]) -> StatsAccumulator<T> {
    if T::HISTOGRAM_BINS.is_some() {
        // Integer counts: any split and merge order gives the same result.
        return samples
            .par_chunks(PAR_PIECE)
            .with_min_len(PAR_MIN_PIECES)
            .fold(StatsAccumulator::new, |mut acc, piece| {
                acc.add(piece);
                acc
            })
            .reduce_with(|mut a, b| {
                a.merge(b);
                a
            })
            .unwrap_or_default();
    }
    // Moments per piece in parallel, merged in order so that the result does
    // not depend on how rayon split the work.
    let pieces: Vec<Moments> = samples
        .par_chunks(PAR_PIECE)
        .map(Moments::of_slice)
        .collect();
    let mut acc = StatsAccumulator::new();
    acc.count = samples.len() as u64;
    let mut before = Vec::with_capacity(pieces.len());
    for m in &pieces {
        before.push(acc.moments.finite);
        acc.moments.merge(m);
    }
    // Which finite samples a sequential pass would keep depends only on
    // their total, so each piece can gather its share independently.
    let total = acc.moments.finite;
    let stride = stride_for(total);
    let parts: Vec<Vec<f64>> = samples
        .par_chunks(PAR_PIECE)
        .zip(pieces.par_iter().zip(before.par_iter()))
        .map(|(piece, (m, &before))| {
            let mut out = Vec::new();
            gather(
                piece,
                m.finite == piece.len() as u64,
                before,
                stride,
                &mut out,
            );
            out
        })
        .collect();
    acc.kept = parts.concat();
    acc.stride = stride;
    acc.finite_seen = total;
    acc
}

/// Exact counts of every possible value of an 8- or 16-bit type, in `u32`
/// lanes that are flushed into `u64` totals before they could overflow.
#[derive(Clone, Default)]
struct FullHistogram {
    /// `bins * LANES` counters, lane-interleaved (`bin * LANES + lane`) so
    /// that the lanes of one bin share a cache line.
    lanes: Vec<u32>,
    /// Samples counted in `lanes` since the last flush: bounds every counter.
    pending: u64,
    /// Flushed counts per bin; empty until the first flush.
    totals: Vec<u64>,
}

impl FullHistogram {
    fn add<T: Sample>(&mut self, samples: &[T], bins: usize) {
        if self.lanes.is_empty() {
            self.lanes = vec![0; bins * LANES];
        }
        for piece in samples.chunks(to_usize(LANE_LIMIT)) {
            if self.pending + piece.len() as u64 > LANE_LIMIT {
                self.flush(bins);
            }
            count_into_lanes(&mut self.lanes, piece);
            self.pending += piece.len() as u64;
        }
    }

    /// Moves the lane counts into the `u64` totals.
    fn flush(&mut self, bins: usize) {
        if self.totals.is_empty() {
            self.totals = vec![0; bins];
        }
        for (total, lanes) in self.totals.iter_mut().zip(self.lanes.chunks_exact(LANES)) {
            *total += lanes.iter().map(|&c| u64::from(c)).sum::<u64>();
        }
        self.lanes.fill(0);
        self.pending = 0;
    }

    fn merge(&mut self, other: FullHistogram, bins: usize) {
        if other.lanes.is_empty() {
            return;
        }
        if self.lanes.is_empty() {
            *self = other;
            return;
        }
        if self.pending + other.pending > LANE_LIMIT {
            self.flush(bins);
        }
        for (a, b) in self.lanes.iter_mut().zip(&other.lanes) {
            *a += b;
        }
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

    /// Count per bin.
    fn counts(&self, bins: usize) -> Vec<u64> {
        let mut counts = vec![0u64; bins];
        for (c, lanes) in counts.iter_mut().zip(self.lanes.chunks_exact(LANES)) {
            *c = lanes.iter().map(|&l| u64::from(l)).sum();
        }
        for (c, t) in counts.iter_mut().zip(&self.totals) {
            *c += t;
        }
        counts
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

/// Moments and extremes of a run of samples of a wide type.
#[derive(Debug, Clone, Copy)]
struct Moments {
    /// Samples, NaN and infinities included.
    n: u64,
    /// Finite samples.
    finite: u64,
    /// Mean (meaningless once a non-finite sample was seen).
    mean: f64,
    /// Sum of squared deviations from the mean.
    m2: f64,
    /// Smallest non-NaN sample (may be -inf).
    min: f64,
    /// Largest non-NaN sample (may be +inf).
    max: f64,
    /// Smallest finite sample.
    finite_min: f64,
    /// Largest finite sample.
    finite_max: f64,
    nan: bool,
    pos_inf: bool,
    neg_inf: bool,
}

impl Moments {
    const EMPTY: Moments = Moments {
        n: 0,
        finite: 0,
        mean: 0.0,
        m2: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        finite_min: f64::INFINITY,
        finite_max: f64::NEG_INFINITY,
        nan: false,
        pos_inf: false,
        neg_inf: false,
    };

    /// Moments of a slice of any length: two-pass moments of cache-sized
    /// chunks, merged.
    fn of_slice<T: Sample>(samples: &[T]) -> Moments {
        let mut m = Moments::EMPTY;
        for chunk in samples.chunks(MOMENT_CHUNK) {
            m.merge(&Moments::of_chunk(chunk));
        }
        m
    }

    /// Two-pass moments: the mean from blockwise sums, then the squared
    /// deviations from it (with the correction term of the "corrected
    /// two-pass algorithm", which also refines the mean).
    fn of_chunk<T: Sample>(samples: &[T]) -> Moments {
        let n = samples.len() as f64;
        let mut sum = 0.0;
        let mut mins = [f64::INFINITY; 4];
        let mut maxs = [f64::NEG_INFINITY; 4];
        for block in samples.chunks(SUM_BLOCK) {
            let mut acc = [0.0f64; 4];
            let mut quads = block.chunks_exact(4);
            for q in &mut quads {
                for l in 0..4 {
                    let x = q[l].to_f64();
                    acc[l] += x;
                    // Comparisons are false for NaN, so NaN never lands here.
                    if x < mins[l] {
                        mins[l] = x;
                    }
                    if x > maxs[l] {
                        maxs[l] = x;
                    }
                }
            }
            for v in quads.remainder() {
                let x = v.to_f64();
                acc[0] += x;
                if x < mins[0] {
                    mins[0] = x;
                }
                if x > maxs[0] {
                    maxs[0] = x;
                }
            }
            sum += (acc[0] + acc[1]) + (acc[2] + acc[3]);
        }
        let min = mins.iter().copied().fold(f64::INFINITY, f64::min);
        let max = maxs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !sum.is_finite() {
            return Moments::of_unclean_chunk(samples, sum / n, min, max);
        }
        let mean = sum / n;
        let mut sq = [0.0f64; 4];
        let mut dev = [0.0f64; 4];
        let mut quads = samples.chunks_exact(4);
        for q in &mut quads {
            for l in 0..4 {
                let d = q[l].to_f64() - mean;
                dev[l] += d;
                sq[l] += d * d;
            }
        }
        for v in quads.remainder() {
            let d = v.to_f64() - mean;
            dev[0] += d;
            sq[0] += d * d;
        }
        let dev = (dev[0] + dev[1]) + (dev[2] + dev[3]);
        let sq = (sq[0] + sq[1]) + (sq[2] + sq[3]);
        Moments {
            n: samples.len() as u64,
            finite: samples.len() as u64,
            mean: mean + dev / n,
            m2: (sq - dev * dev / n).max(0.0),
            min,
            max,
            finite_min: min,
            finite_max: max,
            nan: false,
            pos_inf: false,
            neg_inf: false,
        }
    }

    /// The rare chunk whose sum is not finite: NaN, infinities, or an
    /// overflowing sum. Classifies every sample.
    fn of_unclean_chunk<T: Sample>(samples: &[T], mean: f64, min: f64, max: f64) -> Moments {
        let mut m = Moments {
            n: samples.len() as u64,
            mean,
            m2: f64::NAN,
            min,
            max,
            ..Moments::EMPTY
        };
        for v in samples {
            let x = v.to_f64();
            if x.is_nan() {
                m.nan = true;
            } else if x == f64::INFINITY {
                m.pos_inf = true;
            } else if x == f64::NEG_INFINITY {
                m.neg_inf = true;
            } else {
                m.finite += 1;
                m.finite_min = m.finite_min.min(x);
                m.finite_max = m.finite_max.max(x);
            }
        }
        m
    }

    /// Chan et al.'s pairwise update: `other`'s samples follow this one's.
    fn merge(&mut self, other: &Moments) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let n = self.n + other.n;
        let w = other.n as f64 / n as f64;
        let delta = other.mean - self.mean;
        self.mean += delta * w;
        self.m2 += other.m2 + delta * delta * self.n as f64 * w;
        self.n = n;
        self.finite += other.finite;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.finite_min = self.finite_min.min(other.finite_min);
        self.finite_max = self.finite_max.max(other.finite_max);
        self.nan |= other.nan;
        self.pos_inf |= other.pos_inf;
        self.neg_inf |= other.neg_inf;
    }
}

/// The smallest power-of-two stride that keeps at most [`SAMPLE_CAP`] of
/// `finite` samples. A sequential pass that halves its sample whenever it
/// is full ends with exactly this stride, so it is a function of the total.
fn stride_for(finite: u64) -> u64 {
    let mut stride = 1u64;
    while finite.div_ceil(stride) > SAMPLE_CAP as u64 {
        stride *= 2;
    }
    stride
}

/// Keeps every `factor`-th element (positions 0, factor, 2·factor, …).
fn thin(kept: &mut Vec<f64>, factor: u64) {
    if factor <= 1 {
        return;
    }
    let factor = to_usize(factor);
    let mut position = 0usize;
    kept.retain(|_| {
        let keep = position % factor == 0;
        position += 1;
        keep
    });
}

/// Appends the finite samples of `samples` whose overall finite position
/// (counting from `before`) is a multiple of `stride`.
fn gather<T: Sample>(
    samples: &[T],
    all_finite: bool,
    before: u64,
    stride: u64,
    out: &mut Vec<f64>,
) {
    if all_finite {
        let first = to_usize((stride - before % stride) % stride);
        if first < samples.len() {
            out.extend(
                samples[first..]
                    .iter()
                    .step_by(to_usize(stride))
                    .map(|v| v.to_f64()),
            );
        }
    } else {
        let mut position = before;
        for v in samples {
            let x = v.to_f64();
            if x.is_finite() {
                if position % stride == 0 {
                    out.push(x);
                }
                position += 1;
            }
        }
    }
}

/// The rank of quantile `q` among `n` sorted values: `floor(q * (n - 1))`,
/// evaluated in `f64` as the definition (and a NumPy reference) does.
fn quantile_rank(q: f64, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    ((q * (n - 1) as f64).floor() as u64).min(n - 1)
}

/// NumPy's binning for equal-width bins over `[min, max]`.
struct Binner {
    min: f64,
    max: f64,
    step: f64,
    norm: f64,
    bins: usize,
}

impl Binner {
    /// [`DISPLAY_BINS`] bins, or one when the range is a single value.
    fn new(min: f64, max: f64) -> Binner {
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
    fn index(&self, v: f64) -> usize {
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
fn scale_counts(counts: &mut [u64], target: u64) {
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
fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Straightforward two-pass reference over finite f64 values.
    struct Reference {
        mean: f64,
        std: f64,
        min: f64,
        max: f64,
        display_min: f64,
        display_max: f64,
        histogram: Vec<u64>,
    }

    fn reference(values: &[f64]) -> Reference {
        let n = values.len() as f64;
        // Neumaier summation, so the reference is more accurate than the
        // code under test.
        let (mut sum, mut comp) = (0.0f64, 0.0f64);
        for &v in values {
            let t = sum + v;
            comp += if sum.abs() >= v.abs() {
                (sum - t) + v
            } else {
                (v - t) + sum
            };
            sum = t;
        }
        let mean = (sum + comp) / n;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |q: f64| sorted[(q * (values.len() - 1) as f64).floor() as usize];
        let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
        // numpy.histogram by definition: edges from linspace, half-open
        // bins, the last one closed.
        let bins = if min < max { 256 } else { 1 };
        let step = (max - min) / bins as f64;
        let edges: Vec<f64> = (0..=bins)
            .map(|i| {
                if i == bins {
                    max
                } else {
                    i as f64 * step + min
                }
            })
            .collect();
        let mut histogram = vec![0u64; bins];
        for &v in values {
            let i = (0..bins)
                .find(|&i| v >= edges[i] && (v < edges[i + 1] || i == bins - 1))
                .unwrap();
            histogram[i] += 1;
        }
        Reference {
            mean,
            std: var.sqrt(),
            min,
            max,
            display_min: rank(0.001),
            display_max: rank(0.999),
            histogram,
        }
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
    }

    fn check_exact<T: Sample>(values: &[T], stats: &ChannelStats) {
        let f: Vec<f64> = values.iter().map(|v| v.to_f64()).collect();
        let r = reference(&f);
        assert_eq!(stats.count, values.len() as u64);
        assert!(
            close(stats.mean, r.mean, 1e-12),
            "{} {}",
            stats.mean,
            r.mean
        );
        assert!(close(stats.std, r.std, 1e-12), "{} {}", stats.std, r.std);
        assert_eq!(stats.min, r.min);
        assert_eq!(stats.max, r.max);
        assert_eq!(stats.display_min, r.display_min);
        assert_eq!(stats.display_max, r.display_max);
        assert_eq!(stats.histogram.min, r.min);
        assert_eq!(stats.histogram.max, r.max);
        assert_eq!(stats.histogram.counts, r.histogram);
    }

    /// Adds `values` in irregular pieces.
    fn add_in_pieces<T: Sample>(values: &[T], rng: &mut Rng) -> StatsAccumulator<T> {
        let mut acc = StatsAccumulator::new();
        let mut rest = values;
        while !rest.is_empty() {
            let take = (1 + rng.next() as usize % 5000).min(rest.len());
            acc.add(&rest[..take]);
            rest = &rest[take..];
        }
        acc
    }

    #[test]
    fn u8_matches_reference() {
        let mut rng = Rng(1);
        let values: Vec<u8> = (0..10_007)
            .map(|_| (rng.unit() * rng.unit() * 200.0) as u8 + 3)
            .collect();
        let mut acc = StatsAccumulator::new();
        acc.add(&values);
        check_exact(&values, &acc.finish());
        check_exact(&values, &add_in_pieces(&values, &mut rng).finish());
    }

    #[test]
    fn u16_i16_i8_match_reference() {
        let mut rng = Rng(2);
        // Flat background plus a bright, sparse foreground.
        let u: Vec<u16> = (0..70_001)
            .map(|_| {
                if rng.unit() < 0.9 {
                    100 + (rng.next() % 3) as u16
                } else {
                    (rng.next() % 60_000) as u16
                }
            })
            .collect();
        check_exact(&u, &add_in_pieces(&u, &mut rng).finish());
        let i: Vec<i16> = (0..30_000)
            .map(|_| (rng.next() % 65_536) as u16 as i16)
            .collect();
        check_exact(&i, &add_in_pieces(&i, &mut rng).finish());
        let b: Vec<i8> = (0..3_000).map(|_| (rng.next() % 200) as i8).collect();
        check_exact(&b, &add_in_pieces(&b, &mut rng).finish());
    }

    #[test]
    fn full_histogram_merge_is_exact_and_order_independent() {
        let mut rng = Rng(3);
        let values: Vec<u16> = (0..50_000).map(|_| (rng.next() % 4000) as u16).collect();
        let mut one = StatsAccumulator::new();
        one.add(&values);
        let (a, b) = values.split_at(12_345);
        let mut left = StatsAccumulator::new();
        left.add(a);
        let mut right = StatsAccumulator::new();
        right.add(b);
        let mut ab = left.clone();
        ab.merge(right.clone());
        right.merge(left);
        assert_eq!(ab.finish(), one.finish());
        assert_eq!(right.finish(), one.finish());
        // Parallel accumulation is exact for full histograms.
        let big: Vec<u16> = (0..1_500_000).map(|i| (i % 7919) as u16).collect();
        let mut seq = StatsAccumulator::new();
        seq.add(&big);
        assert_eq!(accumulate_par(&big).finish(), seq.finish());
    }

    #[test]
    fn single_value_has_one_bin_and_empty_is_zero() {
        let mut acc = StatsAccumulator::<u16>::new();
        acc.add(&[7; 10]);
        let s = acc.finish();
        assert_eq!((s.mean, s.std, s.min, s.max), (7.0, 0.0, 7.0, 7.0));
        assert_eq!((s.display_min, s.display_max), (7.0, 7.0));
        assert_eq!(s.histogram.counts, vec![10]);

        let mut acc = StatsAccumulator::<f32>::new();
        acc.add(&[2.5; 3]);
        assert_eq!(acc.finish().histogram.counts, vec![3]);

        for s in [
            StatsAccumulator::<u8>::new().finish(),
            StatsAccumulator::<f64>::new().finish(),
        ] {
            assert_eq!(s, ChannelStats::empty());
            assert_eq!(s.count, 0);
            assert_eq!(s.mean, 0.0);
        }
    }

    #[test]
    fn wide_types_exact_below_sample_cap() {
        let mut rng = Rng(4);
        let f: Vec<f32> = (0..60_000)
            .map(|_| (rng.unit() * 1000.0 - 300.0) as f32)
            .collect();
        check_exact(&f, &add_in_pieces(&f, &mut rng).finish());
        let i: Vec<i32> = (0..20_000)
            .map(|_| (rng.next() % 2_000_000) as i32 - 1_000_000)
            .collect();
        check_exact(&i, &add_in_pieces(&i, &mut rng).finish());
        let u: Vec<u64> = (0..5_000).map(|_| rng.next() >> 20).collect();
        check_exact(&u, &add_in_pieces(&u, &mut rng).finish());
    }

    #[test]
    fn mean_and_std_are_accurate_with_large_offset() {
        // A large offset with small spread is where one-pass formulas fail.
        let mut rng = Rng(5);
        let values: Vec<f64> = (0..300_000).map(|_| 1e9 + rng.unit()).collect();
        let r = reference(&values);
        let s = accumulate_par(&values).finish();
        assert!(close(s.mean, r.mean, 1e-13), "{} {}", s.mean, r.mean);
        assert!(close(s.std, r.std, 1e-9), "{} {}", s.std, r.std);
    }

    #[test]
    fn sample_is_bounded_deterministic_and_par_equals_sequential() {
        let mut rng = Rng(6);
        let values: Vec<f64> = (0..1_000_003).map(|_| rng.unit() * 100.0).collect();
        let mut seq = StatsAccumulator::new();
        for piece in values.chunks(PAR_PIECE) {
            seq.add(piece);
        }
        assert!(seq.kept.len() <= SAMPLE_CAP);
        assert_eq!(seq.stride, 16);
        let par = accumulate_par(&values);
        assert_eq!(par.kept, seq.kept);
        assert_eq!(par.stride, seq.stride);
        // Same association of merges: identical moments.
        let (a, b) = (par.finish(), seq.finish());
        assert_eq!(a, b);
        // The sample is every 16th value.
        let expected: Vec<f64> = values.iter().step_by(16).copied().collect();
        assert_eq!(seq.kept, expected);

        // Irregular add calls keep the same sample.
        let irregular = add_in_pieces(&values, &mut rng);
        assert_eq!(irregular.kept, expected);

        // Estimates are close to the exact values.
        let r = reference(&values);
        assert!(close(a.mean, r.mean, 1e-12));
        assert!(close(a.std, r.std, 1e-12));
        assert_eq!((a.min, a.max), (r.min, r.max));
        assert!((a.display_min - r.display_min).abs() < 0.05);
        assert!((a.display_max - r.display_max).abs() < 0.05);
        assert_eq!(a.histogram.counts.iter().sum::<u64>(), values.len() as u64);
        for (got, want) in a.histogram.counts.iter().zip(&r.histogram) {
            // About 244 sampled values per bin, scaled by 16: a standard
            // deviation of 6.4 %, so 35 % is over five of them.
            assert!((*got as f64 - *want as f64).abs() < 0.35 * *want as f64);
        }
    }

    #[test]
    fn merged_samples_stay_bounded() {
        let mut rng = Rng(7);
        let values: Vec<f32> = (0..400_000).map(|_| rng.unit() as f32).collect();
        let mut acc = StatsAccumulator::new();
        for piece in values.chunks(33_333) {
            let mut part = StatsAccumulator::new();
            part.add(piece);
            acc.merge(part);
            assert!(acc.kept.len() <= SAMPLE_CAP);
        }
        acc.add(&values[..1000]);
        assert!(acc.kept.len() <= SAMPLE_CAP);
        let s = acc.finish();
        assert_eq!(s.count, 401_000);
        assert!((s.display_max - 0.999).abs() < 0.002);
        assert!((s.display_min - 0.001).abs() < 0.002);
    }

    #[test]
    fn nan_and_infinity_follow_numpy() {
        let mut acc = StatsAccumulator::<f32>::new();
        acc.add(&[1.0, f32::NAN, 3.0, f32::INFINITY]);
        let s = acc.finish();
        assert_eq!(s.count, 4);
        assert!(s.mean.is_nan() && s.std.is_nan() && s.min.is_nan() && s.max.is_nan());
        // Percentiles and histogram see only 1 and 3 (rank floor(0.999 * 1)
        // is 0, so both ends of the window are 1).
        assert_eq!((s.display_min, s.display_max), (1.0, 1.0));
        assert_eq!((s.histogram.min, s.histogram.max), (1.0, 3.0));
        assert_eq!(s.histogram.counts[0], 1);
        assert_eq!(s.histogram.counts[255], 1);
        assert_eq!(s.histogram.counts.iter().sum::<u64>(), 2);

        let mut acc = StatsAccumulator::<f64>::new();
        acc.add(&[1.0, 2.0]);
        acc.add(&[f64::INFINITY]);
        let s = acc.finish();
        assert_eq!((s.mean, s.min, s.max), (f64::INFINITY, 1.0, f64::INFINITY));
        assert!(s.std.is_nan());
        assert_eq!(s.histogram.counts.iter().sum::<u64>(), 2);

        let mut acc = StatsAccumulator::<f64>::new();
        acc.add(&[f64::NEG_INFINITY, f64::INFINITY]);
        let s = acc.finish();
        assert!(s.mean.is_nan());
        assert_eq!((s.min, s.max), (f64::NEG_INFINITY, f64::INFINITY));
        assert_eq!(s.histogram.counts, vec![0]);
    }

    #[test]
    fn lanes_flush_before_overflow() {
        // LANE_LIMIT is 1000 in tests, so this flushes many times.
        let values: Vec<u8> = (0..25_000u32).map(|i| (i % 251) as u8).collect();
        let mut acc = StatsAccumulator::new();
        for piece in values.chunks(777) {
            acc.add(piece);
        }
        let mut other = StatsAccumulator::new();
        other.add(&values[..999]);
        acc.merge(other);
        let mut all = values.clone();
        all.extend_from_slice(&values[..999]);
        check_exact(&all, &acc.finish());
    }

    #[test]
    fn scaled_counts_keep_total() {
        let mut c = vec![1, 1, 1];
        scale_counts(&mut c, 10);
        assert_eq!(c, vec![4, 3, 3]);
        assert_eq!(stride_for(65_536), 1);
        assert_eq!(stride_for(65_537), 2);
    }
}
