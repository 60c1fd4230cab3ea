//! k-means on intensities (one feature per sample), clusters numbered by
//! increasing centre.
//!
//! In one dimension the optimal clusters are intervals of the sorted
//! values, so k-means can be solved exactly by dynamic programming over the
//! distinct values (Wang & Song's Ckmeans.1d.dp, with the divide-and-conquer
//! speed-up: `O(k · n log n)` for `n` distinct values). That is what
//! [`KMeansHistogram::solve`] does on its histogram:
//!
//! - **Integer data whose values span at most `max_bins` integers** get one
//!   bin per value, so the histogram *is* the data: the solution is the
//!   global optimum (costs are computed exactly in 128-bit integers), and
//!   the model comes back with `converged == true`. No further pass is
//!   needed.
//! - **Float data** (and integers spanning more values) get `max_bins`
//!   equal-width bins that keep each bin's count and sum. The dynamic
//!   programme finds the best clustering whose boundaries fall between
//!   bins, and [`LloydPass`]es over the exact samples then refine it (Lloyd's
//!   iterations never increase the inertia) until the partition stops
//!   changing.
//!
//! Either way the inertia is at most scikit-learn's
//! `KMeans(n_clusters, random_state=42)` (which runs Lloyd's algorithm from
//! one k-means++ start and stops at a tolerance): the test suite checks this
//! against scikit-learn.
//!
//! Samples are assigned to the nearest centre, ties to the lower index: a
//! sample `v` is in cluster `#{j : v > t_j}` where `t_j` is the midpoint of
//! centres `j` and `j + 1` ([`KMeansModel::thresholds`]). Counts and inertia
//! of a converged model are those of exactly this assignment.

use rayon::prelude::*;

use super::float::EqualBins;
use super::{int_value, with_int_slice, CompensatedSum, Kind, SampleRange};
use crate::dtype::Sample;
use crate::error::CoreError;

/// Clusters when the caller does not say.
pub const DEFAULT_CLUSTERS: usize = 2;
/// Fewest clusters accepted.
pub const MIN_CLUSTERS: usize = 2;
/// Most clusters accepted (cluster indices fit a `u8`).
pub const MAX_CLUSTERS: usize = 256;
/// Default histogram size: one bin per value for 8- and 16-bit data, and
/// 65,536 bins for wider ranges and floats.
pub const DEFAULT_KMEANS_BINS: usize = 1 << 16;
/// Largest histogram accepted (16 bytes per bin).
pub const MAX_KMEANS_BINS: usize = 1 << 22;
/// Largest table of the dynamic programme, in entries of 4 bytes
/// (`(n_clusters - 1) × distinct values`): 512 MiB.
pub const MAX_DP_ENTRIES: usize = 1 << 27;
/// Default bound on [`LloydPass`]es over the data for float data.
pub const DEFAULT_MAX_PASSES: usize = 20;

/// Iterations of Lloyd's algorithm on the histogram itself after the
/// dynamic programme (each is cheap: one pass over the bins).
const HISTOGRAM_LLOYD_ITERATIONS: usize = 200;
/// Samples per piece when a large slice is processed in parallel.
const PAR_PIECE: usize = 1 << 18;

/// A k-means clustering of intensities.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KMeansModel {
    /// Cluster centres, ascending.
    pub centres: Vec<f64>,
    /// Samples in each cluster.
    pub counts: Vec<u64>,
    /// Within-cluster sum of squared distances to the centres
    /// (scikit-learn's `inertia_`).
    pub inertia: f64,
    /// Whether the centres are a fixed point of Lloyd's algorithm on the
    /// data itself, so that `counts` and `inertia` are exactly those of
    /// assigning every sample to its nearest centre. When false, `counts`
    /// and `inertia` describe the clusters the centres were computed from
    /// (for a histogram solution, with samples placed at their bin's mean),
    /// and another [`LloydPass`] will improve the model.
    pub converged: bool,
}

impl KMeansModel {
    /// The decision thresholds: midpoints between consecutive centres
    /// (`n_clusters - 1` of them, ascending).
    pub fn thresholds(&self) -> Vec<f64> {
        midpoints(&self.centres)
    }

    /// An [`Assigner`] that maps samples to cluster indices.
    pub fn assigner(&self) -> Assigner {
        Assigner {
            thresholds: self.thresholds(),
        }
    }
}

/// Assigns samples to the cluster of their nearest centre (ties to the
/// lower index) of a [`KMeansModel`].
#[derive(Debug, Clone)]
pub struct Assigner {
    thresholds: Vec<f64>,
}

impl Assigner {
    /// The cluster index (`0..n_clusters`) of a value.
    #[inline]
    pub fn cluster_of(&self, v: f64) -> usize {
        match self.thresholds.as_slice() {
            [t] => usize::from(v > *t),
            ts => ts.partition_point(|t| v > *t),
        }
    }

