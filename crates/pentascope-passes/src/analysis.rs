//! Computations that stream a stored image: statistics recomputed from the
//! chunks, PCA with pixels as samples and channels as features (one pass for
//! the covariance, one for the scores' statistics and their exact display
//! windows; a few more for the windows of images too large to keep their
//! tails), and the virtual reader
//! that serves PCA scores as an image by projecting source planes on request.
//!
//! Each pass is cut into [`parts`] fixed by the layout, merged in part
//! order. The same parts can run on other workers
//! ([`statistics_part`], [`covariance_part`], [`scores_part`]) and be merged
//! wherever the last one finishes ([`merge_statistics`], [`fit_parts`],
//! [`merge_score_statistics`]), with the same result bit for bit.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use pentascope_core::pca::{fit, CovarianceAccumulator, PcaModel};
use pentascope_core::stats::{
    ChannelStats, StatsAccumulator, Tails, DISPLAY_HIGH_QUANTILE, DISPLAY_LOW_QUANTILE,
};
use pentascope_core::wire::{WireReader, WireWriter};
use pentascope_core::{dispatch_dtype, CoreError, DType, PlaneIndex, Sample, Shape5};
use pentascope_store::pixels::{ArrayLayout, PixelReader};
use pentascope_store::StoreError;

use crate::error::PassError;

use crate::cancel::Cancel;

/// One unit of work: rows `rows` of every channel at (t, z).
type Unit = (u64, u64, Range<u64>);

/// The parts a pass over `layout` is cut into: runs of consecutive
/// (t, z, band) units of at most `part_pixels` pixels per channel (whole
/// bands; one band when a band is larger). They depend on the layout and
/// that size alone, never on threads or workers, and every pass merges
/// them in this order, so a job gives the same bits whether its parts run
/// on this process's threads or on many workers.
pub fn parts(layout: &ArrayLayout, part_pixels: u64) -> Vec<Vec<Unit>> {
    let band_pixels = (layout.chunk_y.min(layout.shape.y) * layout.shape.x).max(1);
    let per_part = usize::try_from(part_pixels / band_pixels)
        .unwrap_or(usize::MAX)
        .max(1);
    let mut units = Vec::new();
    for t in 0..layout.shape.t {
        for z in 0..layout.shape.z {
            units.extend(layout.bands().map(|b| (t, z, b)));
        }
    }
    units.chunks(per_part).map(<[Unit]>::to_vec).collect()
}

/// The units of part `part` of `reader`'s image, or an error naming the
/// valid range.
fn part_units(
    reader: &dyn PixelReader,
    part_pixels: u64,
    part: usize,
) -> Result<Vec<Unit>, PassError> {
    let mut all = parts(reader.layout(), part_pixels);
    let n = all.len();
    if part >= n {
        return Err(PassError::Core(CoreError::OutOfRange(format!(
            "part {part} of a job split into {n} parts (0..{n})"
        ))));
    }
    Ok(all.swap_remove(part))
}

