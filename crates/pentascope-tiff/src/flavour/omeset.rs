//! Multi-file OME-TIFF sets: one OME-XML places an image's planes in
//! several files, naming each in its `TiffData` elements by a `UUID`
//! element with a `FileName`, as Bio-Formats and Micro-Manager write them.
//! Every file of a set may carry that OME-XML, or a `BinaryOnly` element
//! naming the file that does (a master OME-TIFF, or a `.companion.ome`
//! holding only the XML). The files are looked for beside the opened one:
//! names that are not a file of that folder, more than
//! [`MAX_DATASET_FILES`] files, a UUID naming two files (or a file named by
//! two UUIDs) and `BinaryOnly` pointers that loop are refused.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::ome::{check_xml_structure, MAX_XML_NODES};
use crate::ifd::{self, ChainWalk};
use crate::{Limit, Limits, TiffError, MAX_DATASET_FILES};

/// Most `BinaryOnly` pointers followed from the opened file to the OME-XML
/// of its set: writers point straight at the master or companion file, so
/// one is enough; a few allow for a master that was itself re-pointed.
pub const MAX_METADATA_HOPS: usize = 4;

/// Where the pages of each file of a multi-file OME-TIFF set are among the
/// pages read for it (the opened file's first, then the others').
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OmeFileSet {
    /// By the UUID its `TiffData` elements name it with: a file's pages.
    pub pages: HashMap<String, Range<usize>>,
    /// By that UUID: the file's name, for messages.
    pub names: HashMap<String, String>,
    /// The opened file's pages, which `TiffData` without a UUID place.
    pub own: Range<usize>,
}

impl OmeFileSet {
    /// The pages of the file named by `uuid`.
    pub(crate) fn pages_of(&self, uuid: &str) -> Option<Range<usize>> {
        self.pages.get(uuid).cloned()
    }
}

/// A set's files as its OME-XML names them, found beside the opened file.
pub(crate) struct Resolved {
    /// The OME-XML placing the planes, where it is not the opened file's
    /// own (its `BinaryOnly` named another file).
    pub xml: Option<String>,
    /// The set's files other than the opened one, each once.
    pub others: Vec<PathBuf>,
    /// UUID → its file: 0 the opened one, `k` `others[k - 1]`; and the
    /// name the XML gives it.
    pub files: HashMap<String, (usize, String)>,
    /// The first reference that cannot be read (a file missing, or not of
    /// the folder, or past the limit): opening the set fails with it, while
    /// the files found still group the folder's files into one dataset.
    pub refusal: Option<TiffError>,
}

fn refused(message: String) -> TiffError {
    TiffError::Format(format!("multi-file OME-TIFF set: {message}"))
}

fn parse(xml: &str) -> Result<roxmltree::Document<'_>, TiffError> {
    check_xml_structure(xml)?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_XML_NODES,
    };
    roxmltree::Document::parse_with_options(xml, options)
        .map_err(|e| TiffError::Format(format!("the OME-XML cannot be parsed: {e}")))
}

