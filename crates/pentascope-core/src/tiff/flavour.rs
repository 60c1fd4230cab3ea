//! TIFF flavours (OME, ImageJ, ScanImage, tifffile "shaped", plain) and how
//! each places pages on page axes. Tried in that order, like tifffile; bad
//! metadata adds a warning and falls back to the plain interpretation instead
//! of failing the file.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Limits};
use crate::tiff::ifd::{IfdChain, MicroManager, StkPlanes};
use serde_json::Value as Json;

/// Deepest element nesting accepted in OME-XML. roxmltree parses nested
/// elements recursively, so a few thousand levels overflow a thread's stack;
/// real OME-XML nests fewer than ten.
pub const MAX_XML_DEPTH: usize = 256;

/// Most attributes accepted on one OME-XML element: roxmltree checks each
/// new attribute against the element's earlier ones, which is quadratic.
/// Real OME elements have a few dozen at most.
pub const MAX_XML_ATTRIBUTES: usize = 256;

/// Most XML nodes (elements and text) accepted in OME-XML: a few per plane
/// for a file at the default page limit, while bounding the parsed tree's
/// memory to a few hundred megabytes.
pub const MAX_XML_NODES: u32 = 1 << 22;

/// Planes an OME-XML may declare without a page (IFD) of their own, which
/// are left as zeros: `max(MIN_MISSING_PLANES, planes / MISSING_PLANES_DIVISOR)`.
/// Damaged files lose a few pages; a file declaring millions of planes over
/// one page would make the service store terabytes of zeros.
pub const MIN_MISSING_PLANES: u64 = 16;
/// See [`MIN_MISSING_PLANES`]: at most a tenth of the planes may be missing.
pub const MISSING_PLANES_DIVISOR: u64 = 10;

/// Where a file's axis metadata came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    /// OME-TIFF (OME-XML in the first ImageDescription).
    Ome,
    /// ImageJ hyperstack (`ImageJ=` description).
    ImageJ,
    /// ScanImage BigTIFF.
    ScanImage,
    /// MetaMorph STK (one page, its planes back to back, counted by
    /// UIC2tag).
    Stk,
    /// Zeiss LSM (CZ_LSMINFO: dimensions, scan type, voxel sizes; every
    /// other page a thumbnail).
    Lsm,
    /// Olympus FluoView (MM_Header's named dimensions).
    Fluoview,
    /// Micro-Manager MMStack (the index map's coordinates of each image,
    /// the summary metadata's sizes, channel names and pixel size).
    MicroManager,
    /// Micro-Manager NDTiff (the coordinates `NDTiff.index` lists for
    /// each image).
    NdTiff,
    /// No axis metadata (or tifffile's shaped JSON description).
    Plain,
}

/// A physical size with its unit, such as 0.65 micrometer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhysicalSize {
    /// The value.
    pub value: f64,
    /// The unit: its UDUNITS-2 name as OME-Zarr (NGFF) uses them
    /// (`micrometer`, `nanometer`, `inch`, `second`, …) for the units
    /// [`unit_name`] knows, otherwise as the file names it (`pixel`, …).
    pub unit: String,
}

/// The UDUNITS-2 name (as OME-Zarr uses them) of a unit as TIFF flavours
/// spell it: OME's symbols (`µm`, `nm`, `s`), ImageJ's (`micron`, `\u00B5m`,
/// `sec`), TIFF's ResolutionUnit (`inch`, `cm`). Other units are kept as
/// given, so that nothing the file says is lost.
pub fn unit_name(unit: &str) -> String {
    match unit.trim() {
        // U+00B5 micro sign, U+03BC Greek mu, and ImageJ's escaped micro sign
        "µm" | "μm" | "\\u00B5m" | "um" | "micron" | "microns" | "micrometer" | "micrometre" => {
            "micrometer"
        }
        "nm" | "nanometer" | "nanometre" => "nanometer",
        "mm" | "millimeter" | "millimetre" => "millimeter",
        "cm" | "centimeter" | "centimetre" => "centimeter",
        "m" | "meter" | "metre" => "meter",
        "Å" | "angstrom" => "angstrom",
        "in" | "inch" | "inches" => "inch",
        "s" | "sec" | "second" | "seconds" => "second",
        "ms" | "msec" | "millisecond" => "millisecond",
        "µs" | "μs" | "\\u00B5s" | "us" | "microsecond" => "microsecond",
        "ns" | "nanosecond" => "nanosecond",
        "min" | "minute" | "minutes" => "minute",
        "h" | "hr" | "hour" | "hours" => "hour",
        other => other,
    }
    .to_string()
}

/// Physical pixel sizes and the time step, where the file states them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhysicalSizes {
    /// Pixel width.
    pub x: Option<PhysicalSize>,
    /// Pixel height.
    pub y: Option<PhysicalSize>,
    /// Z step.
    pub z: Option<PhysicalSize>,
    /// Time step.
    pub t: Option<PhysicalSize>,
}

/// How an image was acquired, where its metadata says (OME-XML): what a
/// microscopist looks for beside the pixels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Acquisition {
    /// When it was acquired, as the file writes it (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The objective the image names (OME `ObjectiveSettings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<Objective>,
    /// Per OME `Channel`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ChannelAcquisition>,
}

/// What the file's own metadata says about the image for a catalogue:
/// OME's `Description` and the `TagAnnotation`s and `MapAnnotation`s the
/// image refers to (as pentascope's OME-TIFF export writes them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileNotes {
    /// The image's description.
    pub description: Option<String>,
    /// Tag annotations' values, in document order.
    pub tags: Vec<String>,
    /// Map annotations' key-value pairs, in document order.
    pub annotations: Vec<(String, String)>,
}

/// An objective lens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// Model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    /// Nominal magnification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nominal_magnification: Option<f64>,
    /// Numerical aperture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lens_na: Option<f64>,
    /// Immersion medium (`Air`, `Oil`, `Water`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immersion: Option<String>,
}

/// How one channel was acquired and is meant to be shown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelAcquisition {
    /// Excitation wavelength.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excitation_wavelength: Option<PhysicalSize>,
    /// Emission wavelength.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emission_wavelength: Option<PhysicalSize>,
    /// Fluorophore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fluor: Option<String>,
    /// Display colour as `#RRGGBB` (OME `Color`, a signed RGBA integer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Illumination (`Transmitted`, `Epifluorescence`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub illumination: Option<String>,
    /// The display range the file was saved with (ImageJ `Ranges`, or
    /// `min`/`max` of a one-channel image): the default window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_range: Option<[f64; 2]>,
}

/// The metadata text a file carries, kept as written so that nothing the
/// reader does not interpret is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalMetadata {
    /// `ome-xml`, `imagej`, `micromanager` (a JSON document), `scanimage`
    /// or `description`.
    pub format: &'static str,
    /// The text (bounded by [`Limits::max_metadata_bytes`]).
    pub text: String,
}