/// Runs `compute` on every part on all threads and hands the results to
/// `merge` in part order. Threads take parts in order, so only results
/// that finished ahead of an earlier part wait (a few, not all). Each
/// thread hands `compute` its own scratch `S`, kept from part to part.
fn in_order<R: Send, S: Default>(
    n: usize,
    compute: impl Fn(usize, &mut S) -> Result<R, PassError> + Sync,
    merge: impl FnMut(R) + Send,
) -> Result<(), PassError> {
    struct Merging<R, M> {
        next: usize,
        waiting: BTreeMap<usize, R>,
        merge: M,
        failed: Option<PassError>,
    }
    let taken = AtomicUsize::new(0);
    let state = Mutex::new(Merging {
        next: 0,
        waiting: BTreeMap::new(),
        merge,
        failed: None,
    });
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    rayon::broadcast(|_| {
        let mut scratch = S::default();
        loop {
            let i = taken.fetch_add(1, Ordering::Relaxed);
            if i >= n || lock().failed.is_some() {
                return;
            }
            let result = compute(i, &mut scratch);
            let mut s = lock();
            match result {
                Ok(r) => {
                    s.waiting.insert(i, r);
                    while let Some(r) = {
                        let next = s.next;
                        s.waiting.remove(&next)
                    } {
                        (s.merge)(r);
                        s.next += 1;
                    }
                }
                Err(e) => {
                    s.failed.get_or_insert(e);
                    return;
                }
            }
        }
    });
    match state.into_inner().unwrap_or_else(|e| e.into_inner()).failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What a thread of a pass reuses from part to part, so that a pass does
/// not allocate (and fault in) fresh memory for every part: each channel's
/// band, and each component's projected scores.
struct Buffers<T> {
    bands: Vec<Vec<T>>,
    projected: Vec<Vec<f32>>,
}

impl<T> Default for Buffers<T> {
    fn default() -> Self {
        Buffers {
            bands: Vec::new(),
            projected: Vec::new(),
        }
    }
}

/// Rows `rows` of every channel at (t, z), read into `bands`: one buffer
/// per channel, reused from unit to unit.
fn read_channels_into<T: Sample>(
    reader: &dyn PixelReader,
    (t, z, rows): &Unit,
    bands: &mut Vec<Vec<T>>,
) -> Result<(), PassError> {
    let shape = reader.layout().shape;
    let n = ((rows.end - rows.start) * shape.x) as usize;
    bands.resize_with(shape.c as usize, Vec::new);
    for (c, buf) in bands.iter_mut().enumerate() {
        buf.resize(n, T::default());
        reader.read_rows(
            PlaneIndex::new(*t, *z, c as u64),
            rows.clone(),
            bytemuck::cast_slice_mut(buf),
        )?;
    }
    Ok(())
}

/// Per-channel statistics of a stored image, recomputed from its chunks
/// (what ingest gathers, without the TIFF).
pub fn recompute_statistics(
    reader: &dyn PixelReader,
    part_pixels: u64,
    cancel: &Cancel,
) -> Result<Vec<ChannelStats>, PassError> {
    dispatch_dtype!(reader.layout().dtype, T => statistics_typed::<T>(reader, part_pixels, cancel))
}

/// Reads every downsampled level of a stored image (levels 1 and up),
/// band by band on all cores, so that every chunk of them is fetched and
/// decoded: a missing or undecodable chunk fails. Level 0 is what
/// [`recompute_statistics`] reads.
pub fn read_levels(reader: &dyn PixelReader, cancel: &Cancel) -> Result<(), PassError> {
    use rayon::prelude::*;
    let layout = *reader.layout();
    let shape = layout.shape;
    let size = layout.dtype.size() as u64;
    let mut bands = Vec::new();
    for level in 1..=layout.levels {
        let [height, _] = layout.level_shape(level);
        let [rows, _] = layout.level_chunk(level);
        for t in 0..shape.t {
            for z in 0..shape.z {
                for c in 0..shape.c {
                    for y0 in (0..height).step_by(rows.max(1) as usize) {
                        bands.push((level, PlaneIndex::new(t, z, c), y0..(y0 + rows).min(height)));
                    }
                }
            }
        }
    }
    bands.into_par_iter().try_for_each(|(level, plane, rows)| {
        cancel.check()?;
        let [_, width] = layout.level_shape(level);
        let mut band = vec![0u8; ((rows.end - rows.start) * width * size) as usize];
        Ok(reader.read_region(level, plane, rows, 0..width, &mut band)?)
    })
}

fn statistics_typed<T: Sample>(
    reader: &dyn PixelReader,
    part_pixels: u64,
    cancel: &Cancel,
) -> Result<Vec<ChannelStats>, PassError> {
    let parts = parts(reader.layout(), part_pixels);
    let mut channels = vec![StatsAccumulator::<T>::new(); reader.layout().shape.c as usize];
    in_order(
        parts.len(),
        |i, buffers| statistics_of::<T>(reader, &parts[i], cancel, buffers),
        |part| merge_channels(&mut channels, part),
    )?;
    Ok(channels.iter().map(StatsAccumulator::finish).collect())
}

/// Statistics of each channel over `units`, added in order.
fn statistics_of<T: Sample>(
    reader: &dyn PixelReader,
    units: &[Unit],
    cancel: &Cancel,
    Buffers { bands, .. }: &mut Buffers<T>,
) -> Result<Vec<StatsAccumulator<T>>, PassError> {
    let mut channels = vec![StatsAccumulator::<T>::new(); reader.layout().shape.c as usize];
    for unit in units {
        cancel.check()?;
        read_channels_into::<T>(reader, unit, bands)?;
        for (acc, band) in channels.iter_mut().zip(bands.iter()) {
            acc.add(band);
        }
    }
    Ok(channels)
}

fn merge_channels<T: Sample>(into: &mut [StatsAccumulator<T>], part: Vec<StatsAccumulator<T>>) {
    for (acc, p) in into.iter_mut().zip(part) {
        acc.merge(p);
    }
}

fn encode_channels<T: Sample>(channels: &[StatsAccumulator<T>]) -> Vec<u8> {
    let mut w = WireWriter::new();
    w.u64(channels.len() as u64);
    for acc in channels {
        acc.encode(&mut w);
    }
    w.into_bytes()
}

fn decode_channels<T: Sample>(
    bytes: &[u8],
    channels: usize,
) -> Result<Vec<StatsAccumulator<T>>, PassError> {
    let mut r = WireReader::new(bytes);
    if r.u64()? != channels as u64 {
        return Err(PassError::Core(CoreError::InvalidRequest(format!(
            "malformed partial result: not {channels} channels"
        ))));
    }
    let out = (0..channels)
        .map(|_| StatsAccumulator::<T>::decode(&mut r))
        .collect::<Result<Vec<_>, _>>()?;
    r.finish()?;
    Ok(out)
}

/// The statistics of part `part` of the image, encoded for
/// [`merge_statistics`] on whichever worker merges.
pub fn statistics_part(
    reader: &dyn PixelReader,
    part_pixels: u64,
    part: usize,
    cancel: &Cancel,
) -> Result<Vec<u8>, PassError> {
    let units = part_units(reader, part_pixels, part)?;
    dispatch_dtype!(reader.layout().dtype, T => {
        Ok(encode_channels(&statistics_of::<T>(reader, &units, cancel, &mut Buffers::default())?))
    })
}

/// Merges the parts of a split statistics recompute, in part order: the
/// same statistics as [`recompute_statistics`], bit for bit.
pub fn merge_statistics(
    dtype: DType,
    c: usize,
    parts: &[Vec<u8>],
) -> Result<Vec<ChannelStats>, PassError> {
    dispatch_dtype!(dtype, T => {
        let mut channels = vec![StatsAccumulator::<T>::new(); c];
        for bytes in parts {
            merge_channels(&mut channels, decode_channels::<T>(bytes, c)?);
        }
        Ok(channels.iter().map(StatsAccumulator::finish).collect())
    })
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
/// every pixel once more for the scores' statistics and display windows
/// (and the inline scores when there are at most `inline_cap` values).
/// Nothing is written: the scores image is served by [`ScoresReader`].
/// `progress` is told the fraction done (each pass is half).
pub fn pca(
    reader: &dyn PixelReader,
    k: usize,
    inline_cap: u64,
    part_pixels: u64,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &Cancel,
) -> Result<PcaOutcome, PassError> {
    dispatch_dtype!(reader.layout().dtype, T => {
        pca_typed::<T>(reader, k, inline_cap, part_pixels, progress, cancel)
    })
}

fn pca_typed<T: Sample>(
    reader: &dyn PixelReader,
    k: usize,
    inline_cap: u64,
    part_pixels: u64,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &Cancel,
) -> Result<PcaOutcome, PassError> {
    let layout = *reader.layout();
    let shape = layout.shape;
    let c = shape.c as usize;
    let parts = parts(&layout, part_pixels);
    let total = 2 * parts.len();
    let done = AtomicUsize::new(0);
    let tick = || {
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        progress(n as f64 / total as f64);
    };
    let mut covariance = CovarianceAccumulator::new(c);
    in_order(
        parts.len(),
        |i, buffers| {
            let part = covariance_of::<T>(reader, &parts[i], cancel, buffers)?;
            tick();
            Ok(part)
        },
        |part| covariance.merge(&part),
    )?;
    let model = fit(&covariance, k)?;

    let n_pixels = shape.pixels_per_channel();
    let inline = (n_pixels * k as u64 <= inline_cap)
        .then(|| Mutex::new(vec![0f32; (n_pixels * k as u64) as usize]));
    let mut scores = ScoresPartial::new(&layout, k, true);
    // each part starts from the tails merged so far, so that it skips
    // scores that cannot be in the display window's tails
    let merged_so_far = Mutex::new(scores.fresh());
    let lock = || merged_so_far.lock().unwrap_or_else(|e| e.into_inner());
    in_order(
        parts.len(),
        |i, buffers| {
            let fresh = lock().fresh();
            let part = scores_of::<T>(
                reader,
                &model,
                &parts[i],
                fresh,
                cancel,
                inline.as_ref(),
                buffers,
            )?;
            tick();
            Ok(part)
        },
        |part| {
            scores.merge(part);
            *lock() = scores.fresh();
        },
    )?;
    let ScoreStatistics {
        mut statistics,
        windows_exact,
    } = scores.finish();
    if !windows_exact {
        exact_score_windows(reader, &model, &mut statistics, part_pixels, cancel)?;
    }
    Ok(PcaOutcome {
        model,
        score_statistics: statistics,
        inline_scores: inline.map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner())),
    })
}

