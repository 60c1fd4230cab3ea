//! TIFF flavours and how each places pages on page axes: one module per
//! flavour, owning both the reading of its own headers and tags and the
//! interpretation of its metadata. [`detect`] tries them in tifffile's
//! order; bad metadata adds a warning and falls back to the plain
//! interpretation instead of failing the file.

pub mod fluoview;
pub mod imagej;
pub mod lsm;
pub mod micromanager;
pub mod ndtiff;
pub mod ome;
pub mod omeset;
pub mod plain;
pub mod scanimage;
pub mod scn;
pub mod stk;
pub mod svs;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::ifd::IfdChain;
use crate::{Limit, Limits, TiffError};

pub use micromanager::{MicroManager, MicroManagerSibling};
pub use ome::{MAX_XML_ATTRIBUTES, MAX_XML_DEPTH, MAX_XML_NODES};
pub use omeset::OmeFileSet;
pub use stk::StkPlanes;

/// Planes an OME-XML may declare without a page (IFD) of their own, which
/// are left as zeros: `max(MIN_MISSING_PLANES, planes / MISSING_PLANES_DIVISOR)`.
/// Damaged files lose a few pages; a file declaring millions of planes over
/// one page would make the service store terabytes of zeros.
pub const MIN_MISSING_PLANES: u64 = 16;
/// See [`MIN_MISSING_PLANES`]: at most a tenth of the planes may be missing.
pub const MISSING_PLANES_DIVISOR: u64 = 10;

/// Where a file's axis metadata came from.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
    /// Aperio SVS whole-slide image (the baseline and its focal planes;
    /// the thumbnail, label and macro are not planes of it).
    Svs,
    /// No axis metadata (or tifffile's shaped JSON description).
    Plain,
}

/// What a series is to the file that holds it.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeriesKind {
    /// The file's first series, as tifffile orders them (an SVS's slide).
    Main,
    /// A slide's small overview (Aperio's second page).
    Thumbnail,
    /// A slide's label (Aperio's page of NewSubfileType 1).
    Label,
    /// A photograph of the whole slide (Aperio's page of NewSubfileType 9).
    Macro,
    /// Any further image: an OME-TIFF's `Image`s after the first, a plain
    /// file's pages of another shape or type.
    Image,
}

impl SeriesKind {
    /// The name the API gives it (`main`, `thumbnail`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SeriesKind::Main => "main",
            SeriesKind::Thumbnail => "thumbnail",
            SeriesKind::Label => "label",
            SeriesKind::Macro => "macro",
            SeriesKind::Image => "image",
        }
    }
}

/// A series of a file beyond its first: its name as tifffile gives it,
/// what it is, and how its pages are laid out.
#[derive(Debug)]
pub(crate) struct FurtherSeries {
    pub name: String,
    pub kind: SeriesKind,
    pub interpretation: Interpretation,
    /// Its own pyramid levels, as [`FileSeries::levels`].
    pub levels: Vec<Vec<Option<usize>>>,
}

impl FurtherSeries {
    /// A series without pyramid levels of its own.
    pub fn flat(name: &str, kind: SeriesKind, interpretation: Interpretation) -> Self {
        FurtherSeries {
            name: name.to_string(),
            kind,
            interpretation,
            levels: Vec::new(),
        }
    }
}

/// What a file holds beside its first series' planes: that series' name
/// and own pyramid levels (the pages of each level, in the order of the
/// series' pages), and the file's further series, in tifffile's order.
#[derive(Debug, Default)]
pub(crate) struct FileSeries {
    pub name: String,
    pub levels: Vec<Vec<Option<usize>>>,
    pub further: Vec<FurtherSeries>,
    /// Series that were left out, and why (added to the first's warnings).
    pub warnings: Vec<String>,
}

/// The series of the file beyond `first` (what [`detect`] found), as
/// tifffile lists them: an Aperio SVS's thumbnail, label and macro and its
/// baseline's pyramid levels, an OME-TIFF's further `Image`s, a plain
/// file's pages of other shapes. Every other flavour holds one series.
/// More than [`Limits::max_series`] series are refused.
pub(crate) fn file_series(
    chain: &IfdChain,
    first: &Interpretation,
    limits: &Limits,
) -> Result<FileSeries, TiffError> {
    let desc = chain.description.as_deref().unwrap_or("");
    let mut found = match first.flavour {
        Flavour::Svs => svs::file_series(chain, first),
        Flavour::Ome => ome::file_series(chain, desc, first, limits)?,
        Flavour::Plain => plain::file_series(chain, first, limits)?,
        Flavour::Lsm => lsm::file_series(chain, first),
        _ => FileSeries::default(),
    };
    check_series_count(found.further.len() as u64 + 1, limits)?;
    found.warnings.extend(chain.subifd_warnings.iter().cloned());
    Ok(found)
}

/// The pyramid levels the SubIFDs (tag 330) of a series' `pages` hold,
/// as tifffile reads OME-TIFF pyramids (and the SubIFDs of plain and
/// shaped files): level k is the k-th SubIFD of each page, for as many
/// levels as the series' first page lists; the levels stop at the first
/// of which no page has a SubIFD.
pub(crate) fn subifd_levels(chain: &IfdChain, pages: &[Option<usize>]) -> Vec<Vec<Option<usize>>> {
    let Some(key) = pages.iter().flatten().next() else {
        return Vec::new();
    };
    let listed = chain.subifds.get(*key).map_or(0, Vec::len);
    (0..listed)
        .map(|k| {
            pages
                .iter()
                .map(|page| page.and_then(|page| chain.subifd_page(page, k)))
                .collect::<Vec<_>>()
        })
        .take_while(|level| level.iter().any(Option::is_some))
        .collect()
}

