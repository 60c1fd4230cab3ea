//! How an image's array is chunked: whole planes up to 16 MiB, so a slice
//! reads one chunk; larger planes cut into bands of rows and chunks of up to
//! 2048 columns. Chunks wider or taller than 512 pixels are Zarr shards of
//! 512 × 512 subchunks, so that a tile or a small region decodes only the
//! subchunks under it. Planes over 2048 pixels on a side also get
//! downsampled levels (a pyramid), halving until the plane fits in one
//! 512-pixel tile.

use std::ops::Range;

use pentascope_core::pyramid::level_len;
use pentascope_core::{DType, PlaneIndex, Shape5};

use crate::error::StoreError;

/// Largest plane stored as a single chunk.
const WHOLE_PLANE_BYTES: u64 = 16 << 20;
/// Column count of a tile when planes are cut.
const TILE_COLUMNS: u64 = 2048;
/// Target size of one tile when planes are cut.
const TILE_BYTES: u64 = 8 << 20;
/// Upper bound on one band (chunk rows × full width) held in memory.
const BAND_BYTES: u64 = 64 << 20;
/// Side of a subchunk, the unit a tile or a small region decodes.
const SUBCHUNK: u64 = 512;
/// Planes with more pixels than this on a side get a pyramid.
const PYRAMID_ABOVE: u64 = 2048;
/// The pyramid stops at the first level that fits in a tile this size.
pub const PYRAMID_TILE: u64 = 512;
/// zstd level for data that compresses: level 1 compresses scientific
/// data nearly as well as the default level at several times the speed.
pub const ZSTD_LEVEL: i32 = 1;
/// zstd level for data that barely compresses (noise-dominated): zstd's
/// fastest level stores such data at memory speed instead of spending about
/// two CPU-seconds per gigabyte to save a few percent.
pub const ZSTD_LEVEL_FAST: i32 = -1;

/// How an image's chunks are compressed: chosen per image from the
/// `--compression` setting ([`CompressionSetting`]), for `small` by a trial
/// on its first band (see the ingest pass). Whatever was chosen is written
/// in the array's metadata, so images keep reading as they were stored when
/// the setting changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Chunks stored as their bytes.
    None,
    /// zstd over the samples as they are, at this level.
    Zstd(i32),
    /// Zarr's `blosc` codec: the samples' bytes (or bits) regrouped by
    /// significance, then `coder` at `level`. The high bytes of 16-bit and
    /// float samples vary slowly, so grouped they compress where
    /// interleaved they do not.
    Blosc {
        /// The compressor blosc runs on the regrouped bytes.
        coder: BloscCoder,
        /// Its level, 1–9.
        level: u8,
        /// How the sample bytes are regrouped.
        shuffle: Shuffle,
    },
}

/// The compressor inside blosc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BloscCoder {
    /// LZ4: decodes at memory speed, compresses the shuffled high bytes.
    Lz4,
    /// zstd: smaller, several times slower to decode.
    Zstd,
}

/// Blosc's regrouping of sample bytes before entropy coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shuffle {
    /// Byte `k` of every sample together.
    Bytes,
    /// Bit `k` of every sample together.
    Bits,
}

impl Compression {
    /// What `--compression fast` stores where byte shuffle saves more: blosc
    /// LZ4 over byte-shuffled samples, which decodes at several GB/s per core
    /// (BENCHMARKS.md, "Compression for readers").
    pub const FAST: Compression = Compression::Blosc {
        coder: BloscCoder::Lz4,
        level: 5,
        shuffle: Shuffle::Bytes,
    };

    /// What `--compression fast` stores where bit shuffle saves more: blosc
    /// LZ4 over bit-shuffled samples, decoded at about 3.5 GB/s per core by
    /// pentascope's own bit unshuffle. Level 1: it writes twice as fast as
    /// level 5 for 1% more bytes, which took ingest from 4.9 to 4.5 s on
    /// the structured benchmark file (BENCHMARKS.md, "ninth session").
    pub const FAST_BITS: Compression = Compression::Blosc {
        coder: BloscCoder::Lz4,
        level: 1,
        shuffle: Shuffle::Bits,
    };

    /// The codec that applies it to chunks of `dtype` samples (blosc decoded
    /// as arrays opened from the store are, by `pixels::blosc`); `None` for
    /// chunks stored as they are.
    pub fn codec(
        self,
        dtype: DType,
    ) -> Result<Option<std::sync::Arc<dyn zarrs::array::BytesToBytesCodecTraits>>, String> {
        use zarrs::array::codec::{
            BloscCodec, BloscCompressionLevel, BloscCompressor, BloscShuffleMode, ZstdCodec,
        };
        Ok(match self {
            Compression::None => None,
            Compression::Zstd(level) => Some(std::sync::Arc::new(ZstdCodec::new(level, false))),
            Compression::Blosc {
                coder,
                level,
                shuffle,
            } => Some(super::blosc::reading_here(std::sync::Arc::new(
                BloscCodec::new(
                    match coder {
                        BloscCoder::Lz4 => BloscCompressor::LZ4,
                        BloscCoder::Zstd => BloscCompressor::Zstd,
                    },
                    BloscCompressionLevel::try_from(level).map_err(|e| e.to_string())?,
                    None,
                    match shuffle {
                        Shuffle::Bytes => BloscShuffleMode::Shuffle,
                        Shuffle::Bits => BloscShuffleMode::BitShuffle,
                    },
                    Some(dtype.size()),
                )
                .map_err(|e| e.to_string())?,
            ))),
        })
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compression::None => f.write_str("none"),
            Compression::Zstd(level) => write!(f, "zstd {level}"),
            Compression::Blosc {
                coder,
                level,
                shuffle,
            } => write!(
                f,
                "blosc {} {level} + {}",
                match coder {
                    BloscCoder::Lz4 => "lz4",
                    BloscCoder::Zstd => "zstd",
                },
                match shuffle {
                    Shuffle::Bytes => "byte shuffle",
                    Shuffle::Bits => "bit shuffle",
                }
            ),
        }
    }
}