/// The covariance of the channels over `units`, added in order.
fn covariance_of<T: Sample>(
    reader: &dyn PixelReader,
    units: &[Unit],
    cancel: &Cancel,
    Buffers { bands, .. }: &mut Buffers<T>,
) -> Result<CovarianceAccumulator, PassError> {
    let mut acc = CovarianceAccumulator::new(reader.layout().shape.c as usize);
    for unit in units {
        cancel.check()?;
        read_channels_into::<T>(reader, unit, bands)?;
        let views: Vec<&[T]> = bands.iter().map(Vec::as_slice).collect();
        acc.add_block(&views);
    }
    Ok(acc)
}

/// The quantiles of a display window: its low and its high end.
const WINDOW_QUANTILES: [f64; 2] = [DISPLAY_LOW_QUANTILE, DISPLAY_HIGH_QUANTILE];

/// What the scores pass gathers: each component's statistics and, in one
/// process when the image is small enough for them
/// ([`Tails::for_quantiles`]), its tails, which give the exact display
/// window in the same pass. (Parts on other workers leave the tails out:
/// they would each send up to the whole tails.)
struct ScoresPartial {
    stats: Vec<StatsAccumulator<f32>>,
    tails: Option<Vec<Tails>>,
}

/// The scores' statistics, and whether their display windows are exact
/// already (else [`exact_score_windows`] finds them).
struct ScoreStatistics {
    statistics: Vec<ChannelStats>,
    windows_exact: bool,
}

