//! Reads multi-dimensional TIFF files as one 5D `TZCYX` series, the way
//! tifffile reads them, and writes OME-TIFF.
//!
//! [`TiffFile::open`] walks the IFD chain ([`ifd`]), recognises the file's
//! flavour ([`flavour`]: OME-TIFF, ImageJ hyperstacks, Micro-Manager MMStack
//! and NDTiff, MetaMorph STK, Zeiss LSM, Olympus FluoView, ScanImage,
//! tifffile's shaped description, plain stacks) and maps every page onto
//! `(t, z, c)`. [`TiffFile::read_band`] then decodes a band of rows of one
//! page, decoding its strips or tiles in parallel. Nothing here holds more
//! than one band in memory; the caller decides what a band is.
//!
//! Every size a file declares is checked against [`Limits`] before it
//! drives an allocation, a loop or a decompressor; a hostile file is an
//! error ([`TiffError`]), never a panic.
//!
//! [`writer`] goes the other way: it plans an OME-TIFF of a whole image so
//! that it can be streamed plane by plane with a known length.
//!
//! ```no_run
//! use pentascope_tiff::{Limits, TiffFile};
//! # fn main() -> Result<(), pentascope_tiff::TiffError> {
//! let file = TiffFile::open("stack.ome.tif".as_ref(), &Limits::default(), None)?;
//! let series = file.series();
//! println!("{:?} {:?} {:?}", series.flavour, series.dtype, series.shape);
//! // the first 16 rows of the first page, one buffer per sample (channel)
//! let first = &series.page_groups()[0];
//! let mut band = vec![Vec::<u16>::new(); first.planes.len()];
//! if let Some(page) = first.page {
//!     file.read_band(page, 0..16, &mut band)?;
//! }
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod codec;
mod codecs;
pub mod dtype;
mod error;
pub mod flavour;
pub mod ifd;
pub mod incremental;
mod jpeg;
mod limits;
pub mod shape;
pub mod writer;

use std::borrow::Cow;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use flavour::{
    Acquisition, ChannelAcquisition, ContiguousPlanes, FileNotes, Flavour, MicroManager,
    MicroManagerSibling, Objective, OmeFileSet, OriginalMetadata, PhysicalSize, PhysicalSizes,
    SeriesKind, StkPlanes,
};
pub use ifd::{ChunkGeometry, Codec, IfdChain, PageLayout};

pub use dtype::{DType, Sample};
pub use error::TiffError;
pub use limits::{Limit, Limits};
pub use shape::{Axes, PlaneIndex, Shape5};

use codec::{decode_chunk, ChunkRef};

/// The image a TIFF file holds, in canonical `TZCYX` terms.
#[derive(Debug, Clone)]
pub struct Series {
    /// Canonical shape.
    pub shape: Shape5,
    /// Sample type.
    pub dtype: DType,
    /// Where the axis metadata came from.
    pub flavour: Flavour,
    /// The file's own axes, as tifffile would name them (e.g. `TCZYX`, `ZYXS`),
    /// with unlabelled page axes already given their canonical letter.
    pub source_axes: String,
    /// Channel names, where the file gives them (OME).
    pub channel_names: Vec<String>,
    /// Physical pixel sizes and time step, where the file gives them.
    pub physical_sizes: PhysicalSizes,
    /// How the image was acquired, where the file says.
    pub acquisition: Acquisition,
    /// The description, tags and key-value annotations the file carries.
    pub notes: FileNotes,
    /// The metadata text as the file carries it.
    pub original_metadata: Option<OriginalMetadata>,
    /// Problems in the metadata that were worked around.
    pub warnings: Vec<String>,
    /// The series' name as tifffile gives it (`Baseline`, `Thumbnail`,
    /// `Label`, `Macro` in an SVS, an OME `Image`'s `Name`), or empty.
    pub name: String,
    /// What the series is to its file.
    pub kind: SeriesKind,
    /// The file's own downsampled copies of the series (an SVS's pyramid),
    /// largest first: tifffile's `series.levels[1..]`.
    pub levels: Vec<SeriesLevel>,
    samples: u16,
    /// Page for each `(t, z, page-channel)`, in that C order.
    page_of: Vec<Option<usize>>,
    /// Set where the pages are planes stored back to back after the first
    /// IFD's data (ImageJ past 4 GB) rather than IFDs.
    contiguous: Option<ContiguousPlanes>,
}

/// One of the file's own downsampled copies of a series: the same planes,
/// each on a page of its own size.
#[derive(Debug, Clone)]
pub struct SeriesLevel {
    /// Rows.
    pub height: u64,
    /// Columns.
    pub width: u64,
    samples: u16,
    shape: Shape5,
    page_of: Vec<Option<usize>>,
}

impl SeriesLevel {
    /// Every page group of the level, as [`Series::page_groups`] gives the
    /// series' own (the same planes, in the same order).
    pub fn page_groups(&self) -> Vec<PageGroup> {
        page_groups(self.shape, self.samples, &self.page_of)
    }
}

/// The pages of a series grouped by what one decode produces: a page and
/// the plane each of its samples belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageGroup {
    /// Page index for [`TiffFile::read_band`], or `None` where the file has
    /// no page (the plane is zeros). Pages are IFDs, except in ImageJ files
    /// that store their planes back to back ([`Series::contiguous`]), where
    /// they are those planes.
    pub page: Option<usize>,
    /// Target plane of each sample of the page, in sample order.
    pub planes: Vec<PlaneIndex>,
}

