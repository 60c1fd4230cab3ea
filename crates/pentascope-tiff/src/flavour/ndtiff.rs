//! Micro-Manager's NDTiff (v2 and v3) datasets, read from disk as tifffile
//! reads them (`_series_ndtiff`): the images are listed in `NDTiff.index`
//! beside the TIFF files, each entry naming its axes' coordinates, its file
//! and its pixels' offset; the TIFF structure of the files is only read for
//! each file's first page, the key frame whose layout every image of that
//! file shares. A file uploaded alone has no index: it is read as an
//! ordinary TIFF, as tifffile reads it then.
//!
//! Everything the index declares is bounded before it is used: its entries
//! by [`Limits::max_pages`], each coordinate object and file name by a few
//! KiB, the files by [`MAX_DATASET_FILES`]; file names must name a file
//! in the same folder; every image must lie within its file.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde_json::Value as Json;

use super::micromanager::{MM_SUMMARY_HEADER, NDTIFF_HEADER};
use crate::flavour::{Interpretation, OriginalMetadata};
use crate::ifd::{self, ChainWalk, Codec, IfdChain, PageLayout};
use crate::DType;
use crate::{Flavour, MAX_DATASET_FILES};
use crate::{Limit, Limits, TiffError};

/// The index file's name, beside the dataset's TIFF files.
pub const INDEX_NAME: &str = "NDTiff.index";
/// The most bytes of one entry's coordinates (a small JSON object).
const MAX_AXES_BYTES: u32 = 64 << 10;
/// The most coordinates (dimensions) an image may have.
const MAX_DIMENSIONS: usize = 16;
/// The most bytes of one entry's file name.
const MAX_NAME_BYTES: u32 = 4096;
/// Bytes of an entry's fixed fields: data offset, width, height, pixel
/// type, compression, metadata offset, length and compression.
const ENTRY_FIELDS_BYTES: usize = 32;

/// An NDTiff dataset: its files (the opened one first), the pages (each a
/// key frame's layout at an image's offset, grouped by file, with the
/// first page of each file) and how they are placed.
pub(crate) struct Dataset {
    pub files: Vec<(usize, File, u64)>,
    pub pages: Vec<Result<PageLayout, TiffError>>,
    pub interpretation: Interpretation,
}

