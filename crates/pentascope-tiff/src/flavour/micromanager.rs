//! Micro-Manager MMStack: the header Micro-Manager writes after the TIFF
//! header (summary, index map, display settings, comments) is read while
//! the IFDs are walked; the index map then places each image by its
//! channel, slice, frame and position, across the dataset's files.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::*;

/// The metadata of a Micro-Manager (MMStack) file that places its images,
/// read as tifffile's `read_micromanager_metadata` reads them: the blocks
/// Micro-Manager's header (at offset 8) points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicroManager {
    /// The summary metadata: JSON text (bounded as metadata text), up to a
    /// NUL.
    pub summary: String,
    /// One entry per image: its channel, slice, frame and position, and the
    /// offset of its IFD.
    pub index_map: Vec<[u32; 5]>,
    /// The display settings and the comments blocks (JSON text), where the
    /// header points to them with their magic numbers and they fit in what
    /// the metadata limit leaves after the summary.
    pub display_settings: Option<String>,
    /// See `display_settings`.
    pub comments: Option<String>,
    /// The first image's own metadata (its MicroManagerMetadata tag, JSON
    /// text), within the same budget.
    pub first_image: Option<String>,
    /// The dataset's other files, where the file was read from disk beside
    /// them (`TiffFile::open`).
    pub siblings: Vec<MicroManagerSibling>,
}

/// Another file of a Micro-Manager dataset: its index map, and for each of
/// its IFDs' offsets the page it is among the dataset's pages (after the
/// first file's and the siblings' before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicroManagerSibling {
    /// As [`MicroManager::index_map`].
    pub index_map: Vec<[u32; 5]>,
    /// IFD offset in that file → page.
    pub ifd_pages: HashMap<u64, usize>,
}

/// MicroManagerMetadata (per-page JSON), whose presence on the first page
/// makes tifffile read Micro-Manager's header.
pub(crate) const MICROMANAGER_TAG: u16 = 51123;
/// The magic numbers of Micro-Manager's header (index map, comments,
/// summary) and of the index map block, as tifffile checks them; NDTiff's
/// in place of the comments' marks an NDTiff v1 file, which is no MMStack.
pub(crate) const MM_INDEX_MAP_HEADER: u32 = 54_773_648;
pub(crate) const MM_INDEX_MAP_BLOCK: u32 = 3_453_623;
pub(crate) const MM_SUMMARY_HEADER: u32 = 2_355_492;
pub(crate) const MM_DISPLAY_SETTINGS_HEADER: u32 = 483_765_892;
pub(crate) const MM_DISPLAY_SETTINGS_BLOCK: u32 = 347_834_724;
pub(crate) const MM_COMMENTS_HEADER: u32 = 99_384_722;
pub(crate) const MM_COMMENTS_BLOCK: u32 = 84_720_485;
pub(crate) const NDTIFF_HEADER: u32 = 483_729;
/// Where the summary JSON starts: after the TIFF header and Micro-Manager's
/// eight words.
pub(crate) const MM_SUMMARY_AT: u64 = 40;
/// Bytes of one index map entry: five LONGs.
pub(crate) const MM_INDEX_ENTRY_BYTES: u64 = 20;

