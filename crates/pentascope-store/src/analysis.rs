//! Computations that stream a stored image: statistics recomputed from the
//! chunks, PCA with pixels as samples and channels as features (one pass for
//! the covariance, one for the scores' statistics), and the virtual reader
//! that serves PCA scores as an image by projecting source planes on request.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use pentascope_core::pca::{fit, CovarianceAccumulator, PcaModel};
use pentascope_core::stats::{ChannelStats, SharedChannelStats};
use pentascope_core::{dispatch_dtype, DType, PlaneIndex, Sample, Shape5};
use rayon::prelude::*;

use crate::cancel::Cancel;
use crate::error::StoreError;
use crate::pixels::{ArrayLayout, PixelReader};

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

/// Every (t, z, rows) unit of work over a T×Z stack cut into the layout's bands.
fn units(layout: &ArrayLayout) -> Vec<(u64, u64, Range<u64>)> {
    let mut out = Vec::new();
    for t in 0..layout.shape.t {
        for z in 0..layout.shape.z {
            out.extend(layout.bands().map(|b| (t, z, b)));
        }
    }
    out
}

/// Rows `rows` of every channel at (t, z).
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

/// Per-channel statistics of a stored image, recomputed from its chunks
/// (what ingest gathers, without the TIFF).
pub fn recompute_statistics(
    reader: &dyn PixelReader,
    cancel: &Cancel,
) -> Result<Vec<ChannelStats>, StoreError> {
    dispatch_dtype!(reader.layout().dtype, T => statistics_typed::<T>(reader, cancel))
}

fn statistics_typed<T: Sample>(
    reader: &dyn PixelReader,
    cancel: &Cancel,
) -> Result<Vec<ChannelStats>, StoreError> {
    let layout = *reader.layout();
    let channels = SharedChannelStats::<T>::new(layout.shape.c as usize);
    units(&layout)
        .into_par_iter()
        .try_for_each(|(t, z, rows)| {
            for (c, bands) in {
                cancel.check()?;
                read_channels::<T>(reader, t, z, &rows)?
            }
            .iter()
            .enumerate()
            {
                channels.add(c, bands);
            }
            Ok::<(), StoreError>(())
        })?;
    Ok(channels.finish())
}

/// Result of a PCA run.
#[derive(Debug, Clone)]
pub struct PcaOutcome {
    /// The fitted model.
    pub model: PcaModel,
    /// Statistics of each component's scores (the virtual image's channels).
    pub score_statistics: Vec<ChannelStats>,
    /// Scores inline, pixel-major (`n_pixels × k`, pixels in T, Z, Y, X
    /// order), when `n_pixels × k` is within the inline cap.
    pub inline_scores: Option<Vec<f32>>,
}

/// Fits PCA with `k` components over all pixels of `reader`, then projects
/// every pixel once more for the scores' statistics (and the inline scores
/// when there are at most `inline_cap` values). Nothing is written: the
/// scores image is served by [`ScoresReader`].
/// `progress` is told the fraction done (each pass is half).
pub fn pca(
    reader: &dyn PixelReader,
    k: usize,
    inline_cap: u64,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &Cancel,
) -> Result<PcaOutcome, StoreError> {
    dispatch_dtype!(reader.layout().dtype, T => pca_typed::<T>(reader, k, inline_cap, progress, cancel))
}