impl ScoresPartial {
    fn new(layout: &ArrayLayout, k: usize, with_tails: bool) -> ScoresPartial {
        let tails = with_tails
            .then(|| Tails::for_quantiles(layout.shape.pixels_per_channel(), &WINDOW_QUANTILES))
            .flatten();
        ScoresPartial {
            stats: vec![StatsAccumulator::new(); k],
            tails: tails.map(|t| vec![t; k]),
        }
    }

    /// An empty partial whose tails start from these ones'.
    fn fresh(&self) -> ScoresPartial {
        ScoresPartial {
            stats: vec![StatsAccumulator::new(); self.stats.len()],
            tails: (self.tails.as_ref()).map(|t| t.iter().map(Tails::fresh_like).collect()),
        }
    }

    fn add(&mut self, component: usize, scores: &[f32]) {
        self.stats[component].add(scores);
        if let Some(tails) = &mut self.tails {
            tails[component].add(scores);
        }
    }

    fn merge(&mut self, part: ScoresPartial) {
        merge_channels(&mut self.stats, part.stats);
        if let (Some(tails), Some(more)) = (&mut self.tails, part.tails) {
            for (t, m) in tails.iter_mut().zip(more) {
                t.merge(m);
            }
        }
    }

    /// The statistics, with each display window from the tails when every
    /// component's tails give it.
    fn finish(&self) -> ScoreStatistics {
        let mut statistics: Vec<ChannelStats> =
            self.stats.iter().map(StatsAccumulator::finish).collect();
        let windows: Option<Vec<(f32, f32)>> = self.tails.as_ref().and_then(|tails| {
            tails
                .iter()
                .map(|t| {
                    Some((
                        t.quantile(DISPLAY_LOW_QUANTILE)?,
                        t.quantile(DISPLAY_HIGH_QUANTILE)?,
                    ))
                })
                .collect()
        });
        let windows_exact = windows.is_some();
        for (s, (low, high)) in statistics.iter_mut().zip(windows.into_iter().flatten()) {
            s.display_min = f64::from(low);
            s.display_max = f64::from(high);
        }
        ScoreStatistics {
            statistics,
            windows_exact,
        }
    }
}

/// Statistics (and tails, when `stats` keeps them) of each component's
/// scores over `units`, added in order to `stats`; the scores are also
/// copied into `inline` (pixel-major) when given.
fn scores_of<T: Sample>(
    reader: &dyn PixelReader,
    model: &PcaModel,
    units: &[Unit],
    mut stats: ScoresPartial,
    cancel: &Cancel,
    inline: Option<&Mutex<Vec<f32>>>,
    Buffers { bands, projected }: &mut Buffers<T>,
) -> Result<ScoresPartial, PassError> {
    let shape = reader.layout().shape;
    let k = model.n_components;
    projected.resize_with(k, Vec::new);
    for unit in units {
        cancel.check()?;
        read_channels_into::<T>(reader, unit, bands)?;
        let (t, z, rows) = unit;
        let views: Vec<&[T]> = bands.iter().map(Vec::as_slice).collect();
        let n = views[0].len();
        for p in projected.iter_mut() {
            p.resize(n, 0.0);
        }
        {
            let mut outs: Vec<&mut [f32]> = projected.iter_mut().map(Vec::as_mut_slice).collect();
            model.project_block(&views, &mut outs);
        }
        for (component, p) in projected.iter().enumerate() {
            stats.add(component, p);
        }
        if let Some(inline) = inline {
            let first = (((t * shape.z + z) * shape.y + rows.start) * shape.x) as usize;
            let mut all = inline.lock().unwrap_or_else(|e| e.into_inner());
            for i in 0..n {
                for (j, p) in projected.iter().enumerate() {
                    all[(first + i) * k + j] = p[i];
                }
            }
        }
    }
    Ok(stats)
}

/// The covariance partial of part `part`, encoded for [`fit_parts`].
pub fn covariance_part(
    reader: &dyn PixelReader,
    part_pixels: u64,
    part: usize,
    cancel: &Cancel,
) -> Result<Vec<u8>, PassError> {
    let units = part_units(reader, part_pixels, part)?;
    let acc = dispatch_dtype!(reader.layout().dtype, T => covariance_of::<T>(reader, &units, cancel, &mut Buffers::default())?);
    let mut w = WireWriter::new();
    acc.encode(&mut w);
    Ok(w.into_bytes())
}

/// Merges covariance partials in part order and fits `k` components: the
/// model [`pca`] fits, bit for bit.
pub fn fit_parts(channels: usize, parts: &[Vec<u8>], k: usize) -> Result<PcaModel, PassError> {
    let mut covariance = CovarianceAccumulator::new(channels);
    for bytes in parts {
        let mut r = WireReader::new(bytes);
        let part = CovarianceAccumulator::decode(&mut r)?;
        r.finish()?;
        if part.channels() != channels {
            return Err(PassError::Core(CoreError::InvalidRequest(format!(
                "malformed partial result: not {channels} channels"
            ))));
        }
        covariance.merge(&part);
    }
    Ok(fit(&covariance, k)?)
}