/// A Micro-Manager file's metadata as one JSON document, with
/// tifffile's `micromanager_metadata` keys: `Summary`, `DisplaySettings`
/// and `Comments` (null where absent or not JSON), `ImageMetadata` (the
/// first image's MicroManagerMetadata tag), and `Description` with its
/// `DescriptionFormat` (the OME-XML or ImageJ description Micro-Manager
/// also writes, null where there is none).
fn micromanager_original(mm: &MicroManager, desc: &str) -> OriginalMetadata {
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

/// ImageJ's layout for hyperstacks of more than 4 GB, which 32-bit offsets
/// cannot reach page by page: the first page's IFD describes one plane, and
/// `count` planes of `plane_bytes` bytes each (uncompressed, all samples)
/// follow one another from `offset`, the first page's data. tifffile reads
/// such a series from the first page alone (its ImageJ `isvirtual` case).
/// The series' page indices are then plane indices in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContiguousPlanes {
    /// File offset of the first plane.
    pub offset: u64,
    /// Bytes of one plane.
    pub plane_bytes: u64,
    /// Number of planes.
    pub count: u64,
}

/// How a flavour lays pages out: page axes (outermost first; letters from
/// `TZC`, or `I` when unlabelled) and, in C order over those axes, the page
/// (IFD index) holding each position, `None` where the file has none.
#[derive(Debug, Clone)]
pub(crate) struct Interpretation {
    pub flavour: Flavour,
    pub axes: Vec<(char, u64)>,
    pub pages: Vec<Option<usize>>,
    pub channel_names: Vec<String>,
    pub physical: PhysicalSizes,
    pub acquisition: Acquisition,
    pub notes: FileNotes,
    pub original: Option<OriginalMetadata>,
    pub warnings: Vec<String>,
    /// Pages are planes stored back to back after the first page's data,
    /// not IFDs (ImageJ past 4 GB).
    pub contiguous: Option<ContiguousPlanes>,
}

impl Interpretation {
    /// Drops size-1 axes, which carry no information.
    pub fn squeezed(mut self) -> Self {
        self.axes.retain(|(_, n)| *n != 1);
        self
    }
}

/// Why a flavour's metadata was not used.
#[derive(Debug)]
pub(crate) enum Rejection {
    /// Inconsistent metadata: warn and try the next flavour, as tifffile does.
    Ignored(String),
    /// Metadata that would exhaust the reader: the file is refused.
    Refused(CoreError),
}

impl From<String> for Rejection {
    fn from(message: String) -> Self {
        Rejection::Ignored(message)
    }
}

impl From<&str> for Rejection {
    fn from(message: &str) -> Self {
        Rejection::Ignored(message.to_string())
    }
}

/// The series of the file: the first flavour that recognises it.
pub(crate) fn interpret(
    chain: &IfdChain,
    header: &[u8],
    limits: &Limits,
) -> Result<Interpretation, CoreError> {
    let mut warnings = Vec::new();
    let mut ignore = |flavour: &str, rejection: Rejection| match rejection {
        Rejection::Ignored(e) => {
            warnings.push(format!("{flavour} metadata ignored: {e}"));
            Ok(())
        }
        Rejection::Refused(e) => Err(e),
    };
    let desc = chain.description.as_deref().unwrap_or("");
    // NUL padding (ScanImage pads its header) is not text, and databases
    // refuse it in text columns
    let kept = |format: &'static str, text: &str| {
        Some(OriginalMetadata {
            format,
            text: text.replace('\0', ""),
        })
    };
    // tifffile reads a Micro-Manager stack before the OME-XML or ImageJ
    // description Micro-Manager also writes, and reads those where the
    // summary is not an acquisition's
    if let Some(mm) = &chain.micromanager {
        match micromanager(chain, mm) {
            Ok(i) => {
                return Ok(Interpretation {
                    original: Some(micromanager_original(mm, desc)),
                    ..i
                });
            }
            Err(e) => ignore("Micro-Manager", e)?,
        }
    }
    if desc.contains("<OME") {
        match ome(chain, desc) {
            Ok(i) => {
                return Ok(Interpretation {
                    original: kept("ome-xml", desc),
                    ..i
                })
            }
            Err(e) => ignore("OME-XML", e)?,
        }
    }
    // SCIFIO (Fiji's ImageJ2 writer) writes ImageJ's keys under its own
    // name, and tifffile reads them as ImageJ
    if desc.starts_with("ImageJ=") || desc.starts_with("SCIFIO=") {
        match imagej(chain, desc, limits) {
            Ok(i) => {
                return Ok(Interpretation {
                    original: kept("imagej", desc),
                    ..i
                })
            }
            Err(e) => ignore("ImageJ", e)?,
        }
    }
    if let Some(info) = &chain.lsm_info {
        match lsm(chain, info) {
            Ok(i) => return Ok(i),
            Err(e) => ignore("Zeiss LSM", e)?,
        }
    }
    if let Some(header) = &chain.fluoview_header {
        match fluoview(chain, header) {
            Ok(i) => return Ok(i),
            Err(e) => ignore("FluoView", e)?,
        }
    }
    if let Some(stk) = chain.stk {
        match metamorph(chain, stk, limits) {
            Ok(i) => {
                return Ok(Interpretation {
                    original: (!desc.trim().is_empty())
                        .then(|| kept("description", desc))
                        .flatten(),
                    ..i
                })
            }
            Err(e) => ignore("MetaMorph STK", e)?,
        }
    }
    if chain.bigtiff {
        if let Some((text, rois)) = scanimage_header(header) {
            match scanimage(chain, &text) {
                Ok(i) => {
                    // the frame data, then the ROI groups, as the file has them
                    let original = match rois {
                        Some(rois) => format!("{text}\n{rois}"),
                        None => text,
                    };
                    return Ok(Interpretation {
                        original: kept("scanimage", &original),
                        ..i
                    });
                }
                Err(e) => ignore("ScanImage", Rejection::Ignored(e))?,
            }
        }
    }
    let mut plain = plain(chain, desc, &mut warnings);
    plain.warnings = warnings;
    if !desc.trim().is_empty() {
        plain.original = kept("description", desc);
    }
    Ok(plain)
}

fn first_kind_pages(chain: &IfdChain) -> Vec<usize> {
    let Some(Ok(first)) = chain.pages.first() else {
        return vec![0];
    };
    chain
        .pages
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Ok(p) if !p.reduced && p.same_kind(first) => Some(i),
            _ => None,
        })
        .collect()
}

fn plain(chain: &IfdChain, desc: &str, warnings: &mut Vec<String>) -> Interpretation {
    let pages = first_kind_pages(chain);
    let mut axes = vec![('I', pages.len() as u64)];
    // tifffile writes {"shape": [...]} (optionally with "axes") for plain stacks
    if desc.trim_start().starts_with('{') {
        if let Some(shaped) = shaped_axes(chain, desc, pages.len() as u64) {
            axes = shaped;
        } else {
            warnings.push("shaped description does not match the pages; using page order".into());
        }
    }
    // unlabelled axes take their letters before size-1 axes are dropped, so
    // that a shape of [256, 1, 1] is T=256 as tifffile's QQQ reads, not Z;
    // more axes than letters are left for the series to refuse
    if let Ok(letters) = super::canonical_letters(&axes) {
        for ((letter, _), canonical) in axes.iter_mut().zip(letters) {
            *letter = canonical;
        }
    }
    Interpretation {
        flavour: Flavour::Plain,
        axes,
        pages: pages.into_iter().map(Some).collect(),
        channel_names: Vec::new(),
        physical: resolution_sizes(chain, None),
        acquisition: Acquisition::default(),
        notes: FileNotes::default(),
        original: None,
        warnings: Vec::new(),
        contiguous: None,
    }
    .squeezed()
}