/// The `--compression` setting: what new images are stored with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionSetting {
    /// For readers: blosc LZ4 with byte shuffle ([`Compression::FAST`])
    /// where it saves at least 5% of the first band, or with bit shuffle
    /// ([`Compression::FAST_BITS`]) where that saves at least 15% and more,
    /// else none.
    #[default]
    Fast,
    /// For archives: the smallest of zstd 1 and blosc zstd 1 with byte or
    /// bit shuffle, at 2–4× the decoding time of `fast`.
    Small,
    /// Chunks stored as their bytes.
    None,
}

impl CompressionSetting {
    /// Every value, as written.
    pub const VALUES: [&'static str; 3] = ["fast", "small", "none"];
}

impl std::fmt::Display for CompressionSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CompressionSetting::Fast => "fast",
            CompressionSetting::Small => "small",
            CompressionSetting::None => "none",
        })
    }
}

impl std::str::FromStr for CompressionSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fast" => Ok(CompressionSetting::Fast),
            "small" => Ok(CompressionSetting::Small),
            "none" => Ok(CompressionSetting::None),
            other => Err(format!(
                "compression must be one of {}, got {other:?}",
                CompressionSetting::VALUES.join(", ")
            )),
        }
    }
}

/// Shape, type and chunking of a stored image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrayLayout {
    /// Canonical shape.
    pub shape: Shape5,
    /// Sample type.
    pub dtype: DType,
    /// Rows per chunk: writers hand over bands of this many rows.
    pub chunk_y: u64,
    /// Columns per chunk.
    pub chunk_x: u64,
    /// Downsampled levels stored beside full resolution (0: none).
    pub levels: u32,
}

impl ArrayLayout {
    /// The chunking and pyramid pentascope uses for an image of this shape
    /// and type.
    pub fn for_image(shape: Shape5, dtype: DType) -> ArrayLayout {
        let size = dtype.size() as u64;
        let plane = shape.y * shape.x * size;
        let levels = pyramid_levels(shape.y, shape.x);
        let (chunk_y, chunk_x) = if plane <= WHOLE_PLANE_BYTES {
            (shard(shape.y, u64::MAX).0, shard(shape.x, u64::MAX).0)
        } else {
            let columns = shape.x.min(TILE_COLUMNS);
            let rows = (TILE_BYTES / (columns * size)).min(BAND_BYTES / (shape.x * size));
            // a power of two at least the top level's block: each band's
            // levels are computed from that band alone, and every level's
            // band is whole subchunks
            let rows = prev_power_of_two(rows.max(1)).max(1 << levels);
            let chunk_y = if rows >= shape.y {
                shard(shape.y, u64::MAX).0
            } else {
                rows
            };
            (chunk_y, shard(shape.x, TILE_COLUMNS).0)
        };
        ArrayLayout {
            shape,
            dtype,
            chunk_y,
            chunk_x,
            levels,
        }
    }

    /// `[height, width]` of level `k` (0 is full resolution).
    pub fn level_shape(&self, k: u32) -> [u64; 2] {
        [level_len(self.shape.y, k), level_len(self.shape.x, k)]
    }

    /// Checks what a reader is asked for: `plane` within the shape,
    /// `level` among the levels, `rows` and `columns` ordered and within
    /// that level's plane. `what` names the image in the message.
    pub fn check_region(
        &self,
        what: &dyn std::fmt::Display,
        level: u32,
        plane: PlaneIndex,
        rows: &Range<u64>,
        columns: &Range<u64>,
    ) -> Result<(), StoreError> {
        self.shape.check_plane(plane)?;
        if level > self.levels {
            return Err(StoreError::Pixels(format!(
                "{what} has levels 0 to {}, not {level}",
                self.levels
            )));
        }
        let [height, width] = self.level_shape(level);
        if rows.end > height
            || columns.end > width
            || rows.start > rows.end
            || columns.start > columns.end
        {
            return Err(StoreError::Pixels(format!(
                "rows {rows:?} and columns {columns:?} are outside level {level} ({height}×{width}) of {what}"
            )));
        }
        Ok(())
    }

    /// Whether a plane is written in one band.
    fn one_band(&self) -> bool {
        self.chunk_y >= self.shape.y
    }

