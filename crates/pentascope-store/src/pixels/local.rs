//! [`LocalStore`] keeps each image as an OME-Zarr (NGFF 0.5, Zarr v3) group on a local directory:
//!
//! ```text
//! <root>/image_7.zarr/zarr.json     group, attributes {"ome": {"version": "0.5", "multiscales": …}}
//! <root>/image_7.zarr/0/zarr.json   array: t, c, z, y, x (NGFF's order), dimension_names, codecs
//! <root>/image_7.zarr/0/c/…         chunks
//! ```
//!
//! A chunk is one whole plane (`1×1×1×Y×X`) when the plane is at most
//! 16 MiB, so a slice reads one chunk; larger planes are cut into tiles of
//! up to 2048 columns. An image is written under `<root>/.staging/` and
//! published by renaming its directory, so a reader never sees a partial
//! image and a failed write leaves nothing behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::{
    byte_range::ByteRangeIterator, Bytes, ListableStorageTraits, MaybeBytesIterator,
    OffsetBytesIterator, ReadableStorageTraits, StorageError, StoreKey, StoreKeys,
    StoreKeysPrefixes, StorePrefix, WritableStorageTraits,
};

use super::layout::{ArrayLayout, Compression};
use super::traits::{ImageAttributes, PixelReader, PixelStore, PixelWriter, StoredImages};
use super::zarr::{create_image, group_key, key_size, open_array, read_key, ZarrWriter};
use crate::error::StoreError;
use crate::record::ImageId;

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

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Durability::Sync => "sync",
            Durability::Os => "os",
        })
    }
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

/// OME-Zarr on a local directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    durability: Durability,
}

impl LocalStore {
    /// A store rooted at `root` (created if needed).
    pub fn new(root: &Path, durability: Durability) -> Result<LocalStore, StoreError> {
        std::fs::create_dir_all(root.join(".staging"))?;
        Ok(LocalStore {
            root: root.to_path_buf(),
            durability,
        })
    }

    fn published(&self, id: ImageId) -> PathBuf {
        LocalStore::published_path(&self.root, id)
    }

    /// The directory of image `id`'s published group in a store rooted at
    /// `root` (a backup links its files: they are written once, in
    /// staging, and never again).
    pub fn published_path(root: &Path, id: ImageId) -> PathBuf {
        root.join(format!("{id}.zarr"))
    }

    fn staged(&self, id: ImageId) -> PathBuf {
        self.root.join(".staging").join(format!("{id}.zarr"))
    }

    /// The published group of `id` as a store, if it exists.
    fn group(&self, id: ImageId) -> Result<Option<Arc<FilesystemStore>>, StoreError> {
        let dir = self.published(id);
        if !dir.is_dir() {
            return Ok(None);
        }
        Ok(Some(Arc::new(
            FilesystemStore::new(dir).map_err(StoreError::pixels)?,
        )))
    }

    /// The published group of `id`, if `key` names a file in it: a key
    /// naming one of its folders (`0`, `0/c`) is no object, as on S3,
    /// where the filesystem store would report the folder's size and then
    /// fail to read it.
    fn group_with_object(
        &self,
        id: ImageId,
        key: &str,
    ) -> Result<Option<Arc<FilesystemStore>>, StoreError> {
        let Some(group) = self.group(id)? else {
            return Ok(None);
        };
        let is_file = group_key(key).is_some_and(|k| group.key_to_fspath(&k).is_file());
        Ok(is_file.then_some(group))
    }
}

