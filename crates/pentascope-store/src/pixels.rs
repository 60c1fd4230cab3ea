//! Chunked pixel storage behind [`PixelStore`]. [`ZarrStore`] keeps each
//! image as an OME-Zarr (NGFF 0.5, Zarr v3) group on a local directory:
//!
//! ```text
//! <root>/image_7.zarr/zarr.json     group, attributes {"ome": {"version": "0.5", "multiscales": …}}
//! <root>/image_7.zarr/0/zarr.json   array: TZCYX, dimension_names, zstd
//! <root>/image_7.zarr/0/c/…         chunks
//! ```
//!
//! A chunk is one whole plane (`1×1×1×Y×X`) when the plane is at most
//! 16 MiB, so a slice reads one chunk; larger planes are cut into tiles of
//! up to 2048 columns. An image is written under `<root>/.staging/` and
//! published by renaming its directory, so a reader never sees a partial
//! image and a failed write leaves nothing behind.

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pentascope_core::tiff::PhysicalSizes;
use pentascope_core::{DType, PlaneIndex, Shape5};
use rayon::prelude::*;
use zarrs::array::{Array, ArrayBuilder, ArrayBytes, FillValue};
use zarrs::filesystem::FilesystemStore;
use zarrs::group::GroupBuilder;
use zarrs::storage::{
    byte_range::ByteRangeIterator, Bytes, ListableStorageTraits, MaybeBytesIterator,
    OffsetBytesIterator, ReadableStorageTraits, ReadableWritableStorageTraits, StorageError,
    StoreKey, StoreKeys, StoreKeysPrefixes, StorePrefix, WritableStorageTraits,
};

use crate::error::StoreError;
use crate::record::ImageId;

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

/// When written pixels are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every chunk file is flushed (fsync) before the image is published:
    /// a published image survives a power failure. Ingest then runs at the
    /// disk's synchronous write speed.
    #[default]
    Sync,
    /// Chunk files are left to the operating system to flush (within about
    /// 30 s on Linux). Faster on slow disks; an OS crash right after an
    /// upload can lose that image's pixels.
    Os,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sync" => Ok(Durability::Sync),
            "os" => Ok(Durability::Os),
            other => Err(format!("durability must be sync or os, got {other:?}")),
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

/// What a stored image says about itself in its NGFF metadata.
#[derive(Debug, Clone, Default)]
pub struct ImageAttributes {
    /// Display name.
    pub name: String,
    /// Channel labels.
    pub channel_names: Vec<String>,
    /// Physical pixel sizes, for the NGFF scale transform.
    pub physical_sizes: PhysicalSizes,
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
        zstd_level: i32,
    ) -> Result<Box<dyn PixelWriter>, StoreError>;
    /// Opens a published image for reading.
    fn open(&self, id: ImageId) -> Result<Arc<dyn PixelReader>, StoreError>;
    /// Removes a published image's pixels (no error if absent).
    fn delete(&self, id: ImageId) -> Result<(), StoreError>;
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
    ) -> Result<(), StoreError>;
}

/// The pixel store a storage URL names: `s3://bucket/prefix` or a local
/// directory path. Must be called within a Tokio runtime (S3).
pub fn open_store(url: &str, durability: Durability) -> Result<Arc<dyn PixelStore>, StoreError> {
    if url.starts_with("s3://") {
        Ok(Arc::new(crate::s3::S3Store::from_url(url)?))
    } else {
        let path = url.strip_prefix("file://").unwrap_or(url);
        Ok(Arc::new(ZarrStore::new(Path::new(path), durability)?))
    }
}

/// OME-Zarr on a local directory.
#[derive(Debug, Clone)]
pub struct ZarrStore {
    root: PathBuf,
    durability: Durability,
}

impl ZarrStore {
    /// A store rooted at `root` (created if needed).
    pub fn new(root: &Path, durability: Durability) -> Result<ZarrStore, StoreError> {
        std::fs::create_dir_all(root.join(".staging"))?;
        Ok(ZarrStore {
            root: root.to_path_buf(),
            durability,
        })
    }

    fn published(&self, id: ImageId) -> PathBuf {
        self.root.join(format!("{id}.zarr"))
    }

    fn staged(&self, id: ImageId) -> PathBuf {
        self.root.join(".staging").join(format!("{id}.zarr"))
    }
}