/// The Micro-Manager metadata of a file whose first page has a
/// MicroManagerMetadata tag, or `None` where its header is not an MMStack
/// file's (tifffile then reads the file as another flavour). Refused where
/// the index map counts more images than the page limit, or the summary
/// more bytes than the metadata limit, or either runs past the file's end.
pub(crate) fn read_header(
    file: &File,
    big_endian: bool,
    file_len: u64,
    limits: &Limits,
) -> Result<Option<MicroManager>, TiffError> {
    if file_len < MM_SUMMARY_AT {
        return Ok(None);
    }
    let word = |bytes: &[u8]| {
        let bytes: [u8; 4] = bytes.try_into().expect("four bytes");
        if big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        }
    };
    let mut header = [0u8; 32];
    file.read_exact_at(&mut header, 8)?;
    let header: Vec<u32> = header.chunks_exact(4).map(word).collect();
    let (index_header, index_offset) = (header[0], u64::from(header[1]));
    let (display_header, display_offset) = (header[2], u64::from(header[3]));
    let (comments_header, comments_offset) = (header[4], header[5]);
    let (summary_header, summary_len) = (header[6], u64::from(header[7]));
    if index_header != MM_INDEX_MAP_HEADER
        || summary_header != MM_SUMMARY_HEADER
        || (comments_header == NDTIFF_HEADER && comments_offset != 0)
    {
        return Ok(None);
    }
    if summary_len > limits.max_metadata_bytes {
        return Err(TiffError::too_large(
            Limit::MaxMetadataBytes,
            format!(
                "the Micro-Manager summary metadata has {summary_len} bytes, more than the \
             configured maximum of {} bytes of metadata",
                limits.max_metadata_bytes
            ),
        ));
    }
    if MM_SUMMARY_AT + summary_len > file_len {
        return Err(TiffError::Format(format!(
            "the Micro-Manager summary metadata of {summary_len} bytes runs past the file's \
             {file_len} bytes (truncated?)"
        )));
    }
    let mut summary = vec![0u8; summary_len as usize];
    file.read_exact_at(&mut summary, MM_SUMMARY_AT)?;
    let mut budget = limits.max_metadata_bytes - summary_len;
    let mut optional_block = |header: u32, want_header: u32, offset: u64, block: u32| {
        if header != want_header {
            return Ok(None);
        }
        let text = json_block(file, word, file_len, offset, block, budget)?;
        budget -= text.as_ref().map_or(0, |t| t.len() as u64);
        Ok::<_, TiffError>(text)
    };
    let display_settings = optional_block(
        display_header,
        MM_DISPLAY_SETTINGS_HEADER,
        display_offset,
        MM_DISPLAY_SETTINGS_BLOCK,
    )?;
    let comments = optional_block(
        comments_header,
        MM_COMMENTS_HEADER,
        u64::from(comments_offset),
        MM_COMMENTS_BLOCK,
    )?;
    if index_offset.saturating_add(8) > file_len {
        return Err(TiffError::Format(format!(
            "the Micro-Manager index map is at offset {index_offset} but the file has only \
             {file_len} bytes (truncated?)"
        )));
    }
    let mut block = [0u8; 8];
    file.read_exact_at(&mut block, index_offset)?;
    let count = u64::from(word(&block[4..]));
    if word(&block[..4]) != MM_INDEX_MAP_BLOCK {
        return Ok(None);
    }
    if count > limits.max_pages {
        return Err(TiffError::too_large(
            Limit::MaxPages,
            format!(
                "the Micro-Manager index map counts {count} images, more than the configured \
             maximum of {} pages",
                limits.max_pages
            ),
        ));
    }
    // below max_pages entries of 20 bytes: the offset and the count are the
    // file's, so the end is checked before anything of that size is read
    let bytes = count * MM_INDEX_ENTRY_BYTES;
    if index_offset + 8 + bytes > file_len {
        return Err(TiffError::Format(format!(
            "the Micro-Manager index map of {count} images at offset {index_offset} runs past \
             the file's {file_len} bytes (truncated?)"
        )));
    }
    let mut entries = vec![0u8; bytes as usize];
    file.read_exact_at(&mut entries, index_offset + 8)?;
    let index_map = entries
        .chunks_exact(MM_INDEX_ENTRY_BYTES as usize)
        .map(|entry| {
            let mut fields = [0u32; 5];
            for (field, bytes) in fields.iter_mut().zip(entry.chunks_exact(4)) {
                *field = word(bytes);
            }
            fields
        })
        .collect();
    Ok(Some(MicroManager {
        summary: json_text(&summary),
        index_map,
        display_settings,
        comments,
        first_image: None,
        siblings: Vec::new(),
    }))
}

/// JSON text as Micro-Manager writes it: up to a NUL; tifffile decodes
/// UTF-8, else cp1252, and JSON's own syntax is ASCII.
pub(crate) fn json_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// One of the optional blocks Micro-Manager's header points to (display
/// settings, comments): its magic number, its length and its JSON. `None`
/// where the block is not there, or longer than `budget` bytes: tifffile
/// warns and goes on without it, and so does the reader (the pixels do not
/// depend on it). Micro-Manager's 32-bit offset may have wrapped past 4 GB:
/// as in tifffile, the block is looked for 2³² bytes further on too.
pub(crate) fn json_block(
    file: &File,
    word: impl Fn(&[u8]) -> u32,
    file_len: u64,
    offset: u64,
    magic: u32,
    budget: u64,
) -> Result<Option<String>, TiffError> {
    let mut head = [0u8; 8];
    let mut found = None;
    for offset in [offset, offset + (1 << 32)] {
        if offset + 8 > file_len {
            break;
        }
        file.read_exact_at(&mut head, offset)?;
        if word(&head[..4]) == magic {
            found = Some(offset);
            break;
        }
    }
    let Some(offset) = found else {
        return Ok(None);
    };
    let len = u64::from(word(&head[4..]));
    if len > budget || offset + 8 + len > file_len {
        return Ok(None);
    }
    let mut text = vec![0u8; len as usize];
    file.read_exact_at(&mut text, offset + 8)?;
    Ok(Some(json_text(&text)))
}

