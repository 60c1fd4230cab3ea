//! Principal component analysis over channels: pixels are samples and
//! channels are features, so the data matrix is `(T·Z·Y·X) × C`.
//!
//! [`CovarianceAccumulator`] streams over the image block by block and keeps
//! only the per-channel means and the `C × C` co-moments; [`fit`]
//! eigendecomposes the covariance into a [`PcaModel`] that matches
//! scikit-learn's `PCA(n_components=k, svd_solver="full")`, and
//! [`PcaModel::project_block`] is its `transform`.

use crate::dtype::Sample;
use crate::error::CoreError;
use crate::wire::{WireReader, WireWriter};

/// Pixels whose centred values are held at once while co-moments or
/// projections are computed: small enough to stay in L1/L2 cache for a
/// handful of channels.
const CHUNK: usize = 1024;
/// Pixels at most per exact block of 8- and 16-bit samples, which keeps
/// its integer co-moments far from overflowing.
const EXACT_BLOCK: usize = u32::MAX as usize;
/// Samples summed into one partial `f64` sum (keeps rounding error small).
const SUM_BLOCK: usize = 4096;

/// Covariance of C features accumulated block by block (numerically stable:
/// each block is centred on its own mean and merged with Chan's pairwise
/// formula for co-moments).
#[derive(Debug, Clone)]
pub struct CovarianceAccumulator {
    /// Number of features (C).
    channels: usize,
    /// Samples (pixels) seen.
    count: u64,
    /// Mean of each feature.
    mean: Vec<f64>,
    /// Co-moments `Σ (x_a - mean_a)(x_b - mean_b)`, a full symmetric
    /// `C × C` matrix in row-major order.
    comoments: Vec<f64>,
}

impl CovarianceAccumulator {
    /// An empty accumulator for `channels` features.
    pub fn new(channels: usize) -> Self {
        CovarianceAccumulator {
            channels,
            count: 0,
            mean: vec![0.0; channels],
            comoments: vec![0.0; channels * channels],
        }
    }

    /// Adds a block of pixels: `channels[k][i]` is feature k of pixel i; all
    /// slices have the same length.
    ///
    /// Two passes over the block: the per-feature means, then the centred
    /// cross products over cache-sized chunks (with the correction term of
    /// the corrected two-pass algorithm).
    ///
    /// # Panics
    ///
    /// If the number of slices is not the accumulator's channel count or
    /// the slices differ in length (a caller bug).
    pub fn add_block<T: Sample>(&mut self, channels: &[&[T]]) {
        let c = self.channels;
        let n = check_block(channels, c);
        if n == 0 {
            return;
        }
        if T::HISTOGRAM_BINS.is_some() {
            for start in (0..n).step_by(EXACT_BLOCK) {
                let end = n.min(start.saturating_add(EXACT_BLOCK));
                let piece: Vec<&[T]> = channels.iter().map(|ch| &ch[start..end]).collect();
                self.add_block_exact(&piece, end - start);
            }
            return;
        }
        let nf = n as f64;
        let mut mean: Vec<f64> = channels.iter().map(|ch| sum(ch) / nf).collect();
        let mut centred = vec![0.0f64; c * CHUNK];
        let mut deviation = vec![0.0f64; c];
        let mut comoments = vec![0.0f64; c * c];
        for start in (0..n).step_by(CHUNK) {
            let len = CHUNK.min(n - start);
            for (k, ch) in channels.iter().enumerate() {
                let dst = &mut centred[k * CHUNK..k * CHUNK + len];
                deviation[k] += centre_and_sum(&ch[start..start + len], mean[k], dst);
            }
            for a in 0..c {
                let xa = &centred[a * CHUNK..a * CHUNK + len];
                for b in a..c {
                    comoments[a * c + b] += dot(xa, &centred[b * CHUNK..b * CHUNK + len]);
                }
            }
        }
        // The deviations from a rounded mean do not quite sum to zero;
        // correcting for that refines both the mean and the co-moments.
        for a in 0..c {
            for b in a..c {
                let v = comoments[a * c + b] - deviation[a] * deviation[b] / nf;
                comoments[a * c + b] = v;
                comoments[b * c + a] = v;
            }
        }
        for (m, d) in mean.iter_mut().zip(&deviation) {
            *m += d / nf;
        }
        self.merge_parts(n as u64, &mean, &comoments);
    }