impl Series {
    /// Interprets a parsed IFD chain as a 5D series: recognises the flavour
    /// from the metadata (`header` is the start of the file, where ScanImage
    /// keeps its own) and checks every page the series uses is readable and
    /// of the first page's kind. No pixel is read.
    pub fn from_chain(
        chain: &IfdChain,
        header: &[u8],
        axes: Option<&Axes>,
        limits: &Limits,
    ) -> Result<Series, TiffError> {
        first_page(&chain.pages)?;
        let interpretation = flavour::detect(chain, header, limits)?;
        Series::from_interpretation(&chain.pages, interpretation, axes, limits)
    }

    /// The series an interpretation gives `pages`, each of which must be
    /// of the first's kind.
    fn from_interpretation(
        pages: &[Result<PageLayout, TiffError>],
        interpretation: flavour::Interpretation,
        axes: Option<&Axes>,
        limits: &Limits,
    ) -> Result<Series, TiffError> {
        let first = first_page(pages)?;
        let series = build_series(first, interpretation, axes, limits)?;
        if series.contiguous.is_some() {
            // every page is a plane of the first page's kind
            return Ok(series);
        }
        for page in series.page_of.iter().flatten() {
            match &pages[*page] {
                Ok(p) if p.same_kind(first) => {}
                Ok(p) => {
                    return Err(TiffError::Format(format!(
                        "page {page} is {}×{}×{} {} but the first page is {}×{}×{} {}",
                        p.width,
                        p.height,
                        p.samples,
                        p.dtype,
                        first.width,
                        first.height,
                        first.samples,
                        first.dtype
                    )))
                }
                Err(e) => return Err(clone_error(e)),
            }
        }
        Ok(series)
    }

    /// The series of a file whose first IFD (the only one `first` holds)
    /// declares how many pages follow ([`flavour::declared_pages`]),
    /// interpreted as if those pages were there, each of the first page's
    /// kind: what an upload streaming in is stored as before its later IFDs
    /// have arrived. The whole chain, read when the upload is complete, has
    /// the last word. `None` where the first IFD does not decide the series.
    pub fn predicted(first: &IfdChain, axes: Option<&Axes>, limits: &Limits) -> Option<Series> {
        let pages = flavour::declared_pages(first)?;
        // a page with SubIFDs has its own pyramid, which is read from the
        // whole file
        if pages == 0 || pages > limits.max_pages || first.subifds.iter().any(|s| !s.is_empty()) {
            return None;
        }
        let page = first.pages.first()?.as_ref().ok()?;
        // later pages are only compared by kind: their chunks stay unlisted
        let later = PageLayout {
            offsets: Vec::new(),
            byte_counts: Vec::new(),
            jpeg: None,
            ..page.clone()
        };
        let mut layouts = Vec::with_capacity(pages as usize);
        layouts.push(Ok(page.clone()));
        layouts.extend((1..pages).map(|_| Ok(later.clone())));
        let chain = IfdChain {
            bigtiff: first.bigtiff,
            big_endian: first.big_endian,
            pages: layouts,
            description: first.description.clone(),
            software: first.software.clone(),
            imagej_metadata: first.imagej_metadata.clone(),
            resolution: first.resolution,
            ifd_offsets: vec![first.ifd_offsets.first().copied().unwrap_or(0); pages as usize],
            stk: None,
            lsm_info: None,
            fluoview_header: None,
            micromanager: None,
            micromanager_tag: false,
            ome_files: None,
            file_len: first.file_len,
            next_ifd: None,
            subifds: Vec::new(),
            sub_pages: Vec::new(),
            subifd_warnings: Vec::new(),
            ndpi: None,
            descriptions: first.descriptions.clone(),
            bif: false,
            philips: false,
        };
        let series = Series::from_chain(&chain, &[], axes, limits).ok()?;
        (series.contiguous.is_none()
            && matches!(
                series.flavour,
                Flavour::ImageJ | Flavour::Plain | Flavour::Ome
            ))
        .then_some(series)
    }

    /// Where the pages are planes stored back to back after the first IFD's
    /// data (ImageJ files of more than 4 GB), rather than IFDs.
    pub fn contiguous(&self) -> Option<ContiguousPlanes> {
        self.contiguous
    }

    /// Every page group in `TZC` order of their first plane.
    pub fn page_groups(&self) -> Vec<PageGroup> {
        page_groups(self.shape, self.samples, &self.page_of)
    }