/// The scores' statistics of part `part` under `model`, encoded for
/// [`merge_score_statistics`].
pub fn scores_part(
    reader: &dyn PixelReader,
    model: &PcaModel,
    part_pixels: u64,
    part: usize,
    cancel: &Cancel,
) -> Result<Vec<u8>, PassError> {
    let units = part_units(reader, part_pixels, part)?;
    let stats = dispatch_dtype!(reader.layout().dtype, T => {
        let stats = ScoresPartial::new(reader.layout(), model.n_components, false);
        scores_of::<T>(reader, model, &units, stats, cancel, None, &mut Buffers::default())?
    });
    Ok(encode_channels(&stats.stats))
}

/// Merges score-statistics partials in part order: what [`pca`] reports
/// but the display windows, which [`exact_score_windows`] finds.
pub fn merge_score_statistics(k: usize, parts: &[Vec<u8>]) -> Result<Vec<ChannelStats>, PassError> {
    let mut scores = vec![StatsAccumulator::<f32>::new(); k];
    for bytes in parts {
        merge_channels(&mut scores, decode_channels::<f32>(bytes, k)?);
    }
    Ok(scores.iter().map(StatsAccumulator::finish).collect())
}

/// Bins of one narrowing pass of [`exact_score_windows`]: about 16 bytes
/// each per sought value, two values per component.
const WINDOW_BINS: usize = 1024;
/// Scores of a narrowed range that are collected and sorted rather than
/// binned again.
const WINDOW_COLLECT: u64 = 1 << 16;

/// One sought order statistic of one component's finite scores: the
/// `rank`-th (from 0) of the `count` scores within `lo..=hi`.
#[derive(Debug, Clone, Copy)]
struct Sought {
    component: usize,
    /// Its quantile; the rank is known once the finite scores are counted.
    quantile: f64,
    lo: f32,
    hi: f32,
    /// `None` until the first pass has counted the finite scores.
    count: Option<u64>,
    rank: u64,
    found: Option<f32>,
}

/// What one pass gathers for one sought value: a histogram of `lo..=hi`
/// (count, smallest and largest score of each bin), or the scores there.
#[derive(Debug, Clone)]
enum Gathered {
    Bins {
        counts: Vec<u64>,
        min: Vec<f32>,
        max: Vec<f32>,
    },
    Scores(Vec<f32>),
}

impl Sought {
    fn collects(&self) -> bool {
        self.count.is_some_and(|n| n <= WINDOW_COLLECT)
    }

    fn empty(&self) -> Gathered {
        if self.collects() {
            Gathered::Scores(Vec::new())
        } else {
            Gathered::Bins {
                counts: vec![0; WINDOW_BINS],
                min: vec![f32::INFINITY; WINDOW_BINS],
                max: vec![f32::NEG_INFINITY; WINDOW_BINS],
            }
        }
    }

    fn gather(&self, scores: &[f32], into: &mut Gathered) {
        let (lo, hi) = (self.lo, self.hi);
        let scale = WINDOW_BINS as f64 / (f64::from(hi) - f64::from(lo));
        let inside = scores.iter().filter(|v| (lo..=hi).contains(*v));
        match into {
            Gathered::Scores(kept) => kept.extend(inside),
            Gathered::Bins { counts, min, max } => {
                for &v in inside {
                    // monotonic in v, so each bin holds a range of scores
                    let i =
                        (((f64::from(v) - f64::from(lo)) * scale) as usize).min(WINDOW_BINS - 1);
                    counts[i] += 1;
                    min[i] = min[i].min(v);
                    max[i] = max[i].max(v);
                }
            }
        }
    }

    /// Narrows the range (or finds the value) from what a pass gathered.
    fn narrow(&mut self, gathered: Gathered) -> Result<(), PassError> {
        let count = gathered_count(&gathered);
        if self.count.is_none() {
            // the first pass counted every finite score: NumPy's rank
            self.rank = ((self.quantile * count.saturating_sub(1) as f64).floor() as u64)
                .min(count.saturating_sub(1));
            self.count = Some(count);
        }
        if count != self.count.unwrap_or(count) || count == 0 {
            return Err(PassError::Store(StoreError::Pixels(format!(
                "the scores of component {} changed between passes",
                self.component + 1
            ))));
        }
        match gathered {
            Gathered::Scores(mut kept) => {
                kept.sort_unstable_by(f32::total_cmp);
                self.found = kept.get(self.rank as usize).copied();
            }
            Gathered::Bins { counts, min, max } => {
                let mut before = 0;
                for (i, &n) in counts.iter().enumerate() {
                    if self.rank < before + n {
                        (self.lo, self.hi) = (min[i], max[i]);
                        self.rank -= before;
                        self.count = Some(n);
                        break;
                    }
                    before += n;
                }
                if self.lo == self.hi {
                    self.found = Some(self.lo);
                }
            }
        }
        Ok(())
    }
}