    /// Writes the cluster index of each sample into `out` (same length).
    /// Errors if the lengths differ.
    pub fn assign<T: Sample>(&self, samples: &[T], out: &mut [u8]) -> Result<(), CoreError> {
        if samples.len() != out.len() {
            return Err(CoreError::InvalidRequest(format!(
                "{} samples but an output of {} cluster indices",
                samples.len(),
                out.len()
            )));
        }
        for (o, &v) in out.iter_mut().zip(samples) {
            // At most 256 clusters, so the index fits.
            *o = self.cluster_of(v.to_f64()) as u8;
        }
        Ok(())
    }
}

fn midpoints(centres: &[f64]) -> Vec<f64> {
    centres
        .windows(2)
        .map(|c| c[0] + (c[1] - c[0]) / 2.0)
        .collect()
}

/// Checks `n_clusters` against [`MIN_CLUSTERS`]`..=`[`MAX_CLUSTERS`].
pub fn check_clusters(n_clusters: usize) -> Result<(), CoreError> {
    if (MIN_CLUSTERS..=MAX_CLUSTERS).contains(&n_clusters) {
        Ok(())
    } else {
        Err(CoreError::InvalidRequest(format!(
            "n_clusters = {n_clusters} is out of range: valid values are {MIN_CLUSTERS}..={MAX_CLUSTERS}"
        )))
    }
}

/// The histogram behind [`KMeansHistogram`].
#[derive(Debug, Clone)]
enum Bins {
    /// One bin per integer from `min`: the data exactly.
    Exact { min: i128, counts: Vec<u64> },
    /// Equal-width bins with each bin's count and sum.
    Binned {
        bins: EqualBins<f64>,
        counts: Vec<u64>,
        sums: Vec<f64>,
    },
    /// Float data with a single value: `count` samples equal to `value`.
    Constant { value: f64, count: u64 },
}

/// Pass 2 of k-means: a histogram of the samples, filled from pieces added
/// in any order, and solved by dynamic programming.
#[derive(Debug, Clone)]
pub struct KMeansHistogram<T: Sample> {
    range: SampleRange<T>,
    bins: Bins,
    /// Samples outside `range` (the caller fed other data than in pass 1).
    outside: u64,
}

impl<T: Sample> KMeansHistogram<T> {
    /// An empty histogram over `range` (from pass 1) with at most
    /// `max_bins` bins ([`DEFAULT_KMEANS_BINS`] is a good choice; more bins
    /// make a better start for float data and cost 16 bytes each).
    ///
    /// Errors ([`CoreError::InvalidRequest`]): `max_bins` outside
    /// `1..=`[`MAX_KMEANS_BINS`], or a float range too wide for `f64`.
    pub fn new(range: &SampleRange<T>, max_bins: usize) -> Result<Self, CoreError> {
        if !(1..=MAX_KMEANS_BINS).contains(&max_bins) {
            return Err(CoreError::InvalidRequest(format!(
                "max_bins = {max_bins} is out of range: valid values are 1..={MAX_KMEANS_BINS}"
            )));
        }
        let int_range = match Kind::of::<T>() {
            Kind::Int => int_value(range.min).zip(int_value(range.max)),
            Kind::F16 => return Err(super::float16_refused("k-means")),
            Kind::F32 | Kind::F64 => None,
        };
        let bins = match int_range {
            Some((min, max)) if max - min < max_bins as i128 => Bins::Exact {
                min,
                counts: vec![0; (max - min + 1) as usize],
            },
            _ => {
                let (lo, hi) = (range.min.to_f64(), range.max.to_f64());
                if lo == hi {
                    Bins::Constant {
                        value: lo,
                        count: 0,
                    }
                } else if !(hi - lo).is_finite() {
                    return Err(CoreError::InvalidRequest(
                        "the data's range (max - min) overflows f64; k-means cannot bin it".into(),
                    ));
                } else {
                    Bins::Binned {
                        bins: EqualBins::new(lo, hi, max_bins),
                        counts: vec![0; max_bins],
                        sums: vec![0.0; max_bins],
                    }
                }
            }
        };
        Ok(KMeansHistogram {
            range: *range,
            bins,
            outside: 0,
        })
    }

    /// Whether the histogram holds the data exactly (one bin per value), so
    /// that [`Self::solve`] gives the global optimum.
    pub fn is_exact(&self) -> bool {
        !matches!(self.bins, Bins::Binned { .. })
    }

    /// Adds a slice of samples (any length). Large slices are binned on all
    /// cores when the histogram is small enough to copy per worker.
    pub fn add(&mut self, samples: &[T]) {
        let len = match &self.bins {
            Bins::Exact { counts, .. } | Bins::Binned { counts, .. } => counts.len(),
            Bins::Constant { .. } => 1,
        };
        if samples.len() >= 2 * PAR_PIECE && len <= 1 << 16 {
            let empty = || KMeansHistogram {
                range: self.range,
                bins: self.bins.emptied(),
                outside: 0,
            };
            let partial = samples
                .par_chunks(PAR_PIECE)
                .fold(empty, |mut h, piece| {
                    h.add_seq(piece);
                    h
                })
                .reduce_with(|mut a, b| {
                    a.merge_counts(&b);
                    a
                });
            if let Some(p) = partial {
                self.merge_counts(&p);
            }
        } else {
            self.add_seq(samples);
        }
    }

