//! Computations that stream a stored image: PCA with pixels as samples and
//! channels as features (one pass for the covariance, one to write the
//! scores), and reading planes.

use std::ops::Range;
use std::sync::Mutex;

use pentascope_core::pca::{fit, CovarianceAccumulator, PcaModel};
use pentascope_core::stats::{ChannelStats, StatsAccumulator};
use pentascope_core::{dispatch_dtype, PlaneIndex, Sample};
use rayon::prelude::*;

use crate::error::StoreError;
use crate::pixels::{PixelReader, PixelWriter};

/// Reads one whole plane as samples of type `T` (the image's own type).
pub fn read_plane<T: Sample>(
    reader: &dyn PixelReader,
    plane: PlaneIndex,
) -> Result<Vec<T>, StoreError> {
    let shape = reader.layout().shape;
    let mut out = vec![T::default(); (shape.y * shape.x) as usize];
    reader.read_rows(plane, 0..shape.y, bytemuck::cast_slice_mut(&mut out))?;
    Ok(out)
}

/// Result of a PCA run.
#[derive(Debug, Clone)]
pub struct PcaOutcome {
    /// The fitted model.
    pub model: PcaModel,
    /// Statistics of each component's scores (the derived image's channels).
    pub score_statistics: Vec<ChannelStats>,
    /// Scores inline, pixel-major (`n_pixels × k`, pixels in T, Z, Y, X
    /// order), when `n_pixels × k` is within the inline cap.
    pub inline_scores: Option<Vec<f32>>,
}

/// Fits PCA with `k` components over all pixels of `reader` and writes the
/// scores to `scores` (a float32 image with `k` channels, same T, Z, Y, X).
pub fn pca(
    reader: &dyn PixelReader,
    k: usize,
    scores: &dyn PixelWriter,
    inline_cap: u64,
) -> Result<PcaOutcome, StoreError> {
    dispatch_dtype!(reader.layout().dtype, T => pca_typed::<T>(reader, k, scores, inline_cap))
}

/// Every (t, z, rows) unit of work over a T×Z stack cut into `bands`.
fn units(t: u64, z: u64, bands: Vec<Range<u64>>) -> Vec<(u64, u64, Range<u64>)> {
    let mut out = Vec::new();
    for ti in 0..t {
        for zi in 0..z {
            out.extend(bands.iter().map(|b| (ti, zi, b.clone())));
        }
    }
    out
}

fn read_channels<T: Sample>(
    reader: &dyn PixelReader,
    t: u64,
    z: u64,
    rows: &Range<u64>,
) -> Result<Vec<Vec<T>>, StoreError> {
    let shape = reader.layout().shape;
    let n = ((rows.end - rows.start) * shape.x) as usize;
    (0..shape.c)
        .map(|c| {
            let mut buf = vec![T::default(); n];
            reader.read_rows(
                PlaneIndex::new(t, z, c),
                rows.clone(),
                bytemuck::cast_slice_mut(&mut buf),
            )?;
            Ok(buf)
        })
        .collect()
}

fn pca_typed<T: Sample>(
    reader: &dyn PixelReader,
    k: usize,
    scores: &dyn PixelWriter,
    inline_cap: u64,
) -> Result<PcaOutcome, StoreError> {
    let layout = *reader.layout();
    let shape = layout.shape;
    let c = shape.c as usize;
    // Pass 1: covariance, band by band in parallel.
    let covariance = units(shape.t, shape.z, layout.bands().collect())
        .into_par_iter()
        .try_fold(
            || CovarianceAccumulator::new(c),
            |mut acc, (t, z, rows)| {
                let bands = read_channels::<T>(reader, t, z, &rows)?;
                let views: Vec<&[T]> = bands.iter().map(Vec::as_slice).collect();
                acc.add_block(&views);
                Ok::<_, StoreError>(acc)
            },
        )
        .try_reduce(
            || CovarianceAccumulator::new(c),
            |mut a, b| {
                a.merge(&b);
                Ok(a)
            },
        )?;
    let model = fit(&covariance, k)?;

    // Pass 2: project and write the scores, in the scores image's bands.
    let n_pixels = shape.pixels_per_channel();
    let inline = (n_pixels * k as u64 <= inline_cap)
        .then(|| Mutex::new(vec![0f32; (n_pixels * k as u64) as usize]));
    let stats: Vec<Mutex<StatsAccumulator<f32>>> = (0..k)
        .map(|_| Mutex::new(StatsAccumulator::new()))
        .collect();
    let out_layout = *scores.layout();
    units(shape.t, shape.z, out_layout.bands().collect())
        .into_par_iter()
        .try_for_each(|(t, z, rows)| {
            let bands = read_channels::<T>(reader, t, z, &rows)?;
            let views: Vec<&[T]> = bands.iter().map(Vec::as_slice).collect();
            let n = views[0].len();
            let mut projected: Vec<Vec<f32>> = vec![vec![0f32; n]; k];
            {
                let mut outs: Vec<&mut [f32]> =
                    projected.iter_mut().map(Vec::as_mut_slice).collect();
                model.project_block(&views, &mut outs);
            }
            for (j, p) in projected.iter().enumerate() {
                scores.write_band(
                    PlaneIndex::new(t, z, j as u64),
                    rows.start,
                    bytemuck::cast_slice(p),
                )?;
                let mut acc = StatsAccumulator::new();
                acc.add(p);
                stats[j].lock().expect("statistics lock").merge(acc);
            }
            if let Some(inline) = &inline {
                let first = ((t * shape.z + z) * shape.y + rows.start) * shape.x;
                let mut all = inline.lock().expect("inline lock");
                for i in 0..n {
                    for (j, p) in projected.iter().enumerate() {
                        all[(first as usize + i) * k + j] = p[i];
                    }
                }
            }
            Ok::<(), StoreError>(())
        })?;
    Ok(PcaOutcome {
        model,
        score_statistics: stats
            .into_iter()
            .map(|m| m.into_inner().expect("statistics lock").finish())
            .collect(),
        inline_scores: inline.map(|m| m.into_inner().expect("inline lock")),
    })
}