    /// Every series of the file the IFD chain `chain` is (see
    /// [`Series::from_chain`]), in tifffile's order: the first, with the
    /// file's own pyramid levels of it, then the series an SVS, an
    /// OME-TIFF of several images or a plain file of pages of several
    /// kinds hold beside it ([`flavour::file_series`]). `axes` applies to
    /// the first only. A further series that cannot be read is left out
    /// with a warning on the first.
    fn all_from_chain(
        chain: &IfdChain,
        header: &[u8],
        axes: Option<&Axes>,
        limits: &Limits,
    ) -> Result<Vec<Series>, TiffError> {
        first_page(&chain.pages)?;
        let interpretation = flavour::detect(chain, header, limits)?;
        let found = flavour::file_series(chain, &interpretation, limits)?;
        let first_pages = interpretation.pages.clone();
        // a slide's first series may start past the file's first page (a
        // BIF's label comes first): its own lowest page is its first
        let key = match interpretation.contiguous {
            Some(_) => 0,
            None => first_pages.iter().flatten().min().copied().unwrap_or(0),
        };
        let shifted = flavour::Interpretation {
            pages: first_pages.iter().map(|p| p.map(|p| p - key)).collect(),
            ..interpretation
        };
        let mut main = Series::from_interpretation(&chain.pages[key..], shifted, axes, limits)?;
        for page in main.page_of.iter_mut().flatten() {
            *page += key;
        }
        main.name = found.name;
        main.warnings.extend(found.warnings);
        main.levels = found
            .levels
            .into_iter()
            .filter_map(|pages| main.level_of(chain, &first_pages, &pages))
            .collect();
        let mut all = vec![main];
        for further in found.further {
            // from_interpretation takes the first of the pages it is given
            // for the series' first page: give it the pages from its lowest on
            let key = further.interpretation.pages.iter().flatten().min().copied();
            let pages = key.map_or(&chain.pages[..0], |key| &chain.pages[key..]);
            let series_pages = further.interpretation.pages.clone();
            let shifted = flavour::Interpretation {
                pages: further
                    .interpretation
                    .pages
                    .iter()
                    .map(|p| p.map(|p| p - key.unwrap_or(0)))
                    .collect(),
                ..further.interpretation
            };
            match Series::from_interpretation(pages, shifted, None, limits) {
                Ok(mut series) => {
                    for page in series.page_of.iter_mut().flatten() {
                        *page += key.unwrap_or(0);
                    }
                    series.name = further.name;
                    series.kind = further.kind;
                    series.levels = further
                        .levels
                        .iter()
                        .filter_map(|level| series.level_of(chain, &series_pages, level))
                        .collect();
                    all.push(series);
                }
                Err(e) => all[0].warnings.push(format!(
                    "the file's {} series {:?} is left out: {e}",
                    further.kind.as_str(),
                    further.name
                )),
            }
        }
        Ok(all)
    }

    /// The level whose pages are `level_pages`, one for each of
    /// `series_pages` (the interpretation's, in its order), where every one
    /// is readable, of one size and of the series' samples and type.
    fn level_of(
        &self,
        chain: &IfdChain,
        series_pages: &[Option<usize>],
        level_pages: &[Option<usize>],
    ) -> Option<SeriesLevel> {
        let first = chain.page((*level_pages.first()?)?)?.as_ref().ok()?;
        let fits = level_pages.iter().all(|p| {
            matches!(p.and_then(|p| chain.page(p)), Some(Ok(l))
                if l.same_kind(first) && l.samples == self.samples && l.dtype == self.dtype)
        });
        if !fits || level_pages.len() != series_pages.len() {
            return None;
        }
        // the level's page in place of each of the series' pages
        let page_of = self
            .page_of
            .iter()
            .map(|page| {
                let at = series_pages.iter().position(|p| p == page)?;
                level_pages[at]
            })
            .collect();
        Some(SeriesLevel {
            height: u64::from(first.height),
            width: u64::from(first.width),
            samples: self.samples,
            shape: Shape5::new(
                self.shape.t,
                self.shape.z,
                self.shape.c,
                u64::from(first.height),
                u64::from(first.width),
            ),
            page_of,
        })
    }
}

/// The page groups of planes of `shape` whose pages hold `samples` each,
/// in `TZC` order of their first plane.
fn page_groups(shape: Shape5, samples: u16, page_of: &[Option<usize>]) -> Vec<PageGroup> {
    let s = u64::from(samples);
    let cp = shape.c / s;
    let mut groups = Vec::with_capacity(page_of.len());
    for t in 0..shape.t {
        for z in 0..shape.z {
            for c in 0..cp {
                let page = page_of[((t * shape.z + z) * cp + c) as usize];
                let planes = (0..s).map(|k| PlaneIndex::new(t, z, c * s + k)).collect();
                groups.push(PageGroup { page, planes });
            }
        }
    }
    groups
}

/// An open TIFF file and its series.
#[derive(Debug)]
pub struct TiffFile {
    /// The file and, for a Micro-Manager dataset, its other files, each
    /// with the first of the pages it holds.
    files: Vec<(usize, File)>,
    big_endian: bool,
    pages: Vec<Result<PageLayout, TiffError>>,
    /// The file's series in tifffile's order: never empty.
    series: Vec<Series>,
}

