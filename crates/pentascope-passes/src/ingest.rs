//! TIFF → chunked store, with per-channel statistics gathered in the same
//! pass. Page groups are processed in parallel, each band by band, so memory
//! holds a few bands at a time whatever the file's size.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use pentascope_core::stats::{ChannelStats, SharedChannelStats, StatsAccumulator};
use pentascope_core::{dispatch_dtype, Axes, Limits, Sample};
use pentascope_store::pixels::{
    ArrayLayout, BloscCoder, Compression, CompressionSetting, ImageAttributes, PixelStore,
    PixelWriter, Shuffle, ZSTD_LEVEL, ZSTD_LEVEL_FAST,
};
use pentascope_store::ImageId;
use pentascope_store::StoreError;

use crate::error::PassError;
use pentascope_tiff::{PageGroup, Series, SeriesLevel, TiffFile};
use rayon::prelude::*;

use crate::cancel::Cancel;

/// A decoded and stored (but not yet published) image.
pub struct Ingested {
    /// What the file holds.
    pub series: Series,
    /// Per-channel statistics.
    pub statistics: Vec<ChannelStats>,
    /// The pixels, staged: commit to publish, abort to discard.
    pub writer: Box<dyn PixelWriter>,
    /// The stored pyramid levels that are the file's own (its scanner's
    /// downsampling, read from its pages), not computed.
    pub levels_from_file: Vec<u32>,
    /// The file, still open, where it holds further series
    /// ([`TiffFile::all_series`]) for [`ingest_series`] to store.
    pub file: Option<TiffFile>,
}

/// A TIFF file to ingest.
#[derive(Debug, Clone, Copy)]
pub struct TiffSource<'a> {
    /// Where it is.
    pub path: &'a Path,
    /// The name the image is given.
    pub name: &'a str,
    /// Axes overriding the file's own interpretation of its pages.
    pub axes: Option<&'a Axes>,
    /// How the pixels are compressed.
    pub compression: CompressionSetting,
}

/// Reads the TIFF `source` and writes its pixels to `store` as image `id`
/// (staged). `progress(done, total)` is called as planes complete; a
/// cancelled pass stops within a band and leaves nothing staged.
pub fn ingest_tiff(
    store: &dyn PixelStore,
    id: ImageId,
    source: &TiffSource<'_>,
    limits: &Limits,
    progress: &(dyn Fn(u64, u64) + Sync),
    cancel: &Cancel,
) -> Result<Ingested, PassError> {
    let tiff = TiffFile::open(source.path, limits, source.axes)?;
    let image = StagedImage {
        id,
        name: source.name,
        compression: source.compression,
    };
    ingest_opened(store, &image, tiff, progress, cancel)
}

/// Stores series `index` of `tiff` (one of [`TiffFile::all_series`]) as
/// image `id` (staged), as [`ingest_tiff`] stores the first.
pub fn ingest_series(
    store: &dyn PixelStore,
    id: ImageId,
    name: &str,
    compression: CompressionSetting,
    (tiff, index): (&TiffFile, usize),
    progress: &(dyn Fn(u64, u64) + Sync),
    cancel: &Cancel,
) -> Result<Ingested, PassError> {
    let series = tiff
        .all_series()
        .get(index)
        .ok_or_else(|| StoreError::Pixels(format!("the file has no series {index}")))?;
    let image = StagedImage {
        id,
        name,
        compression,
    };
    ingest_series_of(store, &image, tiff, series, progress, cancel)
}

/// The image an ingest stages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StagedImage<'a> {
    /// Its reserved id.
    pub id: ImageId,
    /// The name it is given.
    pub name: &'a str,
    /// How its pixels are compressed.
    pub compression: CompressionSetting,
}

/// Stores the first series of an open TIFF as `image` (staged), keeping
/// the file open in the answer where it holds further series.
pub(crate) fn ingest_opened(
    store: &dyn PixelStore,
    image: &StagedImage<'_>,
    tiff: TiffFile,
    progress: &(dyn Fn(u64, u64) + Sync),
    cancel: &Cancel,
) -> Result<Ingested, PassError> {
    let mut ingested = ingest_series_of(store, image, &tiff, tiff.series(), progress, cancel)?;
    ingested.file = (tiff.all_series().len() > 1).then_some(tiff);
    Ok(ingested)
}