fn zarr_type(dtype: DType) -> zarrs::array::DataType {
    use zarrs::array::data_type as dt;
    match dtype {
        DType::U8 => dt::uint8(),
        DType::U16 => dt::uint16(),
        DType::U32 => dt::uint32(),
        DType::U64 => dt::uint64(),
        DType::I8 => dt::int8(),
        DType::I16 => dt::int16(),
        DType::I32 => dt::int32(),
        DType::I64 => dt::int64(),
        DType::F32 => dt::float32(),
        DType::F64 => dt::float64(),
    }
}

fn dtype_of(data_type: &zarrs::array::DataType) -> Option<DType> {
    DType::ALL.into_iter().find(|d| zarr_type(*d) == *data_type)
}

/// UDUNITS-2 names, as NGFF requires, for the units files commonly use.
fn ngff_unit(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "µm" | "um" | "micron" | "micrometer" | "\u{3bc}m" => "micrometer",
        "nm" | "nanometer" => "nanometer",
        "mm" | "millimeter" => "millimeter",
        "cm" | "centimeter" => "centimeter",
        "m" | "meter" => "meter",
        "Å" | "angstrom" => "angstrom",
        "inch" | "in" => "inch",
        "s" | "sec" | "second" => "second",
        "ms" | "millisecond" => "millisecond",
        "min" | "minute" => "minute",
        "h" | "hour" => "hour",
        _ => return None,
    })
}

fn ngff_attributes(attrs: &ImageAttributes) -> serde_json::Value {
    use serde_json::json;
    let p = &attrs.physical_sizes;
    let axis = |name: &str, kind: &str, size: &Option<pentascope_core::tiff::PhysicalSize>| {
        let mut a = json!({"name": name, "type": kind});
        if let Some(unit) = size.as_ref().and_then(|s| ngff_unit(&s.unit)) {
            a["unit"] = json!(unit);
        }
        a
    };
    let scale_of = |size: &Option<pentascope_core::tiff::PhysicalSize>| {
        size.as_ref()
            .filter(|s| s.value.is_finite() && s.value > 0.0)
            .map_or(1.0, |s| s.value)
    };
    let mut ome = json!({
        "version": "0.5",
        "multiscales": [{
            "name": attrs.name,
            "axes": [
                axis("t", "time", &p.t),
                axis("z", "space", &p.z),
                {"name": "c", "type": "channel"},
                axis("y", "space", &p.y),
                axis("x", "space", &p.x),
            ],
            "datasets": [{
                "path": "0",
                "coordinateTransformations": [{
                    "type": "scale",
                    "scale": [scale_of(&p.t), scale_of(&p.z), 1.0, scale_of(&p.y), scale_of(&p.x)],
                }],
            }],
        }],
    });
    if !attrs.channel_names.is_empty() {
        ome["omero"] = json!({
            "channels": attrs.channel_names.iter().map(|n| json!({"label": n})).collect::<Vec<_>>()
        });
    }
    json!({ "ome": ome })
}

/// Writes the NGFF group and the empty array of a new image into `store`.
pub(crate) fn create_image<S>(
    store: Arc<S>,
    layout: &ArrayLayout,
    attributes: &ImageAttributes,
    zstd_level: i32,
) -> Result<Array<S>, StoreError>
where
    S: ReadableWritableStorageTraits + ?Sized + 'static,
{
    let mut group = GroupBuilder::new()
        .build(store.clone(), "/")
        .map_err(StoreError::pixels)?;
    if let serde_json::Value::Object(map) = ngff_attributes(attributes) {
        group.attributes_mut().extend(map);
    }
    group.store_metadata().map_err(StoreError::pixels)?;
    let array = ArrayBuilder::new(
        layout.shape.to_array().to_vec(),
        layout.chunk_shape().to_vec(),
        zarr_type(layout.dtype),
        FillValue::new(vec![0u8; layout.dtype.size()]),
    )
    .bytes_to_bytes_codecs(vec![Arc::new(zarrs::array::codec::ZstdCodec::new(
        zstd_level, false,
    ))])
    .dimension_names(Some(["t", "z", "c", "y", "x"]))
    .build(store, "/0")
    .map_err(StoreError::pixels)?;
    array.store_metadata().map_err(StoreError::pixels)?;
    Ok(array)
}