    /// [`Self::add_block`] for 8- and 16-bit samples: the sums of their
    /// bins and of the bins' pairwise products are exact integers, so the
    /// block's means and co-moments are too until their final rounding to
    /// `f64`: more accurate than centring in floating point, and 2-3x faster
    /// (integer multiplies and adds in wide lanes, no dependency chain of
    /// floating-point additions). Co-moments do not change with the offset
    /// between bins and values.
    fn add_block_exact<T: Sample>(&mut self, channels: &[&[T]], n: usize) {
        let c = self.channels;
        let mut sums = vec![0u128; c];
        let mut products = vec![0u128; c * c];
        for start in (0..n).step_by(CHUNK) {
            let end = (start + CHUNK).min(n);
            for a in 0..c {
                let xa = &channels[a][start..end];
                sums[a] += u128::from(bin_sum(xa));
                for b in a..c {
                    products[a * c + b] += u128::from(bin_dot(xa, &channels[b][start..end]));
                }
            }
        }
        // n · Σxy - Σx · Σy, exact in i128: with n < 2^32 and bins below
        // 2^16, both terms are below 2^96.
        let count = n as i128;
        let nf = n as f64;
        let mut comoments = vec![0.0f64; c * c];
        for a in 0..c {
            for b in a..c {
                let numerator =
                    count * products[a * c + b] as i128 - sums[a] as i128 * sums[b] as i128;
                let v = numerator as f64 / nf;
                comoments[a * c + b] = v;
                comoments[b * c + a] = v;
            }
        }
        let offset = T::from_bin(0);
        let mean: Vec<f64> = sums.iter().map(|&s| s as f64 / nf + offset).collect();
        self.merge_parts(n as u64, &mean, &comoments);
    }

    /// Adds what `other` accumulated (Chan's pairwise update).
    ///
    /// # Panics
    ///
    /// If the two accumulators have different channel counts.
    pub fn merge(&mut self, other: &CovarianceAccumulator) {
        assert_eq!(
            self.channels, other.channels,
            "cannot merge covariances of different channel counts"
        );
        self.merge_parts(other.count, &other.mean, &other.comoments);
    }

    /// Writes this partial result in the [`wire`](crate::wire) form.
    pub fn encode(&self, w: &mut WireWriter) {
        w.u64(self.channels as u64);
        w.u64(self.count);
        w.f64s(&self.mean);
        w.f64s(&self.comoments);
    }

    /// Reads what [`Self::encode`] wrote, checking the sizes agree.
    pub fn decode(r: &mut WireReader<'_>) -> Result<Self, CoreError> {
        let channels = r.u64()?;
        let count = r.u64()?;
        let (mean, comoments) = (r.f64s()?, r.f64s()?);
        if mean.len() as u64 != channels || comoments.len() as u64 != channels * channels {
            return Err(CoreError::InvalidRequest(
                "malformed partial result: covariance sizes".into(),
            ));
        }
        Ok(CovarianceAccumulator {
            channels: mean.len(),
            count,
            mean,
            comoments,
        })
    }

    /// Features (channels).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Samples (pixels) accumulated so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn merge_parts(&mut self, count: u64, mean: &[f64], comoments: &[f64]) {
        if count == 0 {
            return;
        }
        if self.count == 0 {
            self.count = count;
            self.mean.copy_from_slice(mean);
            self.comoments.copy_from_slice(comoments);
            return;
        }
        let c = self.channels;
        let total = self.count + count;
        let w = count as f64 / total as f64;
        let scale = self.count as f64 * w;
        let delta: Vec<f64> = mean.iter().zip(&self.mean).map(|(b, a)| b - a).collect();
        for a in 0..c {
            for b in 0..c {
                self.comoments[a * c + b] += comoments[a * c + b] + delta[a] * delta[b] * scale;
            }
        }
        for (m, d) in self.mean.iter_mut().zip(&delta) {
            *m += d * w;
        }
        self.count = total;
    }
}