/// The summary metadata of an NDTiff file (version 2 or later), or `None`
/// where the file is none: a Micro-Manager file (its first page's
/// MicroManagerMetadata tag) with NDTiff's words after the TIFF header:
/// the major version, for version 3 the minor version, then the summary's
/// magic number, length and JSON, as tifffile reads them. A summary that
/// is missing, too long for [`Limits::max_metadata_bytes`] or not JSON is
/// `Null`: the pixels do not depend on it.
fn ndtiff_summary(
    file: &File,
    chain: &IfdChain,
    limits: &Limits,
) -> Result<Option<Json>, TiffError> {
    if !chain.micromanager_tag || chain.file_len < 28 {
        return Ok(None);
    }
    let mut words = [0u8; 20];
    file.read_exact_at(&mut words, 8)?;
    let word = |k: usize| {
        let b: [u8; 4] = words[4 * k..4 * k + 4].try_into().expect("four bytes");
        if chain.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    if word(0) != NDTIFF_HEADER || word(1) < 2 {
        return Ok(None);
    }
    // version 2: magic, length at 16; version 3: minor version, magic,
    // length at 20
    let (magic, len, at) = if word(2) == MM_SUMMARY_HEADER {
        (word(2), word(3), 24)
    } else {
        (word(3), word(4), 28)
    };
    let len = u64::from(len);
    if magic != MM_SUMMARY_HEADER || len > limits.max_metadata_bytes || at + len > chain.file_len {
        return Ok(Some(Json::Null));
    }
    let mut text = vec![0u8; len as usize];
    file.read_exact_at(&mut text, at)?;
    Ok(Some(serde_json::from_slice(&text).unwrap_or(Json::Null)))
}

/// One entry of the index.
struct Entry {
    coordinates: Coordinates,
    file: String,
    data_offset: u64,
    width: i32,
    height: i32,
    pixel_type: i32,
    compression: i32,
}

/// A coordinate given by name (a channel's): its names numbered in order
/// of appearance.
#[derive(Default)]
struct Category {
    names: Vec<String>,
    numbers: HashMap<String, i64>,
}

impl Category {
    /// `name`'s number, the next one where it is new.
    fn number(&mut self, name: &str) -> i64 {
        if let Some(n) = self.numbers.get(name) {
            return *n;
        }
        let n = self.names.len() as i64;
        self.names.push(name.to_string());
        self.numbers.insert(name.to_string(), n);
        n
    }
}

/// An entry's coordinates, a JSON object in its own key order (which
/// orders dimensions that vary alike, as in tifffile).
struct Coordinates(Vec<(String, Json)>);

impl Coordinates {
    fn get(&self, key: &str) -> Option<&Json> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<'de> serde::Deserialize<'de> for Coordinates {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Coordinates;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Coordinates, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, Json>()? {
                    pairs.push(pair);
                }
                Ok(Coordinates(pairs))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// The NDTiff dataset the file at `path` belongs to, or `None` where it is
/// no NDTiff file or has no index beside it.
pub(crate) fn open(
    path: &Path,
    file: &File,
    chain: &IfdChain,
    limits: &Limits,
) -> Result<Option<Dataset>, TiffError> {
    let Some(summary) = ndtiff_summary(file, chain, limits)? else {
        return Ok(None);
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let index_path = dir.join(INDEX_NAME);
    if !index_path.is_file() {
        return Ok(None);
    }
    let own_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let entries = read_index(&index_path, limits)?;
    let Some(first_entry) = entries.first() else {
        return Err(format_error("lists no image".into()));
    };
    if first_entry.coordinates.0.len() > MAX_DIMENSIONS {
        return Err(format_error(format!(
            "gives its first image {} coordinates; pentascope reads at most {MAX_DIMENSIONS}",
            first_entry.coordinates.0.len()
        )));
    }
    // the files, in the order the index first names them, the opened one
    // first; each with its key frame and length
    let mut names: Vec<String> = vec![own_name.clone()];
    let mut file_of: HashMap<String, usize> = HashMap::from([(own_name.clone(), 0)]);
    for entry in &entries {
        if !file_of.contains_key(&entry.file) {
            if names.len() == MAX_DATASET_FILES {
                return Err(TiffError::too_large(
                    Limit::Fixed,
                    format!("{INDEX_NAME} names more than {MAX_DATASET_FILES} files"),
                ));
            }
            file_of.insert(entry.file.clone(), names.len());
            names.push(entry.file.clone());
        }
    }
    let mut files = Vec::with_capacity(names.len());
    for name in &names {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
            return Err(format_error(format!(
                "names the file {name:?}, which is not a file of its folder"
            )));
        }
        let opened = if *name == own_name {
            file.try_clone()?
        } else {
            File::open(dir.join(name))
                .map_err(|e| format_error(format!("names {name}, which cannot be opened: {e}")))?
        };
        let len = opened.metadata()?.len();
        let first = if *name == own_name {
            chain.pages.first().map(|page| match page {
                Ok(layout) => Ok(layout.clone()),
                Err(e) => Err(e.to_string()),
            })
        } else {
            let walk = ChainWalk {
                start: None,
                max_ifds: Some(1),
            };
            ifd::read_ifds(&opened, len, limits, walk)?
                .pages
                .into_iter()
                .next()
                .map(|page| page.map_err(|e| e.to_string()))
        };
        let key_frame = first
            .ok_or_else(|| format_error(format!("names {name}, which has no page")))?
            .map_err(|e| format_error(format!("{name}'s first page: {e}")))?;
        files.push((opened, len, key_frame));
    }
    // coordinates: the first entry's keys, string values numbered in order
    // of appearance (channel names)
    let dims: Vec<String> = first_entry
        .coordinates
        .0
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    let mut categories: HashMap<String, Category> = HashMap::new();
    for (dim, value) in &first_entry.coordinates.0 {
        if let Json::String(v) = value {
            categories.insert(dim.clone(), Category::default());
            categories.get_mut(dim).expect("inserted").number(v);
        }
    }
    // index → (file, entry), the later entry winning; in first-seen order
    let mut places: Vec<Vec<i64>> = Vec::new();
    let mut at: HashMap<Vec<i64>, (usize, usize)> = HashMap::new();
    for (k, entry) in entries.iter().enumerate() {
        let mut index = Vec::with_capacity(dims.len());
        for dim in &dims {
            let value = entry
                .coordinates
                .get(dim)
                .ok_or_else(|| format_error(format!("entry {k} has no coordinate {dim:?}")))?;
            let i = match (categories.get_mut(dim), value) {
                (Some(category), Json::String(v)) => category.number(v),
                (None, Json::Number(n)) => n.as_i64().ok_or_else(|| {
                    format_error(format!("entry {k}'s {dim} is {n}, not an integer"))
                })?,
                _ => {
                    return Err(format_error(format!(
                        "entry {k}'s {dim} is {value}, where the first entry's is {}",
                        first_entry.coordinates.get(dim).unwrap_or(&Json::Null)
                    )))
                }
            };
            index.push(i);
        }
        let file = file_of[&entry.file];
        check_entry(entry, &files[file].2, files[file].1, &names[file], k)?;
        if at.insert(index.clone(), (file, k)).is_none() {
            places.push(index);
        }
    }
    // the extent of the coordinates, and the dimensions in storage order:
    // the one varying least from one image to the next first
    let n = dims.len();
    let low: Vec<i64> = (0..n)
        .map(|d| places.iter().map(|p| p[d]).min().unwrap_or(0))
        .collect();
    let high: Vec<i64> = (0..n)
        .map(|d| places.iter().map(|p| p[d]).max().unwrap_or(0))
        .collect();
    let variation: Vec<u128> = (0..n)
        .map(|d| {
            places
                .windows(2)
                .map(|w| u128::from(w[0][d].abs_diff(w[1][d])))
                .sum()
        })
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|d| variation[*d]);
    let sizes: Vec<u64> = order
        .iter()
        .map(|d| high[*d].abs_diff(low[*d]).saturating_add(1))
        .collect();
    let listed = places.len() as u64;
    let planes = sizes
        .iter()
        .try_fold(1u64, |n, size| n.checked_mul(*size))
        .filter(|planes| {
            planes.saturating_sub(listed) <= crate::flavour::allowed_missing_planes(*planes)
        })
        .ok_or_else(|| {
            TiffError::Format(format!(
                "{INDEX_NAME}'s {listed} images span {} ({}), far more planes than it lists",
                sizes
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" × "),
                order
                    .iter()
                    .map(|d| dims[*d].as_str())
                    .collect::<Vec<_>>()
                    .join(" × ")
            ))
        })?;
    // pages, grouped by file
    let mut per_file: Vec<Vec<(usize, u64)>> = vec![Vec::new(); files.len()];
    for (position, place) in places.iter().enumerate() {
        let (file, k) = at[place];
        per_file[file].push((position, entries[k].data_offset));
    }
    let mut pages = Vec::with_capacity(places.len());
    let mut page_of_place = vec![0usize; places.len()];
    let mut firsts = Vec::with_capacity(files.len());
    for (file, images) in per_file.iter().enumerate() {
        firsts.push(pages.len());
        for (position, offset) in images {
            page_of_place[*position] = pages.len();
            let mut layout = files[file].2.clone();
            layout.offsets = vec![*offset];
            pages.push(Ok(layout));
        }
    }
    let mut plane_pages = vec![None; planes as usize];
    for (position, place) in places.iter().enumerate() {
        let at = order.iter().zip(&sizes).fold(0u64, |at, (d, size)| {
            at * size + place[*d].abs_diff(low[*d])
        });
        plane_pages[at as usize] = Some(page_of_place[position]);
    }
    let mut warnings = Vec::new();
    let missing = planes - listed;
    if missing > 0 {
        warnings.push(format!(
            "{INDEX_NAME} lists no image for {missing} of the {planes} planes its coordinates \
             span; they are left as zeros"
        ));
    }
    let mut axes = Vec::with_capacity(order.len());
    for (d, size) in order.iter().zip(&sizes) {
        let letter = match dims[*d].to_ascii_lowercase().as_str() {
            "time" => 'T',
            "z" | "depth" => 'Z',
            "channel" => 'C',
            _ => 'I',
        };
        if letter != 'I' && axes.iter().any(|(l, _)| *l == letter) {
            return Err(format_error(format!(
                "has two coordinates for axis {letter}"
            )));
        }
        axes.push((letter, *size));
    }
    let channel_names = dims
        .iter()
        .position(|d| d.eq_ignore_ascii_case("channel"))
        .and_then(|d| categories.remove(&dims[d]))
        .map(|category| category.names)
        .unwrap_or_default();
    let files = files
        .into_iter()
        .zip(firsts)
        .map(|((file, len, _), first)| (first, file, len))
        .collect();
    Ok(Some(Dataset {
        files,
        pages,
        interpretation: Interpretation {
            flavour: Flavour::NdTiff,
            axes,
            pages: plane_pages,
            channel_names,
            physical: Default::default(),
            acquisition: Default::default(),
            notes: Default::default(),
            original: (!summary.is_null()).then(|| OriginalMetadata {
                format: "micromanager",
                text: serde_json::json!({ "Summary": summary }).to_string(),
            }),
            warnings,
            contiguous: None,
        }
        .squeezed(),
    }))
}

/// Checks an entry against its file's key frame, as tifffile does (the
/// same width and height, uncompressed, a pixel type of the key frame's
/// sample type), and that its pixels lie within the file.
fn check_entry(
    entry: &Entry,
    key_frame: &PageLayout,
    file_len: u64,
    name: &str,
    k: usize,
) -> Result<(), TiffError> {
    let dtype = match entry.pixel_type {
        0 | 2 => DType::U8,
        1 | 3..=6 => DType::U16,
        other => {
            return Err(format_error(format!(
                "entry {k} has pixel type {other}, which NDTiff does not define"
            )))
        }
    };
    if (i64::from(entry.width), i64::from(entry.height))
        != (i64::from(key_frame.width), i64::from(key_frame.height))
        || dtype != key_frame.dtype
    {
        return Err(format_error(format!(
            "entry {k} is a {}×{} image of pixel type {}, but {name}'s first page is {}×{} {}",
            entry.width,
            entry.height,
            entry.pixel_type,
            key_frame.width,
            key_frame.height,
            key_frame.dtype
        )));
    }
    if entry.compression != 0 || key_frame.codec != Codec::None || key_frame.offsets.len() != 1 {
        return Err(TiffError::Unsupported(format!(
            "NDTiff images that are compressed or in several strips ({name}) are not supported"
        )));
    }
    let end = entry.data_offset.checked_add(key_frame.byte_counts[0]);
    if end.is_none_or(|end| end > file_len) {
        return Err(format_error(format!(
            "entry {k}'s pixels at offset {} run past the end of {name} ({file_len} bytes; \
             truncated?)",
            entry.data_offset
        )));
    }
    Ok(())
}

/// Reads the index's entries, each bounded before it is read.
fn read_index(path: &Path, limits: &Limits) -> Result<Vec<Entry>, TiffError> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut entries = Vec::new();
    // the names and coordinates kept, bounded as a whole like other metadata
    let mut kept_bytes = 0u64;
    loop {
        let mut len = [0u8; 4];
        // the index ends where an entry would start (tifffile stops there)
        match reader.read(&mut len[..1])? {
            0 => break,
            _ => reader.read_exact(&mut len[1..]).map_err(truncated)?,
        }
        if entries.len() as u64 >= limits.max_pages {
            return Err(TiffError::too_large(
                Limit::MaxPages,
                format!(
                    "{INDEX_NAME} lists more than {} images, the configured maximum of pages",
                    limits.max_pages
                ),
            ));
        }
        let axes_len = u32::from_le_bytes(len);
        let axes = bounded(&mut reader, axes_len, MAX_AXES_BYTES, "coordinates")?;
        kept_bytes = keep(kept_bytes, axes_len, limits)?;
        let coordinates = match serde_json::from_slice::<Coordinates>(&axes) {
            Ok(coordinates) => coordinates,
            Err(_) => {
                return Err(format_error(format!(
                    "entry {}'s coordinates are not a JSON object",
                    entries.len()
                )))
            }
        };
        reader.read_exact(&mut len).map_err(truncated)?;
        let name_len = u32::from_le_bytes(len);
        let name = bounded(&mut reader, name_len, MAX_NAME_BYTES, "file name")?;
        kept_bytes = keep(kept_bytes, name_len, limits)?;
        let mut fields = [0u8; ENTRY_FIELDS_BYTES];
        reader.read_exact(&mut fields).map_err(truncated)?;
        let field = |k: usize| {
            let bytes: [u8; 4] = fields[4 * k..4 * k + 4].try_into().expect("four bytes");
            bytes
        };
        entries.push(Entry {
            coordinates,
            file: String::from_utf8_lossy(&name).into_owned(),
            data_offset: u64::from(u32::from_le_bytes(field(0))),
            width: i32::from_le_bytes(field(1)),
            height: i32::from_le_bytes(field(2)),
            pixel_type: i32::from_le_bytes(field(3)),
            compression: i32::from_le_bytes(field(4)),
        });
    }
    Ok(entries)
}