impl PixelStore for LocalStore {
    fn create(
        &self,
        id: ImageId,
        layout: ArrayLayout,
        attributes: &ImageAttributes,
        compression: Compression,
    ) -> Result<Box<dyn PixelWriter>, StoreError> {
        let dir = self.staged(id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let store = Arc::new(StagingStore {
            inner: FilesystemStore::new(&dir).map_err(StoreError::pixels)?,
        });
        let arrays = create_image(store, &layout, attributes, compression)?;
        let (staged, published, durability) = (dir.clone(), self.published(id), self.durability);
        Ok(Box::new(ZarrWriter {
            remote: None,
            arrays,
            layout,
            downsample: attributes.downsample,
            levels_from_file: attributes.levels_from_file.clone(),
            on_commit: Box::new(move || publish_directory(&staged, &published, durability)),
            on_abort: Box::new(move || {
                let _ = std::fs::remove_dir_all(&dir);
            }),
        }))
    }

    fn key_size(&self, id: ImageId, key: &str) -> Result<Option<u64>, StoreError> {
        match self.group_with_object(id, key)? {
            Some(group) => key_size(&*group, key, None),
            None => Ok(None),
        }
    }

    fn read_key(
        &self,
        id: ImageId,
        key: &str,
        start: u64,
        len: u64,
    ) -> Result<Option<bytes::Bytes>, StoreError> {
        match self.group_with_object(id, key)? {
            Some(group) => read_key(&*group, key, start, len, None),
            None => Ok(None),
        }
    }

    fn open(&self, id: ImageId) -> Result<Arc<dyn PixelReader>, StoreError> {
        let dir = self.published(id);
        if !dir.is_dir() {
            return Err(StoreError::NotFound(id.to_string()));
        }
        open_array(
            Arc::new(FilesystemStore::new(&dir).map_err(StoreError::pixels)?),
            id,
            None,
        )
    }

    fn delete(&self, id: ImageId) -> Result<(), StoreError> {
        for dir in [self.published(id), self.staged(id)] {
            match std::fs::remove_dir_all(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    fn list_images(&self) -> Result<StoredImages, StoreError> {
        Ok(StoredImages {
            published: image_dirs(&self.root)?,
            staged: image_dirs(&self.root.join(".staging"))?,
        })
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

/// The ids of the `image_<n>.zarr` directories in `dir`, ascending (none
/// if `dir` does not exist).
fn image_dirs(dir: &Path) -> Result<Vec<ImageId>, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let id = name
            .to_str()
            .and_then(|n| n.strip_suffix(".zarr"))
            .and_then(|n| n.parse::<ImageId>().ok());
        if let (Some(id), true) = (id, entry.file_type()?.is_dir()) {
            ids.push(id);
        }
    }
    ids.sort();
    Ok(ids)
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

/// How [`copy_tree`] copied files.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// Files hard-linked.
    pub linked: u64,
    /// Files copied.
    pub copied: u64,
    /// Bytes of the files.
    pub bytes: u64,
}

/// Copies the directory tree `from` to `to` (which must not exist). With
/// `link`, each file is hard-linked where the file system allows (for
/// files never written again after they are published, a link is as good
/// as a copy and costs nothing) and copied otherwise. Symbolic links and
/// other special files are refused.
pub fn copy_tree(from: &Path, to: &Path, link: bool) -> Result<Copied, StoreError> {
    std::fs::create_dir(to)?;
    let mut done = Copied::default();
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            let inner = copy_tree(&source, &target, link)?;
            done.linked += inner.linked;
            done.copied += inner.copied;
            done.bytes += inner.bytes;
        } else if kind.is_file() {
            done.bytes += entry.metadata()?.len();
            if link && std::fs::hard_link(&source, &target).is_ok() {
                done.linked += 1;
            } else {
                std::fs::copy(&source, &target)?;
                done.copied += 1;
            }
        } else {
            return Err(StoreError::Corrupt(format!(
                "{} is neither a file nor a directory",
                source.display()
            )));
        }
    }
    Ok(done)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixels::{Compression, ZSTD_LEVEL};
    use pentascope_core::{DType, PlaneIndex, Shape5};

    /// Arrays stored `t, z, c, y, x` (before pentascope wrote NGFF's
    /// order) read as before.
    #[test]
    fn legacy_axis_order_still_reads() {
        use zarrs::array::{ArrayBuilder, FillValue};
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), Durability::Sync).unwrap();
        let id = ImageId(9);
        let fs = Arc::new(zarrs::filesystem::FilesystemStore::new(store.published(id)).unwrap());
        // T=1, Z=2, C=3, 2×2: sample value 10·z + c
        let array = ArrayBuilder::new(
            vec![1, 2, 3, 2, 2],
            vec![1, 1, 1, 2, 2],
            zarrs::array::data_type::uint16(),
            FillValue::new(vec![0, 0]),
        )
        .dimension_names(Some(["t", "z", "c", "y", "x"]))
        .build(fs, "/0")
        .unwrap();
        array.store_metadata().unwrap();
        let values: Vec<u16> = (0..2u16)
            .flat_map(|z| (0..3u16).flat_map(move |c| [10 * z + c; 4]))
            .collect();
        array
            .store_array_subset(
                &[0..1, 0..2, 0..3, 0..2, 0..2],
                zarrs::array::ArrayBytes::new_flen(
                    bytemuck::cast_slice::<u16, u8>(&values).to_vec(),
                ),
            )
            .unwrap();
        let r = store.open(id).unwrap();
        assert_eq!(r.layout().shape, Shape5::new(1, 2, 3, 2, 2));
        let mut out = vec![0u16; 4];
        r.read_rows(
            PlaneIndex::new(0, 1, 2),
            0..2,
            bytemuck::cast_slice_mut(&mut out),
        )
        .unwrap();
        assert_eq!(out, vec![12; 4]);
    }