    fn add_seq(&mut self, samples: &[T]) {
        let outside = &mut self.outside;
        match &mut self.bins {
            Bins::Exact { min, counts } => {
                let (min, n) = (*min, counts.len() as i128);
                with_int_slice!(T, samples, s => {
                    for &v in s {
                        let d = i128::from(v) - min;
                        if (0..n).contains(&d) {
                            counts[d as usize] += 1;
                        } else {
                            *outside += 1;
                        }
                    }
                }, *outside += samples.len() as u64)
            }
            Bins::Binned { bins, counts, sums } => {
                for &v in samples {
                    let x = v.to_f64();
                    if bins.contains(x) {
                        let i = bins.index(x);
                        counts[i] += 1;
                        sums[i] += x;
                    } else {
                        *outside += 1;
                    }
                }
            }
            Bins::Constant { value, count } => {
                for &v in samples {
                    if v.to_f64() == *value {
                        *count += 1;
                    } else {
                        *outside += 1;
                    }
                }
            }
        }
    }

    /// Adds what `other` counted. Errors if it was laid over another range
    /// or with other bins.
    pub fn merge(&mut self, other: &Self) -> Result<(), CoreError> {
        let same_bins = match (&self.bins, &other.bins) {
            (Bins::Exact { counts: a, .. }, Bins::Exact { counts: b, .. })
            | (Bins::Binned { counts: a, .. }, Bins::Binned { counts: b, .. }) => {
                a.len() == b.len()
            }
            (Bins::Constant { .. }, Bins::Constant { .. }) => true,
            _ => false,
        };
        if self.range != other.range || !same_bins {
            return Err(CoreError::InvalidRequest(
                "cannot merge k-means histograms over different ranges or bins".into(),
            ));
        }
        self.merge_counts(other);
        Ok(())
    }

    fn merge_counts(&mut self, other: &Self) {
        self.outside += other.outside;
        match (&mut self.bins, &other.bins) {
            (Bins::Exact { counts: a, .. }, Bins::Exact { counts: b, .. }) => {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            }
            (
                Bins::Binned {
                    counts: a,
                    sums: sa,
                    ..
                },
                Bins::Binned {
                    counts: b,
                    sums: sb,
                    ..
                },
            ) => {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                sa.iter_mut().zip(sb).for_each(|(x, y)| *x += y);
            }
            (Bins::Constant { count: a, .. }, Bins::Constant { count: b, .. }) => *a += b,
            // `merge` checks the variants; `add` merges copies of itself.
            _ => {}
        }
    }

    /// The optimal clustering of the histogram into `n_clusters` clusters
    /// (see the module documentation), refined by Lloyd's algorithm on the
    /// histogram. For an exact histogram the model is final
    /// (`converged == true`); otherwise run [`LloydPass`]es.
    ///
    /// Errors ([`CoreError::InvalidRequest`]): `n_clusters` outside
    /// `2..=256`; fewer distinct values (or non-empty bins) than clusters,
    /// a constant image included; samples added outside the range; a
    /// dynamic programme larger than [`MAX_DP_ENTRIES`].
    pub fn solve(&self, n_clusters: usize) -> Result<KMeansModel, CoreError> {
        check_clusters(n_clusters)?;
        if self.outside > 0 {
            return Err(CoreError::InvalidRequest(format!(
                "{} samples lie outside the range {:?}..={:?} found in the first pass; \
                 both passes must see the same data",
                self.outside, self.range.min, self.range.max
            )));
        }
        let k = n_clusters;
        let too_few = |n: usize, what: &str| {
            CoreError::InvalidRequest(format!(
                "k-means with n_clusters = {k} needs at least {k} distinct {what}; the data have {n}"
            ))
        };
        match &self.bins {
            Bins::Constant { count, .. } => Err(too_few(usize::from(*count > 0), "values")),
            Bins::Exact { min, counts } => {
                let points: Vec<(u64, u64)> = counts
                    .iter()
                    .enumerate()
                    .filter(|(_, &c)| c > 0)
                    .map(|(i, &c)| (i as u64, c))
                    .collect();
                if points.len() < k {
                    return Err(too_few(points.len(), "values"));
                }
                check_dp_size(points.len(), k)?;
                Ok(solve_exact(&points, *min, k))
            }
            Bins::Binned { counts, sums, .. } => {
                let points: Vec<(f64, u64)> = counts
                    .iter()
                    .zip(sums)
                    .filter(|(&c, _)| c > 0)
                    .map(|(&c, &s)| (s / c as f64, c))
                    .collect();
                if points.len() < k {
                    return Err(too_few(points.len(), "histogram bins"));
                }
                check_dp_size(points.len(), k)?;
                Ok(solve_binned(&points, k))
            }
        }
    }
}