/// A fitted PCA, with scikit-learn's attribute names and conventions.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PcaModel {
    /// Components kept (k).
    pub n_components: usize,
    /// Samples (pixels) the model was fitted on.
    pub n_samples: u64,
    /// Variance along each component: the k largest eigenvalues of the
    /// sample covariance (ddof = 1), descending.
    pub explained_variance: Vec<f64>,
    /// Each explained variance over the total variance (the sum of all C
    /// eigenvalues, i.e. the covariance's trace); 0 when the total is 0.
    pub explained_variance_ratio: Vec<f64>,
    /// `k × C`: unit eigenvectors in descending eigenvalue order, each with
    /// its largest-magnitude loading positive.
    pub components: Vec<Vec<f64>>,
    /// Mean of each channel.
    pub mean: Vec<f64>,
}

/// Eigendecomposition of the C×C covariance (faer's self-adjoint
/// eigensolver) and the top k components.
///
/// Errors ([`CoreError::InvalidRequest`]): fewer than 2 channels, `k`
/// outside `1..=C`, fewer than 2 samples, or non-finite data.
pub fn fit(acc: &CovarianceAccumulator, k: usize) -> Result<PcaModel, CoreError> {
    let c = acc.channels;
    if c < 2 {
        return Err(CoreError::InvalidRequest(format!(
            "PCA needs at least 2 channels (features); this image has {c} channel{}",
            if c == 1 { "" } else { "s" }
        )));
    }
    if k < 1 || k > c {
        return Err(CoreError::InvalidRequest(format!(
            "n_components={k} is out of range: valid values are 1..={c} for an image with {c} channels"
        )));
    }
    if acc.count < 2 {
        return Err(CoreError::InvalidRequest(format!(
            "PCA needs at least 2 samples (pixels); got {}",
            acc.count
        )));
    }
    let ddof1 = (acc.count - 1) as f64;
    let cov: Vec<f64> = acc.comoments.iter().map(|m| m / ddof1).collect();
    if cov.iter().chain(&acc.mean).any(|v| !v.is_finite()) {
        return Err(CoreError::InvalidRequest(
            "PCA input contains NaN or infinite values".to_string(),
        ));
    }
    let matrix = faer::Mat::<f64>::from_fn(c, c, |i, j| cov[i * c + j]);
    let evd = matrix
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| CoreError::InvalidRequest(format!("PCA eigendecomposition failed: {e:?}")))?;
    let values = evd.S().column_vector();
    let vectors = evd.U();
    // faer documents ascending order; sort anyway rather than rely on it.
    let mut order: Vec<usize> = (0..c).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));

    // The sum of all eigenvalues is the trace, which needs no
    // eigendecomposition and is never slightly negative.
    let total: f64 = (0..c).map(|i| cov[i * c + i]).sum();
    let mut explained_variance = Vec::with_capacity(k);
    let mut explained_variance_ratio = Vec::with_capacity(k);
    let mut components = Vec::with_capacity(k);
    for &i in order.iter().take(k) {
        // A positive semi-definite matrix's eigenvalues can come out as
        // -1e-17; scikit-learn's squared singular values cannot.
        let ev = values[i].max(0.0);
        explained_variance.push(ev);
        explained_variance_ratio.push(if total > 0.0 { ev / total } else { 0.0 });
        let mut row: Vec<f64> = (0..c).map(|r| vectors[(r, i)]).collect();
        // scikit-learn's svd_flip on components: the first largest-magnitude
        // loading of each row becomes positive.
        let mut largest = 0;
        for (j, v) in row.iter().enumerate() {
            if v.abs() > row[largest].abs() {
                largest = j;
            }
        }
        if row[largest] < 0.0 {
            row.iter_mut().for_each(|v| *v = -*v);
        }
        components.push(row);
    }
    Ok(PcaModel {
        n_components: k,
        n_samples: acc.count,
        explained_variance,
        explained_variance_ratio,
        components,
        mean: acc.mean.clone(),
    })
}