/// Opens the array of a published image in `store`.
pub(crate) fn open_image<S>(
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
    let array = Array::open(store, "/0").map_err(|e| storage_error(remote, e))?;
    let shape = array.shape();
    let chunk = array
        .chunk_shape(&[0, 0, 0, 0, 0])
        .map_err(StoreError::pixels)?;
    let dtype = dtype_of(array.data_type())
        .ok_or_else(|| StoreError::Pixels(format!("unsupported data type in {id}")))?;
    if shape.len() != 5 || chunk.len() != 5 {
        return Err(StoreError::Pixels(format!("{id} is not a 5D array")));
    }
    let layout = ArrayLayout {
        shape: Shape5::new(shape[0], shape[1], shape[2], shape[3], shape[4]),
        dtype,
        chunk_y: chunk[3].get(),
        chunk_x: chunk[4].get(),
    };
    Ok(Arc::new(ZarrReader {
        remote,
        array,
        layout,
    }))
}

impl PixelStore for ZarrStore {
    fn create(
        &self,
        id: ImageId,
        layout: ArrayLayout,
        attributes: &ImageAttributes,
        zstd_level: i32,
    ) -> Result<Box<dyn PixelWriter>, StoreError> {
        let dir = self.staged(id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let store = Arc::new(StagingStore {
            inner: FilesystemStore::new(&dir).map_err(StoreError::pixels)?,
        });
        let array = create_image(store, &layout, attributes, zstd_level)?;
        let (staged, published, durability) = (dir.clone(), self.published(id), self.durability);
        Ok(Box::new(ZarrWriter {
            remote: None,
            array,
            layout,
            on_commit: Box::new(move || publish_directory(&staged, &published, durability)),
            on_abort: Box::new(move || {
                let _ = std::fs::remove_dir_all(&dir);
            }),
        }))
    }

    fn open(&self, id: ImageId) -> Result<Arc<dyn PixelReader>, StoreError> {
        let dir = self.published(id);
        if !dir.is_dir() {
            return Err(StoreError::NotFound(id.to_string()));
        }
        open_image(
            Arc::new(FilesystemStore::new(&dir).map_err(StoreError::pixels)?),
            id,
            None,
        )
    }

    fn delete(&self, id: ImageId) -> Result<(), StoreError> {
        match std::fs::remove_dir_all(self.published(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn clear_staging(&self) -> Result<(), StoreError> {
        let staging = self.root.join(".staging");
        if staging.exists() {
            std::fs::remove_dir_all(&staging)?;
        }
        std::fs::create_dir_all(&staging)?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "local"
    }

    fn ping(&self) -> Result<(), StoreError> {
        std::fs::metadata(&self.root)?;
        Ok(())
    }
}

/// Moves a staged image directory to its published place, flushing it to
/// disk first when `durability` asks for it.
fn publish_directory(
    staged: &Path,
    published: &Path,
    durability: Durability,
) -> Result<(), StoreError> {
    let parent = published
        .parent()
        .ok_or_else(|| StoreError::Pixels("image path has no parent".into()))?;
    std::fs::create_dir_all(parent)?;
    if durability == Durability::Sync {
        // one batch of flushes at the end lets the disk write in bulk,
        // instead of a flush per chunk while chunks are produced
        sync_tree(staged)?;
    }
    std::fs::rename(staged, published)?;
    if durability == Durability::Sync {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Writes one image into a zarrs store; what publishing and discarding mean
/// depends on the backend.
pub(crate) struct ZarrWriter<S: ?Sized> {
    /// Failures of this store are outages of that component (remote
    /// stores), rather than faults of the pixel store itself.
    pub(crate) remote: Option<&'static str>,
    pub(crate) array: Array<S>,
    pub(crate) layout: ArrayLayout,
    pub(crate) on_commit: Box<dyn FnOnce() -> Result<(), StoreError> + Send + Sync>,
    pub(crate) on_abort: Box<dyn FnOnce() + Send + Sync>,
}

fn plane_subset(plane: PlaneIndex, rows: Range<u64>, width: u64) -> [Range<u64>; 5] {
    [
        plane.t..plane.t + 1,
        plane.z..plane.z + 1,
        plane.c..plane.c + 1,
        rows,
        0..width,
    ]
}

impl<S> PixelWriter for ZarrWriter<S>
where
    S: ReadableWritableStorageTraits + ?Sized + 'static,
{
    fn layout(&self) -> &ArrayLayout {
        &self.layout
    }

    fn write_band(&self, plane: PlaneIndex, y0: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let row_bytes = self.layout.shape.x * self.layout.dtype.size() as u64;
        let rows = bytes.len() as u64 / row_bytes;
        let subset = plane_subset(plane, y0..y0 + rows, self.layout.shape.x);
        self.array
            .store_array_subset(&subset, ArrayBytes::new_flen(Cow::Borrowed(bytes)))
            .map_err(|e| storage_error(self.remote, e))
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        (self.on_commit)()
    }

    fn abort(self: Box<Self>) {
        (self.on_abort)()
    }
}

/// Flushes every file and directory below `dir` to disk.
fn sync_tree(dir: &Path) -> Result<(), StoreError> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < dirs.len() {
        for entry in std::fs::read_dir(&dirs[i])? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                dirs.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
        i += 1;
    }
    files
        .par_iter()
        .chain(dirs.par_iter())
        .try_for_each(|p| std::fs::File::open(p)?.sync_all())?;
    Ok(())
}

/// The store images are written through while staged: a plain directory
/// like [`FilesystemStore`] (which it delegates reads and listing to), but
/// whose writes do not flush each chunk file; [`ZarrWriter::commit`] flushes
/// them all at once according to [`Durability`].
struct StagingStore {
    inner: FilesystemStore,
}

impl ReadableStorageTraits for StagingStore {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        self.inner.get_partial_many(key, byte_ranges)
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

impl WritableStorageTraits for StagingStore {
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        let path = self.inner.key_to_fspath(key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, &value)?;
        Ok(())
    }

    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> Result<(), StorageError> {
        self.inner.set_partial_many(key, offset_values)
    }

    fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.erase(key)
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.inner.erase_prefix(prefix)
    }

    fn supports_set_partial(&self) -> bool {
        false
    }
}

impl ListableStorageTraits for StagingStore {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.inner.list()
    }

    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.inner.list_prefix(prefix)
    }

    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.inner.list_dir(prefix)
    }

    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.inner.size_prefix(prefix)
    }
}