/// Whether the first of a series' `pages` lists SubIFDs: tifffile names
/// such an OME series `Baseline` where its `Image` has no name.
pub(crate) fn has_subifds(chain: &IfdChain, pages: &[Option<usize>]) -> bool {
    pages
        .iter()
        .flatten()
        .next()
        .and_then(|key| chain.subifds.get(*key))
        .is_some_and(|listed| !listed.is_empty())
}

/// Refuses a file of more than [`Limits::max_series`] series.
pub(crate) fn check_series_count(series: u64, limits: &Limits) -> Result<(), TiffError> {
    if series > limits.max_series {
        return Err(TiffError::too_large(
            Limit::MaxSeries,
            format!(
                "the file holds {series} series (images), more than the configured maximum of {}",
                limits.max_series
            ),
        ));
    }
    Ok(())
}

/// A physical size with its unit, such as 0.65 micrometer.
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
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
    /// `pages` along `axes` with sizes `physical`, and nothing else the
    /// metadata says (no names, notes or acquisition).
    pub fn of_pages(
        flavour: Flavour,
        axes: Vec<(char, u64)>,
        pages: Vec<Option<usize>>,
        physical: PhysicalSizes,
    ) -> Self {
        Interpretation {
            flavour,
            axes,
            pages,
            channel_names: Vec::new(),
            physical,
            acquisition: Acquisition::default(),
            notes: FileNotes::default(),
            original: None,
            warnings: Vec::new(),
            contiguous: None,
        }
    }

    /// A series of page `page` alone (a slide's thumbnail, label or macro).
    pub fn one_page(flavour: Flavour, page: usize) -> Self {
        Interpretation::of_pages(
            flavour,
            Vec::new(),
            vec![Some(page)],
            PhysicalSizes::default(),
        )
    }

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
    Refused(TiffError),
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
pub(crate) fn detect(
    chain: &IfdChain,
    header: &[u8],
    limits: &Limits,
) -> Result<Interpretation, TiffError> {
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
        match micromanager::interpret(chain, mm) {
            Ok(i) => {
                return Ok(Interpretation {
                    original: Some(micromanager::original(mm, desc)),
                    ..i
                });
            }
            Err(e) => ignore("Micro-Manager", e)?,
        }
    }
    if desc.contains("<OME") {
        match ome::interpret(chain, desc) {
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
        match imagej::interpret(chain, desc, limits) {
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
        match lsm::interpret(chain, info) {
            Ok(i) => return Ok(i),
            Err(e) => ignore("Zeiss LSM", e)?,
        }
    }
    if let Some(header) = &chain.fluoview_header {
        match fluoview::interpret(chain, header) {
            Ok(i) => return Ok(i),
            Err(e) => ignore("FluoView", e)?,
        }
    }
    if let Some(stk) = chain.stk {
        match stk::interpret(chain, stk, limits) {
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
        if let Some((text, rois)) = scanimage::header(header) {
            match scanimage::interpret(chain, &text) {
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
    if svs::recognised(chain, desc) {
        match svs::interpret(chain, desc) {
            Ok(i) => {
                return Ok(Interpretation {
                    original: kept("description", desc),
                    ..i
                })
            }
            Err(e) => ignore("Aperio SVS", e)?,
        }
    }
    let mut plain = plain::interpret(chain, desc, &mut warnings);
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
        return ome::declared_pages(chain, desc);
    }
    if desc.starts_with("ImageJ=") || desc.starts_with("SCIFIO=") {
        return desc
            .lines()
            .find_map(|l| l.strip_prefix("images="))
            .and_then(|v| v.trim().parse().ok());
    }
    if desc.trim_start().starts_with('{') {
        let (_, dims) = plain::shaped_page_axes(chain, desc)?;
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

/// How many of `planes` declared planes may lack a page and be zeros.
pub(crate) fn allowed_missing_planes(planes: u64) -> u64 {
    MIN_MISSING_PLANES.max(planes / MISSING_PLANES_DIVISOR)
}

fn too_many_missing_planes(declared: u64, present: u64) -> TiffError {
    TiffError::Format(format!(
        "the OME-XML declares {declared} planes but the file holds only {present} of them; \
         at most {} planes may be missing (the larger of {MIN_MISSING_PLANES} and a tenth \
         of the planes), the rest would be stored as zeros",
        allowed_missing_planes(declared)
    ))
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
        return Err(Rejection::Refused(TiffError::too_large(
            Limit::MaxPages,
            format!(
                "{declared} planes, more than the configured maximum of {} pages",
                limits.max_pages
            ),
        )));
    }
    let offset = first.offsets[0];
    // checked arithmetic: the count and the plane come from the file
    let layout = first
        .plane_bytes()
        .and_then(|plane| Some((plane, plane.checked_mul(images)?.checked_add(offset)?)));
    let Some((plane_bytes, end)) = layout.filter(|(_, end)| *end <= chain.file_len) else {
        return Err(Rejection::Refused(TiffError::Format(format!(
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
