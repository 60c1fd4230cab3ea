//! The strategy of wide types (32/64-bit integers, floats): moments merged
//! with Chan's formula, and a bounded deterministic sample from which the
//! percentiles and the histogram are estimated.

use super::binning::{quantile_rank, scale_counts, to_usize, Binner};
use super::{ChannelStats, Histogram, DISPLAY_HIGH_QUANTILE, DISPLAY_LOW_QUANTILE, PAR_PIECE};
use crate::dtype::Sample;
use crate::error::CoreError;
use crate::wire::{WireReader, WireWriter};
use rayon::prelude::*;

/// Samples summed into one partial `f64` sum: keeps the rounding error of the
/// mean near `eps * log(n)` rather than `eps * n`.
const SUM_BLOCK: usize = 4096;
/// Independent partial sums in the moments' loops: two vectors of four,
/// so that two additions are in flight.
const LANES: usize = 8;
/// Samples whose moments are computed with two passes before being merged:
/// small enough that the second pass reads from cache.
const MOMENT_CHUNK: usize = 32 * 1024;
/// Most samples kept for percentiles and histogram of wide types.
pub(super) const SAMPLE_CAP: usize = 1 << 16;

/// Moments of all samples and a deterministic sample of the finite ones.
#[derive(Clone)]
pub(super) struct SampledMoments {
    moments: Moments,
    /// `kept[j]` is finite sample number `j * stride`.
    kept: Vec<f64>,
    /// Distance between kept samples, a power of two.
    stride: u64,
    /// Finite samples seen, the position of the next one.
    finite_seen: u64,
}

impl SampledMoments {
    /// Nothing seen; allocates nothing.
    pub(super) const EMPTY: SampledMoments = SampledMoments {
        moments: Moments::EMPTY,
        kept: Vec::new(),
        stride: 1,
        finite_seen: 0,
    };

    /// Adds the moments of `samples` and extends the sample.
    pub(super) fn add<T: Sample>(&mut self, samples: &[T]) {
        let m = Moments::of_slice(samples);
        self.moments.merge(&m);
        self.sample(samples, &m);
    }

    /// Moments merged by Chan's formula; see [`Self::merge_sample`] for the
    /// sample.
    pub(super) fn merge(&mut self, other: SampledMoments) {
        self.moments.merge(&other.moments);
        self.merge_sample(other);
    }

    /// What adding `samples` in pieces of [`PAR_PIECE`] would give, computed
    /// on all cores.
    pub(super) fn of_slice_par<T: Sample>(samples: &[T]) -> SampledMoments {
        // Moments per piece in parallel, merged in order so that the result
        // does not depend on how rayon split the work.
        let pieces: Vec<Moments> = samples
            .par_chunks(PAR_PIECE)
            .map(Moments::of_slice)
            .collect();
        let mut moments = Moments::EMPTY;
        let mut before = Vec::with_capacity(pieces.len());
        for m in &pieces {
            before.push(moments.finite);
            moments.merge(m);
        }
        // Which finite samples a sequential pass would keep depends only on
        // their total, so each piece can gather its share independently.
        let total = moments.finite;
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
        SampledMoments {
            moments,
            kept: parts.concat(),
            stride,
            finite_seen: total,
        }
    }