/// Page axes from tifffile's `{"shape": [..], "axes": ".."}` description.
fn shaped_axes(chain: &IfdChain, desc: &str, n_pages: u64) -> Option<Vec<(char, u64)>> {
    let (letters, dims) = shaped_page_axes(chain, desc)?;
    if dims.iter().try_fold(1u64, |a, d| a.checked_mul(*d)) != Some(n_pages) {
        return None;
    }
    Some(
        letters
            .into_iter()
            .map(|l| if "TZC".contains(l) { l } else { 'I' })
            .zip(dims)
            .collect(),
    )
}

/// The letters and sizes of the axes a shaped description gives beyond
/// the first page's own (rows, columns, samples).
fn shaped_page_axes(chain: &IfdChain, desc: &str) -> Option<(Vec<char>, Vec<u64>)> {
    let first = chain.pages.first()?.as_ref().ok()?;
    let json_shape = desc.split("\"shape\":").nth(1)?;
    let inner = json_shape.split('[').nth(1)?.split(']').next()?;
    let mut dims: Vec<u64> = inner
        .split(',')
        .map(|s| s.trim().parse().ok())
        .collect::<Option<_>>()?;
    let axes_letters: Option<Vec<char>> = desc
        .split("\"axes\":")
        .nth(1)
        .and_then(|s| s.split('"').nth(1))
        .map(|s| s.chars().collect());
    let spp = u64::from(first.samples);
    let mut letters = axes_letters.unwrap_or_else(|| vec!['Q'; dims.len()]);
    if letters.len() != dims.len() {
        return None;
    }
    if spp > 1 {
        if !first.planar_separate && dims.last() == Some(&spp) {
            dims.pop();
            letters.pop();
        } else if first.planar_separate && dims.len() >= 3 && dims[dims.len() - 3] == spp {
            let i = dims.len() - 3;
            dims.remove(i);
            letters.remove(i);
        } else {
            return None;
        }
    }
    if dims.len() < 2
        || dims[dims.len() - 2] != u64::from(first.height)
        || dims[dims.len() - 1] != u64::from(first.width)
    {
        return None;
    }
    dims.truncate(dims.len() - 2);
    letters.truncate(letters.len() - 2);
    Some((letters, dims))
}

/// The pages of an OME-TIFF of one image whose planes are all in this
/// file: SizeZ × SizeT × SizeC / samples per pixel.
fn ome_declared_pages(chain: &IfdChain, xml: &str) -> Option<u64> {
    check_xml_structure(xml).ok()?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_XML_NODES,
    };
    let doc = roxmltree::Document::parse_with_options(xml, options).ok()?;
    let mut images = doc.descendants().filter(|n| n.tag_name().name() == "Image");
    let image = images.next()?;
    if images.next().is_some() {
        return None;
    }
    let pixels = image.children().find(|n| n.tag_name().name() == "Pixels")?;
    if pixels
        .descendants()
        .any(|n| n.tag_name().name() == "UUID" && n.attribute("FileName").is_some())
    {
        return None;
    }
    let size = |name: &str| {
        pixels
            .attribute(name)
            .unwrap_or("1")
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
    };
    let samples = u64::from(chain.pages.first()?.as_ref().ok()?.samples);
    let channels = size("SizeC")?;
    if channels % samples != 0 {
        return None;
    }
    size("SizeZ")?
        .checked_mul(size("SizeT")?)?
        .checked_mul(channels / samples)
}

/// How many pages a file has, as its first IFD (the only one in `chain`)
/// declares them, for the files whose series that IFD alone decides:
/// ImageJ's (and SCIFIO's) `images=`, the page axes of tifffile's shaped
/// description, or the planes of an OME-XML with one image. `None` for
/// every other file, whose pages are only known from the whole chain
/// (OME-XML of several images or files, Micro-Manager, LSM, STK and
/// FluoView keep their own tables, plain files have no count).
pub fn declared_pages(chain: &IfdChain) -> Option<u64> {
    if chain.micromanager.is_some()
        || chain.lsm_info.is_some()
        || chain.fluoview_header.is_some()
        || chain.stk.is_some()
    {
        return None;
    }
    let desc = chain.description.as_deref()?;
    if desc.contains("<OME") {
        return ome_declared_pages(chain, desc);
    }
    if desc.starts_with("ImageJ=") || desc.starts_with("SCIFIO=") {
        return desc
            .lines()
            .find_map(|l| l.strip_prefix("images="))
            .and_then(|v| v.trim().parse().ok());
    }
    if desc.trim_start().starts_with('{') {
        let (_, dims) = shaped_page_axes(chain, desc)?;
        return dims.iter().try_fold(1u64, |a, d| a.checked_mul(*d));
    }
    None
}

/// Pixel width and height from XResolution and YResolution (pixels per
/// unit, so the size is their inverse, as tifffile and ImageJ read them),
/// in `units` (x, y) or else ResolutionUnit's (2 inch, 3 centimeter; 1, no
/// unit, gives no size).
fn resolution_sizes(chain: &IfdChain, units: Option<(&str, &str)>) -> PhysicalSizes {
    let mut sizes = PhysicalSizes::default();
    let Some((xr, yr, unit)) = chain.resolution else {
        return sizes;
    };
    let (x_unit, y_unit) = match (units, unit) {
        (Some((x, y)), _) => (unit_name(x), unit_name(y)),
        (None, 2) => ("inch".to_string(), "inch".to_string()),
        (None, 3) => ("centimeter".to_string(), "centimeter".to_string()),
        _ => return sizes,
    };
    let size = |resolution: f64, unit: String| {
        (resolution > 0.0 && resolution.is_finite()).then(|| PhysicalSize {
            value: 1.0 / resolution,
            unit,
        })
    };
    sizes.x = size(xr, x_unit);
    sizes.y = size(yr, y_unit);
    sizes
}