impl Bins {
    /// The same bins, all counts zero.
    fn emptied(&self) -> Bins {
        match self {
            Bins::Exact { min, counts } => Bins::Exact {
                min: *min,
                counts: vec![0; counts.len()],
            },
            Bins::Binned { bins, counts, .. } => Bins::Binned {
                bins: bins.clone(),
                counts: vec![0; counts.len()],
                sums: vec![0.0; counts.len()],
            },
            Bins::Constant { value, .. } => Bins::Constant {
                value: *value,
                count: 0,
            },
        }
    }
}

fn check_dp_size(points: usize, k: usize) -> Result<(), CoreError> {
    match points.checked_mul(k - 1) {
        Some(entries) if entries <= MAX_DP_ENTRIES => Ok(()),
        _ => Err(CoreError::InvalidRequest(format!(
            "k-means with n_clusters = {k} over {points} distinct values needs a table of more than \
             {MAX_DP_ENTRIES} entries (MAX_DP_ENTRIES); use fewer clusters or fewer bins"
        ))),
    }
}

/// The cost of a run of sorted, weighted points: the sum of squared
/// distances to the run's mean.
trait Cost: Sync {
    /// Cost of points `i..=j`.
    fn cost(&self, i: usize, j: usize) -> f64;
}

/// Costs of integer points computed exactly: with prefix sums `W`, `S1`,
/// `S2` of the weights, `w·x` and `w·x²` (x the offset from the minimum),
/// the cost is `(S2·W - S1²) / W` with an exact 128-bit numerator.
struct ExactCost {
    w: Vec<i128>,
    s1: Vec<i128>,
    s2: Vec<i128>,
}

impl ExactCost {
    /// `None` when some product could overflow 128 bits.
    fn new(points: &[(u64, u64)]) -> Option<ExactCost> {
        let total: u128 = points.iter().map(|p| u128::from(p.1)).sum();
        let max_x = u128::from(points.last().map_or(0, |p| p.0));
        // S2·W <= total² · max_x²; keep it below 2^126.
        let bound = total
            .checked_mul(max_x.max(1))?
            .checked_mul(total)?
            .checked_mul(max_x.max(1))?;
        if bound >= 1 << 126 {
            return None;
        }
        let n = points.len();
        let (mut w, mut s1, mut s2) = (
            Vec::with_capacity(n + 1),
            Vec::with_capacity(n + 1),
            Vec::with_capacity(n + 1),
        );
        let (mut a, mut b, mut c) = (0i128, 0i128, 0i128);
        w.push(0);
        s1.push(0);
        s2.push(0);
        for &(x, weight) in points {
            let (x, weight) = (i128::from(x), i128::from(weight));
            a += weight;
            b += weight * x;
            c += weight * x * x;
            w.push(a);
            s1.push(b);
            s2.push(c);
        }
        Some(ExactCost { w, s1, s2 })
    }
}

impl Cost for ExactCost {
    #[inline]
    fn cost(&self, i: usize, j: usize) -> f64 {
        let w = self.w[j + 1] - self.w[i];
        let s1 = self.s1[j + 1] - self.s1[i];
        let s2 = self.s2[j + 1] - self.s2[i];
        (s2 * w - s1 * s1) as f64 / w as f64
    }
}

/// Costs from `f64` prefix sums of points shifted by their weighted mean.
struct FloatCost {
    w: Vec<f64>,
    s1: Vec<f64>,
    s2: Vec<f64>,
}

impl FloatCost {
    fn new(points: &[(f64, u64)]) -> FloatCost {
        let total: f64 = points.iter().map(|p| p.1 as f64).sum();
        let shift = points.iter().map(|p| p.0 * p.1 as f64).sum::<f64>() / total;
        let n = points.len();
        let (mut w, mut s1, mut s2) = (
            Vec::with_capacity(n + 1),
            Vec::with_capacity(n + 1),
            Vec::with_capacity(n + 1),
        );
        let (mut a, mut b, mut c) = (0.0, 0.0, 0.0);
        w.push(0.0);
        s1.push(0.0);
        s2.push(0.0);
        for &(x, weight) in points {
            let (x, weight) = (x - shift, weight as f64);
            a += weight;
            b += weight * x;
            c += weight * x * x;
            w.push(a);
            s1.push(b);
            s2.push(c);
        }
        FloatCost { w, s1, s2 }
    }
}

impl Cost for FloatCost {
    #[inline]
    fn cost(&self, i: usize, j: usize) -> f64 {
        let w = self.w[j + 1] - self.w[i];
        let s1 = self.s1[j + 1] - self.s1[i];
        let s2 = self.s2[j + 1] - self.s2[i];
        (s2 - s1 * s1 / w).max(0.0)
    }
}

/// Columns of one row of the programme below which the divide-and-conquer
/// recursion stops forking rayon jobs.
const DP_PAR_MIN: usize = 4096;

