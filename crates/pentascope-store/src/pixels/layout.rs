//! How an image's array is chunked: whole planes up to 16 MiB, so a slice
//! reads one chunk; larger planes cut into tiles of up to 2048 columns.

use std::ops::Range;

use pentascope_core::{DType, Shape5};

/// Largest plane stored as a single chunk.
const WHOLE_PLANE_BYTES: u64 = 16 << 20;
/// Column count of a tile when planes are cut.
const TILE_COLUMNS: u64 = 2048;
/// Target size of one tile when planes are cut.
const TILE_BYTES: u64 = 8 << 20;
/// Upper bound on one band (chunk rows × full width) held in memory.
const BAND_BYTES: u64 = 64 << 20;
/// zstd level for data that compresses: level 1 compresses scientific
/// data nearly as well as the default level at several times the speed.
pub const ZSTD_LEVEL: i32 = 1;
/// zstd level for data that barely compresses (noise-dominated): zstd's
/// fastest level stores such data at memory speed instead of spending about
/// two CPU-seconds per gigabyte to save a few percent.
pub const ZSTD_LEVEL_FAST: i32 = -1;

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
}

impl ArrayLayout {
    /// The chunking pentascope uses for an image of this shape and type.
    pub fn for_image(shape: Shape5, dtype: DType) -> ArrayLayout {
        let size = dtype.size() as u64;
        let plane = shape.y * shape.x * size;
        let (chunk_y, chunk_x) = if plane <= WHOLE_PLANE_BYTES {
            (shape.y, shape.x)
        } else {
            let chunk_x = shape.x.min(TILE_COLUMNS);
            let rows = (TILE_BYTES / (chunk_x * size)).min(BAND_BYTES / (shape.x * size));
            (rows.clamp(1, shape.y), chunk_x)
        };
        ArrayLayout {
            shape,
            dtype,
            chunk_y,
            chunk_x,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_planes_up_to_16_mib_and_tiles_beyond() {
        let l = ArrayLayout::for_image(Shape5::new(1, 1, 1, 1024, 1024), DType::U16);
        assert_eq!(l.chunk_shape(), [1, 1, 1, 1024, 1024]);
        let l = ArrayLayout::for_image(Shape5::new(1, 1, 1, 9600, 9600), DType::U16);
        assert_eq!(l.chunk_shape(), [1, 1, 1, 2048, 2048]);
        assert_eq!(l.bands().last(), Some(8192..9600));
    }
}