impl PcaModel {
    /// Projects pixels onto the components:
    /// `out[j][i] = Σ_k (channels[k][i] - mean[k]) * components[j][k]`, as
    /// `f32` (scikit-learn's `transform`). Works through cache-sized chunks;
    /// nothing is allocated per pixel.
    ///
    /// # Panics
    ///
    /// If `channels` does not have one slice per channel, `out` one per
    /// component, or the slices differ in length (a caller bug).
    pub fn project_block<T: Sample>(&self, channels: &[&[T]], out: &mut [&mut [f32]]) {
        let c = self.mean.len();
        let n = check_block(channels, c);
        assert_eq!(
            out.len(),
            self.components.len(),
            "one output slice per component"
        );
        assert!(
            out.iter().all(|o| o.len() == n),
            "output slices must have one value per pixel"
        );
        let mut centred = vec![0.0f64; c * CHUNK];
        let mut acc = vec![0.0f64; CHUNK];
        for start in (0..n).step_by(CHUNK) {
            let len = CHUNK.min(n - start);
            for (k, ch) in channels.iter().enumerate() {
                centre(
                    &ch[start..start + len],
                    self.mean[k],
                    &mut centred[k * CHUNK..k * CHUNK + len],
                );
            }
            for (o, component) in out.iter_mut().zip(&self.components) {
                let acc = &mut acc[..len];
                acc.fill(0.0);
                for (k, &w) in component.iter().enumerate() {
                    add_scaled(acc, w, &centred[k * CHUNK..k * CHUNK + len]);
                }
                to_f32(acc, &mut o[start..start + len]);
            }
        }
    }
}

/// Checks a block's shape and returns its pixel count.
fn check_block<T>(channels: &[&[T]], expected: usize) -> usize {
    assert_eq!(
        channels.len(),
        expected,
        "expected one slice per channel ({expected})"
    );
    let n = channels.first().map_or(0, |ch| ch.len());
    assert!(
        channels.iter().all(|ch| ch.len() == n),
        "all channel slices of a block must have the same length"
    );
    n
}

// The loops below are compiled for AVX2 (and the element-wise ones for
// AVX-512) too and chosen at run time: two or four times the lanes of the
// SSE2 baseline. Their arithmetic is the same, operation for operation (no
// fused multiply-adds), so every CPU gets the same bits.

/// `acc[i] += w * x[i]`.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn add_scaled(acc: &mut [f64], w: f64, x: &[f64]) {
    for (a, x) in acc.iter_mut().zip(x) {
        *a += w * x;
    }
}

/// `dst[i] = src[i] as f32`.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn to_f32(src: &[f64], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = *s as f32;
    }
}

/// `dst[i] = src[i] - mean`.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn centre<T: Sample>(src: &[T], mean: f64, dst: &mut [f64]) {
    for (d, v) in dst.iter_mut().zip(src) {
        *d = v.to_f64() - mean;
    }
}

/// `dst[i] = src[i] - mean`, returning the sum of `dst` (four independent
/// partial sums, so the additions do not form one long dependency chain).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn centre_and_sum<T: Sample>(src: &[T], mean: f64, dst: &mut [f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut qd = dst.chunks_exact_mut(4);
    let mut qs = src.chunks_exact(4);
    for (d, s) in (&mut qd).zip(&mut qs) {
        for l in 0..4 {
            d[l] = s[l].to_f64() - mean;
            acc[l] += d[l];
        }
    }
    for (d, s) in qd.into_remainder().iter_mut().zip(qs.remainder()) {
        *d = s.to_f64() - mean;
        acc[0] += *d;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// Sum of the samples in `f64`, by blocks with four independent partial
/// sums (accurate and vectorisable).
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn sum<T: Sample>(samples: &[T]) -> f64 {
    let mut total = 0.0;
    for block in samples.chunks(SUM_BLOCK) {
        let mut acc = [0.0f64; 4];
        let mut quads = block.chunks_exact(4);
        for q in &mut quads {
            for l in 0..4 {
                acc[l] += q[l].to_f64();
            }
        }
        for v in quads.remainder() {
            acc[0] += v.to_f64();
        }
        total += (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
    total
}

/// The sum of the samples' histogram bins (8- and 16-bit types): exact for
/// up to 2^48 samples.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2"))]
fn bin_sum<T: Sample>(samples: &[T]) -> u64 {
    samples.iter().map(|v| v.bin() as u64).sum()
}

/// `Σ bin(a[i]) · bin(b[i])` (8- and 16-bit types): each product is below
/// 2^32, so the sum is exact for up to 2^32 samples.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512bw", "x86_64+avx2"))]
fn bin_dot<T: Sample>(a: &[T], b: &[T]) -> u64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.bin() as u32) * u64::from(y.bin() as u32))
        .sum()
}