fn pca_typed<T: Sample>(
    reader: &dyn PixelReader,
    k: usize,
    inline_cap: u64,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &Cancel,
) -> Result<PcaOutcome, StoreError> {
    let layout = *reader.layout();
    let shape = layout.shape;
    let c = shape.c as usize;
    let work = units(&layout);
    let total = 2 * work.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let tick = || {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        progress(n as f64 / total as f64);
    };
    let covariance = work
        .clone()
        .into_par_iter()
        .try_fold(
            || CovarianceAccumulator::new(c),
            |mut acc, (t, z, rows)| {
                let bands = {
                    cancel.check()?;
                    read_channels::<T>(reader, t, z, &rows)?
                };
                let views: Vec<&[T]> = bands.iter().map(Vec::as_slice).collect();
                acc.add_block(&views);
                tick();
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

    let n_pixels = shape.pixels_per_channel();
    let inline = (n_pixels * k as u64 <= inline_cap)
        .then(|| Mutex::new(vec![0f32; (n_pixels * k as u64) as usize]));
    let stats = SharedChannelStats::<f32>::new(k);
    work.into_par_iter().try_for_each(|(t, z, rows)| {
        let bands = {
            cancel.check()?;
            read_channels::<T>(reader, t, z, &rows)?
        };
        let views: Vec<&[T]> = bands.iter().map(Vec::as_slice).collect();
        let n = views[0].len();
        let mut projected: Vec<Vec<f32>> = vec![vec![0f32; n]; k];
        {
            let mut outs: Vec<&mut [f32]> = projected.iter_mut().map(Vec::as_mut_slice).collect();
            model.project_block(&views, &mut outs);
        }
        for (j, p) in projected.iter().enumerate() {
            stats.add(j, p);
        }
        if let Some(inline) = &inline {
            let first = (((t * shape.z + z) * shape.y + rows.start) * shape.x) as usize;
            let mut all = inline.lock().expect("inline lock");
            for i in 0..n {
                for (j, p) in projected.iter().enumerate() {
                    all[(first + i) * k + j] = p[i];
                }
            }
        }
        tick();
        Ok::<(), StoreError>(())
    })?;
    Ok(PcaOutcome {
        model,
        score_statistics: stats.finish(),
        inline_scores: inline.map(|m| m.into_inner().expect("inline lock")),
    })
}

/// PCA scores served as a float32 image (`T, Z, k, Y, X`) without storing
/// them: each read projects the source image's channels at that (t, z).
pub struct ScoresReader {
    source: Arc<dyn PixelReader>,
    /// One single-component model per score channel, so that a read
    /// projects onto just the component it serves.
    components: Vec<PcaModel>,
    layout: ArrayLayout,
}

impl ScoresReader {
    /// The scores of `model` over `source`.
    pub fn new(source: Arc<dyn PixelReader>, model: PcaModel) -> ScoresReader {
        let s = source.layout().shape;
        let shape = Shape5::new(s.t, s.z, model.n_components as u64, s.y, s.x);
        let layout = ArrayLayout {
            shape,
            dtype: DType::F32,
            // computed on request: no stored pyramid
            levels: 0,
            ..*source.layout()
        };
        let components = model
            .components
            .iter()
            .map(|c| PcaModel {
                n_components: 1,
                components: vec![c.clone()],
                ..model.clone()
            })
            .collect();
        ScoresReader {
            source,
            components,
            layout,
        }
    }
}

impl PixelReader for ScoresReader {
    fn layout(&self) -> &ArrayLayout {
        &self.layout
    }

    /// Scores are computed over whole rows of the source (full
    /// resolution only); a region's columns are cut from them.
    fn read_region(
        &self,
        level: u32,
        plane: PlaneIndex,
        rows: Range<u64>,
        columns: Range<u64>,
        out: &mut [u8],
    ) -> Result<(), StoreError> {
        self.layout.shape.check_plane(plane)?;
        let width = self.layout.shape.x;
        if level != 0 || columns.end > width || rows.end > self.layout.shape.y {
            return Err(StoreError::Pixels(format!(
                "scores are computed at full resolution for rows and columns within the \
                 plane, not level {level}, rows {rows:?}, columns {columns:?}"
            )));
        }
        let component = &self.components[plane.c as usize];
        let out: &mut [f32] = bytemuck::cast_slice_mut(out);
        let mut full = Vec::new();
        let whole = columns == (0..width);
        if !whole {
            full.resize((rows.end - rows.start) as usize * width as usize, 0f32);
        }
        dispatch_dtype!(self.source.layout().dtype, T => {
            let bands = read_channels::<T>(&*self.source, plane.t, plane.z, &rows)?;
            let views: Vec<&[T]> = bands.iter().map(Vec::as_slice).collect();
            let target: &mut [f32] = if whole { &mut *out } else { &mut full };
            component.project_block(&views, &mut [target]);
        });
        if !whole {
            let (x0, x1) = (columns.start as usize, columns.end as usize);
            for (to, from) in out
                .chunks_exact_mut(x1 - x0)
                .zip(full.chunks_exact(width as usize))
            {
                to.copy_from_slice(&from[x0..x1]);
            }
        }
        Ok(())
    }
}