    /// `[rows, columns]` of a chunk (a shard, when larger than its
    /// subchunks) of level `k`: a band of level 0 makes one row of chunks
    /// at every level.
    pub fn level_chunk(&self, k: u32) -> [u64; 2] {
        if k == 0 {
            return [self.chunk_y, self.chunk_x];
        }
        let [height, width] = self.level_shape(k);
        let rows = if self.one_band() {
            shard(height, u64::MAX).0
        } else {
            (self.chunk_y >> k).max(1)
        };
        [rows, shard(width, TILE_COLUMNS).0]
    }

    /// `[rows, columns]` of the subchunks of level `k`'s chunks (equal to
    /// the chunk where it is not sharded).
    pub fn level_subchunk(&self, k: u32) -> [u64; 2] {
        let [rows, columns] = self.level_chunk(k);
        [rows.min(SUBCHUNK), columns.min(SUBCHUNK)]
    }

    /// Chunk shape in `TZCYX` order.
    pub fn chunk_shape(&self) -> [u64; 5] {
        [1, 1, 1, self.chunk_y, self.chunk_x]
    }

    /// The row ranges of the bands a plane is written in.
    pub fn bands(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        (0..self.shape.y)
            .step_by(self.chunk_y as usize)
            .map(|y0| y0..(y0 + self.chunk_y).min(self.shape.y))
    }
}

/// A chunk of at most `cap` (if `len` is larger) of an axis of `len`
/// pixels, rounded up to whole subchunks, and its subchunk.
fn shard(len: u64, cap: u64) -> (u64, u64) {
    let c = len.min(cap).max(1);
    let sub = c.min(SUBCHUNK);
    (c.next_multiple_of(sub), sub)
}

fn prev_power_of_two(n: u64) -> u64 {
    1 << (63 - n.leading_zeros())
}

/// Levels beyond full resolution for a `height × width` plane: none up to
/// 2048 on a side, else halving until the plane fits in a 512-pixel tile.
pub fn pyramid_levels(height: u64, width: u64) -> u32 {
    if height.max(width) <= PYRAMID_ABOVE {
        return 0;
    }
    let mut k = 0;
    while level_len(height.max(width), k) > PYRAMID_TILE {
        k += 1;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_planes_up_to_16_mib_and_tiles_beyond() {
        let l = ArrayLayout::for_image(Shape5::new(1, 1, 1, 1024, 1024), DType::U16);
        assert_eq!(l.chunk_shape(), [1, 1, 1, 1024, 1024]);
        assert_eq!(l.level_subchunk(0), [512, 512]);
        let l = ArrayLayout::for_image(Shape5::new(1, 1, 1, 1000, 300), DType::U16);
        assert_eq!(l.chunk_shape(), [1, 1, 1, 1024, 300], "whole subchunks");
        assert_eq!(l.level_subchunk(0), [512, 300]);
        let l = ArrayLayout::for_image(Shape5::new(1, 1, 1, 36, 52), DType::U16);
        assert_eq!(
            l.level_subchunk(0),
            [36, 52],
            "small planes are not sharded"
        );
        let l = ArrayLayout::for_image(Shape5::new(1, 1, 1, 9600, 9600), DType::U16);
        assert_eq!(l.chunk_shape(), [1, 1, 1, 2048, 2048]);
        assert_eq!(l.bands().last(), Some(8192..9600));
        assert_eq!(l.levels, 5, "9600 → 300 in five halvings");
        assert_eq!(l.level_shape(5), [300, 300]);
        assert_eq!(l.level_chunk(1), [1024, 2048]);
        assert_eq!(l.level_chunk(5), [64, 300]);
    }

    #[test]
    fn bands_start_on_whole_blocks_of_the_top_level() {
        for (y, x, dtype) in [
            (3000, 70_000, DType::U16),
            (40_000, 2049, DType::U8),
            (5000, 5001, DType::F64),
            (2049, 100, DType::U8),
        ] {
            let l = ArrayLayout::for_image(Shape5::new(1, 1, 1, y, x), dtype);
            assert!(l.levels > 0, "{y}×{x}");
            let top = 1 << l.levels;
            assert!(
                l.chunk_y >= y || l.chunk_y.is_multiple_of(top),
                "{y}×{x}: {} rows per band, top block {top}",
                l.chunk_y
            );
            for k in 0..=l.levels {
                let ([rows, columns], [sub_rows, sub_columns]) =
                    (l.level_chunk(k), l.level_subchunk(k));
                assert!(
                    rows % sub_rows == 0 && columns % sub_columns == 0,
                    "{y}×{x} level {k}"
                );
                if l.chunk_y < y {
                    assert_eq!(
                        rows << k,
                        l.chunk_y,
                        "{y}×{x} level {k}: one band, one chunk row"
                    );
                }
            }
            assert!(l.level_shape(l.levels)[0].max(l.level_shape(l.levels)[1]) <= 512);
        }
        let small = ArrayLayout::for_image(Shape5::new(1, 1, 1, 2048, 2048), DType::U16);
        assert_eq!(small.levels, 0);
    }
}