/// The index bytes kept once `len` more are: refused past the metadata
/// limit, so that many entries of long names cannot add up unbounded.
fn keep(kept: u64, len: u32, limits: &Limits) -> Result<u64, TiffError> {
    let kept = kept.saturating_add(u64::from(len));
    if kept > limits.max_metadata_bytes {
        return Err(TiffError::too_large(
            Limit::MaxMetadataBytes,
            format!(
                "{INDEX_NAME} holds more than the configured maximum of {} bytes of metadata \
             in its coordinates and file names",
                limits.max_metadata_bytes
            ),
        ));
    }
    Ok(kept)
}

/// `len` bytes of the index, refused past `most`.
fn bounded(reader: &mut impl Read, len: u32, most: u32, what: &str) -> Result<Vec<u8>, TiffError> {
    if len > most {
        return Err(TiffError::too_large(
            Limit::Fixed,
            format!(
                "an entry of {INDEX_NAME} has {len} bytes of {what}, more than the {most} \
             pentascope reads"
            ),
        ));
    }
    let mut bytes = vec![0u8; len as usize];
    reader.read_exact(&mut bytes).map_err(truncated)?;
    Ok(bytes)
}

fn truncated(_: std::io::Error) -> TiffError {
    format_error("ends inside an entry (truncated?)".into())
}

fn format_error(what: String) -> TiffError {
    TiffError::Format(format!("the NDTiff dataset's {INDEX_NAME} {what}"))
}