/// Dot product with four independent partial sums.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut qa = a.chunks_exact(4);
    let mut qb = b.chunks_exact(4);
    for (x, y) in (&mut qa).zip(&mut qb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    for (x, y) in qa.remainder().iter().zip(qb.remainder()) {
        acc[0] += x * y;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
    }

    /// Deterministic pseudo-random numbers in [0, 1).
    struct Rng(u64);
    impl Rng {
        fn unit(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Straightforward reference: two-pass sample covariance (ddof = 1).
    fn reference_cov(data: &[Vec<f64>]) -> (Vec<f64>, Vec<Vec<f64>>) {
        let n = data[0].len() as f64;
        let mean: Vec<f64> = data.iter().map(|ch| ch.iter().sum::<f64>() / n).collect();
        let cov = (0..data.len())
            .map(|a| {
                (0..data.len())
                    .map(|b| {
                        data[a]
                            .iter()
                            .zip(&data[b])
                            .map(|(x, y)| (x - mean[a]) * (y - mean[b]))
                            .sum::<f64>()
                            / (n - 1.0)
                    })
                    .collect()
            })
            .collect();
        (mean, cov)
    }

    /// Reference eigendecomposition by cyclic Jacobi rotations: eigenvalues
    /// descending with their unit eigenvectors.
    fn jacobi(mut a: Vec<Vec<f64>>) -> Vec<(f64, Vec<f64>)> {
        let n = a.len();
        let mut v: Vec<Vec<f64>> = (0..n)
            .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
            .collect();
        for _ in 0..100 {
            for p in 0..n {
                for q in p + 1..n {
                    if a[p][q].abs() < 1e-300 {
                        continue;
                    }
                    let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                    let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                    let (cs, sn) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                    for row in a.iter_mut() {
                        let (akp, akq) = (row[p], row[q]);
                        row[p] = cs * akp - sn * akq;
                        row[q] = sn * akp + cs * akq;
                    }
                    let (rp, rq) = (a[p].clone(), a[q].clone());
                    for (k, (apk, aqk)) in rp.iter().zip(&rq).enumerate() {
                        a[p][k] = cs * apk - sn * aqk;
                        a[q][k] = sn * apk + cs * aqk;
                    }
                    for row in v.iter_mut() {
                        let (vp, vq) = (row[p], row[q]);
                        row[p] = cs * vp - sn * vq;
                        row[q] = sn * vp + cs * vq;
                    }
                }
            }
        }
        let mut pairs: Vec<(f64, Vec<f64>)> = (0..n)
            .map(|i| (a[i][i], (0..n).map(|r| v[r][i]).collect()))
            .collect();
        pairs.sort_by(|x, y| y.0.total_cmp(&x.0));
        pairs
    }

    fn accumulate<T: Sample>(data: &[Vec<T>]) -> CovarianceAccumulator {
        let mut acc = CovarianceAccumulator::new(data.len());
        let slices: Vec<&[T]> = data.iter().map(|c| &c[..]).collect();
        acc.add_block(&slices);
        acc
    }

    #[test]
    fn hand_made_data_set_has_known_pca() {
        // x = 10 + t + 2s, y = 20 + 2t - s over the grid t in -2..=2,
        // s in {-1, 1}: t and s are uncorrelated, so the components are
        // (1, 2)/√5 and (2, -1)/√5 with variances 5·var(t) = 100/9 and
        // 5·var(s) = 50/9 (ddof = 1, n = 10).
        let mut x = Vec::new();
        let mut y = Vec::new();
        for t in -2i16..=2 {
            for s in [-1i16, 1] {
                x.push((10 + t + 2 * s) as u8);
                y.push((20 + 2 * t - s) as u8);
            }
        }
        let model = fit(&accumulate(&[x, y]), 2).unwrap();
        let r5 = 5f64.sqrt();
        assert_eq!(model.n_samples, 10);
        assert_eq!(model.n_components, 2);
        assert!(close(model.explained_variance[0], 100.0 / 9.0, 1e-12));
        assert!(close(model.explained_variance[1], 50.0 / 9.0, 1e-12));
        assert!(close(model.explained_variance_ratio[0], 2.0 / 3.0, 1e-12));
        assert!(close(model.explained_variance_ratio[1], 1.0 / 3.0, 1e-12));
        for (got, want) in model.components[0].iter().zip([1.0 / r5, 2.0 / r5]) {
            assert!(close(*got, want, 1e-12), "{:?}", model.components);
        }
        for (got, want) in model.components[1].iter().zip([2.0 / r5, -1.0 / r5]) {
            assert!(close(*got, want, 1e-12), "{:?}", model.components);
        }
        assert!(close(model.mean[0], 10.0, 1e-15) && close(model.mean[1], 20.0, 1e-15));

        // Projection: pixel 0 has t = -2, s = -1, so it projects to
        // (t·√5, s·√5).
        let (xs, ys) = ([6u8], [17u8]);
        let mut p0 = [0f32];
        let mut p1 = [0f32];
        model.project_block::<u8>(&[&xs, &ys], &mut [&mut p0, &mut p1]);
        assert!((p0[0] - (-2.0 * r5) as f32).abs() < 1e-5);
        assert!((p1[0] - (-r5) as f32).abs() < 1e-5);
    }

    #[test]
    fn two_channels_match_closed_form() {
        let mut rng = Rng(11);
        let a: Vec<f32> = (0..5000).map(|_| (rng.unit() * 100.0) as f32).collect();
        let b: Vec<f32> = a
            .iter()
            .map(|&v| 0.3 * v + 500.0 + (rng.unit() * 40.0) as f32)
            .collect();
        let data = [a.clone(), b.clone()];
        let f: Vec<Vec<f64>> = data
            .iter()
            .map(|c| c.iter().map(|&v| v.into()).collect())
            .collect();
        let (mean, cov) = reference_cov(&f);
        let (p, q, r) = (cov[0][0], cov[0][1], cov[1][1]);
        let half = ((p - r) / 2.0).hypot(q);
        let l1 = (p + r) / 2.0 + half;
        let l2 = (p + r) / 2.0 - half;
        let norm = q.hypot(l1 - p);
        let mut v1 = [q / norm, (l1 - p) / norm];
        let largest = if v1[0].abs() >= v1[1].abs() {
            v1[0]
        } else {
            v1[1]
        };
        if largest < 0.0 {
            v1 = [-v1[0], -v1[1]];
        }

        let model = fit(&accumulate(&data), 1).unwrap();
        assert_eq!(model.components.len(), 1);
        assert!(close(model.explained_variance[0], l1, 1e-10));
        assert!(close(
            model.explained_variance_ratio[0],
            l1 / (l1 + l2),
            1e-10
        ));
        assert!(close(model.components[0][0], v1[0], 1e-9));
        assert!(close(model.components[0][1], v1[1], 1e-9));
        assert!(close(model.mean[0], mean[0], 1e-12) && close(model.mean[1], mean[1], 1e-12));
    }

    #[test]
    fn three_channels_match_jacobi_reference_and_sign_convention() {
        let mut rng = Rng(12);
        let n = 20_000;
        let mut data = vec![Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..n {
            let (u, v, w) = (rng.unit(), rng.unit(), rng.unit());
            data[0].push((1000.0 + 800.0 * u + 100.0 * w) as u16);
            data[1].push((3000.0 - 600.0 * u + 300.0 * v) as u16);
            data[2].push((50.0 + 200.0 * v - 150.0 * w + 20.0 * u) as u16);
        }
        let f: Vec<Vec<f64>> = data
            .iter()
            .map(|c| c.iter().map(|&v| v.into()).collect())
            .collect();
        let (mean, cov) = reference_cov(&f);
        let reference = jacobi(cov.clone());
        let trace = cov[0][0] + cov[1][1] + cov[2][2];

        let model = fit(&accumulate(&data), 3).unwrap();
        for (j, (value, vector)) in reference.iter().enumerate() {
            assert!(close(model.explained_variance[j], *value, 1e-9));
            assert!(close(
                model.explained_variance_ratio[j],
                value / trace,
                1e-9
            ));
            let row = &model.components[j];
            // Same direction as the reference eigenvector, up to sign.
            let d: f64 = row.iter().zip(vector).map(|(a, b)| a * b).sum();
            assert!(close(d.abs(), 1.0, 1e-9), "{row:?} vs {vector:?}");
            assert!(close(row.iter().map(|v| v * v).sum::<f64>(), 1.0, 1e-12));
            // Sign convention: the largest-magnitude loading is positive.
            let largest = row
                .iter()
                .copied()
                .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                .unwrap();
            assert!(largest > 0.0, "{row:?}");
        }
        for (a, b) in model.mean.iter().zip(&mean) {
            assert!(close(*a, *b, 1e-12));
        }

        // Projection equals the direct formula.
        let slices: Vec<&[u16]> = data.iter().map(|c| &c[..]).collect();
        let mut out = vec![vec![0f32; n]; 3];
        {
            let mut outs: Vec<&mut [f32]> = out.iter_mut().map(|o| &mut o[..]).collect();
            model.project_block(&slices, &mut outs);
        }
        for i in [0, 1, 1023, 1024, 1025, n - 1] {
            for (o, component) in out.iter().zip(&model.components) {
                let want: f64 = (0..3)
                    .map(|k| (f[k][i] - model.mean[k]) * component[k])
                    .sum();
                assert!((o[i] as f64 - want).abs() <= 1e-3 + 1e-6 * want.abs());
            }
        }
    }

    /// The exact integer path of 8- and 16-bit samples (signed ones through
    /// their bins' offset) agrees with the floating-point path of the same
    /// values as `f64`.
    #[test]
    fn integer_samples_agree_with_their_values_as_floats() {
        let mut next = crate::test_support::xorshift(11);
        let signed: Vec<Vec<i16>> = (0..3)
            .map(|k| {
                (0..5000)
                    .map(|i| ((i * (k + 3)) % 20_000) as i16 - 10_000 + (next() % 97) as i16)
                    .collect()
            })
            .collect();
        let bytes: Vec<Vec<i8>> = (0..2)
            .map(|k| {
                (0..777)
                    .map(|i| ((i * (k + 1) % 200) as i64 - 100 + (next() % 7) as i64) as i8)
                    .collect()
            })
            .collect();
        fn as_floats<T: Sample>(data: &[Vec<T>]) -> Vec<Vec<f64>> {
            data.iter()
                .map(|c| c.iter().map(|v| v.to_f64()).collect())
                .collect()
        }
        for (exact, float) in [
            (accumulate(&signed), accumulate(&as_floats(&signed))),
            (accumulate(&bytes), accumulate(&as_floats(&bytes))),
        ] {
            assert_eq!(exact.count, float.count);
            for (a, b) in exact.mean.iter().zip(&float.mean) {
                assert!(
                    close(*a, *b, 1e-12),
                    "means {:?} vs {:?}",
                    exact.mean,
                    float.mean
                );
            }
            for (a, b) in exact.comoments.iter().zip(&float.comoments) {
                assert!(
                    close(*a, *b, 1e-9),
                    "{:?} vs {:?}",
                    exact.comoments,
                    float.comoments
                );
            }
        }
    }

    #[test]
    fn merge_of_halves_equals_one_pass() {
        let mut rng = Rng(13);
        let data: Vec<Vec<f64>> = (0..4)
            .map(|k| {
                (0..9_999)
                    .map(|_| 1e6 * k as f64 + rng.unit() * (k + 1) as f64)
                    .collect()
            })
            .collect();
        let one = accumulate(&data);
        let mut left = CovarianceAccumulator::new(4);
        let mut right = CovarianceAccumulator::new(4);
        let (l, r): (Vec<&[f64]>, Vec<&[f64]>) = data.iter().map(|c| c.split_at(3_001)).unzip();
        left.add_block(&l);
        right.add_block(&r[..]);
        // Also in several small blocks.
        let mut pieces = CovarianceAccumulator::new(4);
        for start in (0..9_999).step_by(700) {
            let end = (start + 700).min(9_999);
            let block: Vec<&[f64]> = data.iter().map(|c| &c[start..end]).collect();
            pieces.add_block(&block);
        }
        left.merge(&right);
        assert_eq!(left.count(), 9_999);
        for acc in [&left, &pieces] {
            for (a, b) in acc.mean.iter().zip(&one.mean) {
                assert!(close(*a, *b, 1e-14));
            }
            // Relative to the scale of the two features: the means are
            // near 1e6, so a cross moment near 0 cannot be relatively exact.
            for a in 0..4 {
                for b in 0..4 {
                    let scale = (one.comoments[a * 5] * one.comoments[b * 5]).sqrt();
                    let (x, y) = (acc.comoments[a * 4 + b], one.comoments[a * 4 + b]);
                    assert!((x - y).abs() <= 1e-10 * scale, "{x} {y}");
                }
            }
        }
        let (_, cov) = reference_cov(&data);
        for a in 0..4 {
            for b in 0..4 {
                let scale = (cov[a][a] * cov[b][b]).sqrt();
                assert!((one.comoments[a * 4 + b] / 9_998.0 - cov[a][b]).abs() <= 1e-10 * scale);
            }
        }
        // Merging into or from an empty accumulator is the identity.
        let mut empty = CovarianceAccumulator::new(4);
        empty.merge(&one);
        empty.merge(&CovarianceAccumulator::new(4));
        assert_eq!(empty.comoments, one.comoments);
    }

    #[test]
    fn decoded_partials_merge_as_the_originals() {
        let data = [vec![1.5f64, 2.0, 7.25], vec![3.0, 1.0, 2.0]];
        let one = accumulate(&data);
        let mut w = WireWriter::new();
        one.encode(&mut w);
        let bytes = w.into_bytes();
        let mut r = WireReader::new(&bytes);
        let back = CovarianceAccumulator::decode(&mut r).unwrap();
        r.finish().unwrap();
        assert_eq!(
            (back.count, &back.mean, &back.comoments),
            (one.count, &one.mean, &one.comoments)
        );
        // a partial whose matrix does not fit its channel count is refused
        let mut w = WireWriter::new();
        w.u64(3);
        w.u64(1);
        w.f64s(&[0.0; 3]);
        w.f64s(&[0.0; 4]);
        let bytes = w.into_bytes();
        assert!(CovarianceAccumulator::decode(&mut WireReader::new(&bytes)).is_err());
    }

    #[test]
    fn invalid_requests_explain_themselves() {
        let e = fit(&accumulate(&[vec![1u8, 2, 3]]), 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "PCA needs at least 2 channels (features); this image has 1 channel"
        );
        let acc = accumulate(&[vec![1u8, 2, 3], vec![3, 1, 2], vec![0, 0, 1]]);
        for k in [0, 4] {
            let e = fit(&acc, k).unwrap_err();
            assert!(matches!(e, CoreError::InvalidRequest(_)));
            assert!(e.to_string().contains("1..=3"), "{e}");
        }
        let e = fit(&accumulate(&[vec![1u8], vec![2]]), 1).unwrap_err();
        assert!(e.to_string().contains("at least 2 samples"), "{e}");
        let e = fit(&accumulate(&[vec![1.0f32, f32::NAN], vec![2.0, 3.0]]), 1).unwrap_err();
        assert!(e.to_string().contains("NaN"), "{e}");
    }

    #[test]
    fn constant_data_has_zero_variance() {
        let model = fit(&accumulate(&[vec![5u8; 10], vec![7u8; 10]]), 2).unwrap();
        assert_eq!(model.explained_variance, vec![0.0, 0.0]);
        assert_eq!(model.explained_variance_ratio, vec![0.0, 0.0]);
        assert_eq!(model.mean, vec![5.0, 7.0]);
    }
}