/// The optimal partition of `n` sorted points into `k` runs: the start
/// index of each run (`starts[0] == 0`). `D[m][j]`, the least cost of `m + 1`
/// runs over points `0..=j`, is `min_i D[m-1][i-1] + cost(i, j)`, and the
/// smallest minimising `i` is non-decreasing in `j`, so each row is filled
/// by divide and conquer.
fn optimal_partition<C: Cost>(cost: &C, n: usize, k: usize) -> Vec<usize> {
    let mut prev: Vec<f64> = (0..n).map(|j| cost.cost(0, j)).collect();
    // argmin[m - 1][j]: start of the last run in the best m + 1 runs of 0..=j.
    let mut argmin: Vec<Vec<u32>> = Vec::with_capacity(k - 1);
    for m in 1..k {
        let mut cur = vec![f64::INFINITY; n];
        let mut arg = vec![0u32; n];
        if m == k - 1 {
            // The last row is only needed at j = n - 1.
            let (c, a) = best_start(cost, &prev, n - 1, m, n - 1);
            cur[n - 1] = c;
            arg[n - 1] = a as u32;
        } else {
            fill_row(cost, &prev, &mut cur[m..], &mut arg[m..], m, m, n - 1);
        }
        argmin.push(arg);
        prev = cur;
    }
    let mut starts = vec![0usize; k];
    let mut j = n - 1;
    for m in (1..k).rev() {
        let s = argmin[m - 1][j] as usize;
        starts[m] = s;
        j = s - 1;
    }
    starts
}

/// The best start `i` in `lo..=hi.min(j)` of the last run ending at `j`.
#[inline]
fn best_start<C: Cost>(cost: &C, prev: &[f64], j: usize, lo: usize, hi: usize) -> (f64, usize) {
    let mut best = (f64::INFINITY, lo);
    for i in lo..=hi.min(j) {
        let c = prev[i - 1] + cost.cost(i, j);
        if c < best.0 {
            best = (c, i);
        }
    }
    best
}

/// Fills `cur[j - offset]`, `arg[j - offset]` for `j` in `offset..offset +
/// cur.len()`, knowing the best start of each lies in `lo..=hi`.
fn fill_row<C: Cost>(
    cost: &C,
    prev: &[f64],
    cur: &mut [f64],
    arg: &mut [u32],
    offset: usize,
    lo: usize,
    hi: usize,
) {
    if cur.is_empty() {
        return;
    }
    let len = cur.len();
    let mid = len / 2;
    let j = offset + mid;
    let (c, best) = best_start(cost, prev, j, lo, hi);
    cur[mid] = c;
    arg[mid] = best as u32;
    let (cur_left, cur_right) = cur.split_at_mut(mid);
    let (arg_left, arg_right) = arg.split_at_mut(mid);
    let (cur_right, arg_right) = (&mut cur_right[1..], &mut arg_right[1..]);
    if len >= DP_PAR_MIN {
        rayon::join(
            || fill_row(cost, prev, cur_left, arg_left, offset, lo, best),
            || fill_row(cost, prev, cur_right, arg_right, j + 1, best, hi),
        );
    } else {
        fill_row(cost, prev, cur_left, arg_left, offset, lo, best);
        fill_row(cost, prev, cur_right, arg_right, j + 1, best, hi);
    }
}

/// Lloyd's algorithm on sorted weighted points, from the partition
/// `starts`: assign to the nearest mean, recompute the means, until the
/// partition repeats. `mean_of(lo, hi)` is the mean of points `lo..hi`.
fn lloyd_on_points(
    xs: &[f64],
    mut starts: Vec<usize>,
    mean_of: impl Fn(usize, usize) -> f64,
) -> (Vec<usize>, Vec<f64>) {
    let n = xs.len();
    let bounds = |starts: &[usize], m: usize| (starts[m], starts.get(m + 1).copied().unwrap_or(n));
    let means = |starts: &[usize]| -> Vec<f64> {
        (0..starts.len())
            .map(|m| {
                let (lo, hi) = bounds(starts, m);
                mean_of(lo, hi)
            })
            .collect()
    };
    let mut centres = means(&starts);
    for _ in 0..HISTOGRAM_LLOYD_ITERATIONS {
        let thresholds = midpoints(&centres);
        let mut next = Vec::with_capacity(starts.len());
        next.push(0);
        next.extend(thresholds.iter().map(|t| xs.partition_point(|x| x <= t)));
        // An empty cluster would leave the partition ill-formed: stop at
        // the last good one (Lloyd's step only ever lowers the inertia).
        if next.windows(2).any(|w| w[0] >= w[1]) || *next.last().unwrap_or(&0) >= n {
            break;
        }
        if next == starts {
            break;
        }
        starts = next;
        centres = means(&starts);
    }
    (starts, centres)
}

