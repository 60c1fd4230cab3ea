//! Reading and writing one image's array through any zarrs store: shared
//! by the local and the S3 backends.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use pentascope_core::pyramid::{Downsample, PyramidBand};
use pentascope_core::{dispatch_dtype, PlaneIndex, Sample, Shape5};
use zarrs::array::codec::Crc32cCodec;
use zarrs::array::{
    Array, ArrayBuilder, ArrayBytes, BytesToBytesCodecTraits, CodecOptions, FillValue,
};
use zarrs::group::GroupBuilder;
use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::{
    MaybeBytesIterator, ReadableStorageTraits, ReadableWritableStorageTraits, StorageError,
    StoreKey,
};

use super::direct::{ChunkCodecs, ReadError};
use super::layout::{ArrayLayout, Compression};
use super::ngff::{dtype_of, ngff_attributes, zarr_type};
use super::traits::{ImageAttributes, PixelReader, PixelWriter};
use crate::error::StoreError;
use crate::record::ImageId;

/// The array attribute saying that every chunk was written, even chunks of
/// fill values: a missing chunk of such an array is an error (its files were
/// deleted), not zeros. Arrays written before it existed read as before.
const EVERY_CHUNK_STORED: &str = "pentascope_every_chunk_stored";

/// The order of the stored array's dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AxisOrder {
    /// `t, c, z, y, x`, as NGFF requires (time, channel, then space):
    /// what pentascope writes.
    Ngff,
    /// `t, z, c, y, x`, as pentascope wrote before (still read).
    Legacy,
}

impl AxisOrder {
    /// The array's indices of a plane (and two trailing spatial ranges).
    fn plane(self, plane: PlaneIndex) -> [u64; 3] {
        match self {
            AxisOrder::Ngff => [plane.t, plane.c, plane.z],
            AxisOrder::Legacy => [plane.t, plane.z, plane.c],
        }
    }

    /// The stored array's shape of a canonical shape.
    pub(super) fn shape(self, s: Shape5) -> [u64; 5] {
        match self {
            AxisOrder::Ngff => [s.t, s.c, s.z, s.y, s.x],
            AxisOrder::Legacy => [s.t, s.z, s.c, s.y, s.x],
        }
    }

    /// The canonical shape of a stored array's shape.
    fn canonical(self, a: &[u64]) -> Shape5 {
        match self {
            AxisOrder::Ngff => Shape5::new(a[0], a[2], a[1], a[3], a[4]),
            AxisOrder::Legacy => Shape5::new(a[0], a[1], a[2], a[3], a[4]),
        }
    }

    /// The array's dimension names.
    pub(super) fn names(self) -> [&'static str; 5] {
        match self {
            AxisOrder::Ngff => ["t", "c", "z", "y", "x"],
            AxisOrder::Legacy => ["t", "z", "c", "y", "x"],
        }
    }
}