impl TiffFile {
    /// Opens `path`, reads its structure and interprets it as a 5D series.
    /// `axes` overrides how page axes are read (e.g. `TYX` for a time series
    /// stored as plain pages).
    ///
    /// A Micro-Manager file that is one of a dataset's files is read with
    /// the others beside it, as tifffile reads it (see
    /// [`micromanager_siblings`]), and so is an NDTiff file with the
    /// `NDTiff.index` beside it that lists the dataset's images.
    pub fn open(path: &Path, limits: &Limits, axes: Option<&Axes>) -> Result<TiffFile, TiffError> {
        let file = File::open(path)?;
        let file_len = file.metadata()?.len();
        let mut chain = ifd::read_chain(&file, file_len, limits)?;
        if let Some(dataset) = flavour::ndtiff::open(path, &file, &chain, limits)? {
            let series =
                Series::from_interpretation(&dataset.pages, dataset.interpretation, axes, limits)?;
            let dataset_len = dataset
                .files
                .iter()
                .fold(0u64, |sum, (_, _, len)| sum.saturating_add(*len));
            check_chunks_not_shared(&dataset.pages, std::slice::from_ref(&series), dataset_len)?;
            return Ok(TiffFile {
                files: dataset
                    .files
                    .into_iter()
                    .map(|(first, file, _)| (first, file))
                    .collect(),
                big_endian: chain.big_endian,
                pages: dataset.pages,
                series: vec![series],
            });
        }
        let own_pages = chain.pages.len();
        let own_description = chain.description.clone();
        let mut siblings = add_micromanager_siblings(path, &mut chain, limits)?;
        let set_flavour = if chain.micromanager.is_some() {
            Flavour::MicroManager
        } else {
            siblings = add_ome_set_files(path, &mut chain, limits)?;
            Flavour::Ome
        };
        // only ScanImage BigTIFFs keep metadata after the header
        let mut header = vec![
            0u8;
            if chain.bigtiff {
                file_len.min(1 << 20) as usize
            } else {
                0
            }
        ];
        FileExt::read_exact_at(&file, &mut header, 0)?;
        let mut series = Series::all_from_chain(&chain, &header, axes, limits)?;
        if (!siblings.is_empty() || chain.ome_files.is_some()) && series[0].flavour != set_flavour {
            // read as another flavour, which knows nothing of the other
            // files: the file alone
            chain.pages.truncate(own_pages);
            siblings.clear();
            if let Some(mm) = &mut chain.micromanager {
                mm.siblings.clear();
            }
            chain.ome_files = None;
            chain.description = own_description;
            series = Series::all_from_chain(&chain, &header, axes, limits)?;
        }
        let dataset_len = siblings
            .iter()
            .fold(file_len, |sum, sibling| sum.saturating_add(sibling.len));
        // the SubIFDs' pages, numbered after the others
        // (IfdChain::subifd_page), are read from the file itself
        let sub_pages = chain.pages.len();
        let own_file = file.try_clone()?;
        chain.pages.append(&mut chain.sub_pages);
        check_chunks_not_shared(&chain.pages, &series, dataset_len)?;
        let files = std::iter::once((0, file))
            .chain(siblings.into_iter().map(|s| (s.first_page, s.file)))
            .chain(std::iter::once((sub_pages, own_file)))
            .collect();
        Ok(TiffFile {
            files,
            big_endian: chain.big_endian,
            pages: chain.pages,
            series,
        })
    }

    /// The interpreted series: the file's first, as tifffile orders them.
    pub fn series(&self) -> &Series {
        &self.series[0]
    }

    /// Every series of the file, the first ([`TiffFile::series`]) first:
    /// an SVS's baseline, thumbnail, label and macro, an OME-TIFF's
    /// images, a plain file's pages of each kind.
    pub fn all_series(&self) -> &[Series] {
        &self.series
    }

    /// How page `page` of [`Series::page_groups`] is laid out: its IFD,
    /// or for planes stored back to back ([`Series::contiguous`]) the
    /// plane's place after the first page's data.
    pub fn layout_of(&self, page: usize) -> Result<Cow<'_, PageLayout>, TiffError> {
        match self.series[0].contiguous {
            Some(planes) => {
                let first = self.pages[0].as_ref().map_err(clone_error)?;
                Ok(Cow::Owned(contiguous_plane(first, planes, page)?))
            }
            None => Ok(Cow::Borrowed(
                self.pages
                    .get(page)
                    .ok_or_else(|| {
                        TiffError::OutOfRange(format!(
                            "page {page} does not exist; the file has {}",
                            self.pages.len()
                        ))
                    })?
                    .as_ref()
                    .map_err(clone_error)?,
            )),
        }
    }

    /// Decodes rows `rows` of `page` into `out`, one buffer per sample of
    /// the page (each resized to `rows.len() × width`). Strips and tiles are
    /// decoded in parallel.
    pub fn read_band<T: Sample>(
        &self,
        page: usize,
        rows: Range<u32>,
        out: &mut [Vec<T>],
    ) -> Result<(), TiffError> {
        let layout = self.layout_of(page)?;
        // the last file whose pages start at or before `page` (the first
        // starts at 0)
        let file = self.files.partition_point(|(first, _)| *first <= page) - 1;
        decode_band(&self.files[file].1, &layout, self.big_endian, rows, out)
    }
}

/// A Micro-Manager dataset's file other than the one opened.
struct Sibling {
    file: File,
    len: u64,
    first_page: usize,
}

/// The most files of one Micro-Manager dataset read together (each is
/// held open while the image is read, within a process's usual limit of
/// 1024 open files).
pub const MAX_DATASET_FILES: usize = 512;

/// The other files of the Micro-Manager dataset that the file at `path`
/// (whose IFD chain is `chain`) is one of, as tifffile's `_series_mmstack`
/// finds them: only where the file's summary declares more images than its
/// index map lists, and its name holds `_MMStack` and starts with the
/// summary's `Prefix`; then every other `{Prefix}_MMStack*.tif` in its
/// folder (the prefix being the name before `_MMStack` without a
/// `Prefix`), in name order. Empty for any other file.
pub fn micromanager_siblings(path: &Path, chain: &IfdChain) -> Result<Vec<PathBuf>, TiffError> {
    let Some(prefix) = chain
        .micromanager
        .as_ref()
        .and_then(flavour::micromanager::dataset)
    else {
        return Ok(Vec::new());
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let Some((before, _)) = name.split_once("_MMStack") else {
        return Ok(Vec::new());
    };
    let prefix = match prefix {
        Some(prefix) if name.starts_with(&prefix) => prefix,
        Some(_) => return Ok(Vec::new()),
        None => before.to_string(),
    };
    let pattern = format!("{prefix}_MMStack");
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut siblings = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let other = entry.file_name();
        let Some(other) = other.to_str() else {
            continue;
        };
        if other != name && other.starts_with(&pattern) && other.ends_with(".tif") {
            if siblings.len() == MAX_DATASET_FILES {
                return Err(TiffError::too_large(
                    Limit::Fixed,
                    format!(
                        "the Micro-Manager dataset of {name} has more than {MAX_DATASET_FILES} \
                     files named {pattern}*.tif beside it"
                    ),
                ));
            }
            siblings.push(entry.path());
        }
    }
    siblings.sort();
    Ok(siblings)
}