fn ome(chain: &IfdChain, xml: &str) -> Result<Interpretation, Rejection> {
    check_xml_structure(xml).map_err(Rejection::Refused)?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_XML_NODES,
    };
    let doc = roxmltree::Document::parse_with_options(xml, options).map_err(|e| match e {
        roxmltree::Error::NodesLimitReached => Rejection::Refused(CoreError::Unsupported(format!(
            "the OME-XML has more than {MAX_XML_NODES} XML nodes, the most pentascope reads"
        ))),
        e => Rejection::Ignored(format!("invalid XML: {e}")),
    })?;
    let image = doc
        .descendants()
        .find(|n| n.tag_name().name() == "Image")
        .ok_or("no Image element")?;
    let pixels = image
        .children()
        .find(|n| n.tag_name().name() == "Pixels")
        .ok_or("no Pixels element")?;
    let size = |name: &str| -> Result<u64, String> {
        match pixels.attribute(name).unwrap_or("1").parse::<u64>() {
            Ok(0) => Err(format!("{name} is 0")),
            Ok(n) => Ok(n),
            Err(_) => Err(format!("{name} is not a number")),
        }
    };
    let (sx, sy, sz, sc, st) = (
        size("SizeX")?,
        size("SizeY")?,
        size("SizeZ")?,
        size("SizeC")?,
        size("SizeT")?,
    );
    let first = chain
        .pages
        .first()
        .and_then(|p| p.as_ref().ok())
        .ok_or("the first page cannot be read")?;
    if sx != u64::from(first.width) || sy != u64::from(first.height) {
        return Err(format!(
            "SizeX×SizeY {sx}×{sy} differs from the first page's {}×{}",
            first.width, first.height
        )
        .into());
    }
    let spp = u64::from(first.samples);
    if sc % spp != 0 {
        return Err(format!("SizeC {sc} is not a multiple of {spp} samples per pixel").into());
    }
    let order = pixels.attribute("DimensionOrder").unwrap_or("XYZCT");
    if order.len() != 5 || !order.starts_with("XY") {
        return Err(format!("unknown DimensionOrder {order:?}").into());
    }
    // page axes outermost first: the reverse of DimensionOrder without XY
    let axes: Vec<(char, u64)> = order[2..]
        .chars()
        .rev()
        .map(|a| {
            let n = match a {
                'Z' => sz,
                'C' => sc / spp,
                _ => st,
            };
            (a, n)
        })
        .collect();
    let n_pages = chain.pages.len() as u64;
    let n_planes = check_declared_planes(&axes, n_pages).map_err(Rejection::Refused)?;
    let mut pages: Vec<Option<usize>> = vec![None; n_planes as usize];
    let mut warnings = Vec::new();
    let tiffdata: Vec<_> = pixels
        .children()
        .filter(|n| n.tag_name().name() == "TiffData")
        .collect();
    if tiffdata.is_empty() {
        for (k, p) in pages.iter_mut().enumerate() {
            *p = (k < chain.pages.len()).then_some(k);
        }
    }
    // planes mapped by all TiffData together; bounded so that many elements
    // each mapping every plane cannot cost elements × planes
    let mut mapped = 0u64;
    for td in &tiffdata {
        if let Some(uuid) = td.children().find(|n| n.tag_name().name() == "UUID") {
            if let Some(name) = uuid.attribute("FileName") {
                let own = doc.root_element().attribute("UUID");
                if uuid.text().map(str::trim) != own {
                    return Err(format!(
                        "planes are stored in another file ({name}); multi-file OME-TIFF \
                         datasets are not supported"
                    )
                    .into());
                }
            }
        }
        let attr = |name: &str| td.attribute(name).and_then(|v| v.parse::<u64>().ok());
        let first_ifd = attr("IFD").unwrap_or(0);
        let count = attr("PlaneCount")
            .or(attr("NumPlanes"))
            .unwrap_or(if td.attribute("IFD").is_some() { 1 } else { 0 });
        // index of the first plane in C order over the page axes; below
        // n_planes, as each coordinate is clamped below its axis size
        let mut start = 0u64;
        for (a, n) in &axes {
            let first = attr(&format!("First{a}")).unwrap_or(0);
            if first >= *n {
                warnings.push(format!("TiffData First{a}={first} is outside the image"));
            }
            start = start * n + first.min(n - 1);
        }
        let left = n_planes - start;
        let count = if count == 0 { left } else { count.min(left) };
        mapped += count;
        if mapped > n_planes.saturating_mul(2) {
            return Err(format!(
                "TiffData elements map more than twice the {n_planes} planes the image has"
            )
            .into());
        }
        for k in 0..count {
            match first_ifd.checked_add(k).filter(|page| *page < n_pages) {
                Some(page) => pages[(start + k) as usize] = Some(page as usize),
                None => {
                    warnings.push(format!(
                        "OME TiffData refers to IFD {} but the file has {n_pages}; \
                         {} plane(s) from there on are left as zeros",
                        first_ifd.saturating_add(k),
                        count - k
                    ));
                    break;
                }
            }
        }
    }
    let missing = pages.iter().filter(|p| p.is_none()).count() as u64;
    if missing > allowed_missing_planes(n_planes) {
        return Err(Rejection::Refused(too_many_missing_planes(
            n_planes,
            n_planes - missing,
        )));
    }
    if missing > 0 && warnings.is_empty() {
        warnings.push(format!(
            "{missing} plane(s) have no TIFF page and are left as zeros"
        ));
    }
    let channel_names = pixels
        .children()
        .filter(|n| n.tag_name().name() == "Channel")
        .map(|c| c.attribute("Name").unwrap_or("").to_string())
        .collect();
    let unit_of = |attr: &str, default: &str| {
        unit_name(
            pixels
                .attribute(format!("{attr}Unit").as_str())
                .unwrap_or(default),
        )
    };
    let physical_of = |attr: &str, default_unit: &str| {
        pixels
            .attribute(attr)
            .and_then(|v| v.parse::<f64>().ok())
            .map(|value| PhysicalSize {
                value,
                unit: unit_of(attr, default_unit),
            })
    };
    Ok(Interpretation {
        flavour: Flavour::Ome,
        axes,
        pages,
        channel_names,
        physical: PhysicalSizes {
            x: physical_of("PhysicalSizeX", "µm"),
            y: physical_of("PhysicalSizeY", "µm"),
            z: physical_of("PhysicalSizeZ", "µm"),
            t: physical_of("TimeIncrement", "s"),
        },
        acquisition: ome_acquisition(&doc, image, pixels),
        notes: ome_notes(&doc, image),
        original: None,
        warnings,
        contiguous: None,
    }
    .squeezed())
}

/// The description of OME `image` and the tag and map annotations it
/// refers to (`AnnotationRef`) in the document's `StructuredAnnotations`.
fn ome_notes(doc: &roxmltree::Document, image: roxmltree::Node) -> FileNotes {
    let ome_ns = image.tag_name().namespace();
    let is = |n: &roxmltree::Node, name: &str| {
        n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == ome_ns
    };
    let description = image
        .children()
        .find(|n| is(n, "Description"))
        .and_then(|n| n.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from);
    let refs: std::collections::HashSet<&str> = image
        .children()
        .filter(|n| is(n, "AnnotationRef"))
        .filter_map(|n| n.attribute("ID"))
        .collect();
    let mut notes = FileNotes {
        description,
        ..FileNotes::default()
    };
    let annotations = doc
        .root_element()
        .children()
        .filter(|n| is(n, "StructuredAnnotations"))
        .flat_map(|n| n.children())
        .filter(|n| n.attribute("ID").is_some_and(|id| refs.contains(id)));
    for annotation in annotations {
        let value = annotation.children().find(|n| is(n, "Value"));
        if is(&annotation, "TagAnnotation") {
            if let Some(tag) = value.and_then(|v| v.text()).filter(|t| !t.is_empty()) {
                notes.tags.push(tag.to_string());
            }
        } else if is(&annotation, "MapAnnotation") {
            for m in value
                .into_iter()
                .flat_map(|v| v.children())
                .filter(|n| is(n, "M"))
            {
                if let Some(key) = m.attribute("K") {
                    notes
                        .annotations
                        .push((key.to_string(), m.text().unwrap_or("").to_string()));
                }
            }
        }
    }
    notes
}