/// Writes the NGFF group and the empty arrays of a new image into `store`:
/// full resolution first, then each downsampled level.
pub(super) fn create_image<S>(
    store: Arc<S>,
    layout: &ArrayLayout,
    attributes: &ImageAttributes,
    compression: Compression,
) -> Result<Vec<Array<S>>, StoreError>
where
    S: ReadableWritableStorageTraits + ?Sized + 'static,
{
    let mut group = GroupBuilder::new()
        .build(store.clone(), "/")
        .map_err(StoreError::pixels)?;
    if let serde_json::Value::Object(map) = ngff_attributes(attributes, layout.levels) {
        group.attributes_mut().extend(map);
    }
    group.store_metadata().map_err(StoreError::pixels)?;
    // every chunk carries a CRC32C of its encoded bytes (the Zarr v3
    // `crc32c` codec, last), so that `pentascope check --deep`, and any
    // other reader, notices a chunk changed on disk
    let codecs: Vec<Arc<dyn BytesToBytesCodecTraits>> = compression
        .codec(layout.dtype)
        .map_err(StoreError::Pixels)?
        .into_iter()
        .chain([Arc::new(Crc32cCodec::new()) as Arc<dyn BytesToBytesCodecTraits>])
        .collect();
    (0..=layout.levels)
        .map(|k| {
            let [height, width] = layout.level_shape(k);
            let [rows, columns] = layout.level_chunk(k);
            let [sub_rows, sub_columns] = layout.level_subchunk(k);
            let s = layout.shape;
            let mut builder = ArrayBuilder::new(
                AxisOrder::Ngff
                    .shape(Shape5::new(s.t, s.z, s.c, height, width))
                    .to_vec(),
                vec![1, 1, 1, rows, columns],
                zarr_type(layout.dtype),
                FillValue::new(vec![0u8; layout.dtype.size()]),
            );
            builder
                .bytes_to_bytes_codecs(codecs.clone())
                .dimension_names(Some(AxisOrder::Ngff.names()))
                .attributes(
                    [(
                        EVERY_CHUNK_STORED.to_string(),
                        serde_json::Value::Bool(true),
                    )]
                    .into_iter()
                    .collect(),
                );
            if [sub_rows, sub_columns] != [rows, columns] {
                builder.subchunk_shape(vec![1, 1, 1, sub_rows, sub_columns]);
            }
            let array = builder
                .build(store.clone(), &format!("/{k}"))
                .map_err(StoreError::pixels)?;
            array.store_metadata().map_err(StoreError::pixels)?;
            Ok(array)
        })
        .collect()
}