/// File name endings of the TIFF files taken from a folder (files named
/// one by one are always tried).
pub const TIFF_ENDINGS: &[&str] = &["tif", "tiff", "btf", "tf2", "tf8", "svs", "lsm", "stk"];

/// Whether `path`'s name ends as a TIFF file's does ([`TIFF_ENDINGS`]).
pub fn is_tiff_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| TIFF_ENDINGS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The other files read with the file at `path` when it is opened: those
/// of its Micro-Manager dataset ([`micromanager_siblings`]) or of its
/// multi-file OME-TIFF set ([`flavour::omeset`]: the files its OME-XML
/// names that are there, even where others are missing, so that a folder's
/// files stay one dataset and its import says what is wrong); none for any
/// other file.
pub fn dataset_files(path: &Path, limits: &Limits) -> Result<Vec<PathBuf>, TiffError> {
    let file = File::open(path)?;
    // the first IFD's metadata says which files are read with it
    let walk = ifd::ChainWalk {
        start: None,
        max_ifds: Some(1),
    };
    let chain = ifd::read_ifds(&file, file.metadata()?.len(), limits, walk)?;
    if chain.micromanager.is_some() {
        return micromanager_siblings(path, &chain);
    }
    match chain.description.as_deref().filter(|d| d.contains("<OME")) {
        Some(description) => Ok(flavour::omeset::resolve(path, description, limits)?
            .map(|set| set.others)
            .unwrap_or_default()),
        None => Ok(Vec::new()),
    }
}

/// Opens the other files of `path`'s Micro-Manager dataset
/// ([`micromanager_siblings`]) and adds their pages to `chain`, their index
/// maps to its Micro-Manager metadata. Each must be a Micro-Manager file of
/// the same byte order, and the dataset's pages together within
/// [`Limits::max_pages`].
fn add_micromanager_siblings(
    path: &Path,
    chain: &mut IfdChain,
    limits: &Limits,
) -> Result<Vec<Sibling>, TiffError> {
    let paths = micromanager_siblings(path, chain)?;
    let mut siblings = Vec::with_capacity(paths.len());
    for sibling_path in paths {
        let (sibling, other) =
            read_dataset_file(&sibling_path, chain, limits, "Micro-Manager dataset")?;
        let Some(sibling_mm) = other.micromanager else {
            return Err(TiffError::Format(format!(
                "{}, a file of the same Micro-Manager dataset: it has no Micro-Manager index map",
                sibling_path
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default()
            )));
        };
        let ifd_pages = other
            .ifd_offsets
            .iter()
            .enumerate()
            .map(|(page, offset)| (*offset, sibling.first_page + page))
            .collect();
        chain.pages.extend(other.pages);
        if let Some(mm) = &mut chain.micromanager {
            mm.siblings.push(MicroManagerSibling {
                index_map: sibling_mm.index_map,
                ifd_pages,
            });
        }
        siblings.push(sibling);
    }
    Ok(siblings)
}

/// Opens the other files of the multi-file OME-TIFF set `path` is one of
/// ([`flavour::omeset`]) and adds their pages to `chain`, where each file's
/// are in its [`IfdChain::ome_files`]; the set's OME-XML becomes the
/// chain's description where it is another file's. Fails where a file the
/// OME-XML names cannot be read beside `path`.
fn add_ome_set_files(
    path: &Path,
    chain: &mut IfdChain,
    limits: &Limits,
) -> Result<Vec<Sibling>, TiffError> {
    let Some(description) = chain.description.as_deref().filter(|d| d.contains("<OME")) else {
        return Ok(Vec::new());
    };
    let Some(set) = flavour::omeset::resolve(path, description, limits)? else {
        return Ok(Vec::new());
    };
    if let Some(refusal) = set.refusal {
        return Err(refusal);
    }
    let mut ranges = Vec::with_capacity(set.others.len() + 1);
    ranges.push(0..chain.pages.len());
    let mut others = Vec::with_capacity(set.others.len());
    for other_path in &set.others {
        let (sibling, other) =
            read_dataset_file(other_path, chain, limits, "multi-file OME-TIFF set")?;
        chain.pages.extend(other.pages);
        ranges.push(sibling.first_page..chain.pages.len());
        others.push(sibling);
    }
    let mut files = OmeFileSet {
        own: ranges[0].clone(),
        ..OmeFileSet::default()
    };
    for (uuid, (file, name)) in set.files {
        files.pages.insert(uuid.clone(), ranges[file].clone());
        files.names.insert(uuid, name);
    }
    chain.ome_files = Some(files);
    if let Some(xml) = set.xml {
        chain.description = Some(xml);
    }
    Ok(others)
}