/// The acquisition details of OME `image`: its date, the objective its
/// `ObjectiveSettings` name (in the instrument it refers to), and each
/// channel's wavelengths, fluorophore and colour. Only elements in the OME
/// namespace count: vendors' own metadata (kept in annotations) may repeat
/// the same names.
fn ome_acquisition(
    doc: &roxmltree::Document,
    image: roxmltree::Node,
    pixels: roxmltree::Node,
) -> Acquisition {
    let ome_ns = image.tag_name().namespace();
    let is = |n: &roxmltree::Node, name: &str| {
        n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == ome_ns
    };
    let text = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(String::from);
    let number = |s: Option<&str>| {
        s.and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite())
    };
    let date = image
        .children()
        .find(|n| is(n, "AcquisitionDate"))
        .and_then(|n| text(n.text()));
    let objective = image
        .children()
        .find(|n| is(n, "ObjectiveSettings"))
        .and_then(|settings| settings.attribute("ID"))
        .and_then(|id| {
            let instrument = image
                .children()
                .find(|n| is(n, "InstrumentRef"))
                .and_then(|r| r.attribute("ID"));
            doc.root_element()
                .children()
                .filter(|n| is(n, "Instrument"))
                .filter(|n| instrument.is_none() || n.attribute("ID") == instrument)
                .flat_map(|n| n.children())
                .find(|n| is(n, "Objective") && n.attribute("ID") == Some(id))
        })
        .map(|o| Objective {
            model: text(o.attribute("Model")),
            manufacturer: text(o.attribute("Manufacturer")),
            nominal_magnification: number(o.attribute("NominalMagnification")),
            lens_na: number(o.attribute("LensNA")),
            immersion: text(o.attribute("Immersion")),
        });
    let wavelength = |c: &roxmltree::Node, attr: &str| {
        number(c.attribute(attr)).map(|value| PhysicalSize {
            value,
            unit: unit_name(c.attribute(format!("{attr}Unit").as_str()).unwrap_or("nm")),
        })
    };
    let channels = pixels
        .children()
        .filter(|n| is(n, "Channel"))
        .map(|c| ChannelAcquisition {
            excitation_wavelength: wavelength(&c, "ExcitationWavelength"),
            emission_wavelength: wavelength(&c, "EmissionWavelength"),
            fluor: text(c.attribute("Fluor")),
            // OME writes RGBA as one signed 32-bit integer
            color: c
                .attribute("Color")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|v| (i64::from(i32::MIN)..=i64::from(u32::MAX)).contains(v))
                .map(|v| format!("#{:06X}", (v as u32) >> 8)),
            illumination: text(c.attribute("IlluminationType")),
            display_range: None,
        })
        .collect::<Vec<_>>();
    let described = channels.iter().any(|c| *c != ChannelAcquisition::default());
    Acquisition {
        date,
        objective,
        channels: if described { channels } else { Vec::new() },
    }
}

/// How many of `planes` declared planes may lack a page and be zeros.
pub(crate) fn allowed_missing_planes(planes: u64) -> u64 {
    MIN_MISSING_PLANES.max(planes / MISSING_PLANES_DIVISOR)
}

fn too_many_missing_planes(declared: u64, present: u64) -> CoreError {
    CoreError::Format(format!(
        "the OME-XML declares {declared} planes but the file holds only {present} of them; \
         at most {} planes may be missing (the larger of {MIN_MISSING_PLANES} and a tenth \
         of the planes), the rest would be stored as zeros",
        allowed_missing_planes(declared)
    ))
}