struct ZarrReader<S: ?Sized> {
    remote: Option<&'static str>,
    array: Array<S>,
    layout: ArrayLayout,
}

/// A zarrs error of a store: an outage of `remote` when the store is one.
pub(crate) fn storage_error(remote: Option<&'static str>, e: impl std::fmt::Display) -> StoreError {
    match remote {
        Some(component) => StoreError::Unavailable {
            component,
            message: e.to_string(),
        },
        None => StoreError::pixels(e),
    }
}

impl<S> PixelReader for ZarrReader<S>
where
    S: ReadableStorageTraits + ?Sized + 'static,
{
    fn layout(&self) -> &ArrayLayout {
        &self.layout
    }

    fn read_rows(
        &self,
        plane: PlaneIndex,
        rows: Range<u64>,
        out: &mut [u8],
    ) -> Result<(), StoreError> {
        self.layout.shape.check_plane(plane)?;
        let subset = plane_subset(plane, rows, self.layout.shape.x);
        let bytes: ArrayBytes<'static> = self
            .array
            .retrieve_array_subset(&subset)
            .map_err(|e| storage_error(self.remote, e))?;
        let data = bytes.into_fixed().map_err(StoreError::pixels)?;
        if data.len() != out.len() {
            return Err(StoreError::Pixels(format!(
                "read {} bytes where {} were expected",
                data.len(),
                out.len()
            )));
        }
        out.copy_from_slice(&data);
        Ok(())
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

    #[test]
    fn write_commit_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = ZarrStore::new(dir.path(), Durability::Sync).unwrap();
        let layout = ArrayLayout::for_image(Shape5::new(1, 2, 1, 3, 4), DType::U16);
        let id = ImageId(5);
        let w = store
            .create(id, layout, &ImageAttributes::default(), ZSTD_LEVEL)
            .unwrap();
        let plane: Vec<u16> = (0..12).collect();
        w.write_band(PlaneIndex::new(0, 1, 0), 0, bytemuck::cast_slice(&plane))
            .unwrap();
        assert!(store.open(id).is_err(), "not visible before commit");
        w.commit().unwrap();
        let r = store.open(id).unwrap();
        assert_eq!(*r.layout(), layout);
        let mut out = vec![0u16; 12];
        r.read_rows(
            PlaneIndex::new(0, 1, 0),
            0..3,
            bytemuck::cast_slice_mut(&mut out),
        )
        .unwrap();
        assert_eq!(out, plane);
        r.read_rows(
            PlaneIndex::new(0, 0, 0),
            0..3,
            bytemuck::cast_slice_mut(&mut out),
        )
        .unwrap();
        assert_eq!(out, vec![0; 12], "unwritten planes read as the fill value");
        store.delete(id).unwrap();
        assert!(store.open(id).is_err());
    }
}
