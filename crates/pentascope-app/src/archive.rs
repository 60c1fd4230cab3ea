//! ZIP archives of one dataset's files (a Micro-Manager or NDTiff folder,
//! a multi-file OME-TIFF set, or a single TIFF), uploaded or imported whole: unpacked under limits into
//! a folder of the spool, then the dataset is imported as `pentascope
//! ingest` imports that folder. An archive is hostile input like any file:
//! entry count, unpacked bytes, names (no path leaves the folder, no name
//! twice, no links) and methods (stored or deflated, unencrypted) are
//! checked before or while anything is written, and the folder is removed
//! whatever happens.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use pentascope_core::{Limit, Limits};
use pentascope_passes::cancel::Cancel;
use pentascope_store::StoreError;
use pentascope_tiff::flavour::ndtiff;
use zip::CompressionMethod;

use crate::error::AppError;

/// Most entries (files and folders) an archive may hold: a dataset has at
/// most [`pentascope_tiff::MAX_DATASET_FILES`] TIFF files, and a few
/// metadata files beside them.
pub const MAX_ARCHIVE_ENTRIES: usize = 1024;

/// Most bytes an archive may unpack to per byte of archive (a deflated
/// entry of zeros grows a thousandfold; microscopy data a few times).
pub const MAX_UNPACKED_PER_ARCHIVE_BYTE: u64 = 64;

/// Whether the file at `path` begins as a ZIP archive does (a local file
/// header); TIFF files begin with `II` or `MM`, so the two never meet.
pub fn is_zip(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"PK\x03\x04")
}

/// An archive unpacked: the folder (removed when dropped) and the file the
/// dataset is opened by.
pub(crate) struct Unpacked {
    /// Holds the archive's files.
    _folder: tempfile::TempDir,
    /// The dataset's first TIFF file.
    pub main: PathBuf,
    /// Its path inside the archive.
    pub inner_name: String,
}

/// Unpacks `archive` into a new folder under `spool` and finds its one
/// dataset. At most `max_bytes` are unpacked (and at most
/// [`MAX_UNPACKED_PER_ARCHIVE_BYTE`] per archive byte); the work stops at
/// the next read once `cancel` is.
pub(crate) fn unpack(
    archive: &Path,
    spool: &Path,
    max_bytes: u64,
    limits: &Limits,
    cancel: &Cancel,
) -> Result<Unpacked, AppError> {
    let file = File::open(archive).map_err(StoreError::Io)?;
    let archive_bytes = file.metadata().map_err(StoreError::Io)?.len();
    let declared = declared_entries(&file, archive_bytes).map_err(StoreError::Io)?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| malformed(format!("not a readable ZIP archive: {e}")))?;
    // the reader keeps one entry per name: more entries than names is a
    // name given twice
    if declared.is_some_and(|n| n > zip.len()) {
        return Err(AppError::InvalidArguments(format!(
            "the archive lists {} entries under {} names: a name is given twice",
            declared.unwrap_or_default(),
            zip.len()
        )));
    }
    if zip.len() > MAX_ARCHIVE_ENTRIES {
        return Err(AppError::InvalidArguments(format!(
            "the archive has {} entries; at most {MAX_ARCHIVE_ENTRIES} are accepted (one \
             dataset's files)",
            zip.len()
        )));
    }
    let budget = max_bytes.min(
        archive_bytes
            .saturating_mul(MAX_UNPACKED_PER_ARCHIVE_BYTE)
            .saturating_add(1 << 20),
    );
    let folder = tempfile::Builder::new()
        .prefix("archive-")
        .tempdir_in(spool)
        .map_err(StoreError::Io)?;
    let mut names = HashSet::new();
    let mut unpacked = 0u64;
    let mut buffer = vec![0u8; 1 << 20];
    for index in 0..zip.len() {
        cancel.check()?;
        // what an entry is, read without decrypting or inflating it
        let (relative, is_dir) = {
            let entry = zip
                .by_index_raw(index)
                .map_err(|e| malformed(format!("entry {index} cannot be read: {e}")))?;
            let shown = entry
                .name()
                .map_or_else(|e| format!("#{index} ({e})"), |n| n.into_owned());
            if entry.encrypted() {
                return Err(unsupported(format!(
                    "entry {shown:?} is encrypted; pack the files without a password"
                )));
            }
            if entry.is_symlink() {
                return Err(AppError::InvalidArguments(format!(
                    "entry {shown:?} is a symbolic link; an archive holds files and folders only"
                )));
            }
            if !matches!(
                entry.compression(),
                CompressionMethod::Stored | CompressionMethod::Deflated
            ) {
                return Err(unsupported(format!(
                    "entry {shown:?} is compressed with {}; stored and deflated entries are \
                     read (what `zip` and most archivers write by default)",
                    entry.compression()
                )));
            }
            let Some(relative) = entry.enclosed_name() else {
                return Err(AppError::InvalidArguments(format!(
                    "entry {shown:?} names a path outside the archive"
                )));
            };
            (relative, entry.is_dir())
        };
        let target = folder.path().join(&relative);
        if is_dir {
            std::fs::create_dir_all(&target).map_err(StoreError::Io)?;
            continue;
        }
        if !names.insert(relative.clone()) {
            return Err(AppError::InvalidArguments(format!(
                "the archive holds {} twice",
                relative.display()
            )));
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(StoreError::Io)?;
        }
        let mut entry = zip
            .by_index(index)
            .map_err(|e| malformed(format!("{} cannot be read: {e}", relative.display())))?;
        let mut out = File::create_new(&target).map_err(|e| {
            AppError::InvalidArguments(format!(
                "{} cannot be unpacked ({e}): is its name also a folder's?",
                relative.display()
            ))
        })?;
        loop {
            let n = entry.read(&mut buffer).map_err(|e| {
                malformed(format!("{} cannot be unpacked: {e}", relative.display()))
            })?;
            if n == 0 {
                break;
            }
            unpacked += n as u64;
            if unpacked > budget {
                return Err(AppError::TooLarge {
                    limit: Limit::MaxUploadBytes,
                    message: format!(
                        "the archive unpacks to more than {budget} bytes: at most \
                         {MAX_UNPACKED_PER_ARCHIVE_BYTE} times its size, and at most the upload \
                         limit"
                    ),
                });
            }
            out.write_all(&buffer[..n]).map_err(StoreError::Io)?;
            cancel.check()?;
        }
    }
    let (main, inner_name) = one_dataset(folder.path(), limits)?;
    Ok(Unpacked {
        _folder: folder,
        main,
        inner_name,
    })
}

