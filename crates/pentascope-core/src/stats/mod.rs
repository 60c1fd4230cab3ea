//! Per-channel statistics accumulated in one streaming pass: count, mean,
//! population standard deviation, extremes, the auto-contrast display window
//! (0.1th/99.9th percentiles) and a 256-bin histogram.
//!
//! [`StatsAccumulator`] picks one of two strategies per sample type, from
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
//!
//! The strategies live in `exact` and `sampled`, what they share in
//! `binning`; `tails` finds a float stream's display window exactly (PCA
//! scores); this module holds the public types and the dispatch.

mod binning;
mod exact;
mod sampled;
mod tails;

use crate::dtype::Sample;
use crate::error::CoreError;
use crate::wire::{WireReader, WireWriter};
use exact::ExactHistogram;
use rayon::prelude::*;
use sampled::SampledMoments;
use std::fmt;
use std::marker::PhantomData;
pub use tails::Tails;

/// Bins of the served histogram.
const DISPLAY_BINS: usize = 256;
/// Quantile of the lower end of the default display window.
pub const DISPLAY_LOW_QUANTILE: f64 = 0.001;
/// Quantile of the upper end of the default display window.
pub const DISPLAY_HIGH_QUANTILE: f64 = 0.999;

/// Samples per piece that [`accumulate_par`] hands to one `add` call.
const PAR_PIECE: usize = 256 * 1024;
/// Pieces one rayon job accumulates at least: each job owns full histograms
/// (0.25-1.25 MiB for 16-bit types) that have to be zeroed and merged, so
/// jobs must be large enough for that to be noise.
const PAR_MIN_PIECES: usize = 4;

/// Summary of one channel over T, Z, Y, X, as stored and served.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ChannelStats {
    /// Number of samples (NaN included).
    pub count: u64,
    /// Mean, as `arr.astype(float64).mean()`.
    #[serde(with = "crate::json_f64")]
    #[schemars(with = "Option<f64>")]
    pub mean: f64,
    /// Population standard deviation (ddof = 0), as `arr.astype(float64).std()`.
    #[serde(with = "crate::json_f64")]
    #[schemars(with = "Option<f64>")]
    pub std: f64,
    /// Smallest sample (NaN if any sample is NaN).
    #[serde(with = "crate::json_f64")]
    #[schemars(with = "Option<f64>")]
    pub min: f64,
    /// Largest sample (NaN if any sample is NaN).
    #[serde(with = "crate::json_f64")]
    #[schemars(with = "Option<f64>")]
    pub max: f64,
    /// 0.1th percentile of the finite samples, the lower end of the default
    /// display window (auto-contrast).
    #[serde(with = "crate::json_f64")]
    #[schemars(with = "Option<f64>")]
    pub display_min: f64,
    /// 99.9th percentile of the finite samples, the upper end of the default
    /// display window.
    #[serde(with = "crate::json_f64")]
    #[schemars(with = "Option<f64>")]
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
#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Histogram {
    /// Left edge of the first bin.
    #[serde(with = "crate::json_f64")]
    #[schemars(with = "Option<f64>")]
    pub min: f64,
    /// Right edge of the last bin.
    #[serde(with = "crate::json_f64")]
    #[schemars(with = "Option<f64>")]
    pub max: f64,
    /// Samples per bin. For 8- and 16-bit integer images these are exact.
    /// For wider types they are exact up to 2^16 finite samples; beyond that
    /// they are counted on the deterministic sample and scaled so that they
    /// add up to the number of finite samples.
    pub counts: Vec<u64>,
}

/// Accumulates [`ChannelStats`] of one channel from slices of samples, in
/// one pass, with bounded memory (at most 1.25 MiB for 16-bit types, 512
/// KiB for wide types, a few KiB for 8-bit types).
///
/// Results depend only on the samples and the order of `add` and `merge`
/// calls, never on timing; [`accumulate_par`] gives the same result as adding
/// its input sequentially in pieces of 256 Ki samples.
#[derive(Clone)]
pub struct StatsAccumulator<T: Sample> {
    /// Samples added, NaN included.
    count: u64,
    strategy: Strategy,
    _type: PhantomData<T>,
}

