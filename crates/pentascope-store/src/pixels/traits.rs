//! What every pixel backend offers: create (staged), open, delete.

use std::ops::Range;
use std::sync::Arc;

use pentascope_core::pyramid::Downsample;
use pentascope_core::{PlaneIndex, Sample};
use pentascope_tiff::PhysicalSizes;

use super::layout::{ArrayLayout, Compression};
use crate::error::StoreError;
use crate::record::ImageId;

/// What a stored image says about itself in its NGFF metadata.
#[derive(Debug, Clone, Default)]
pub struct ImageAttributes {
    /// Display name.
    pub name: String,
    /// Channel labels.
    pub channel_names: Vec<String>,
    /// Physical pixel sizes, for the NGFF scale transform.
    pub physical_sizes: PhysicalSizes,
    /// How the pyramid's levels are made (labels keep labels).
    pub downsample: Downsample,
    /// Levels (1 and up) whose pixels the writer is given with
    /// [`PixelWriter::write_level_band`] (a file's own pyramid), rather
    /// than computing them from full resolution.
    pub levels_from_file: Vec<u32>,
}

/// The image groups a store holds, by id, in ascending order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredImages {
    /// Published groups (readable by [`PixelStore::open`]).
    pub published: Vec<ImageId>,
    /// Groups still being written, or left by a crash (backends that stage).
    pub staged: Vec<ImageId>,
}

/// Chunked storage of image pixels.
pub trait PixelStore: Send + Sync {
    /// Starts writing a new image; nothing is visible until
    /// [`PixelWriter::commit`].
    fn create(
        &self,
        id: ImageId,
        layout: ArrayLayout,
        attributes: &ImageAttributes,
        compression: Compression,
    ) -> Result<Box<dyn PixelWriter>, StoreError>;
    /// Opens a published image for reading.
    fn open(&self, id: ImageId) -> Result<Arc<dyn PixelReader>, StoreError>;
    /// Removes an image's pixels, published or staged (no error if absent).
    fn delete(&self, id: ImageId) -> Result<(), StoreError>;
    /// The size of key `key` (`zarr.json`, `0/zarr.json`, `0/c/…`) of image
    /// `id`'s published Zarr group; `None` if there is no such key.
    fn key_size(&self, id: ImageId, key: &str) -> Result<Option<u64>, StoreError>;
    /// `len` bytes of key `key` from byte `start` (within its size);
    /// `None` if there is no such key.
    fn read_key(
        &self,
        id: ImageId,
        key: &str,
        start: u64,
        len: u64,
    ) -> Result<Option<bytes::Bytes>, StoreError>;
    /// Every image group in the store, published or staged (blocking; one
    /// listing of the store's top level).
    fn list_images(&self) -> Result<StoredImages, StoreError>;
    /// Removes every unpublished (staged) image, left by a crash.
    fn clear_staging(&self) -> Result<(), StoreError>;
    /// The backend's name, for `/health` and logs.
    fn backend(&self) -> &'static str;
    /// Whether the store answers (blocking).
    fn ping(&self) -> Result<(), StoreError>;
}

/// Writes one image band by band.
pub trait PixelWriter: Send + Sync {
    /// The layout being written.
    fn layout(&self) -> &ArrayLayout;
    /// Stores rows `y0..y0 + n` of `plane` from native-endian `bytes`
    /// (`n` rows of full width). `y0` is a multiple of the chunk height.
    fn write_band(&self, plane: PlaneIndex, y0: u64, bytes: &[u8]) -> Result<(), StoreError>;
    /// Stores rows `y0..y0 + n` of `plane` at pyramid level `level`, one of
    /// [`ImageAttributes::levels_from_file`], from native-endian `bytes`
    /// (`n` rows of the level's width). `y0` is a multiple of the level's
    /// chunk height ([`ArrayLayout::level_chunk`]).
    fn write_level_band(
        &self,
        level: u32,
        plane: PlaneIndex,
        y0: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError>;
    /// Reads back rows `rows` of `plane` as written so far, as native-endian
    /// bytes into `out` (for passes that rewrite what they staged, such as
    /// relabelling a labels image). Rows never written read as zeros.
    fn read_rows(
        &self,
        plane: PlaneIndex,
        rows: Range<u64>,
        out: &mut [u8],
    ) -> Result<(), StoreError>;
    /// Publishes the image.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
    /// Throws the partial image away.
    fn abort(self: Box<Self>);
}

/// Reads a published image.
pub trait PixelReader: Send + Sync {
    /// The stored layout.
    fn layout(&self) -> &ArrayLayout;
    /// Reads rows `rows` of `plane` as native-endian bytes into `out`
    /// (exactly `rows.len() × width × sample size` bytes).
    fn read_rows(
        &self,
        plane: PlaneIndex,
        rows: Range<u64>,
        out: &mut [u8],
    ) -> Result<(), StoreError> {
        let width = self.layout().shape.x;
        self.read_region(0, plane, rows, 0..width, out)
    }
    /// Reads `rows` × `columns` of `plane` at pyramid level `level` (at
    /// most [`ArrayLayout::levels`], in that level's pixels) into `out`
    /// (exactly the region's size), reading only the chunks under it.
    fn read_region(
        &self,
        level: u32,
        plane: PlaneIndex,
        rows: Range<u64>,
        columns: Range<u64>,
        out: &mut [u8],
    ) -> Result<(), StoreError>;
}

impl dyn PixelReader + '_ {
    /// Reads one whole plane as samples of type `T` (the image's own type).
    pub fn read_plane<T: Sample>(&self, plane: PlaneIndex) -> Result<Vec<T>, StoreError> {
        let shape = self.layout().shape;
        let mut out = vec![T::default(); (shape.y * shape.x) as usize];
        self.read_rows(plane, 0..shape.y, bytemuck::cast_slice_mut(&mut out))?;
        Ok(out)
    }
}