fn gathered_count(gathered: &Gathered) -> u64 {
    match gathered {
        Gathered::Scores(kept) => kept.len() as u64,
        Gathered::Bins { counts, .. } => counts.iter().sum(),
    }
}

fn merge_gathered(into: &mut Gathered, part: Gathered) {
    match (into, part) {
        (Gathered::Scores(all), Gathered::Scores(more)) => all.extend(more),
        (
            Gathered::Bins { counts, min, max },
            Gathered::Bins {
                counts: c,
                min: lo,
                max: hi,
            },
        ) => {
            for i in 0..counts.len() {
                counts[i] += c[i];
                min[i] = min[i].min(lo[i]);
                max[i] = max[i].max(hi[i]);
            }
        }
        _ => unreachable!("every part gathers as the sought value says"),
    }
}

/// Sets each component's display window (`display_min`, `display_max`) to
/// the exact 0.1th and 99.9th percentiles of its finite scores (the
/// order statistics [`ChannelStats`] defines), where the scores' pass only
/// estimated them from a sample. Each further pass over the image bins
/// the range where a percentile lies ([`WINDOW_BINS`] bins, each with its
/// smallest and largest score) until few enough scores are left there to
/// sort ([`WINDOW_COLLECT`]): two passes for most images, memory bounded
/// by the bins whatever the image's size.
pub fn exact_score_windows(
    reader: &dyn PixelReader,
    model: &PcaModel,
    statistics: &mut [ChannelStats],
    part_pixels: u64,
    cancel: &Cancel,
) -> Result<(), PassError> {
    let mut sought: Vec<Sought> = statistics
        .iter()
        .enumerate()
        .flat_map(|(component, s)| {
            // the histogram spans the finite scores
            let (lo, hi) = (s.histogram.min as f32, s.histogram.max as f32);
            WINDOW_QUANTILES.map(|quantile| Sought {
                component,
                quantile,
                lo,
                hi,
                count: None,
                rank: 0,
                found: (lo == hi).then_some(lo),
            })
        })
        .filter(|s| s.component < model.n_components)
        .collect();
    let parts = parts(reader.layout(), part_pixels);
    while sought.iter().any(|s| s.found.is_none()) {
        let open: Vec<Sought> = sought
            .iter()
            .filter(|s| s.found.is_none())
            .copied()
            .collect();
        let mut gathered: Vec<Gathered> = open.iter().map(Sought::empty).collect();
        dispatch_dtype!(reader.layout().dtype, T => in_order(
            parts.len(),
            |i, buffers| gather_part::<T>(reader, model, &parts[i], &open, cancel, buffers),
            |part| {
                for (all, p) in gathered.iter_mut().zip(part) {
                    merge_gathered(all, p);
                }
            },
        )?);
        let mut narrowed = open.into_iter().zip(gathered);
        for s in sought.iter_mut().filter(|s| s.found.is_none()) {
            if let Some((mut open, gathered)) = narrowed.next() {
                open.narrow(gathered)?;
                *s = open;
            }
        }
    }
    for s in &sought {
        let window = &mut statistics[s.component];
        let value = f64::from(s.found.unwrap_or(0.0));
        if s.quantile < 0.5 {
            window.display_min = value;
        } else {
            window.display_max = value;
        }
    }
    Ok(())
}

/// What part `units` gathers for each of `open`.
fn gather_part<T: Sample>(
    reader: &dyn PixelReader,
    model: &PcaModel,
    units: &[Unit],
    open: &[Sought],
    cancel: &Cancel,
    Buffers { bands, projected }: &mut Buffers<T>,
) -> Result<Vec<Gathered>, PassError> {
    let mut gathered: Vec<Gathered> = open.iter().map(Sought::empty).collect();
    // the two percentiles of a component share its whole range on the
    // first pass: what they gather is the same, so it is gathered once
    let same_as: Vec<Option<usize>> = open
        .iter()
        .enumerate()
        .map(|(i, s)| {
            open[..i].iter().position(|o| {
                (o.component, o.lo.to_bits(), o.hi.to_bits(), o.collects())
                    == (s.component, s.lo.to_bits(), s.hi.to_bits(), s.collects())
            })
        })
        .collect();
    projected.resize_with(model.n_components, Vec::new);
    for unit in units {
        cancel.check()?;
        read_channels_into::<T>(reader, unit, bands)?;
        let views: Vec<&[T]> = bands.iter().map(Vec::as_slice).collect();
        for p in projected.iter_mut() {
            p.resize(views[0].len(), 0.0);
        }
        {
            let mut outs: Vec<&mut [f32]> = projected.iter_mut().map(Vec::as_mut_slice).collect();
            model.project_block(&views, &mut outs);
        }
        for ((s, g), same) in open.iter().zip(&mut gathered).zip(&same_as) {
            if same.is_none() {
                s.gather(&projected[s.component], g);
            }
        }
    }
    for (i, same) in same_as.iter().enumerate() {
        if let Some(j) = *same {
            gathered[i] = gathered[j].clone();
        }
    }
    Ok(gathered)
}