    /// A plane over 2048 pixels on a side: shards of 512² subchunks, its
    /// pyramid, and every compression an ingest may choose; regions
    /// of each level read back what was written.
    #[test]
    fn sharded_pyramid_round_trips_with_each_compression() {
        use crate::pixels::test_support::{camera_plane, every_compression, write_plane};
        use pentascope_core::pyramid::{downsample_plane, Downsample};
        let (h, w) = (2600u64, 2100u64);
        let plane = camera_plane(h, w);
        for (n, compression) in every_compression().into_iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let store = LocalStore::new(dir.path(), Durability::Os).unwrap();
            let layout = ArrayLayout::for_image(Shape5::new(1, 1, 1, h, w), DType::U16);
            assert_eq!(layout.levels, 3);
            assert_eq!(layout.level_subchunk(0), [512, 512]);
            let id = ImageId(n as i64 + 1);
            write_plane(&store, id, layout, compression, &plane);
            let reader = store.open(id).unwrap();
            assert_eq!(reader.layout().levels, 3, "{compression:?}");
            for level in [0, 2] {
                let full = downsample_plane(&plane, w as usize, level, Downsample::Mean);
                let full = if level == 0 { plane.clone() } else { full };
                let [_, lw] = layout.level_shape(level);
                let (rows, columns) = (100..400u64, 300..500u64);
                let mut out = vec![0u16; 300 * 200];
                reader
                    .read_region(
                        level,
                        PlaneIndex::new(0, 0, 0),
                        rows.clone(),
                        columns.clone(),
                        bytemuck::cast_slice_mut(&mut out),
                    )
                    .unwrap();
                let want: Vec<u16> = rows
                    .flat_map(|y| {
                        full[(y * lw + columns.start) as usize..(y * lw + columns.end) as usize]
                            .to_vec()
                    })
                    .collect();
                assert!(out == want, "{compression:?} level {level}");
            }
        }
    }

    #[test]
    fn write_commit_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), Durability::Sync).unwrap();
        let layout = ArrayLayout::for_image(Shape5::new(1, 3, 1, 3, 4), DType::U16);
        let id = ImageId(5);
        let w = store
            .create(
                id,
                layout,
                &ImageAttributes::default(),
                Compression::Zstd(ZSTD_LEVEL),
            )
            .unwrap();
        let plane: Vec<u16> = (0..12).collect();
        w.write_band(PlaneIndex::new(0, 1, 0), 0, bytemuck::cast_slice(&plane))
            .unwrap();
        let zeros = vec![0u16; 12];
        w.write_band(PlaneIndex::new(0, 2, 0), 0, bytemuck::cast_slice(&zeros))
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
            PlaneIndex::new(0, 2, 0),
            0..3,
            bytemuck::cast_slice_mut(&mut out),
        )
        .unwrap();
        assert_eq!(out, zeros, "a stored plane of fill values reads back");
        let unwritten = r.read_rows(
            PlaneIndex::new(0, 0, 0),
            0..3,
            bytemuck::cast_slice_mut(&mut out),
        );
        assert!(
            matches!(unwritten, Err(StoreError::MissingChunk(_))),
            "a chunk that was never stored is an error, not zeros: {unwritten:?}"
        );
        store.delete(id).unwrap();
        assert!(store.open(id).is_err());
    }

    /// Keys naming a folder of the group (`0`, `0/c`, `0/c/0`) are no
    /// object: no size and nothing to read, as a missing key.
    #[test]
    fn folder_keys_are_not_objects() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path(), Durability::Os).unwrap();
        let layout = ArrayLayout::for_image(Shape5::new(1, 1, 1, 2, 2), DType::U8);
        let id = ImageId(3);
        let w = store
            .create(
                id,
                layout,
                &ImageAttributes::default(),
                Compression::Zstd(ZSTD_LEVEL),
            )
            .unwrap();
        w.write_band(PlaneIndex::new(0, 0, 0), 0, &[1, 2, 3, 4])
            .unwrap();
        w.commit().unwrap();
        assert!(store.key_size(id, "0/zarr.json").unwrap().is_some());
        for folder in ["0", "0/c", "0/c/0", "0/c/0/0/0/0"] {
            assert_eq!(store.key_size(id, folder).unwrap(), None, "{folder}");
            assert_eq!(store.read_key(id, folder, 0, 1).unwrap(), None, "{folder}");
        }
    }
}