/// How many entries the archive's end of central directory record lists
/// (`None` where it does not say: ZIP64 archives, or no record found, which
/// the reader then refuses).
fn declared_entries(file: &File, len: u64) -> std::io::Result<Option<usize>> {
    use std::os::unix::fs::FileExt;
    // the record (22 bytes) ends the file, after a comment of at most 64 KiB
    let tail_len = len.min(22 + 0xFFFF);
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact_at(&mut tail, len - tail_len)?;
    let Some(at) = tail
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .filter(|at| at + 22 <= tail.len())
    else {
        return Ok(None);
    };
    let total = u16::from_le_bytes([tail[at + 10], tail[at + 11]]);
    Ok((total != 0xFFFF).then_some(usize::from(total)))
}

/// The first file of the one dataset under `root`: its TIFF files grouped
/// as `pentascope ingest` groups a folder's (a Micro-Manager dataset's or
/// a multi-file OME-TIFF set's files together, an NDTiff folder's
/// together), in path order.
fn one_dataset(root: &Path, limits: &Limits) -> Result<(PathBuf, String), AppError> {
    let mut tiffs = Vec::new();
    let mut ndtiff_folders = HashSet::new();
    walk(root, &mut tiffs, &mut ndtiff_folders)?;
    tiffs.sort();
    // dataset → its first file
    let mut datasets: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    let mut read_with: HashSet<PathBuf> = HashSet::new();
    for path in &tiffs {
        if read_with.contains(path) {
            continue;
        }
        let folder = path.parent().unwrap_or(root).to_path_buf();
        if ndtiff_folders.contains(&folder) {
            datasets.entry(folder).or_insert_with(|| path.clone());
            continue;
        }
        for other in pentascope_tiff::dataset_files(path, limits).unwrap_or_default() {
            read_with.insert(other);
        }
        datasets.insert(path.clone(), path.clone());
    }
    let inner = |p: &Path| {
        p.strip_prefix(root)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    match datasets.len() {
        0 => Err(unsupported(format!(
            "the archive holds no TIFF file (names ending in .{})",
            pentascope_tiff::TIFF_ENDINGS.join(", .")
        ))),
        1 => {
            let main = datasets.into_values().next().expect("one dataset");
            let name = inner(&main);
            Ok((main, name))
        }
        n => {
            let listed: Vec<String> = datasets.values().take(5).map(|p| inner(p)).collect();
            Err(AppError::InvalidArguments(format!(
                "the archive holds {n} images ({}{}); upload one dataset (one image, or one \
                 Micro-Manager, NDTiff or multi-file OME-TIFF folder) per archive",
                listed.join(", "),
                if n > 5 { ", …" } else { "" }
            )))
        }
    }
}

fn walk(
    dir: &Path,
    tiffs: &mut Vec<PathBuf>,
    ndtiff_folders: &mut HashSet<PathBuf>,
) -> Result<(), AppError> {
    for entry in std::fs::read_dir(dir).map_err(StoreError::Io)? {
        let path = entry.map_err(StoreError::Io)?.path();
        if path.is_dir() {
            walk(&path, tiffs, ndtiff_folders)?;
        } else if path.file_name().is_some_and(|n| n == ndtiff::INDEX_NAME) {
            ndtiff_folders.insert(dir.to_path_buf());
        } else if pentascope_tiff::is_tiff_name(&path) {
            tiffs.push(path);
        }
    }
    Ok(())
}

/// 422: an archive whose structure is broken.
fn malformed(message: String) -> AppError {
    AppError::Archive {
        unsupported: false,
        message,
    }
}

/// 415: an archive that uses what is not read.
fn unsupported(message: String) -> AppError {
    AppError::Archive {
        unsupported: true,
        message,
    }
}