/// A key of an image's Zarr group, checked: relative, segments of
/// letters, digits, `.`, `_` and `-`, none of them `.` or `..` or hidden.
pub(super) fn group_key(key: &str) -> Option<StoreKey> {
    let ok = !key.is_empty()
        && key.len() <= 256
        && key.split('/').all(|segment| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    ok.then(|| StoreKey::new(key).ok()).flatten()
}

/// The size of `key` in `store`.
pub(super) fn key_size<S>(
    store: &S,
    key: &str,
    remote: Option<&'static str>,
) -> Result<Option<u64>, StoreError>
where
    S: ReadableStorageTraits + ?Sized,
{
    let Some(key) = group_key(key) else {
        return Ok(None);
    };
    store.size_key(&key).map_err(|e| storage_error(remote, e))
}

/// `len` bytes of `key` in `store` from `start`.
pub(super) fn read_key<S>(
    store: &S,
    key: &str,
    start: u64,
    len: u64,
    remote: Option<&'static str>,
) -> Result<Option<bytes::Bytes>, StoreError>
where
    S: ReadableStorageTraits + ?Sized,
{
    let Some(key) = group_key(key) else {
        return Ok(None);
    };
    let bytes = store
        .get_partial(
            &key,
            zarrs::storage::byte_range::ByteRange::FromStart(start, Some(len)),
        )
        .map_err(|e| storage_error(remote, e))?;
    // zarrs' buffer is a `bytes::Bytes`: handed on as it is, not copied
    Ok(bytes)
}

/// Opens the array of a published image in `store`.
pub(super) fn open_array<S>(
    store: Arc<S>,
    id: ImageId,
    remote: Option<&'static str>,
) -> Result<Arc<dyn PixelReader>, StoreError>
where
    S: ReadableStorageTraits + ?Sized + 'static,
{
    let key = StoreKey::new("0/zarr.json").map_err(StoreError::pixels)?;
    if store
        .size_key(&key)
        .map_err(|e| storage_error(remote, e))?
        .is_none()
    {
        return Err(StoreError::NotFound(id.to_string()));
    }
    super::blosc::register();
    let array = Array::open(store.clone(), "/0").map_err(|e| storage_error(remote, e))?;
    let chunks = Arc::new(ChunkStore {
        every_chunk_stored: array.attributes().get(EVERY_CHUNK_STORED) == Some(&true.into()),
        inner: store.clone(),
        image: id,
    });
    let names: Option<Vec<String>> = array.dimension_names().as_ref().map(|names| {
        names
            .iter()
            .map(|n| n.as_deref().unwrap_or("").to_string())
            .collect()
    });
    let order = match names.as_deref() {
        Some([t, c, z, ..]) if t == "t" && c == "c" && z == "z" => AxisOrder::Ngff,
        _ => AxisOrder::Legacy,
    };
    let shape = array.shape().to_vec();
    let chunk = array
        .chunk_shape(&[0, 0, 0, 0, 0])
        .map_err(StoreError::pixels)?;
    let dtype = dtype_of(array.data_type())
        .ok_or_else(|| StoreError::Pixels(format!("unsupported data type in {id}")))?;
    if shape.len() != 5 || chunk.len() != 5 {
        return Err(StoreError::Pixels(format!("{id} is not a 5D array")));
    }
    let mut arrays = vec![array.with_storage(chunks.clone())];
    for k in 1..=stored_levels(&*store, remote)? {
        let array =
            Array::open(store.clone(), &format!("/{k}")).map_err(|e| storage_error(remote, e))?;
        arrays.push(array.with_storage(chunks.clone()));
    }
    let whole_chunks = arrays
        .iter()
        .map(|array| ChunkCodecs::of(array, dtype.size()))
        .collect();
    let layout = ArrayLayout {
        shape: order.canonical(&shape),
        dtype,
        chunk_y: chunk[3].get(),
        chunk_x: chunk[4].get(),
        levels: arrays.len() as u32 - 1,
    };
    Ok(Arc::new(ZarrReader {
        remote,
        order,
        arrays,
        whole_chunks,
        layout,
        id,
    }))
}

/// What a missing chunk's error says: zarrs would read it as fill values.
const MISSING_CHUNK: &str = "is missing, though every chunk of the image was stored";

/// An image's store as its reader reads chunks through it: a chunk missing
/// from an array that holds every chunk (its files were deleted or lost)
/// is an error, where zarrs would read fill values. The read itself
/// notices, so a read costs no look-up beforehand.
struct ChunkStore<S: ?Sized> {
    inner: Arc<S>,
    image: ImageId,
    every_chunk_stored: bool,
}

impl<S: ReadableStorageTraits + ?Sized> ReadableStorageTraits for ChunkStore<S> {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let got = self.inner.get_partial_many(key, byte_ranges)?;
        // chunk keys: `<level>/c/…`
        if got.is_none() && self.every_chunk_stored && key.as_str().split('/').nth(1) == Some("c") {
            return Err(StorageError::Other(format!(
                "chunk {key} of {} {MISSING_CHUNK}",
                self.image
            )));
        }
        Ok(got)
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

/// The downsampled levels the group's NGFF `multiscales` lists beside
/// full resolution (datasets `1`, `2`, … in order).
fn stored_levels<S>(store: &S, remote: Option<&'static str>) -> Result<u32, StoreError>
where
    S: ReadableStorageTraits + ?Sized,
{
    let key = StoreKey::new("zarr.json").map_err(StoreError::pixels)?;
    let Some(bytes) = store.get(&key).map_err(|e| storage_error(remote, e))? else {
        return Ok(0);
    };
    let group: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::Corrupt(format!("zarr.json: {e}")))?;
    let datasets = group["attributes"]["ome"]["multiscales"][0]["datasets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let paths: Vec<&str> = datasets.iter().filter_map(|d| d["path"].as_str()).collect();
    let levels = paths
        .iter()
        .enumerate()
        .take_while(|(k, path)| **path == k.to_string())
        .count();
    Ok(levels.saturating_sub(1).min(64) as u32)
}

/// Writes one image into a zarrs store; what publishing and discarding mean
/// depends on the backend.
pub(super) struct ZarrWriter<S: ?Sized> {
    /// Failures of this store are outages of that component (remote
    /// stores), rather than faults of the pixel store itself.
    pub(super) remote: Option<&'static str>,
    /// Full resolution, then each downsampled level.
    pub(super) arrays: Vec<Array<S>>,
    pub(super) layout: ArrayLayout,
    pub(super) downsample: Downsample,
    /// Levels written by [`PixelWriter::write_level_band`], not computed.
    pub(super) levels_from_file: Vec<u32>,
    pub(super) on_commit: Box<dyn FnOnce() -> Result<(), StoreError> + Send + Sync>,
    pub(super) on_abort: Box<dyn FnOnce() + Send + Sync>,
}

fn plane_subset(
    order: AxisOrder,
    plane: PlaneIndex,
    rows: Range<u64>,
    columns: Range<u64>,
) -> [Range<u64>; 5] {
    let [a, b, c] = order.plane(plane);
    [a..a + 1, b..b + 1, c..c + 1, rows, columns]
}

/// The downsampled levels of a band of full-resolution rows starting at
/// row `y0`, each as `(first row, native-endian bytes)` of its level.
fn pyramid_band<T: Sample>(
    layout: &ArrayLayout,
    downsample: Downsample,
    y0: u64,
    bytes: &[u8],
) -> Vec<(u64, Vec<u8>)> {
    let width = layout.shape.x as usize;
    let samples: &[T] = bytemuck::cast_slice(bytes);
    let mut band = PyramidBand::<T>::new(width, layout.levels, downsample);
    for row in samples.chunks_exact(width) {
        band.push_row(row);
    }
    band.finish()
        .into_iter()
        .enumerate()
        .map(|(i, rows)| (y0 >> (i + 1), bytemuck::cast_slice(&rows).to_vec()))
        .collect()
}

impl<S> PixelWriter for ZarrWriter<S>
where
    S: ReadableWritableStorageTraits + ?Sized + 'static,
{
    fn layout(&self) -> &ArrayLayout {
        &self.layout
    }

    fn write_band(&self, plane: PlaneIndex, y0: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let layout = &self.layout;
        self.store_level(0, plane, y0, bytes)?;
        if layout.levels > 0 {
            let levels = dispatch_dtype!(layout.dtype, T => pyramid_band::<T>(layout, self.downsample, y0, bytes));
            for (k, (y0, bytes)) in (1..).zip(levels) {
                if !self.levels_from_file.contains(&k) {
                    self.store_level(k, plane, y0, &bytes)?;
                }
            }
        }
        Ok(())
    }

    fn write_level_band(
        &self,
        level: u32,
        plane: PlaneIndex,
        y0: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        if !self.levels_from_file.contains(&level) {
            return Err(StoreError::Pixels(format!(
                "level {level} is computed from full resolution, not written"
            )));
        }
        self.store_level(level, plane, y0, bytes)
    }

    fn read_rows(
        &self,
        plane: PlaneIndex,
        rows: Range<u64>,
        out: &mut [u8],
    ) -> Result<(), StoreError> {
        self.layout.shape.check_plane(plane)?;
        let subset = plane_subset(AxisOrder::Ngff, plane, rows, 0..self.layout.shape.x);
        read_subset(&self.arrays[0], &subset, out, self.remote)
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        (self.on_commit)()
    }

    fn abort(self: Box<Self>) {
        (self.on_abort)()
    }
}

impl<S> ZarrWriter<S>
where
    S: ReadableWritableStorageTraits + ?Sized + 'static,
{
    /// Stores rows from `y0` of `plane` at level `k` (whole rows of it).
    fn store_level(
        &self,
        k: u32,
        plane: PlaneIndex,
        y0: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let size = self.layout.dtype.size() as u64;
        // chunks of fill values too: a missing chunk then means lost data
        let options = CodecOptions::default().with_store_empty_chunks(true);
        let [_, width] = self.layout.level_shape(k);
        let rows = bytes.len() as u64 / (width * size);
        let subset = plane_subset(AxisOrder::Ngff, plane, y0..y0 + rows, 0..width);
        self.arrays[k as usize]
            .store_array_subset_opt(
                &subset,
                ArrayBytes::new_flen(Cow::Borrowed(bytes)),
                &options,
            )
            .map_err(|e| storage_error(self.remote, e))
    }
}

struct ZarrReader<S: ?Sized> {
    remote: Option<&'static str>,
    order: AxisOrder,
    /// Full resolution, then each downsampled level.
    arrays: Vec<Array<ChunkStore<S>>>,
    /// Each level's chunks, where [`ChunkCodecs`] reads them whole.
    whole_chunks: Vec<Option<ChunkCodecs>>,
    layout: ArrayLayout,
    id: ImageId,
}

/// Reads `subset` of `array` into `out` (exactly its size): what the
/// writer (reading back what it staged) and the reader share. zarrs
/// decodes each chunk straight into `out`, with no buffer of its own.
fn read_subset<S>(
    array: &Array<S>,
    subset: &[Range<u64>; 5],
    out: &mut [u8],
    remote: Option<&'static str>,
) -> Result<(), StoreError>
where
    S: ReadableStorageTraits + ?Sized + 'static,
{
    let shape: Vec<u64> = subset.iter().map(|r| r.end - r.start).collect();
    let size = array.data_type().fixed_size().unwrap_or(0);
    let elements = shape.iter().product::<u64>();
    if size == 0 || elements.checked_mul(size as u64) != Some(out.len() as u64) {
        return Err(StoreError::Pixels(format!(
            "a buffer of {} bytes for {elements} samples of {size} bytes",
            out.len()
        )));
    }
    decode_into(array, subset, &shape, size, out).map_err(|e| storage_error(remote, e))
}

/// zarrs' decoding of `subset` (of `shape`) into `out`, which holds
/// exactly its samples of `size` bytes.
#[allow(unsafe_code)]
fn decode_into<S>(
    array: &Array<S>,
    subset: &[Range<u64>; 5],
    shape: &[u64],
    size: usize,
    out: &mut [u8],
) -> Result<(), zarrs::array::ArrayError>
where
    S: ReadableStorageTraits + ?Sized + 'static,
{
    use zarrs::array::{ArrayBytesFixedDisjointView, ArraySubset};
    let whole = ArraySubset::new_with_shape(shape.to_vec());
    // SAFETY: the view spans all of `out`, which this function borrows
    // mutably, so no other view or reference to those bytes exists while
    // zarrs writes through it; zarrs writes each chunk's disjoint part.
    let mut view = unsafe {
        ArrayBytesFixedDisjointView::new(
            unsafe_cell_slice::UnsafeCellSlice::new(out),
            size,
            shape,
            whole,
        )
    }
    .map_err(|e| zarrs::array::ArrayError::Other(e.to_string()))?;
    array.retrieve_array_subset_into(subset, (&mut view).into())
}

/// A zarrs error of a store: an outage of `remote` when the store is one.
pub(super) fn storage_error(remote: Option<&'static str>, e: impl std::fmt::Display) -> StoreError {
    let message = e.to_string();
    // zarrs reports I/O failures as text; a full disk is the client's 507
    if message.contains("No space left on device") {
        return StoreError::StorageFull(message);
    }
    if message.contains(MISSING_CHUNK) {
        return StoreError::MissingChunk(message);
    }
    match remote {
        Some(component) => StoreError::Unavailable { component, message },
        None => StoreError::Pixels(message),
    }
}

impl<S> PixelReader for ZarrReader<S>
where
    S: ReadableStorageTraits + ?Sized + 'static,
{
    fn layout(&self) -> &ArrayLayout {
        &self.layout
    }

    fn read_region(
        &self,
        level: u32,
        plane: PlaneIndex,
        rows: Range<u64>,
        columns: Range<u64>,
        out: &mut [u8],
    ) -> Result<(), StoreError> {
        self.layout
            .check_region(&self.id, level, plane, &rows, &columns)?;
        let Some(stored) = self.arrays.get(level as usize) else {
            return Err(StoreError::Pixels(format!(
                "{} stores levels 0 to {}, not {level}",
                self.id,
                self.arrays.len().saturating_sub(1)
            )));
        };
        if let Some(Some(codecs)) = self.whole_chunks.get(level as usize) {
            let read = codecs
                .read_whole_subchunks(
                    stored,
                    self.order.plane(plane),
                    rows.clone(),
                    columns.clone(),
                    out,
                )
                .map_err(|e| match e {
                    ReadError::Storage(e) => storage_error(self.remote, e),
                    ReadError::Corrupt { chunk, what } => {
                        StoreError::Pixels(format!("chunk {chunk} of {}: {what}", self.id))
                    }
                })?;
            if read {
                return Ok(());
            }
        }
        let subset = plane_subset(self.order, plane, rows, columns);
        read_subset(stored, &subset, out, self.remote)
    }
}