/// Counts and inertia of assigning the weighted points to `centres` by
/// their thresholds: `(x - centre)` is computed by `diff(point, cluster)`.
fn assign_points(
    n_points: usize,
    centres: &[f64],
    value: impl Fn(usize) -> f64,
    weight: impl Fn(usize) -> u64,
    diff: impl Fn(usize, usize) -> f64,
) -> (Vec<u64>, f64) {
    let assigner = Assigner {
        thresholds: midpoints(centres),
    };
    let mut counts = vec![0u64; centres.len()];
    let mut inertia = CompensatedSum::default();
    for p in 0..n_points {
        let c = assigner.cluster_of(value(p));
        let w = weight(p);
        counts[c] += w;
        let d = diff(p, c);
        inertia.add(w as f64 * d * d);
    }
    (counts, inertia.value())
}

/// The optimum of an exact histogram: `points` are (offset from `min`,
/// count), sorted by offset.
fn solve_exact(points: &[(u64, u64)], min: i128, k: usize) -> KMeansModel {
    let n = points.len();
    let starts = match ExactCost::new(points) {
        Some(cost) => optimal_partition(&cost, n, k),
        None => {
            let float: Vec<(f64, u64)> = points.iter().map(|&(x, w)| (x as f64, w)).collect();
            optimal_partition(&FloatCost::new(&float), n, k)
        }
    };
    // Offsets are exact in f64 up to 2^53, far beyond any histogram.
    let xs: Vec<f64> = points.iter().map(|p| p.0 as f64).collect();
    let (mut w, mut s) = (vec![0u128], vec![0u128]);
    for &(x, c) in points {
        w.push(w[w.len() - 1] + u128::from(c));
        s.push(s[s.len() - 1] + u128::from(x) * u128::from(c));
    }
    let mean_of = |lo: usize, hi: usize| (s[hi] - s[lo]) as f64 / (w[hi] - w[lo]) as f64;
    let (_, offsets) = lloyd_on_points(&xs, starts, mean_of);
    let centres: Vec<f64> = offsets.iter().map(|o| min as f64 + o).collect();
    // Counts and inertia of the assignment `Assigner` makes, on the values
    // as `Sample::to_f64` gives them.
    let values: Vec<f64> = points
        .iter()
        .map(|p| (min + i128::from(p.0)) as f64)
        .collect();
    let (counts, inertia) = assign_points(
        n,
        &centres,
        |p| values[p],
        |p| points[p].1,
        |p, c| values[p] - centres[c],
    );
    KMeansModel {
        centres,
        counts,
        inertia,
        converged: true,
    }
}

/// The best clustering of a binned histogram: `points` are (bin mean,
/// count), sorted. The inertia leaves out the spread within bins.
fn solve_binned(points: &[(f64, u64)], k: usize) -> KMeansModel {
    let n = points.len();
    let starts = optimal_partition(&FloatCost::new(points), n, k);
    let xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    let (mut w, mut s) = (vec![0u64], vec![CompensatedSum::default()]);
    for &(x, c) in points {
        w.push(w[w.len() - 1] + c);
        let mut next = s[s.len() - 1];
        next.add(x * c as f64);
        s.push(next);
    }
    let mean_of = |lo: usize, hi: usize| (s[hi].value() - s[lo].value()) / (w[hi] - w[lo]) as f64;
    let (starts, centres) = lloyd_on_points(&xs, starts, mean_of);
    // Counts of the bin partition the centres are the means of.
    let counts: Vec<u64> = (0..k)
        .map(|m| {
            let hi = starts.get(m + 1).copied().unwrap_or(n);
            w[hi] - w[starts[m]]
        })
        .collect();
    let mut inertia = CompensatedSum::default();
    for m in 0..k {
        let hi = starts.get(m + 1).copied().unwrap_or(n);
        for &(x, c) in &points[starts[m]..hi] {
            inertia.add(c as f64 * (x - centres[m]) * (x - centres[m]));
        }
    }
    KMeansModel {
        centres,
        counts,
        inertia: inertia.value(),
        converged: false,
    }
}

/// One iteration of Lloyd's algorithm over the exact samples: assigns each
/// sample to the nearest centre of a model and accumulates each cluster's
/// count, mean and spread. Feed it every sample once (in pieces, in any
/// order; partial passes can be merged), then [`LloydPass::finish`].
#[derive(Debug, Clone)]
pub struct LloydPass {
    centres: Vec<f64>,
    assigner: Assigner,
    /// Counts of the clusters the centres were computed from.
    previous_counts: Vec<u64>,
    counts: Vec<u64>,
    /// `Σ (x - centre)` per cluster.
    shifts: Vec<CompensatedSum>,
    /// `Σ (x - centre)²` per cluster.
    squares: Vec<CompensatedSum>,
}