    /// Extends the deterministic sample with the finite samples of `samples`
    /// whose position is a multiple of the (possibly doubled) stride.
    fn sample<T: Sample>(&mut self, samples: &[T], m: &Moments) {
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
    fn merge_sample(&mut self, other: SampledMoments) {
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

    /// Writes the moments and the sample, bit for bit.
    pub(super) fn encode(&self, w: &mut WireWriter) {
        let m = &self.moments;
        w.u64(m.n);
        w.u64(m.finite);
        for v in [m.mean, m.m2, m.min, m.max, m.finite_min, m.finite_max] {
            w.f64(v);
        }
        for flag in [m.nan, m.pos_inf, m.neg_inf] {
            w.bool(flag);
        }
        w.f64s(&self.kept);
        w.u64(self.stride);
        w.u64(self.finite_seen);
    }

    /// Reads what [`Self::encode`] wrote for `count` samples, checking that
    /// the counts agree with each other and the sample fits them.
    pub(super) fn decode(count: u64, r: &mut WireReader<'_>) -> Result<Self, CoreError> {
        let (n, finite) = (r.u64()?, r.u64()?);
        let mut f = [0.0; 6];
        for v in &mut f {
            *v = r.f64()?;
        }
        let (nan, pos_inf, neg_inf) = (r.bool()?, r.bool()?, r.bool()?);
        let kept = r.f64s()?;
        let (stride, finite_seen) = (r.u64()?, r.u64()?);
        if kept.len() > SAMPLE_CAP
            || !stride.is_power_of_two()
            || n != count
            || finite > n
            || finite_seen != finite
            || kept.len() as u64 > finite
        {
            return Err(CoreError::InvalidRequest(
                "malformed partial result: sampled moments".into(),
            ));
        }
        Ok(SampledMoments {
            moments: Moments {
                n,
                finite,
                mean: f[0],
                m2: f[1],
                min: f[2],
                max: f[3],
                finite_min: f[4],
                finite_max: f[5],
                nan,
                pos_inf,
                neg_inf,
            },
            kept,
            stride,
            finite_seen,
        })
    }

    /// Statistics of `count` (> 0) samples from the moments and the
    /// deterministic sample, with NumPy's NaN and infinity semantics.
    pub(super) fn finish(&self, count: u64) -> ChannelStats {
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
            count,
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

#[cfg(test)]
impl SampledMoments {
    /// The kept sample, for tests of its size and determinism.
    pub(super) fn kept(&self) -> &[f64] {
        &self.kept
    }

    pub(super) fn stride(&self) -> u64 {
        self.stride
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

/// The sum of `lanes`, added pairwise in a fixed order.
fn pairwise(mut lanes: [f64; LANES]) -> f64 {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
    }
    lanes[0]
}

/// What the first pass over a chunk finds: its sum (blockwise, each block
/// over [`LANES`] lanes added [`pairwise`]) and each lane's extremes.
struct FirstPass {
    sum: f64,
    mins: [f64; LANES],
    maxs: [f64; LANES],
}

/// The first pass of [`Moments::of_chunk`]. Scores and other `f32`
/// samples, the most common wide type, take explicit AVX2 where the CPU
/// has it: the vectoriser shuffled this loop's lanes between registers.
/// Both give the same bits (lane `l` of each group of [`LANES`] is sample
/// `l`, in the same order of operations).
fn first_pass<T: Sample>(samples: &[T]) -> FirstPass {
    #[cfg(target_arch = "x86_64")]
    if T::DTYPE == crate::dtype::DType::F32 && std::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { avx2::first_pass(bytemuck::cast_slice(samples)) };
    }
    first_pass_lanes(samples)
}

/// Each lane's sum of deviations from `mean` and of their squares: the
/// second pass of [`Moments::of_chunk`], in AVX2 for `f32` as
/// [`first_pass`] is.
fn deviations<T: Sample>(samples: &[T], mean: f64) -> [[f64; LANES]; 2] {
    #[cfg(target_arch = "x86_64")]
    if T::DTYPE == crate::dtype::DType::F32 && std::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { avx2::deviations(bytemuck::cast_slice(samples), mean) };
    }
    deviations_lanes(samples, mean)
}

#[multiversion::multiversion(targets("x86_64+avx2"))]
fn first_pass_lanes<T: Sample>(samples: &[T]) -> FirstPass {
    let mut sum = 0.0;
    let mut mins = [f64::INFINITY; LANES];
    let mut maxs = [f64::NEG_INFINITY; LANES];
    for block in samples.chunks(SUM_BLOCK) {
        let mut acc = [0.0f64; LANES];
        let mut groups = block.chunks_exact(LANES);
        for g in &mut groups {
            let x: [f64; LANES] = std::array::from_fn(|l| g[l].to_f64());
            // comparisons are false for NaN, so NaN never lands in the
            // extremes
            for l in 0..LANES {
                acc[l] += x[l];
            }
            for l in 0..LANES {
                mins[l] = if x[l] < mins[l] { x[l] } else { mins[l] };
            }
            for l in 0..LANES {
                maxs[l] = if x[l] > maxs[l] { x[l] } else { maxs[l] };
            }
        }
        first_pass_remainder(groups.remainder(), &mut acc, &mut mins, &mut maxs);
        sum += pairwise(acc);
    }
    FirstPass { sum, mins, maxs }
}

/// A block's samples after its last whole group of lanes, in lane 0.
fn first_pass_remainder<T: Sample>(
    rest: &[T],
    acc: &mut [f64; LANES],
    mins: &mut [f64; LANES],
    maxs: &mut [f64; LANES],
) {
    for v in rest {
        let x = v.to_f64();
        acc[0] += x;
        if x < mins[0] {
            mins[0] = x;
        }
        if x > maxs[0] {
            maxs[0] = x;
        }
    }
}

#[multiversion::multiversion(targets("x86_64+avx2"))]
fn deviations_lanes<T: Sample>(samples: &[T], mean: f64) -> [[f64; LANES]; 2] {
    let mut sq = [0.0f64; LANES];
    let mut dev = [0.0f64; LANES];
    let mut groups = samples.chunks_exact(LANES);
    for g in &mut groups {
        let d: [f64; LANES] = std::array::from_fn(|l| g[l].to_f64() - mean);
        for l in 0..LANES {
            dev[l] += d[l];
        }
        for l in 0..LANES {
            sq[l] += d[l] * d[l];
        }
    }
    deviations_remainder(groups.remainder(), mean, &mut dev, &mut sq);
    [dev, sq]
}

/// The samples after the last whole group of lanes, in lane 0.
fn deviations_remainder<T: Sample>(
    rest: &[T],
    mean: f64,
    dev: &mut [f64; LANES],
    sq: &mut [f64; LANES],
) {
    for v in rest {
        let d = v.to_f64() - mean;
        dev[0] += d;
        sq[0] += d * d;
    }
}

/// [`first_pass_lanes`] and [`deviations_lanes`] of `f32` samples, lanes
/// 0–3 and 4–7 of each group in two vectors.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{FirstPass, LANES, SUM_BLOCK};
    use std::arch::x86_64::*;

    /// Samples `at..at + 4` of `g` as `f64`s.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn widen(g: &[f32], at: usize) -> __m256d {
        let four: __m128 = bytemuck::pod_read_unaligned(bytemuck::cast_slice(&g[at..at + 4]));
        _mm256_cvtps_pd(four)
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    fn lanes(low: __m256d, high: __m256d) -> [f64; LANES] {
        let [a, b]: [[f64; 4]; 2] = [bytemuck::cast(low), bytemuck::cast(high)];
        [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn first_pass(samples: &[f32]) -> FirstPass {
        let mut sum = 0.0;
        let (mut min_low, mut min_high) =
            (_mm256_set1_pd(f64::INFINITY), _mm256_set1_pd(f64::INFINITY));
        let (mut max_low, mut max_high) = (
            _mm256_set1_pd(f64::NEG_INFINITY),
            _mm256_set1_pd(f64::NEG_INFINITY),
        );
        let mut remainder = (&[] as &[f32], [0.0; LANES]);
        for block in samples.chunks(SUM_BLOCK) {
            let (mut acc_low, mut acc_high) = (_mm256_setzero_pd(), _mm256_setzero_pd());
            let mut groups = block.chunks_exact(LANES);
            for g in &mut groups {
                let (low, high) = (widen(g, 0), widen(g, 4));
                acc_low = _mm256_add_pd(acc_low, low);
                acc_high = _mm256_add_pd(acc_high, high);
                // the second operand when either is NaN or they are equal:
                // the scalar `if x < min { x } else { min }`
                min_low = _mm256_min_pd(low, min_low);
                min_high = _mm256_min_pd(high, min_high);
                max_low = _mm256_max_pd(low, max_low);
                max_high = _mm256_max_pd(high, max_high);
            }
            let acc = lanes(acc_low, acc_high);
            if groups.remainder().is_empty() {
                sum += super::pairwise(acc);
            } else {
                // only the last block is not whole groups
                remainder = (groups.remainder(), acc);
            }
        }
        let (mut mins, mut maxs) = (lanes(min_low, min_high), lanes(max_low, max_high));
        let (rest, mut acc) = remainder;
        if !rest.is_empty() {
            super::first_pass_remainder(rest, &mut acc, &mut mins, &mut maxs);
            sum += super::pairwise(acc);
        }
        FirstPass { sum, mins, maxs }
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn deviations(samples: &[f32], mean: f64) -> [[f64; LANES]; 2] {
        let m = _mm256_set1_pd(mean);
        let (mut dev_low, mut dev_high) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let (mut sq_low, mut sq_high) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let mut groups = samples.chunks_exact(LANES);
        for g in &mut groups {
            let (low, high) = (_mm256_sub_pd(widen(g, 0), m), _mm256_sub_pd(widen(g, 4), m));
            dev_low = _mm256_add_pd(dev_low, low);
            dev_high = _mm256_add_pd(dev_high, high);
            // multiply, then add: no fused rounding, as in the scalar loop
            sq_low = _mm256_add_pd(sq_low, _mm256_mul_pd(low, low));
            sq_high = _mm256_add_pd(sq_high, _mm256_mul_pd(high, high));
        }
        let (mut dev, mut sq) = (lanes(dev_low, dev_high), lanes(sq_low, sq_high));
        super::deviations_remainder(groups.remainder(), mean, &mut dev, &mut sq);
        [dev, sq]
    }
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
        let FirstPass { sum, mins, maxs } = first_pass(samples);
        let min = mins.iter().copied().fold(f64::INFINITY, f64::min);
        let max = maxs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !sum.is_finite() {
            return Moments::of_unclean_chunk(samples, sum / n, min, max);
        }
        let mean = sum / n;
        let [dev, sq] = deviations(samples, mean).map(pairwise);
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
        let keep = position.is_multiple_of(factor);
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
                if position.is_multiple_of(stride) {
                    out.push(x);
                }
                position += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 passes over `f32` give the portable lanes' bits: sums,
    /// extremes (signed zeros and NaN included) and deviations, for every
    /// remainder length and across sum blocks.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx2_passes_give_the_lanes_bits() {
        if !std::is_x86_feature_detected!("avx2") {
            // CI's machines have AVX2: there, this must not pass untested
            assert!(std::env::var_os("CI").is_none(), "no AVX2 on this CPU");
            return;
        }
        let mut next = crate::test_support::xorshift(0x9e37_79b9_7f4a_7c15);
        let specials = [0.0f32, -0.0, f32::NAN, 1e30, -1e30, f32::MIN_POSITIVE];
        for len in (0..40).chain([SUM_BLOCK - 1, SUM_BLOCK, SUM_BLOCK + 5, 3 * SUM_BLOCK + 7]) {
            for special_every in [0usize, 3, 17] {
                let samples: Vec<f32> = (0..len)
                    .map(|i| {
                        let r = next();
                        if special_every > 0 && i % special_every == 0 {
                            specials[(r % specials.len() as u64) as usize]
                        } else {
                            ((r >> 40) as f32 - 8_388_608.0) * 1e-3 + 12_000.0
                        }
                    })
                    .collect();
                #[allow(unsafe_code)]
                // SAFETY: AVX2 was detected above.
                let (fast, dev_fast) = unsafe {
                    (
                        avx2::first_pass(&samples),
                        avx2::deviations(&samples, 11_999.5),
                    )
                };
                let (lanes, dev_lanes) = (
                    first_pass_lanes(&samples),
                    deviations_lanes(&samples, 11_999.5),
                );
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(fast.sum.to_bits(), lanes.sum.to_bits(), "sum, {len}");
                assert_eq!(bits(&fast.mins), bits(&lanes.mins), "minima, {len}");
                assert_eq!(bits(&fast.maxs), bits(&lanes.maxs), "maxima, {len}");
                assert_eq!(bits(&dev_fast.concat()), bits(&dev_lanes.concat()), "{len}");
            }
        }
    }

    #[test]
    fn stride_is_the_smallest_that_fits() {
        assert_eq!(stride_for(65_536), 1);
        assert_eq!(stride_for(65_537), 2);
    }
}