/// Reads the IFDs of another file of `chain`'s dataset (`dataset` says
/// which kind), within what [`Limits::max_pages`] leaves, and checks it
/// has the chain's byte order; the pages it will hold follow `chain`'s.
fn read_dataset_file(
    path: &Path,
    chain: &IfdChain,
    limits: &Limits,
    dataset: &str,
) -> Result<(Sibling, IfdChain), TiffError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let in_sibling =
        |e: TiffError| TiffError::Format(format!("{name}, a file of the same {dataset}: {e}"));
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let remaining = Limits {
        max_pages: limits.max_pages.saturating_sub(chain.pages.len() as u64),
        ..*limits
    };
    let other = ifd::read_chain(&file, len, &remaining).map_err(|e| match e {
        TiffError::LimitsExceeded { limit, message } => TiffError::too_large(
            limit,
            format!("the {dataset}'s files (with {name}): {message}"),
        ),
        e => in_sibling(e),
    })?;
    if other.big_endian != chain.big_endian {
        return Err(in_sibling(TiffError::Format(
            "its byte order differs".into(),
        )));
    }
    let sibling = Sibling {
        file,
        len,
        first_page: chain.pages.len(),
    };
    Ok((sibling, other))
}

/// Positioned reads of a TIFF's bytes: the file itself, or one page's bytes
/// held in memory while an upload streams past.
pub trait ReadAt: Sync {
    /// Fills `buf` from `offset` on, or fails.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl ReadAt for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
}

/// Decodes rows `rows` of the page laid out as `layout` from `source` into
/// `out`, one buffer per sample of the page (each resized to `rows.len() ×
/// width`). Strips and tiles are decoded in parallel.
pub fn decode_band<T: Sample, R: ReadAt + ?Sized>(
    source: &R,
    layout: &PageLayout,
    big_endian: bool,
    rows: Range<u32>,
    out: &mut [Vec<T>],
) -> Result<(), TiffError> {
    if rows.is_empty() || rows.end > layout.height {
        return Err(TiffError::OutOfRange(format!(
            "rows {rows:?} are not within the page's {} rows",
            layout.height
        )));
    }
    if T::DTYPE != layout.dtype {
        return Err(TiffError::InvalidRequest(format!(
            "the page holds {} samples, not {}",
            layout.dtype,
            T::DTYPE
        )));
    }
    let samples = usize::from(layout.samples);
    assert_eq!(out.len(), samples, "one output buffer per sample");
    let width = layout.width as usize;
    let band_rows = (rows.end - rows.start) as usize;
    for buf in out.iter_mut() {
        buf.clear();
        buf.resize(band_rows * width, T::default());
    }
    let chunks = band_chunks(layout, rows.clone());
    let (chunk_w, _) = layout.chunk_size();
    let per_chunk = if layout.planar_separate { 1 } else { samples };
    let decoded: Vec<(ChunkRef, Vec<T>)> = chunks
        .into_par_iter()
        .map(|c| {
            let mut buf =
                vec![T::default(); c.decoded_rows as usize * chunk_w as usize * per_chunk];
            decode_chunk(source, layout, big_endian, &c, &mut buf)?;
            Ok((c, buf))
        })
        .collect::<Result<_, TiffError>>()?;
    for (c, data) in decoded {
        let x1 = c.x0.saturating_add(chunk_w).min(layout.width);
        let cols = (x1 - c.x0) as usize;
        let y_from = c.y0.max(rows.start);
        let y_to = (c.y0 + c.decoded_rows).min(rows.end);
        for y in y_from..y_to {
            let src_row = (y - c.y0) as usize * chunk_w as usize * per_chunk;
            let dst = (y - rows.start) as usize * width + c.x0 as usize;
            if per_chunk == 1 {
                out[c.sample as usize][dst..dst + cols]
                    .copy_from_slice(&data[src_row..src_row + cols]);
            } else {
                let src = &data[src_row..src_row + cols * per_chunk];
                for (s, buf) in out.iter_mut().enumerate() {
                    let dst = &mut buf[dst..dst + cols];
                    for (d, px) in dst.iter_mut().zip(src.chunks_exact(per_chunk)) {
                        *d = px[s];
                    }
                }
            }
        }
    }
    Ok(())
}

/// The layout of plane `page` of a file whose planes follow one another
/// (`planes`), each laid out as the first page, uncompressed (`first`): one
/// strip per sample plane (planar configuration 2) or one for the whole plane.
fn contiguous_plane(
    first: &PageLayout,
    planes: ContiguousPlanes,
    page: usize,
) -> Result<PageLayout, TiffError> {
    if page as u64 >= planes.count {
        return Err(TiffError::OutOfRange(format!(
            "page {page} does not exist; the file has {} planes",
            planes.count
        )));
    }
    // within the file: checked when the series was read
    let start = planes.offset + page as u64 * planes.plane_bytes;
    let (offsets, byte_counts) = if first.planar_separate {
        let per_sample = planes.plane_bytes / u64::from(first.samples);
        (0..u64::from(first.samples))
            .map(|s| (start + s * per_sample, per_sample))
            .unzip()
    } else {
        (vec![start], vec![planes.plane_bytes])
    };
    Ok(PageLayout {
        width: first.width,
        height: first.height,
        samples: first.samples,
        dtype: first.dtype,
        bits_per_sample: first.bits_per_sample,
        planar_separate: first.planar_separate,
        codec: Codec::None,
        predictor: 1,
        geometry: ChunkGeometry::Strips { rows: first.height },
        offsets,
        byte_counts,
        reduced: false,
        subfile_type: first.subfile_type,
        jpeg: None,
    })
}