impl LloydPass {
    /// A pass from `model`'s centres.
    ///
    /// Errors ([`CoreError::InvalidRequest`]): a model (built or
    /// deserialised by hand) whose number of centres is outside `2..=256`,
    /// differs from its number of counts, or whose centres are not finite
    /// and strictly ascending.
    pub fn new(model: &KMeansModel) -> Result<Self, CoreError> {
        let k = model.centres.len();
        check_clusters(k)?;
        if model.counts.len() != k
            || model.centres.iter().any(|c| !c.is_finite())
            || model.centres.windows(2).any(|c| c[0] >= c[1])
        {
            return Err(CoreError::InvalidRequest(
                "a k-means model needs as many counts as centres, and finite, strictly ascending centres"
                    .into(),
            ));
        }
        Ok(LloydPass {
            centres: model.centres.clone(),
            assigner: model.assigner(),
            previous_counts: model.counts.clone(),
            counts: vec![0; k],
            shifts: vec![CompensatedSum::default(); k],
            squares: vec![CompensatedSum::default(); k],
        })
    }

    /// Adds a slice of samples (large slices on all cores).
    pub fn add<T: Sample>(&mut self, samples: &[T]) {
        if samples.len() >= 2 * PAR_PIECE {
            let partial = samples
                .par_chunks(PAR_PIECE)
                .fold(
                    || self.emptied(),
                    |mut p, piece| {
                        p.add_seq(piece);
                        p
                    },
                )
                .reduce_with(|mut a, b| {
                    a.merge_sums(&b);
                    a
                });
            if let Some(p) = partial {
                self.merge_sums(&p);
            }
        } else {
            self.add_seq(samples);
        }
    }

    fn emptied(&self) -> LloydPass {
        let k = self.centres.len();
        LloydPass {
            centres: self.centres.clone(),
            assigner: self.assigner.clone(),
            previous_counts: self.previous_counts.clone(),
            counts: vec![0; k],
            shifts: vec![CompensatedSum::default(); k],
            squares: vec![CompensatedSum::default(); k],
        }
    }

    fn add_seq<T: Sample>(&mut self, samples: &[T]) {
        for &v in samples {
            let x = v.to_f64();
            let c = self.assigner.cluster_of(x);
            let d = x - self.centres[c];
            self.counts[c] += 1;
            self.shifts[c].add(d);
            self.squares[c].add(d * d);
        }
    }

    /// Adds what `other` accumulated. Errors if it started from other
    /// centres.
    pub fn merge(&mut self, other: &LloydPass) -> Result<(), CoreError> {
        if other.centres != self.centres {
            return Err(CoreError::InvalidRequest(
                "cannot merge Lloyd passes from different centres".into(),
            ));
        }
        self.merge_sums(other);
        Ok(())
    }

    fn merge_sums(&mut self, other: &LloydPass) {
        for m in 0..self.counts.len() {
            self.counts[m] += other.counts[m];
            self.shifts[m].merge(other.shifts[m]);
            self.squares[m].merge(other.squares[m]);
        }
    }

    /// The model after this pass. If the assignment reproduced the clusters
    /// the centres were computed from (same counts, which in one dimension
    /// means the same clusters), the centres are a fixed point: the model
    /// keeps them, with the counts and inertia of this exact assignment,
    /// and is `converged`. Otherwise the centres move to the means of the
    /// new clusters, whose inertia about those means is reported (at most
    /// this pass's, which is at most the previous model's).
    ///
    /// If a cluster came out empty (possible only in contrived data), the
    /// pass stops there: the model keeps its centres, with this
    /// assignment's counts (one of them 0) and inertia, and is marked
    /// `converged` so that callers stop iterating.
    pub fn finish(&self) -> KMeansModel {
        if self.counts == self.previous_counts || self.counts.contains(&0) {
            return KMeansModel {
                centres: self.centres.clone(),
                counts: self.counts.clone(),
                inertia: self.squares.iter().map(|s| s.value()).sum(),
                converged: true,
            };
        }
        let mut centres = Vec::with_capacity(self.centres.len());
        let mut inertia = 0.0;
        for m in 0..self.counts.len() {
            let n = self.counts[m] as f64;
            let (s, q) = (self.shifts[m].value(), self.squares[m].value());
            centres.push(self.centres[m] + s / n);
            inertia += (q - s * s / n).max(0.0);
        }
        KMeansModel {
            centres,
            counts: self.counts.clone(),
            inertia,
            converged: false,
        }
    }
}