/// PCA scores served as a float32 image (`T, Z, k, Y, X`) without storing
/// them: each read projects the source image's channels at that (t, z).
/// It has the chunking and the pyramid a stored image of its shape and
/// type would have ([`ArrayLayout::for_image`]): level `k` is computed from
/// the full-resolution scores under it, as ingest computes a stored
/// image's levels.
pub struct ScoresReader {
    source: Arc<dyn PixelReader>,
    /// One single-component model per score channel, so that a read
    /// projects onto just the component it serves.
    components: Vec<PcaModel>,
    layout: ArrayLayout,
}

/// Full-resolution scores a downsampled read holds at once, at most (more
/// when one block row of the level is wider).
const SCORES_STRIP_PIXELS: u64 = 1 << 22;

impl ScoresReader {
    /// The scores of `model` over `source`.
    pub fn new(source: Arc<dyn PixelReader>, model: PcaModel) -> ScoresReader {
        let s = source.layout().shape;
        let shape = Shape5::new(s.t, s.z, model.n_components as u64, s.y, s.x);
        let layout = ArrayLayout::for_image(shape, DType::F32);
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

    /// Full-resolution scores of `rows` × `columns` of `plane` into `out`.
    fn project(
        &self,
        plane: PlaneIndex,
        rows: Range<u64>,
        columns: Range<u64>,
        out: &mut [f32],
    ) -> Result<(), StoreError> {
        let component = &self.components[plane.c as usize];
        let channels = self.source.layout().shape.c;
        dispatch_dtype!(self.source.layout().dtype, T => {
            // only the region's columns of each source channel
            let n = ((rows.end - rows.start) * (columns.end - columns.start)) as usize;
            let mut bands: Vec<Vec<T>> = Vec::with_capacity(channels as usize);
            for c in 0..channels {
                let mut band = vec![T::default(); n];
                self.source.read_region(
                    0,
                    PlaneIndex::new(plane.t, plane.z, c),
                    rows.clone(),
                    columns.clone(),
                    bytemuck::cast_slice_mut(&mut band),
                )?;
                bands.push(band);
            }
            let views: Vec<&[T]> = bands.iter().map(Vec::as_slice).collect();
            component.project_block(&views, &mut [out]);
        });
        Ok(())
    }
}

impl PixelReader for ScoresReader {
    fn layout(&self) -> &ArrayLayout {
        &self.layout
    }

    /// Level 0 projects the source's samples under the region; level `k`
    /// projects the `2^k`-blocks under it, strip by strip of whole blocks,
    /// and takes their means.
    fn read_region(
        &self,
        level: u32,
        plane: PlaneIndex,
        rows: Range<u64>,
        columns: Range<u64>,
        out: &mut [u8],
    ) -> Result<(), StoreError> {
        self.layout
            .check_region(&"the scores", level, plane, &rows, &columns)?;
        let out: &mut [f32] = bytemuck::cast_slice_mut(out);
        if out.len() as u64 != (rows.end - rows.start) * (columns.end - columns.start) {
            return Err(StoreError::Pixels(format!(
                "a buffer of {} scores for {rows:?} × {columns:?}",
                out.len()
            )));
        }
        if level == 0 {
            return self.project(plane, rows, columns, out);
        }
        let shape = self.layout.shape;
        let block = 1u64 << level;
        let full_columns = (columns.start * block)..(columns.end * block).min(shape.x);
        let full_width = full_columns.end - full_columns.start;
        // strips of whole block rows: each strip's means are its own
        let strip_blocks = (SCORES_STRIP_PIXELS / (full_width * block).max(1)).max(1);
        let mut scores = Vec::new();
        let mut written = 0;
        for first in (rows.start..rows.end).step_by(strip_blocks as usize) {
            let last = (first + strip_blocks).min(rows.end);
            let full_rows = (first * block)..(last * block).min(shape.y);
            scores.resize(
                ((full_rows.end - full_rows.start) * full_width) as usize,
                0f32,
            );
            self.project(plane, full_rows, full_columns.clone(), &mut scores)?;
            let means = pentascope_core::pyramid::downsample_plane(
                &scores,
                full_width as usize,
                level,
                pentascope_core::pyramid::Downsample::Mean,
            );
            out[written..written + means.len()].copy_from_slice(&means);
            written += means.len();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pentascope_store::pixels::{
        Compression, Durability, ImageAttributes, LocalStore, PixelStore, ZSTD_LEVEL,
    };
    use pentascope_store::ImageId;

    /// The first file under `dir`, in name order, depth first.
    fn first_file(dir: &std::path::Path) -> Option<std::path::PathBuf> {
        let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
        entries.sort_by_key(|e| e.path());
        entries.into_iter().find_map(|e| {
            let path = e.path();
            if path.is_dir() {
                first_file(&path)
            } else {
                Some(path)
            }
        })
    }

    /// Every chunk of the downsampled levels is read by `read_levels`: a
    /// level-2 chunk removed fails it, while level 0 (what the statistics
    /// read) still reads.
    #[test]
    fn read_levels_reads_every_chunk_of_the_pyramid() {
        let (h, w) = (2600u64, 2100u64);
        let plane: Vec<u16> = (0..h * w).map(|i| (i % 4099) as u16).collect();
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), Durability::Os).unwrap();
        let layout = ArrayLayout::for_image(Shape5::new(1, 1, 1, h, w), DType::U16);
        assert_eq!(layout.levels, 3);
        let id = ImageId(1);
        let writer = store
            .create(
                id,
                layout,
                &ImageAttributes::default(),
                Compression::Zstd(ZSTD_LEVEL),
            )
            .unwrap();
        for rows in layout.bands() {
            let band = &plane[(rows.start * w) as usize..(rows.end * w) as usize];
            writer
                .write_band(
                    PlaneIndex::new(0, 0, 0),
                    rows.start,
                    bytemuck::cast_slice(band),
                )
                .unwrap();
        }
        writer.commit().unwrap();
        let cancel = Cancel::new();
        read_levels(&*store.open(id).unwrap(), &cancel).unwrap();
        let chunk = first_file(&dir.path().join("image_1.zarr/2/c")).expect("a level-2 chunk");
        std::fs::remove_file(&chunk).unwrap();
        let reader = store.open(id).unwrap();
        let error = read_levels(&*reader, &cancel).unwrap_err();
        assert!(error.to_string().contains("missing"), "{error}");
        recompute_statistics(&*reader, 1 << 20, &cancel).unwrap();
    }