/// A Micro-Manager file's metadata as one JSON document, with
/// tifffile's `micromanager_metadata` keys: `Summary`, `DisplaySettings`
/// and `Comments` (null where absent or not JSON), `ImageMetadata` (the
/// first image's MicroManagerMetadata tag), and `Description` with its
/// `DescriptionFormat` (the OME-XML or ImageJ description Micro-Manager
/// also writes, null where there is none).
pub(crate) fn original(mm: &MicroManager, desc: &str) -> OriginalMetadata {
    let json = |text: Option<&str>| {
        text.and_then(|t| serde_json::from_str::<Json>(t).ok())
            .unwrap_or(Json::Null)
    };
    let desc = desc.replace('\0', "");
    let has_desc = !desc.trim().is_empty();
    let format = if desc.contains("<OME") {
        "ome-xml"
    } else if desc.starts_with("ImageJ=") {
        "imagej"
    } else {
        "description"
    };
    let document = serde_json::json!({
        "Summary": json(Some(&mm.summary)),
        "DisplaySettings": json(mm.display_settings.as_deref()),
        "Comments": json(mm.comments.as_deref()),
        "ImageMetadata": json(mm.first_image.as_deref()),
        "Description": has_desc.then_some(desc.as_str()),
        "DescriptionFormat": has_desc.then_some(format),
    });
    OriginalMetadata {
        format: "micromanager",
        text: document.to_string(),
    }
}