/// Stores `series` of `tiff` as `image` (staged): its pages, and those of
/// the file's own pyramid levels where they have the size of a stored
/// level ([`file_levels`]).
fn ingest_series_of(
    store: &dyn PixelStore,
    image: &StagedImage<'_>,
    tiff: &TiffFile,
    series: &Series,
    progress: &(dyn Fn(u64, u64) + Sync),
    cancel: &Cancel,
) -> Result<Ingested, PassError> {
    let layout = ArrayLayout::for_image(series.shape, series.dtype);
    let compression = dispatch_dtype!(series.dtype, T => {
        compression_for::<T>(image.compression, tiff, series, &layout)
    })?;
    let from_file = file_levels(series, &layout);
    let mut attributes = attributes_of(series, image.name);
    attributes.levels_from_file = from_file.iter().map(|(k, _)| *k).collect();
    let writer = store.create(image.id, layout, &attributes, compression)?;
    let copied = dispatch_dtype!(series.dtype, T => {
        let channels = SharedChannelStats::<T>::new(series.shape.c as usize);
        let planes = PlaneCount::new(series.shape.planes(), progress);
        copy_groups::<T>(tiff, &*writer, &series.page_groups(), &channels, &planes, cancel)
            .and_then(|()| {
                from_file.iter().try_for_each(|(k, level)| {
                    copy_level::<T>(tiff, &*writer, *k, level, cancel)
                })
            })
            .map(|()| channels.finish())
    });
    match copied {
        Ok(statistics) => Ok(Ingested {
            series: series.clone(),
            statistics,
            writer,
            levels_from_file: attributes.levels_from_file,
            file: None,
        }),
        Err(e) => {
            writer.abort();
            Err(e)
        }
    }
}

/// The file's own levels of `series` ([`Series::levels`]) that have the
/// size of a level of `layout` (`⌈size / 2^k⌉`, each level halving the
/// one above), with that level `k`: these are stored as the file has them,
/// the others computed.
fn file_levels<'a>(series: &'a Series, layout: &ArrayLayout) -> Vec<(u32, &'a SeriesLevel)> {
    (1..=layout.levels)
        .filter_map(|k| {
            let [height, width] = layout.level_shape(k);
            series
                .levels
                .iter()
                .find(|l| l.height == height && l.width == width)
                .map(|l| (k, l))
        })
        .collect()
}

/// Decodes the pages of the file's level `level` and stores them as level
/// `k` through `writer`, in bands of that level's chunk rows.
fn copy_level<T: Sample>(
    tiff: &TiffFile,
    writer: &dyn PixelWriter,
    k: u32,
    level: &SeriesLevel,
    cancel: &Cancel,
) -> Result<(), PassError> {
    let [rows_per_band, _] = writer.layout().level_chunk(k);
    level.page_groups().par_iter().try_for_each(|group| {
        let mut bands: Vec<Vec<T>> = vec![Vec::new(); group.planes.len()];
        for y0 in (0..level.height).step_by(rows_per_band as usize) {
            cancel.check()?;
            let rows = y0..(y0 + rows_per_band).min(level.height);
            match group.page {
                Some(page) => {
                    tiff.read_band(page, rows.start as u32..rows.end as u32, &mut bands)?
                }
                None => {
                    let n = ((rows.end - rows.start) * level.width) as usize;
                    for band in &mut bands {
                        band.clear();
                        band.resize(n, T::default());
                    }
                }
            }
            for (plane, band) in group.planes.iter().zip(&bands) {
                writer.write_level_band(k, *plane, y0, pentascope_core::dtype::as_bytes(band))?;
            }
        }
        Ok::<(), PassError>(())
    })
}

/// What the stored array says about the image named `name`.
pub(crate) fn attributes_of(series: &Series, name: &str) -> ImageAttributes {
    ImageAttributes {
        name: name.to_string(),
        channel_names: series.channel_names.clone(),
        physical_sizes: series.physical_sizes.clone(),
        downsample: Default::default(),
        levels_from_file: Vec::new(),
    }
}