/// Whether `name` names a file of the folder itself, as the set's names
/// must: no path, no parent, nothing that could leave the folder.
fn is_plain_name(name: &str) -> bool {
    !(name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']))
}

/// The set the file at `path` (whose first ImageDescription, OME-XML, is
/// `description`) belongs to, or `None` where its OME-XML places its first
/// image's planes in itself alone (read as today).
pub(crate) fn resolve(
    path: &Path,
    description: &str,
    limits: &Limits,
) -> Result<Option<Resolved>, TiffError> {
    let folder = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let own_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let own_uuid = parse(description)?
        .root_element()
        .attribute("UUID")
        .map(|u| u.trim().to_string());
    // follow BinaryOnly to the XML that places the planes
    let mut xml = description.to_string();
    let mut visited = vec![own_name.clone()];
    loop {
        let pointer = {
            let doc = parse(&xml)?;
            doc.root_element()
                .children()
                .find(|n| n.tag_name().name() == "BinaryOnly")
                .map(|b| b.attribute("MetadataFile").unwrap_or_default().to_string())
        };
        let Some(name) = pointer else { break };
        if !is_plain_name(&name) {
            return Err(refused(format!(
                "BinaryOnly names the metadata file {name:?}, which is not a file of the \
                 folder of {own_name}; only files beside it are read"
            )));
        }
        if visited.contains(&name) {
            visited.push(name);
            return Err(refused(format!(
                "BinaryOnly pointers loop: {}",
                visited.join(" → ")
            )));
        }
        if visited.len() > MAX_METADATA_HOPS {
            return Err(TiffError::too_large(
                Limit::Fixed,
                format!(
                    "multi-file OME-TIFF set: {own_name} points to its OME-XML through more than \
                 {MAX_METADATA_HOPS} BinaryOnly files ({})",
                    visited.join(" → ")
                ),
            ));
        }
        xml = metadata_of(&folder.join(&name), &name, limits)?;
        visited.push(name);
    }
    let from_elsewhere = visited.len() > 1;
    let doc = parse(&xml)?;
    let references: Vec<(String, String)> = doc
        .descendants()
        .find(|n| n.tag_name().name() == "Image")
        .and_then(|image| image.children().find(|n| n.tag_name().name() == "Pixels"))
        .into_iter()
        .flat_map(|pixels| pixels.children())
        .filter(|n| n.tag_name().name() == "TiffData")
        .filter_map(|td| td.children().find(|n| n.tag_name().name() == "UUID"))
        .filter_map(|uuid| {
            let name = uuid.attribute("FileName")?;
            Some((
                uuid.text().unwrap_or("").trim().to_string(),
                name.to_string(),
            ))
        })
        .collect();
    if references.is_empty() {
        if from_elsewhere {
            return Err(refused(format!(
                "{own_name}'s OME-XML is in {}, whose first image names no file by UUID and \
                 FileName",
                visited[1..].join(" → ")
            )));
        }
        return Ok(None);
    }
    let distinct: HashSet<&str> = references.iter().map(|(_, name)| name.as_str()).collect();
    if distinct.len() > MAX_DATASET_FILES {
        return Err(TiffError::too_large(
            Limit::Fixed,
            format!(
            "multi-file OME-TIFF set: the OME-XML names {} files, more than {MAX_DATASET_FILES}, \
             the most read as one image (MAX_DATASET_FILES)",
            distinct.len()
        ),
        ));
    }
    let mut resolved = Resolved {
        xml: from_elsewhere.then(|| xml.clone()),
        others: Vec::new(),
        files: HashMap::new(),
        refusal: None,
    };
    // name → its UUID and file, as the first reference to it found them
    let mut file_of_name: HashMap<String, (String, Option<usize>)> = HashMap::new();
    for (uuid, name) in references {
        let conflict = match (resolved.files.get(&uuid), file_of_name.get(&name)) {
            (Some((_, known)), _) if *known != name => Some(format!(
                "the UUID {uuid} names two files, {known} and {name}"
            )),
            (_, Some((other_uuid, _))) if *other_uuid != uuid => Some(format!(
                "{name} is named by two UUIDs, {other_uuid} and {uuid}"
            )),
            _ => None,
        };
        // a file of a conflict is still one of the set's files (the folder
        // stays one dataset), but no UUID is taken as naming it
        let conflicting = conflict.is_some();
        if let Some(conflict) = conflict {
            resolved.refusal.get_or_insert_with(|| refused(conflict));
        }
        if let Some((_, file)) = file_of_name.get(&name) {
            if let Some(file) = file.filter(|_| !conflicting) {
                resolved.files.insert(uuid, (file, name));
            }
            continue;
        }
        let file = if own_uuid.as_deref() == Some(uuid.as_str()) || name == own_name {
            Some(0)
        } else if !is_plain_name(&name) {
            resolved.refusal.get_or_insert_with(|| {
                refused(format!(
                    "the OME-XML places planes in {name:?}, which is not a file of the folder \
                     of {own_name}; only files beside it are read"
                ))
            });
            None
        } else if !folder.join(&name).is_file() {
            resolved.refusal.get_or_insert_with(|| {
                refused(format!(
                    "the OME-XML places planes in {name}, which is missing: a set's files \
                     are read together from one folder (upload them in one ZIP archive)"
                ))
            });
            None
        } else {
            resolved.others.push(folder.join(&name));
            Some(resolved.others.len())
        };
        file_of_name.insert(name.clone(), (uuid.clone(), file));
        if let Some(file) = file.filter(|_| !conflicting) {
            resolved.files.insert(uuid, (file, name));
        }
    }
    Ok(Some(resolved))
}

/// The OME-XML a `BinaryOnly` element points to: a companion file's text,
/// or a TIFF's first ImageDescription; at most the metadata limit.
fn metadata_of(path: &Path, name: &str, limits: &Limits) -> Result<String, TiffError> {
    let file = File::open(path).map_err(|e| {
        refused(format!(
            "BinaryOnly names the metadata file {name}, which cannot be opened ({e}); the \
             set's files are read together (upload them in one ZIP archive)"
        ))
    })?;
    let len = file.metadata()?.len();
    let mut magic = [0u8; 2];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut magic, 0).ok();
    if magic == *b"II" || magic == *b"MM" {
        let walk = ChainWalk {
            start: None,
            max_ifds: Some(1),
        };
        return ifd::read_ifds(&file, len, limits, walk)?
            .description
            .filter(|d| d.contains("<OME"))
            .ok_or_else(|| refused(format!("{name}, named by BinaryOnly, holds no OME-XML")));
    }
    if len > limits.max_metadata_bytes {
        return Err(TiffError::too_large(
            Limit::MaxMetadataBytes,
            format!(
                "the OME-XML file {name} has {len} bytes, more than the configured maximum of {} \
             bytes of metadata",
                limits.max_metadata_bytes
            ),
        ));
    }
    let mut text = String::new();
    file.take(limits.max_metadata_bytes)
        .read_to_string(&mut text)
        .map_err(|e| refused(format!("{name}, named by BinaryOnly, is not text: {e}")))?;
    Ok(text)
}