/// The chunks of `layout` that hold rows `rows`.
fn band_chunks(layout: &PageLayout, rows: Range<u32>) -> Vec<ChunkRef> {
    let (across, down) = layout.chunk_grid();
    let (chunk_w, chunk_h) = layout.chunk_size();
    let planes = if layout.planar_separate {
        layout.samples
    } else {
        1
    };
    let first_row = rows.start / chunk_h;
    let last_row = (rows.end - 1) / chunk_h;
    let (across_n, down_n) = (across as usize, down as usize);
    let mut chunks = Vec::new();
    for sample in 0..planes {
        for cy in first_row..=last_row.min(down - 1) {
            for cx in 0..across {
                let y0 = cy * chunk_h;
                chunks.push(ChunkRef {
                    index: (usize::from(sample) * down_n + cy as usize) * across_n + cx as usize,
                    sample,
                    x0: cx * chunk_w,
                    y0,
                    // the rows of a tile below the image are never decoded,
                    // so a huge tile on a tiny image costs what the image does
                    decoded_rows: chunk_h.min(layout.height - y0),
                });
            }
        }
    }
    chunks
}

/// How many times the file's size the strips and tiles of a series may add
/// up to. Writers give every chunk its own bytes, so the sum stays below the
/// file size; a few kilobytes of compressed data shared by thousands of tiles
/// or pages would decompress to gigabytes (a decompression bomb).
const MAX_CHUNK_BYTES_PER_FILE_BYTE: u64 = 2;

/// Refuses series whose pages (levels included) share their compressed
/// data: see [`MAX_CHUNK_BYTES_PER_FILE_BYTE`].
fn check_chunks_not_shared(
    pages: &[Result<PageLayout, TiffError>],
    series: &[Series],
    file_len: u64,
) -> Result<(), TiffError> {
    if series.iter().any(|s| s.contiguous.is_some()) {
        // the planes lie within the file, one after another
        return Ok(());
    }
    let mut used: Vec<usize> = series
        .iter()
        .flat_map(|s| {
            s.page_of
                .iter()
                .chain(s.levels.iter().flat_map(|l| &l.page_of))
        })
        .flatten()
        .copied()
        .collect();
    used.sort_unstable();
    used.dedup();
    let stored: u64 = used
        .iter()
        .filter_map(|p| pages[*p].as_ref().ok())
        .fold(0u64, |sum, layout| {
            sum.saturating_add(layout.stored_bytes())
        });
    if stored > file_len.saturating_mul(MAX_CHUNK_BYTES_PER_FILE_BYTE) {
        return Err(TiffError::Unsupported(format!(
            "the strips and tiles of the image add up to {stored} bytes but the file has only \
             {file_len}: they share data, which pentascope refuses as a decompression bomb"
        )));
    }
    Ok(())
}

/// The first page, which every series has.
fn first_page(pages: &[Result<PageLayout, TiffError>]) -> Result<&PageLayout, TiffError> {
    match pages.first() {
        Some(Ok(page)) => Ok(page),
        Some(Err(e)) => Err(clone_error(e)),
        None => Err(TiffError::Format("the file has no image directory".into())),
    }
}

fn clone_error(e: &TiffError) -> TiffError {
    match e {
        TiffError::NotTiff(m) => TiffError::NotTiff(m.clone()),
        TiffError::Unsupported(m) => TiffError::Unsupported(m.clone()),
        TiffError::LimitsExceeded { limit, message } => TiffError::too_large(*limit, message),
        other => TiffError::Format(
            other
                .to_string()
                .trim_start_matches("malformed TIFF: ")
                .to_string(),
        ),
    }
}

/// Maps an interpretation (plus an optional axes override) onto `TZCYX`.
fn build_series(
    first: &PageLayout,
    mut interp: flavour::Interpretation,
    axes: Option<&Axes>,
    limits: &Limits,
) -> Result<Series, TiffError> {
    if let Some(axes) = axes {
        interp.axes = override_axes(&interp.axes, axes)?;
    }
    let letters = canonical_letters(&interp.axes)?;
    let size_of = |l: char| {
        letters
            .iter()
            .zip(&interp.axes)
            .find(|(a, _)| **a == l)
            .map_or(1, |(_, (_, n))| *n)
    };
    let samples = first.samples;
    let (t, z, cp) = (size_of('T'), size_of('Z'), size_of('C'));
    // the flavours bound the page axes by the page count; checked anyway, as
    // page_of below is allocated from this product
    let pages_declared = t
        .checked_mul(z)
        .and_then(|n| n.checked_mul(cp))
        .ok_or_else(|| {
            TiffError::too_large(
                Limit::Fixed,
                format!("the image declares {t}×{z}×{cp} TZC pages, more than 2^64"),
            )
        })?;
    if pages_declared == 0 {
        return Err(TiffError::Format(format!(
            "the image declares {t}×{z}×{cp} TZC pages: it has no plane"
        )));
    }
    let channels = cp.saturating_mul(u64::from(samples));
    if channels > limits.max_channels {
        return Err(TiffError::too_large(
            Limit::MaxChannels,
            format!(
                "the image has {channels} channels ({cp} per page × {samples} samples per pixel), \
             more than the configured maximum of {}",
                limits.max_channels
            ),
        ));
    }
    let shape = Shape5::new(
        t,
        z,
        channels,
        u64::from(first.height),
        u64::from(first.width),
    );
    if shape.total_samples() > limits.max_samples {
        return Err(TiffError::too_large(
            Limit::MaxSamples,
            format!(
                "the image declares {} samples ({}×{}×{}×{}×{} TZCYX), more than the configured \
             maximum of {}",
                shape.total_samples(),
                shape.t,
                shape.z,
                shape.c,
                shape.y,
                shape.x,
                limits.max_samples
            ),
        ));
    }
    // C-order strides of the file's page axes; their product is t·z·cp
    // (every letter is one of TZC, each at most once), so none overflows
    let mut strides = vec![1u64; interp.axes.len()];
    for i in (0..interp.axes.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * interp.axes[i + 1].1;
    }
    let mut page_of = vec![None; pages_declared as usize];
    for (k, page) in interp.pages.iter().enumerate() {
        if k as u64 >= pages_declared {
            break;
        }
        let mut pos = [0u64; 3];
        for (i, l) in letters.iter().enumerate() {
            let coord = (k as u64 / strides[i]) % interp.axes[i].1;
            pos["TZC".find(*l).expect("canonical letter")] = coord;
        }
        page_of[((pos[0] * z + pos[1]) * cp + pos[2]) as usize] = *page;
    }
    let mut source_axes: String = letters.iter().collect();
    source_axes.push_str("YX");
    if samples > 1 {
        if first.planar_separate {
            source_axes.insert(source_axes.len() - 2, 'S');
        } else {
            source_axes.push('S');
        }
    }
    let channel_names = channel_names(interp.channel_names, shape.c, samples);
    Ok(Series {
        shape,
        dtype: first.dtype,
        flavour: interp.flavour,
        source_axes,
        channel_names,
        physical_sizes: interp.physical,
        acquisition: interp.acquisition,
        notes: interp.notes,
        original_metadata: interp.original,
        warnings: interp.warnings,
        name: String::new(),
        kind: SeriesKind::Main,
        levels: Vec::new(),
        samples,
        page_of,
        contiguous: interp.contiguous,
    })
}