/// A Micro-Manager (MMStack) file as tifffile reads it (`_series_mmstack`):
/// the summary metadata must name `MicroManagerVersion` and `Frames`; the
/// page axes are time, position, slice and channel, outermost first, time
/// and position swapped unless `TimeFirst`, slice and channel unless
/// `SlicesFirst`; each as large as the summary declares (`Frames`,
/// `Positions`, `Slices`, `Channels`) or the index map reaches. Where that
/// is more images than the index map lists, the others are in the other
/// files of the dataset: read from disk, those beside the file are
/// [`MicroManager::siblings`], and their index maps place their images too;
/// an upload has none, and where the files' index maps together still list
/// fewer images, the image is their extent, as tifffile reads a file whose
/// siblings are missing.
///
/// The index map places each image by its coordinates (in order of offset,
/// the later winning a position twice listed). An image is the IFD at its
/// offset; an offset that is no IFD of the file (tifffile takes one past
/// the end as a truncated file) leaves its plane zeros, a few of them as
/// for OME. Positions are unlabelled; the file's own images come first,
/// then each sibling's. `ChNames` are the channel names,
/// `PixelSize_um`, `z-step_um` (its magnitude) and `Interval_ms` the
/// physical sizes.
pub(crate) fn interpret(chain: &IfdChain, mm: &MicroManager) -> Result<Interpretation, Rejection> {
    let summary = summary(mm)?;
    if mm.index_map.is_empty() {
        return Err("the index map lists no image".into());
    }
    // each file's index map with where its IFDs are among the pages
    let own_ifds: HashMap<u64, usize> = chain
        .ifd_offsets
        .iter()
        .enumerate()
        .map(|(page, offset)| (*offset, page))
        .collect();
    let files: Vec<(IndexMap, &HashMap<u64, usize>)> =
        std::iter::once((mm.index_map.as_slice(), &own_ifds))
            .chain(
                mm.siblings
                    .iter()
                    .map(|s| (s.index_map.as_slice(), &s.ifd_pages)),
            )
            .collect();
    let entries = || files.iter().flat_map(|(map, _)| map.iter());
    // page axes, outermost first, with their index map column (channel,
    // slice, frame, position) and summary key
    let first = |key: &str| summary.get(key).is_none_or(truthy);
    let (time, position) = (('T', 2, "Frames"), ('I', 3, "Positions"));
    let (slice, channel) = (('Z', 1, "Slices"), ('C', 0, "Channels"));
    let mut order = if first("TimeFirst") {
        vec![time, position]
    } else {
        vec![position, time]
    };
    order.extend(if first("SlicesFirst") {
        [slice, channel]
    } else {
        [channel, slice]
    });
    let (mut low, mut high) = ([u32::MAX; 4], [0u32; 4]);
    for entry in entries() {
        for k in 0..4 {
            low[k] = low[k].min(entry[k]);
            high[k] = high[k].max(entry[k]);
        }
    }
    let mut sizes = Vec::with_capacity(order.len());
    for (_, column, key) in &order {
        let declared = match summary.get(key) {
            None => 1,
            Some(v) => python_int(v).ok_or_else(|| format!("the summary's {key} is {v}"))?,
        };
        let reached = u64::from(high[*column]) + 1;
        sizes.push(reached.max(u64::try_from(declared).unwrap_or(0)));
    }
    let listed = entries().count() as u64;
    let declared = sizes.iter().try_fold(1u64, |n, size| n.checked_mul(*size));
    let mut warnings = Vec::new();
    let mut origin = [0u32; 4];
    if declared.is_none_or(|n| n > listed) {
        warnings.push(format!(
            "the Micro-Manager summary declares {} images ({}) but the index map{} of {} \
             list{} {listed}: the others are in other files of the dataset, and the image is \
             the extent of what {} hold{}",
            declared.map_or("more than 2^64".to_string(), |n| n.to_string()),
            order
                .iter()
                .zip(&sizes)
                .map(|((_, _, key), size)| format!("{key} {size}"))
                .collect::<Vec<_>>()
                .join(", "),
            if files.len() > 1 { "s" } else { "" },
            if files.len() > 1 {
                format!("its {} files", files.len())
            } else {
                "this file".to_string()
            },
            if files.len() > 1 { "" } else { "s" },
            if files.len() > 1 { "they" } else { "it" },
            if files.len() > 1 { "" } else { "s" },
        ));
        origin = low;
        for (size, (_, column, _)) in sizes.iter_mut().zip(&order) {
            *size = u64::from(high[*column] - low[*column]) + 1;
        }
    }
    // the extent of coordinates from the file: checked before the planes
    // are allocated, which then number at most a few more than the entries
    let planes = sizes
        .iter()
        .try_fold(1u64, |n, size| n.checked_mul(*size))
        .filter(|planes| planes.saturating_sub(listed) <= allowed_missing_planes(*planes))
        .ok_or_else(|| {
            Rejection::Refused(TiffError::Format(format!(
                "the Micro-Manager index map's {listed} images span {} channels × slices × \
                 frames × positions, far more planes than it lists",
                (0..4)
                    .map(|k| (u64::from(high[k] - low[k]) + 1).to_string())
                    .collect::<Vec<_>>()
                    .join(" × ")
            )))
        })?;
    let mut pages = vec![None; planes as usize];
    for (index_map, ifds) in &files {
        let mut entries: Vec<&[u32; 5]> = index_map.iter().collect();
        entries.sort_by_key(|entry| entry[4]);
        for entry in entries {
            // below planes: each coordinate is within its axis' size
            let at = order
                .iter()
                .zip(&sizes)
                .fold(0u64, |at, ((_, k, _), size)| {
                    at * size + u64::from(entry[*k] - origin[*k])
                });
            pages[at as usize] = ifds.get(&u64::from(entry[4])).copied();
        }
    }
    let missing = pages.iter().filter(|page| page.is_none()).count() as u64;
    if missing == planes || missing > allowed_missing_planes(planes) {
        return Err(Rejection::Refused(TiffError::Format(format!(
            "the Micro-Manager index map places {} of the image's {planes} planes at IFDs of \
             the dataset's files; at most {} may be missing (the larger of {MIN_MISSING_PLANES} and a \
             tenth of the planes, and not all), the rest would be stored as zeros",
            planes - missing,
            allowed_missing_planes(planes).min(planes - 1)
        ))));
    }
    if missing > 0 {
        warnings.push(format!(
            "the Micro-Manager index map places {missing} plane(s) at offsets where the file \
             has no IFD (truncated?); they are left as zeros"
        ));
    }
    let channel_names = match summary.get("ChNames") {
        Some(Json::Array(names)) => names
            .iter()
            .skip(origin[0] as usize)
            .map(|name| match name {
                Json::String(name) => name.clone(),
                _ => String::new(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let number = |key: &str| {
        summary
            .get(key)
            .and_then(|v| match v {
                Json::Number(n) => n.as_f64(),
                Json::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            })
            .map(f64::abs)
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let size = |key: &str, unit: &str| {
        number(key).map(|value| PhysicalSize {
            value,
            unit: unit.into(),
        })
    };
    let mut axes: Vec<(char, u64)> = order
        .iter()
        .zip(sizes)
        .map(|((letter, _, _), size)| (*letter, size))
        .filter(|(_, size)| *size != 1)
        .collect();
    // a position axis takes a free letter once the size-1 axes are gone
    if let Ok(letters) = crate::canonical_letters(&axes) {
        for ((letter, _), canonical) in axes.iter_mut().zip(letters) {
            *letter = canonical;
        }
    }
    Ok(Interpretation {
        flavour: Flavour::MicroManager,
        axes,
        pages,
        channel_names,
        physical: PhysicalSizes {
            x: size("PixelSize_um", "micrometer"),
            y: size("PixelSize_um", "micrometer"),
            z: size("z-step_um", "micrometer"),
            t: size("Interval_ms", "millisecond"),
        },
        acquisition: Acquisition::default(),
        notes: FileNotes::default(),
        original: None,
        warnings,
        contiguous: None,
    })
}

/// A Micro-Manager index map: per image its channel, slice, frame,
/// position and IFD offset.
pub(crate) type IndexMap<'a> = &'a [[u32; 5]];

/// A Micro-Manager file's summary, where it is an acquisition's (names
/// `MicroManagerVersion` and `Frames`), as tifffile requires.
pub(crate) fn summary(mm: &MicroManager) -> Result<Json, Rejection> {
    let summary: Json = serde_json::from_str(&mm.summary)
        .map_err(|e| format!("the summary metadata is not JSON: {e}"))?;
    if !matches!(summary, Json::Object(_)) {
        return Err("the summary metadata is not a JSON object".into());
    }
    if summary.get("MicroManagerVersion").is_none() || summary.get("Frames").is_none() {
        return Err("the summary metadata names no MicroManagerVersion or no Frames".into());
    }
    Ok(summary)
}

/// Whether a Micro-Manager file is one file of a larger dataset, as
/// tifffile decides before it looks for the others: its summary is an
/// acquisition's, and the sizes it declares (`Frames`, `Positions`,
/// `Slices`, `Channels`, each at least what the index map reaches) make
/// more images than the index map lists. Also the file name prefix the
/// dataset's files share: the summary's `Prefix`, or `None` where it has
/// none (the name before `_MMStack` then).
pub(crate) fn dataset(mm: &MicroManager) -> Option<Option<String>> {
    let summary = summary(mm).ok()?;
    let mut high = [0u32; 4];
    for entry in &mm.index_map {
        for k in 0..4 {
            high[k] = high[k].max(entry[k]);
        }
    }
    let mut declared = 1u64;
    for (column, key) in [
        (2, "Frames"),
        (3, "Positions"),
        (1, "Slices"),
        (0, "Channels"),
    ] {
        let size = summary.get(key).map_or(Some(1), python_int)?;
        let size = u64::try_from(size)
            .unwrap_or(0)
            .max(u64::from(high[column]) + 1);
        declared = declared.saturating_mul(size);
    }
    if declared <= mm.index_map.len() as u64 {
        return None;
    }
    Some(match summary.get("Prefix") {
        Some(Json::String(prefix)) => Some(prefix.clone()),
        _ => None,
    })
}

/// A JSON value as Python's `int()` reads it (truncating a number, parsing
/// a string, a boolean as 0 or 1), saturated to `i64`; `None` where
/// `int()` raises.
pub(crate) fn python_int(value: &Json) -> Option<i64> {
    match value {
        Json::Bool(b) => Some(i64::from(*b)),
        Json::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Whether a JSON value is true as Python's `bool()` tests it.
pub(crate) fn truthy(value: &Json) -> bool {
    match value {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64() != Some(0.0),
        Json::String(s) => !s.is_empty(),
        Json::Array(a) => !a.is_empty(),
        Json::Object(o) => !o.is_empty(),
    }
}
