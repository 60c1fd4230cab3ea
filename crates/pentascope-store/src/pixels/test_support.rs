//! What the pixel store's unit tests share.

use pentascope_core::PlaneIndex;

use super::local::LocalStore;
use super::{ArrayLayout, BloscCoder, Compression, ImageAttributes, PixelStore, Shuffle};
use crate::record::ImageId;

/// Every compression an ingest may choose.
pub(crate) fn every_compression() -> [Compression; 6] {
    let blosc_zstd = |shuffle| Compression::Blosc {
        coder: BloscCoder::Zstd,
        level: 1,
        shuffle,
    };
    [
        Compression::None,
        Compression::FAST,
        Compression::FAST_BITS,
        Compression::Zstd(super::ZSTD_LEVEL),
        blosc_zstd(Shuffle::Bytes),
        blosc_zstd(Shuffle::Bits),
    ]
}

/// A `h` × `w` plane of camera-like values: a gradient, with noise.
pub(crate) fn camera_plane(h: u64, w: u64) -> Vec<u16> {
    (0..h * w)
        .map(|i| ((i % w) * 7 + (i / w) * 3 + (i * 2654435761 % 97)) as u16)
        .collect()
}

/// Writes and publishes image `id` of one plane.
pub(crate) fn write_plane(
    store: &LocalStore,
    id: ImageId,
    layout: ArrayLayout,
    compression: Compression,
    plane: &[u16],
) {
    let w = layout.shape.x;
    let writer = store
        .create(id, layout, &ImageAttributes::default(), compression)
        .unwrap();
    for rows in layout.bands() {
        let (a, b) = ((rows.start * w) as usize, (rows.end * w) as usize);
        writer
            .write_band(
                PlaneIndex::new(0, 0, 0),
                rows.start,
                bytemuck::cast_slice(&plane[a..b]),
            )
            .unwrap();
    }
    writer.commit().unwrap();
}