/// One name per channel, or none: OME names one `Channel` per group of
/// samples (an RGB channel has three), so such names are given a sample
/// suffix; a count that still does not match is padded with empty names.
fn channel_names(names: Vec<String>, channels: u64, samples: u16) -> Vec<String> {
    if names.is_empty() || names.len() as u64 == channels {
        return names;
    }
    let mut out: Vec<String> = if (names.len() * usize::from(samples)) as u64 == channels {
        names
            .iter()
            .flat_map(|n| {
                (0..samples).map(move |s| {
                    if n.is_empty() {
                        String::new()
                    } else {
                        format!("{n} [{s}]")
                    }
                })
            })
            .collect()
    } else {
        names
    };
    out.resize(channels as usize, String::new());
    out
}

/// Relabels page axes with the letters of an explicit `axes` string.
fn override_axes(found: &[(char, u64)], axes: &Axes) -> Result<Vec<(char, u64)>, TiffError> {
    let wanted: Vec<char> = axes.page_axes().chars().collect();
    let total: u64 = found.iter().map(|(_, n)| n).product();
    if wanted.len() == found.len() {
        return Ok(wanted
            .into_iter()
            .zip(found.iter().map(|(_, n)| *n))
            .collect());
    }
    match wanted.len() {
        1 => Ok(vec![(wanted[0], total)]),
        0 if total == 1 => Ok(Vec::new()),
        _ => Err(TiffError::InvalidAxes(format!(
            "axes={} names {} page axes but the file's {total} page(s) form {} axes ({}); \
             give one page axis (e.g. TYX) or {} letters before YX",
            axes.as_str(),
            wanted.len(),
            found.len(),
            found
                .iter()
                .map(|(a, n)| format!("{a}={n}"))
                .collect::<Vec<_>>()
                .join(", "),
            found.len()
        ))),
    }
}

/// Canonical letters for page axes: unlabelled axes (`I`) take the free
/// letters among T, Z, C, outermost first, except that a single unlabelled
/// axis is Z.
pub(crate) fn canonical_letters(axes: &[(char, u64)]) -> Result<Vec<char>, TiffError> {
    let unlabelled = axes.iter().filter(|(a, _)| *a == 'I').count();
    let mut free: Vec<char> = "TZC"
        .chars()
        .filter(|l| !axes.iter().any(|(a, _)| a == l))
        .collect();
    if unlabelled == 1 && free.contains(&'Z') {
        free = vec!['Z'];
    }
    if unlabelled > free.len() {
        return Err(TiffError::InvalidAxes(format!(
            "the file has {unlabelled} unlabelled page axes but only {} of T, Z, C are free; \
             pass axes explicitly",
            free.len()
        )));
    }
    let mut free = free.into_iter();
    let letters: Vec<char> = axes
        .iter()
        .map(|(a, _)| {
            if *a == 'I' {
                free.next().unwrap_or('I')
            } else {
                *a
            }
        })
        .collect();
    for (i, l) in letters.iter().enumerate() {
        if !"TZC".contains(*l) {
            return Err(TiffError::InvalidAxes(format!(
                "page axis {l} is not one of T, Z, C"
            )));
        }
        if letters[..i].contains(l) {
            return Err(TiffError::InvalidAxes(format!(
                "axis {l} appears twice among the page axes"
            )));
        }
    }
    Ok(letters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_unlabelled_axis_is_z() {
        assert_eq!(canonical_letters(&[('I', 7)]).unwrap(), vec!['Z']);
        assert_eq!(
            canonical_letters(&[('I', 2), ('I', 3)]).unwrap(),
            vec!['T', 'Z']
        );
        assert_eq!(
            canonical_letters(&[('T', 2), ('I', 3)]).unwrap(),
            vec!['T', 'Z']
        );
    }

    #[test]
    fn override_relabels_or_flattens() {
        let axes = Axes::parse("TYX").unwrap();
        assert_eq!(override_axes(&[('I', 7)], &axes).unwrap(), vec![('T', 7)]);
        let axes = Axes::parse("ZCYX").unwrap();
        assert!(override_axes(&[('I', 7)], &axes).is_err());
    }
}