/// The compression `setting` gives this image, from a trial on the first
/// band of `series` ([`compression_of`]).
pub(crate) fn compression_for<T: Sample>(
    setting: CompressionSetting,
    tiff: &TiffFile,
    series: &Series,
    layout: &ArrayLayout,
) -> Result<Compression, PassError> {
    if setting == CompressionSetting::None {
        return Ok(Compression::None);
    }
    let Some(group) = series.page_groups().into_iter().find(|g| g.page.is_some()) else {
        // every plane is zeros, which any codec shrinks
        return Ok(match setting {
            CompressionSetting::Small => Compression::Zstd(ZSTD_LEVEL),
            _ => Compression::FAST,
        });
    };
    let page = group.page.expect("found a page");
    let rows = layout.bands().next().expect("an image has rows");
    let mut bands: Vec<Vec<T>> = vec![Vec::new(); group.planes.len()];
    tiff.read_band(page, rows.start as u32..rows.end as u32, &mut bands)?;
    compression_of(setting, &bands[0])
}

/// The compression `setting` gives an image whose first band (of its first
/// sample) is `band`:
/// - `fast`: the smaller of blosc LZ4 with byte shuffle where it saves at
///   least 5% and with bit shuffle where it saves at least 15%, else none
///   (LZ4 finds nothing in noise, and a stored chunk is read with no
///   decoding at all). Bit shuffle is what finds the smooth high bits of
///   camera data under noise (82% of the structured benchmark file against
///   98% with byte shuffle); pentascope's own bit unshuffle decodes it at
///   3.5–4 GB/s per core, which still costs a statistics pass 10–40% more
///   than raw chunks, hence the higher bar (the noise file's 9% saving
///   does not pay for it);
/// - `small`: the smallest of zstd 1 where it saves at least 10% and blosc
///   zstd 1 with byte or bit shuffle where it saves at least 15%; zstd's
///   fastest level where none does (noise-dominated data then costs no
///   compression CPU: on the 1.26 GB noise hyperstack, blosc's 10% saving
///   took ingest from 2.2 to 4.5 CPU-seconds, while the disk writes 1 GB/s);
/// - `none`: none.
pub(crate) fn compression_of<T: Sample>(
    setting: CompressionSetting,
    band: &[T],
) -> Result<Compression, PassError> {
    let raw = pentascope_core::dtype::as_bytes(band);
    let candidates: &[(Compression, usize)] = match setting {
        CompressionSetting::None => return Ok(Compression::None),
        CompressionSetting::Fast => &[
            (Compression::FAST, raw.len() * 95 / 100),
            (Compression::FAST_BITS, raw.len() * 85 / 100),
        ],
        CompressionSetting::Small => &[
            (Compression::Zstd(ZSTD_LEVEL), raw.len() * 9 / 10),
            (blosc_zstd(Shuffle::Bytes), raw.len() * 85 / 100),
            (blosc_zstd(Shuffle::Bits), raw.len() * 85 / 100),
        ],
    };
    let mut best = (
        raw.len(),
        match setting {
            CompressionSetting::Small => Compression::Zstd(ZSTD_LEVEL_FAST),
            _ => Compression::None,
        },
    );
    for &(candidate, most) in candidates {
        let Some(codec) = candidate.codec(T::DTYPE).map_err(StoreError::Pixels)? else {
            continue;
        };
        let size = codec
            .encode(
                std::borrow::Cow::Borrowed(raw),
                &zarrs::array::CodecOptions::default(),
            )
            .map_err(StoreError::pixels)?
            .len();
        if size <= most && size < best.0 {
            best = (size, candidate);
        }
    }
    Ok(best.1)
}

/// Blosc zstd 1 with `shuffle`: what `--compression small` tries.
pub(crate) fn blosc_zstd(shuffle: Shuffle) -> Compression {
    Compression::Blosc {
        coder: BloscCoder::Zstd,
        level: 1,
        shuffle,
    }
}

/// Planes stored so far, told to a progress callback.
pub(crate) struct PlaneCount<'a> {
    done: AtomicU64,
    total: u64,
    progress: &'a (dyn Fn(u64, u64) + Sync),
}

impl<'a> PlaneCount<'a> {
    pub(crate) fn new(total: u64, progress: &'a (dyn Fn(u64, u64) + Sync)) -> Self {
        PlaneCount {
            done: AtomicU64::new(0),
            total,
            progress,
        }
    }

    pub(crate) fn add(&self, planes: u64) {
        let n = self.done.fetch_add(planes, Ordering::Relaxed);
        (self.progress)(n + planes, self.total);
    }
}