    /// The scores' display windows found in the scores pass (from their
    /// tails) are the exact percentiles, as the narrowing passes that
    /// larger images need find them, and as sorting every score does.
    #[test]
    fn score_windows_from_tails_and_from_narrowing_passes_are_the_sorted_percentiles() {
        let (z, c, h, w) = (3u64, 3u64, 300u64, 260u64);
        let shape = Shape5::new(1, z, c, h, w);
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), Durability::Os).unwrap();
        let layout = ArrayLayout::for_image(shape, DType::U16);
        let id = ImageId(1);
        let writer = store
            .create(id, layout, &ImageAttributes::default(), Compression::None)
            .unwrap();
        let sample = |z: u64, ch: u64, y: u64, x: u64| {
            let noise = (x * 7919 + y * 104_729 + z * 13 + ch * 31) % 1009;
            (20_000.0
                + 9000.0 * (x as f64 / 17.0 + ch as f64).sin()
                + 3000.0 * (y as f64 / 41.0).cos()) as u16
                + noise as u16
        };
        for zi in 0..z {
            for ch in 0..c {
                for rows in layout.bands() {
                    let band: Vec<u16> = rows
                        .clone()
                        .flat_map(|y| (0..w).map(move |x| sample(zi, ch, y, x)))
                        .collect();
                    writer
                        .write_band(
                            PlaneIndex::new(0, zi, ch),
                            rows.start,
                            bytemuck::cast_slice(&band),
                        )
                        .unwrap();
                }
            }
        }
        writer.commit().unwrap();
        let reader = store.open(id).unwrap();
        let cancel = Cancel::new();
        // parts of a few bands, so that tails are merged
        let part_pixels = 4 * layout.chunk_y.min(h) * w;
        let outcome = pca(&*reader, 2, 0, part_pixels, &|_| {}, &cancel).unwrap();
        // every score, sorted: the reference
        let mut scores = vec![Vec::new(); 2];
        for zi in 0..z {
            let bands: Vec<Vec<u16>> = (0..c)
                .map(|ch| {
                    reader
                        .read_plane::<u16>(PlaneIndex::new(0, zi, ch))
                        .unwrap()
                })
                .collect();
            let views: Vec<&[u16]> = bands.iter().map(Vec::as_slice).collect();
            let mut out = vec![vec![0f32; (h * w) as usize]; 2];
            let mut outs: Vec<&mut [f32]> = out.iter_mut().map(Vec::as_mut_slice).collect();
            outcome.model.project_block(&views, &mut outs);
            for (all, o) in scores.iter_mut().zip(out) {
                all.extend(o);
            }
        }
        // the narrowing passes, from the sampled estimate
        let mut narrowed: Vec<ChannelStats> = outcome.score_statistics.clone();
        for s in &mut narrowed {
            (s.display_min, s.display_max) = (0.0, 0.0);
        }
        exact_score_windows(
            &*reader,
            &outcome.model,
            &mut narrowed,
            part_pixels,
            &cancel,
        )
        .unwrap();
        for (component, all) in scores.iter_mut().enumerate() {
            all.sort_unstable_by(f32::total_cmp);
            let n = all.len();
            let at = |q: f64| f64::from(all[((q * (n - 1) as f64).floor() as usize).min(n - 1)]);
            let want = (at(DISPLAY_LOW_QUANTILE), at(DISPLAY_HIGH_QUANTILE));
            let tails = &outcome.score_statistics[component];
            assert_eq!(
                (tails.display_min, tails.display_max),
                want,
                "PC{component} from tails"
            );
            let passes = &narrowed[component];
            assert_eq!(
                (passes.display_min, passes.display_max),
                want,
                "PC{component} from passes"
            );
        }
    }
}