/// The number of planes the OME page axes declare, refused before anything
/// of that size is allocated when it overflows or when the file's pages
/// could not hold nearly all of them (each page holds at most one plane).
fn check_declared_planes(axes: &[(char, u64)], n_pages: u64) -> Result<u64, CoreError> {
    let sizes = || {
        axes.iter()
            .map(|(a, n)| format!("Size{a}={n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let planes = axes
        .iter()
        .try_fold(1u64, |acc, (_, n)| acc.checked_mul(*n))
        .ok_or_else(|| {
            CoreError::Format(format!(
                "the OME-XML declares more than 2^64 planes ({})",
                sizes()
            ))
        })?;
    if planes.saturating_sub(n_pages) > allowed_missing_planes(planes) {
        return Err(too_many_missing_planes(planes, n_pages));
    }
    Ok(planes)
}

/// Refuses XML that would exhaust roxmltree before it is parsed: elements
/// nested deeper than [`MAX_XML_DEPTH`] (its parser recurses per level) or
/// carrying more than [`MAX_XML_ATTRIBUTES`] attributes. Tags are counted
/// as roxmltree reads them: comments, CDATA sections and processing
/// instructions are skipped and quoted attribute values may hold `>`; where
/// this scan and roxmltree could disagree, roxmltree rejects the text first.
fn check_xml_structure(xml: &str) -> Result<(), CoreError> {
    let b = xml.as_bytes();
    let skip_past = |from: usize, end: &[u8]| {
        b[from..]
            .windows(end.len())
            .position(|w| w == end)
            .map_or(b.len(), |p| from + p + end.len())
    };
    let mut depth = 0usize;
    let mut i = 0usize;
    while let Some(p) = b[i..].iter().position(|&c| c == b'<') {
        let at = i + p;
        let rest = &b[at..];
        i = if rest.starts_with(b"<!--") {
            skip_past(at + 4, b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_past(at + 9, b"]]>")
        } else if rest.starts_with(b"<?") {
            skip_past(at + 2, b"?>")
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            at + 2
        } else if rest.starts_with(b"<!") {
            // a DOCTYPE, which roxmltree refuses
            at + 2
        } else {
            let mut quote = None;
            let mut attributes = 0usize;
            let mut end = None;
            for (j, &c) in rest.iter().enumerate().skip(1) {
                match (quote, c) {
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, b'"' | b'\'') => quote = Some(c),
                    (None, b'=') => attributes += 1,
                    (None, b'>') => {
                        end = Some(j);
                        break;
                    }
                    (None, _) => {}
                }
            }
            if attributes > MAX_XML_ATTRIBUTES {
                return Err(CoreError::Unsupported(format!(
                    "an OME-XML element has {attributes} attributes; at most \
                     {MAX_XML_ATTRIBUTES} are read"
                )));
            }
            let Some(end) = end else { break };
            if rest[end - 1] != b'/' {
                depth += 1;
                if depth > MAX_XML_DEPTH {
                    return Err(CoreError::Unsupported(format!(
                        "the OME-XML nests elements more than {MAX_XML_DEPTH} levels deep, \
                         the most pentascope reads"
                    )));
                }
            }
            at + end + 1
        };
    }
    Ok(())
}

fn imagej(chain: &IfdChain, desc: &str, limits: &Limits) -> Result<Interpretation, Rejection> {
    let value = |key: &str| {
        desc.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .map(str::trim)
    };
    let count = |key: &str| -> Result<u64, String> {
        value(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| format!("{key}={v} is not a count"))
            })
            .transpose()
            .map(|v| v.unwrap_or(1))
    };
    let (channels, slices, frames) = (count("channels")?, count("slices")?, count("frames")?);
    let pages = first_kind_pages(chain);
    let images = value("images")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(pages.len() as u64);
    if channels
        .checked_mul(slices)
        .and_then(|n| n.checked_mul(frames))
        != Some(images)
    {
        return Err(format!(
            "channels×slices×frames = {channels}×{slices}×{frames} differs from images={images}"
        )
        .into());
    }
    let mut contiguous = None;
    let pages: Vec<Option<usize>> = if images == pages.len() as u64 {
        pages.into_iter().map(Some).collect()
    } else {
        match contiguous_planes(
            chain,
            images,
            pages.len() as u64,
            limits,
            &format!("the ImageJ description declares images={images}"),
        )? {
            Some(planes) => {
                contiguous = Some(planes);
                // below max_pages, checked by contiguous_planes
                (0..images as usize).map(Some).collect()
            }
            None => {
                return Err(format!(
                    "images={images} but the file has {} pages of the first page's shape, \
                     and the first page's data is not followed by the other planes \
                     (uncompressed and contiguous, as ImageJ stores files of more than 4 GB)",
                    pages.len()
                )
                .into())
            }
        }
    };
    // ImageJ keeps pixels per `unit` in XResolution and YResolution (its
    // ResolutionUnit says none); `yunit` and `zunit` where they differ
    let unit = value("unit");
    let y_unit = value("yunit").or(unit);
    let mut physical = match unit {
        Some(unit) => resolution_sizes(chain, Some((unit, y_unit.unwrap_or(unit)))),
        None => PhysicalSizes::default(),
    };
    let size = |key: &str, unit: &str| {
        value(key)
            .and_then(|v| v.parse::<f64>().ok())
            .map(|value| PhysicalSize {
                value,
                unit: unit_name(unit),
            })
    };
    physical.z = size("spacing", value("zunit").or(unit).unwrap_or("pixel"));
    physical.t = size("finterval", value("tunit").unwrap_or("second"));
    let number = |key: &str| value(key).and_then(|v| v.parse::<f64>().ok());
    let described_range = number("min").zip(number("max")).map(|(a, b)| [a, b]);
    let acquisition = Acquisition {
        channels: imagej_channels(chain, described_range, channels),
        ..Acquisition::default()
    };
    Ok(Interpretation {
        flavour: Flavour::ImageJ,
        // ImageJ stores channels fastest, then slices, then frames
        axes: vec![('T', frames), ('Z', slices), ('C', channels)],
        pages,
        channel_names: Vec::new(),
        physical,
        acquisition,
        notes: FileNotes::default(),
        original: None,
        warnings: Vec::new(),
        contiguous,
    }
    .squeezed())
}

/// Each channel's display range and colour as ImageJ saved them: `Ranges`
/// (min and max per channel) and `LUTs` (the colour at the top of each
/// lookup table) from its binary metadata, read as tifffile reads them;
/// without `Ranges`, the description's `min` and `max` for a one-channel
/// image. Empty when the file says nothing, or says it inconsistently.
fn imagej_channels(
    chain: &IfdChain,
    described_range: Option<[f64; 2]>,
    channels: u64,
) -> Vec<ChannelAcquisition> {
    let mut ranges: Option<Vec<f64>> = None;
    let mut luts: Vec<[u8; 3]> = Vec::new();
    if let Some((counts, data)) = &chain.imagej_metadata {
        let header_len = counts.first().copied().unwrap_or(0) as usize;
        let header = data.get(..header_len).unwrap_or(&[]);
        let big = match header.get(..4) {
            Some(b"IJIJ") => true,
            Some(b"JIJI") => false,
            _ => return fallback_channels(described_range, channels),
        };
        let u32_at = |b: &[u8]| -> u32 {
            let a: [u8; 4] = b.try_into().unwrap_or([0; 4]);
            if big {
                u32::from_be_bytes(a)
            } else {
                u32::from_le_bytes(a)
            }
        };
        let mut pos = header_len;
        let mut entry = 1usize;
        for pair in header[4..].chunks_exact(8) {
            let mut kind = [pair[0], pair[1], pair[2], pair[3]];
            if !big {
                kind.reverse();
            }
            for _ in 0..u32_at(&pair[4..8]) {
                let Some(len) = counts.get(entry).map(|c| *c as usize) else {
                    return fallback_channels(described_range, channels);
                };
                let Some(bytes) = pos.checked_add(len).and_then(|end| data.get(pos..end)) else {
                    return fallback_channels(described_range, channels);
                };
                match &kind {
                    b"rang" => {
                        ranges = Some(
                            bytes
                                .chunks_exact(8)
                                .map(|b| {
                                    let a: [u8; 8] = b.try_into().unwrap_or([0; 8]);
                                    if chain.big_endian {
                                        f64::from_be_bytes(a)
                                    } else {
                                        f64::from_le_bytes(a)
                                    }
                                })
                                .collect(),
                        )
                    }
                    b"luts" if bytes.len() == 768 => {
                        luts.push([bytes[255], bytes[511], bytes[767]]);
                    }
                    _ => {}
                }
                pos += len;
                entry += 1;
            }
        }
    }
    let n = channels as usize;
    let ranges: Option<Vec<[f64; 2]>> = match ranges {
        Some(r) if r.len() == 2 * n => Some(r.chunks_exact(2).map(|p| [p[0], p[1]]).collect()),
        _ => None,
    };
    if ranges.is_none() && luts.len() != n {
        return fallback_channels(described_range, channels);
    }
    (0..n)
        .map(|i| ChannelAcquisition {
            display_range: ranges.as_ref().map(|r| r[i]).or(if n == 1 {
                described_range
            } else {
                None
            }),
            color: (luts.len() == n).then(|| {
                let [r, g, b] = luts[i];
                format!("#{r:02X}{g:02X}{b:02X}")
            }),
            ..ChannelAcquisition::default()
        })
        .collect()
}

/// A one-channel image's description `min`/`max` as its display range.
fn fallback_channels(described_range: Option<[f64; 2]>, channels: u64) -> Vec<ChannelAcquisition> {
    match (described_range, channels) {
        (Some(range), 1) => vec![ChannelAcquisition {
            display_range: Some(range),
            ..ChannelAcquisition::default()
        }],
        _ => Vec::new(),
    }
}

/// The planes of an ImageJ file whose description declares more `images`
/// than it has `pages`, when they are stored as ImageJ stores files of more
/// than 4 GB and tifffile reads them ([`ContiguousPlanes`]): the first page
/// in final form (uncompressed, its strips back to back) and no second IFD
/// inside the planes' bytes. `None` where the layout is not that one;
/// refused where it is but the file is too short for the planes, or they
/// are more than [`Limits::max_pages`].
fn contiguous_planes(
    chain: &IfdChain,
    images: u64,
    pages: u64,
    limits: &Limits,
    declared: &str,
) -> Result<Option<ContiguousPlanes>, Rejection> {
    let Some(Ok(first)) = chain.pages.first() else {
        return Ok(None);
    };
    if images <= pages || !first.is_final() {
        return Ok(None);
    }
    if images > limits.max_pages {
        return Err(Rejection::Refused(CoreError::LimitsExceeded(format!(
            "{declared} planes, more than the configured maximum of {} pages",
            limits.max_pages
        ))));
    }
    let offset = first.offsets[0];
    // checked arithmetic: the count and the plane come from the file
    let layout = first
        .plane_bytes()
        .and_then(|plane| Some((plane, plane.checked_mul(images)?.checked_add(offset)?)));
    let Some((plane_bytes, end)) = layout.filter(|(_, end)| *end <= chain.file_len) else {
        return Err(Rejection::Refused(CoreError::Format(format!(
            "{declared} planes of {}×{}×{} {} samples stored one after another \
             from offset {offset}, more than the file's {} bytes hold (truncated?)",
            first.width, first.height, first.samples, first.dtype, chain.file_len
        ))));
    };
    // tifffile reads the planes from the first page only if the next IFD
    // is not among them
    if chain.ifd_offsets.get(1).is_some_and(|next| *next < end) {
        return Ok(None);
    }
    Ok(Some(ContiguousPlanes {
        offset,
        plane_bytes,
        count: images,
    }))
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
fn micromanager(chain: &IfdChain, mm: &MicroManager) -> Result<Interpretation, Rejection> {
    let summary = micromanager_summary(mm)?;
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
            Rejection::Refused(CoreError::Format(format!(
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
        return Err(Rejection::Refused(CoreError::Format(format!(
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
    if let Ok(letters) = super::canonical_letters(&axes) {
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
type IndexMap<'a> = &'a [[u32; 5]];

/// A Micro-Manager file's summary, where it is an acquisition's (names
/// `MicroManagerVersion` and `Frames`), as tifffile requires.
fn micromanager_summary(mm: &MicroManager) -> Result<Json, Rejection> {
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
pub(crate) fn micromanager_dataset(mm: &MicroManager) -> Option<Option<String>> {
    let summary = micromanager_summary(mm).ok()?;
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
fn python_int(value: &Json) -> Option<i64> {
    match value {
        Json::Bool(b) => Some(i64::from(*b)),
        Json::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Whether a JSON value is true as Python's `bool()` tests it.
fn truthy(value: &Json) -> bool {
    match value {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64() != Some(0.0),
        Json::String(s) => !s.is_empty(),
        Json::Array(a) => !a.is_empty(),
        Json::Object(o) => !o.is_empty(),
    }
}

/// Where MM_Header's ten dimensions start, and the bytes of each (name,
/// size, origin, resolution, unit).
const MM_DIMENSIONS_AT: usize = 284;
const MM_DIMENSION_BYTES: usize = 100;

/// An Olympus FluoView file as tifffile reads it: MM_Header's named
/// dimensions, outermost last, place the pages (`Z`; `T` or `Time`; `Ch`
/// or `Wavelength` as channels); other named dimensions of more than one
/// plane are unlabelled axes. Each dimension's resolution in its unit is
/// its physical size.
fn fluoview(chain: &IfdChain, header: &[u8]) -> Result<Interpretation, Rejection> {
    if header.len() < MM_DIMENSIONS_AT + 10 * MM_DIMENSION_BYTES {
        return Err(format!(
            "MM_Header has {} bytes, fewer than its dimensions need",
            header.len()
        )
        .into());
    }
    let word = |bytes: &[u8]| -> [u8; 8] {
        let mut w = [0u8; 8];
        w[..bytes.len()].copy_from_slice(bytes);
        if chain.big_endian {
            w[..bytes.len()].reverse();
        }
        w
    };
    let text = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes.split(|b| *b == 0).next().unwrap_or_default())
            .trim()
            .to_string()
    };
    let mut axes: Vec<(char, u64)> = Vec::new();
    let mut physical = PhysicalSizes::default();
    for i in (0..10).rev() {
        let d = &header[MM_DIMENSIONS_AT + i * MM_DIMENSION_BYTES..][..MM_DIMENSION_BYTES];
        let name = text(&d[..16]).to_uppercase();
        let size = i32::from_le_bytes(word(&d[16..20])[..4].try_into().unwrap());
        let resolution = f64::from_le_bytes(word(&d[28..36]));
        let unit = text(&d[36..100]);
        let size_of = || {
            (resolution.is_finite() && resolution > 0.0 && !unit.is_empty()).then(|| PhysicalSize {
                value: resolution,
                unit: unit_name(&unit),
            })
        };
        let letter = match name.as_str() {
            "X" => {
                physical.x = size_of();
                continue;
            }
            "Y" => {
                physical.y = size_of();
                continue;
            }
            "Z" => 'Z',
            "T" | "TIME" => 'T',
            "CH" | "WAVELENGTH" => 'C',
            _ => 'I',
        };
        if letter == 'Z' {
            physical.z = size_of();
        }
        if size > 1 {
            if letter != 'I' && axes.iter().any(|(a, _)| *a == letter) {
                return Err(format!("MM_Header names two {letter} dimensions").into());
            }
            axes.push((letter, size as u64));
        }
    }
    let pages = first_kind_pages(chain);
    let planes = axes
        .iter()
        .try_fold(1u64, |n, (_, size)| n.checked_mul(*size));
    if planes != Some(pages.len() as u64) {
        return Err(format!(
            "MM_Header's dimensions give {planes:?} planes but the file has {} pages",
            pages.len()
        )
        .into());
    }
    if let Ok(letters) = super::canonical_letters(&axes) {
        for ((letter, _), canonical) in axes.iter_mut().zip(letters) {
            *letter = canonical;
        }
    }
    Ok(Interpretation {
        flavour: Flavour::Fluoview,
        axes,
        pages: pages.into_iter().map(Some).collect(),
        channel_names: Vec::new(),
        physical,
        acquisition: Acquisition::default(),
        notes: FileNotes::default(),
        original: None,
        warnings: Vec::new(),
        contiguous: None,
    }
    .squeezed())
}

/// A Zeiss LSM file as tifffile reads it: its image pages (the others are
/// thumbnails) along the page axes of its scan type, sizes from
/// CZ_LSMINFO; channels are each page's samples. Voxel sizes (metres) and
/// the time interval (seconds) are the physical sizes. Line and point
/// scans (x-z planes, single lines) are read as plain files.
fn lsm(chain: &IfdChain, info: &[u8]) -> Result<Interpretation, Rejection> {
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(info.get(at..at + 4)?.try_into().ok()?))
    };
    let f64_at = |at: usize| -> Option<f64> {
        Some(f64::from_le_bytes(info.get(at..at + 8)?.try_into().ok()?))
    };
    let u16_at = |at: usize| -> Option<u16> {
        Some(u16::from_le_bytes(info.get(at..at + 2)?.try_into().ok()?))
    };
    let magic = u32_at(0).ok_or("CZ_LSMINFO is shorter than its header")?;
    if magic != 0x0300_494C && magic != 0x0400_494C {
        return Err(format!("CZ_LSMINFO has the magic number {magic:#x}, not LSM's").into());
    }
    let dimension = |at: usize, name: &str| -> Result<u64, Rejection> {
        match u32_at(at).map(|v| v as i32) {
            Some(v) if v >= 1 => Ok(v as u64),
            other => Err(format!("CZ_LSMINFO's {name} is {other:?}, not a size").into()),
        }
    };
    let (z, t) = (
        dimension(16, "DimensionZ")?,
        dimension(24, "DimensionTime")?,
    );
    let scan_type = u16_at(88).ok_or("CZ_LSMINFO ends before ScanType")?;
    // page axes of the plane scans, outermost first (tifffile's
    // CZ_LSMINFO_SCANTYPE without C, Y and X)
    let axes = match scan_type {
        0 => vec![('Z', z)],
        3 => vec![('T', t)],
        6 | 7 => vec![('T', t), ('Z', z)],
        other => {
            return Err(format!(
                "LSM scan type {other} (a line, point or x-z scan) is read as a plain file"
            )
            .into())
        }
    };
    let pages = first_kind_pages(chain);
    let planes: u64 = axes.iter().map(|(_, n)| n).product();
    if planes != pages.len() as u64 {
        return Err(format!(
            "CZ_LSMINFO's dimensions give {planes} planes but the file has {} image pages",
            pages.len()
        )
        .into());
    }
    let metres = |at: usize| {
        f64_at(at)
            .filter(|v| v.is_finite() && *v > 0.0)
            .map(|v| PhysicalSize {
                value: v * 1e6,
                unit: "micrometer".into(),
            })
    };
    let interval = f64_at(112)
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|value| PhysicalSize {
            value,
            unit: "second".into(),
        });
    let physical = PhysicalSizes {
        x: metres(40),
        y: metres(48),
        z: metres(56).filter(|_| z > 1),
        t: interval.filter(|_| t > 1),
    };
    Ok(Interpretation {
        flavour: Flavour::Lsm,
        axes,
        pages: pages.into_iter().map(Some).collect(),
        channel_names: Vec::new(),
        physical,
        acquisition: Acquisition::default(),
        notes: FileNotes::default(),
        original: None,
        warnings: Vec::new(),
        contiguous: None,
    }
    .squeezed())
}

/// A MetaMorph STK file as tifffile reads it: one page whose planes follow
/// its data back to back, as many as UIC2tag counts, along Z, T or an
/// unlabelled axis ([`StkPlanes::axis`]).
fn metamorph(
    chain: &IfdChain,
    stk: StkPlanes,
    limits: &Limits,
) -> Result<Interpretation, Rejection> {
    let pages = first_kind_pages(chain).len() as u64;
    let Some(planes) = contiguous_planes(
        chain,
        stk.count,
        pages,
        limits,
        &format!("the MetaMorph UIC2tag declares {}", stk.count),
    )?
    else {
        return Err(format!(
            "UIC2tag counts {} planes but the first page's data is not followed by them \
             (uncompressed, back to back)",
            stk.count
        )
        .into());
    };
    let mut axes = vec![(stk.axis, stk.count)];
    if let Ok(letters) = super::canonical_letters(&axes) {
        axes[0].0 = letters[0];
    }
    Ok(Interpretation {
        flavour: Flavour::Stk,
        axes,
        // below max_pages, checked by stk_planes
        pages: (0..stk.count as usize).map(Some).collect(),
        channel_names: Vec::new(),
        physical: resolution_sizes(chain, None),
        acquisition: Acquisition::default(),
        notes: FileNotes::default(),
        original: None,
        warnings: Vec::new(),
        contiguous: Some(planes),
    }
    .squeezed())
}

/// The non-varying frame data of a ScanImage BigTIFF (v3/v4), stored right
/// after the 16-byte header, and its ROI groups (JSON) after that, where
/// they lie within the header's bytes read.
fn scanimage_header(header: &[u8]) -> Option<(String, Option<String>)> {
    let word = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(header.get(i..i + 4)?.try_into().ok()?))
    };
    if header.get(0..2)? != b"II" || word(16)? != 0x0703_0301 || !(3..=4).contains(&word(20)?) {
        return None;
    }
    let size = word(24)? as usize;
    let text = header.get(32..32usize.checked_add(size)?)?;
    let rois = word(28).and_then(|len| {
        let start = 32 + size;
        header.get(start..start.checked_add(len as usize)?)
    });
    Some((
        String::from_utf8_lossy(text).into_owned(),
        rois.map(|r| String::from_utf8_lossy(r).into_owned()),
    ))
}

fn scanimage(chain: &IfdChain, text: &str) -> Result<Interpretation, String> {
    let value = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let saved = value("SI.hChannels.channelSave").ok_or("no SI.hChannels.channelSave")?;
    let channels = saved
        .trim_matches(|c| c == '[' || c == ']')
        .split([';', ' ', ','])
        .filter(|s| !s.is_empty())
        .count()
        .max(1) as u64;
    let pages = first_kind_pages(chain);
    let n = pages.len() as u64;
    let frames = match value("SI.hStackManager.framesPerSlice").map(|v| v.parse::<u64>()) {
        Some(Ok(f)) if f > 0 => f,
        _ => {
            if n % channels != 0 {
                return Err("unable to determine framesPerSlice".into());
            }
            n / channels
        }
    };
    let per_slice = frames
        .checked_mul(channels)
        .filter(|p| (1..=n).contains(p))
        .ok_or_else(|| {
            format!("framesPerSlice {frames} × {channels} channels does not fit the {n} pages")
        })?;
    let slices = n / per_slice;
    if slices * per_slice != n {
        return Err(format!(
            "{n} pages do not split into {slices} slices × {frames} frames × {channels} channels"
        ));
    }
    // ScanImage states the Z step in micrometers (the actual one once a
    // stack has been acquired, `[]` before) and the frame period in seconds;
    // the pixel size depends on the scanner's field of view and is not read
    let size = |key: &str, unit: &str| {
        value(key)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v > 0.0 && v.is_finite())
            .map(|value| PhysicalSize {
                value,
                unit: unit.to_string(),
            })
    };
    let physical = PhysicalSizes {
        z: (slices > 1)
            .then(|| {
                size("SI.hStackManager.actualStackZStepSize", "micrometer")
                    .or_else(|| size("SI.hStackManager.stackZStepSize", "micrometer"))
            })
            .flatten(),
        t: (frames > 1)
            .then(|| size("SI.hRoiManager.scanFramePeriod", "second"))
            .flatten(),
        ..PhysicalSizes::default()
    };
    Ok(Interpretation {
        flavour: Flavour::ScanImage,
        axes: vec![('Z', slices), ('T', frames), ('C', channels)],
        pages: pages.into_iter().map(Some).collect(),
        channel_names: Vec::new(),
        physical,
        acquisition: Acquisition::default(),
        notes: FileNotes::default(),
        original: None,
        warnings: Vec::new(),
        contiguous: None,
    }
    .squeezed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_ok(xml: &str) -> bool {
        check_xml_structure(xml).is_ok()
    }

    #[test]
    fn xml_depth_counts_open_elements_only() {
        let deep = |n: usize| "<a>".repeat(n) + &"</a>".repeat(n);
        assert!(depth_ok(&deep(MAX_XML_DEPTH)));
        assert!(!depth_ok(&deep(MAX_XML_DEPTH + 1)));
        // siblings, empty elements, comments, CDATA and quoted `>` add no depth
        assert!(depth_ok(&"<a></a><b/>".repeat(10 * MAX_XML_DEPTH)));
        let hidden = format!(
            "<r><!--{0}--><![CDATA[{0}]]><?pi {0}?><e v='>'/><e v=\"/>\">x</e></r>",
            "<a>".repeat(2 * MAX_XML_DEPTH)
        );
        assert!(depth_ok(&hidden));
        // an attribute value cannot close a tag early and hide nesting
        let quoted = "<a x='>'>".repeat(MAX_XML_DEPTH + 1);
        assert!(!depth_ok(&quoted));
    }
}