/// The strategy of a sample type, fixed by [`Sample::HISTOGRAM_BINS`] in
/// [`StatsAccumulator::new`]; dispatched once per slice, never per sample.
#[derive(Clone)]
enum Strategy {
    /// 8- and 16-bit types.
    Exact(ExactHistogram),
    /// Wider types.
    Sampled(SampledMoments),
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
        let strategy = match T::HISTOGRAM_BINS {
            Some(bins) => Strategy::Exact(ExactHistogram::new(bins)),
            None => Strategy::Sampled(SampledMoments::EMPTY),
        };
        StatsAccumulator {
            count: 0,
            strategy,
            _type: PhantomData,
        }
    }

    /// Adds a slice of samples (any length, including 0).
    pub fn add(&mut self, samples: &[T]) {
        if samples.is_empty() {
            return;
        }
        self.count += samples.len() as u64;
        match &mut self.strategy {
            Strategy::Exact(h) => h.add(samples),
            Strategy::Sampled(s) => s.add(samples),
        }
    }

    /// Adds what `other` accumulated, as if its samples had been added after
    /// this accumulator's. For 8- and 16-bit types the result is exactly
    /// that of a single pass. For wider types the moments agree with a
    /// single pass up to rounding, and the percentile sample keeps the same
    /// stride but `other`'s part may be shifted by less than one stride.
    pub fn merge(&mut self, other: Self) {
        self.count += other.count;
        match (&mut self.strategy, other.strategy) {
            (Strategy::Exact(a), Strategy::Exact(b)) => a.merge(b),
            (Strategy::Sampled(a), Strategy::Sampled(b)) => a.merge(b),
            // `new` picks the strategy from `T` alone.
            _ => unreachable!("accumulators of one type share a strategy"),
        }
    }

    /// Writes this partial result in the [`wire`](crate::wire) form, for
    /// another worker to [`decode`](Self::decode) and merge.
    pub fn encode(&self, w: &mut WireWriter) {
        w.u64(self.count);
        match &self.strategy {
            Strategy::Exact(h) => h.encode(w),
            Strategy::Sampled(s) => s.encode(w),
        }
    }

    /// Reads what [`Self::encode`] wrote for the same sample type; merging
    /// it gives what merging the original would have.
    pub fn decode(r: &mut WireReader<'_>) -> Result<Self, CoreError> {
        let count = r.u64()?;
        let strategy = match T::HISTOGRAM_BINS {
            Some(bins) => Strategy::Exact(ExactHistogram::decode(bins, count, r)?),
            None => Strategy::Sampled(SampledMoments::decode(count, r)?),
        };
        Ok(StatsAccumulator {
            count,
            strategy,
            _type: PhantomData,
        })
    }

    /// The statistics of everything added so far (all zero if nothing was).
    pub fn finish(&self) -> ChannelStats {
        if self.count == 0 {
            return ChannelStats::empty();
        }
        match &self.strategy {
            Strategy::Exact(h) => h.finish::<T>(self.count),
            Strategy::Sampled(s) => s.finish(self.count),
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
    StatsAccumulator {
        count: samples.len() as u64,
        strategy: Strategy::Sampled(SampledMoments::of_slice_par(samples)),
        _type: PhantomData,
    }
}

#[cfg(test)]
mod tests {
    use super::sampled::SAMPLE_CAP;
    use super::*;

    /// The sampled strategy of a wide-type accumulator.
    fn sampled<T: Sample>(acc: &StatsAccumulator<T>) -> &SampledMoments {
        match &acc.strategy {
            Strategy::Sampled(s) => s,
            Strategy::Exact(_) => panic!("{:?} has an exact histogram", T::DTYPE),
        }
    }

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
        assert!(sampled(&seq).kept().len() <= SAMPLE_CAP);
        assert_eq!(sampled(&seq).stride(), 16);
        let par = accumulate_par(&values);
        assert_eq!(sampled(&par).kept(), sampled(&seq).kept());
        assert_eq!(sampled(&par).stride(), sampled(&seq).stride());
        // Same association of merges: identical moments.
        let (a, b) = (par.finish(), seq.finish());
        assert_eq!(a, b);
        // The sample is every 16th value.
        let expected: Vec<f64> = values.iter().step_by(16).copied().collect();
        assert_eq!(sampled(&seq).kept(), expected);

        // Irregular add calls keep the same sample.
        let irregular = add_in_pieces(&values, &mut rng);
        assert_eq!(sampled(&irregular).kept(), expected);

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

    /// Encodes and decodes an accumulator.
    fn round_trip<T: Sample>(acc: &StatsAccumulator<T>) -> StatsAccumulator<T> {
        let mut w = WireWriter::new();
        acc.encode(&mut w);
        let bytes = w.into_bytes();
        let mut r = WireReader::new(&bytes);
        let back = StatsAccumulator::decode(&mut r).unwrap();
        r.finish().unwrap();
        back
    }

    #[test]
    fn decoded_partials_merge_exactly_as_the_originals() {
        let mut rng = Rng(7);
        let ints: Vec<u16> = (0..300_000).map(|_| (rng.next() % 4000) as u16).collect();
        let floats: Vec<f32> = (0..300_000)
            .map(|i| {
                if i == 17 {
                    f32::NAN
                } else {
                    rng.next() as f32 / 7.0
                }
            })
            .collect();
        fn check<T: Sample>(samples: &[T]) {
            let (a, b) = samples.split_at(123_457);
            let part = |s: &[T]| {
                let mut acc = StatsAccumulator::<T>::new();
                acc.add(s);
                acc
            };
            let mut direct = part(a);
            direct.merge(part(b));
            let mut decoded = round_trip(&part(a));
            decoded.merge(round_trip(&part(b)));
            let (x, y) = (direct.finish(), decoded.finish());
            assert_eq!(format!("{x:?}"), format!("{y:?}"));
            // an empty accumulator survives, and merging it changes nothing
            let mut with_empty = round_trip(&StatsAccumulator::<T>::new());
            with_empty.merge(round_trip(&direct));
            assert_eq!(format!("{:?}", with_empty.finish()), format!("{x:?}"));
        }
        check(&ints);
        check(&floats);
        // a bin past the type's range is refused
        let mut w = WireWriter::new();
        w.u64(1);
        w.u64s(&[256, 1]);
        let bytes = w.into_bytes();
        assert!(StatsAccumulator::<u8>::decode(&mut WireReader::new(&bytes)).is_err());
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
            assert!(sampled(&acc).kept().len() <= SAMPLE_CAP);
        }
        acc.add(&values[..1000]);
        assert!(sampled(&acc).kept().len() <= SAMPLE_CAP);
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
}