/// k-means of samples held in memory: pass 1 (range), pass 2 (histogram
/// with at most `max_bins` bins, solved), then at most `max_passes`
/// [`LloydPass`]es until converged.
pub fn kmeans_slice<T: Sample>(
    samples: &[T],
    n_clusters: usize,
    max_bins: usize,
    max_passes: usize,
) -> Result<KMeansModel, CoreError> {
    check_clusters(n_clusters)?;
    let range = SampleRange::of_slice(samples)?;
    let mut hist = KMeansHistogram::new(&range, max_bins)?;
    hist.add(samples);
    let mut model = hist.solve(n_clusters)?;
    for _ in 0..max_passes {
        if model.converged {
            break;
        }
        let mut pass = LloydPass::new(&model)?;
        pass.add(samples);
        model = pass.finish();
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force over every split of sorted distinct values (k = 2).
    fn brute_two(values: &[f64]) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let sse = |s: &[f64]| {
            let m = s.iter().sum::<f64>() / s.len() as f64;
            s.iter().map(|x| (x - m) * (x - m)).sum::<f64>()
        };
        (1..sorted.len())
            .filter(|&i| sorted[i] != sorted[i - 1])
            .map(|i| sse(&sorted[..i]) + sse(&sorted[i..]))
            .fold(f64::INFINITY, f64::min)
    }

    #[test]
    fn hand_checked_two_clusters() {
        let data = [1u8, 2, 3, 10, 11, 12];
        let m = kmeans_slice(&data, 2, DEFAULT_KMEANS_BINS, 0).unwrap();
        assert_eq!(m.centres, vec![2.0, 11.0]);
        assert_eq!(m.counts, vec![3, 3]);
        assert_eq!(m.inertia, 4.0);
        assert!(m.converged);
        let a = m.assigner();
        assert_eq!(a.cluster_of(6.5), 0, "a tie goes to the lower cluster");
        assert_eq!(a.cluster_of(6.6), 1);
        let mut out = vec![9u8; 6];
        a.assign(&data, &mut out).unwrap();
        assert_eq!(out, vec![0, 0, 0, 1, 1, 1]);
        assert!(a.assign(&data, &mut out[..2]).is_err());
    }

    #[test]
    fn exact_dp_matches_brute_force() {
        let mut x = 12345u64;
        let mut data = Vec::new();
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.push(((x % 200) as i16 - 100) * ((x >> 40) % 3) as i16);
        }
        let m = kmeans_slice(&data, 2, DEFAULT_KMEANS_BINS, 0).unwrap();
        let f: Vec<f64> = data.iter().map(|&v| f64::from(v)).collect();
        let best = brute_two(&f);
        assert!(
            (m.inertia - best).abs() <= 1e-9 * best,
            "{} {best}",
            m.inertia
        );
        assert_eq!(m.counts.iter().sum::<u64>(), 300);
    }

    #[test]
    fn many_clusters_on_few_values() {
        // As many values as clusters: every value its own cluster.
        let data: Vec<u16> = (0..256u16).map(|v| v * 7).collect();
        let m = kmeans_slice(&data, 256, DEFAULT_KMEANS_BINS, 0).unwrap();
        assert_eq!(m.inertia, 0.0);
        assert_eq!(m.centres[255], 255.0 * 7.0);
        let e = kmeans_slice(&data[..10], 11, DEFAULT_KMEANS_BINS, 0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("at least 11 distinct values; the data have 10"),
            "{e}"
        );
    }

    #[test]
    fn float_data_refined_by_lloyd() {
        let mut x = 99u64;
        let data: Vec<f32> = (0..5000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let u = (x >> 11) as f32 / (1u64 << 53) as f32;
                if i % 3 == 0 {
                    10.0 + u
                } else {
                    u * u
                }
            })
            .collect();
        let m = kmeans_slice(&data, 3, 64, DEFAULT_MAX_PASSES).unwrap();
        assert!(m.converged);
        assert_eq!(m.counts.iter().sum::<u64>(), 5000);
        // Recompute the inertia of the assignment directly.
        let a = m.assigner();
        let direct: f64 = data
            .iter()
            .map(|&v| {
                let c = m.centres[a.cluster_of(f64::from(v))];
                (f64::from(v) - c).powi(2)
            })
            .sum();
        assert!((direct - m.inertia).abs() <= 1e-9 * direct);
    }

    #[test]
    fn refusals() {
        for k in [0, 1, 257, usize::MAX] {
            let e = kmeans_slice(&[1u8, 2, 3], k, 256, 0)
                .unwrap_err()
                .to_string();
            assert!(e.contains("valid values are 2..=256"), "{e}");
        }
        let e = kmeans_slice(&[4.5f32; 9], 2, 256, 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("the data have 1"), "{e}");
        assert!(kmeans_slice::<u8>(&[], 2, 256, 0).is_err());
        let e = kmeans_slice(&[9i32], 2, 256, 0).unwrap_err().to_string();
        assert!(e.contains("the data have 1"), "{e}");
        // Hand-made models that a pass cannot start from.
        let bad = KMeansModel {
            centres: vec![3.0, 1.0],
            counts: vec![1, 1],
            inertia: 0.0,
            converged: false,
        };
        assert!(LloydPass::new(&bad).is_err());
        let empty = KMeansModel {
            centres: vec![],
            counts: vec![],
            ..bad
        };
        assert!(LloydPass::new(&empty).is_err());
        assert_eq!(empty.assigner().cluster_of(5.0), 0);
        assert!(kmeans_slice(&[1u8, 2], 2, 0, 0).is_err());
        assert!(kmeans_slice(&[1u8, 2], 2, MAX_KMEANS_BINS + 1, 0).is_err());
        // A wide integer range falls back to bins and still converges.
        let m = kmeans_slice(&[0u32, 1, 4_000_000_000, 4_000_000_001], 2, 256, 10).unwrap();
        assert_eq!(m.centres, vec![0.5, 4_000_000_000.5]);
        assert!(m.converged);
    }
}