/// Decodes the page groups `groups` of `tiff`, stores them through `writer`
/// and adds their samples to `channels`, groups in parallel.
pub(crate) fn copy_groups<T: Sample>(
    tiff: &TiffFile,
    writer: &dyn PixelWriter,
    groups: &[PageGroup],
    channels: &SharedChannelStats<T>,
    planes: &PlaneCount<'_>,
    cancel: &Cancel,
) -> Result<(), PassError> {
    let layout = *writer.layout();
    groups.par_iter().try_for_each(|group| {
        let mut bands: Vec<Vec<T>> = vec![Vec::new(); group.planes.len()];
        let mut partial: Vec<StatsAccumulator<T>> = group
            .planes
            .iter()
            .map(|_| StatsAccumulator::new())
            .collect();
        for rows in layout.bands() {
            cancel.check()?;
            match group.page {
                Some(page) => {
                    tiff.read_band(page, rows.start as u32..rows.end as u32, &mut bands)?
                }
                None => {
                    let n = ((rows.end - rows.start) * layout.shape.x) as usize;
                    for band in &mut bands {
                        band.clear();
                        band.resize(n, T::default());
                    }
                }
            }
            for ((plane, band), acc) in group.planes.iter().zip(&bands).zip(&mut partial) {
                writer.write_band(*plane, rows.start, pentascope_core::dtype::as_bytes(band))?;
                acc.add(band);
            }
        }
        for (plane, acc) in group.planes.iter().zip(partial) {
            channels.merge(plane.c as usize, acc);
        }
        planes.add(group.planes.len() as u64);
        Ok::<(), PassError>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slow structure under camera noise (sigma about 300, from twelve
    /// uniform draws): only bit shuffle finds its constant high bits.
    fn camera_band() -> Vec<u16> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        (0..512 * 512u32)
            .map(|i| {
                let noise: i64 = (0..12)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        (state % 300) as i64
                    })
                    .sum::<i64>()
                    - 6 * 299;
                (12000 + i64::from(i / 512) * 8 + i64::from(i % 512) * 4 + noise) as u16
            })
            .collect()
    }

    /// Smooth 16-bit structure (what every codec shrinks) and uniform
    /// noise (what none does).
    fn bands() -> (Vec<u16>, Vec<u16>) {
        let smooth = (0..512 * 512u32)
            .map(|i| (9000 + (i % 512) * 3 + (i / 512) * 5 + i.wrapping_mul(2654435761) % 7) as u16)
            .collect();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise = (0..512 * 512)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u16
            })
            .collect();
        (smooth, noise)
    }

    #[test]
    fn each_setting_picks_its_codec() {
        let (smooth, noise) = bands();
        let pick = |setting, band: &[u16]| compression_of(setting, band).unwrap();
        assert_eq!(pick(CompressionSetting::Fast, &smooth), Compression::FAST);
        assert_eq!(
            pick(CompressionSetting::Fast, &camera_band()),
            Compression::FAST_BITS,
            "bit shuffle finds the high bits under noise"
        );
        assert_eq!(
            pick(CompressionSetting::Fast, &noise),
            Compression::None,
            "LZ4 saves nothing on noise: stored as it is"
        );
        let small = pick(CompressionSetting::Small, &smooth);
        assert!(
            matches!(
                small,
                Compression::Zstd(ZSTD_LEVEL)
                    | Compression::Blosc {
                        coder: BloscCoder::Zstd,
                        ..
                    }
            ),
            "{small}"
        );
        assert_eq!(
            pick(CompressionSetting::Small, &noise),
            Compression::Zstd(ZSTD_LEVEL_FAST)
        );
        for band in [&smooth, &noise] {
            assert_eq!(pick(CompressionSetting::None, band), Compression::None);
        }
    }

    #[test]
    fn settings_parse_and_name_the_valid_values() {
        for value in CompressionSetting::VALUES {
            let parsed: CompressionSetting = value.parse().unwrap();
            assert_eq!(parsed.to_string(), value);
        }
        let refused = "tiny".parse::<CompressionSetting>().unwrap_err();
        assert!(
            refused.contains("fast, small, none") && refused.contains("tiny"),
            "{refused}"
        );
        assert_eq!(CompressionSetting::default(), CompressionSetting::Fast);
    }
}
