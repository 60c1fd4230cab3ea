//! Walking the IFD chain and reading the tags pentascope needs from each page.
//!
//! The `tiff` crate parses the header and directories (byte order, BigTIFF,
//! value types, its own limits); this module walks the chain itself so that a
//! loop is caught, a page with an exotic or missing photometric
//! interpretation (ImageJ palettes, writers that leave the tag out) can still
//! be read as raw samples, and the page count is limited.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use tiff::decoder::ifd::Value;
use tiff::decoder::{Decoder, Limits as TiffLimits};
use tiff::tags::{IfdPointer, Tag};
use tiff::TiffError as DecoderError;

use crate::codecs::{self, Fax, SUPPORTED};
use crate::flavour::fluoview::{MM_HEADER_TAG, MM_STAMP_TAG};
use crate::flavour::lsm::CZ_LSMINFO_TAG;
use crate::flavour::micromanager::{self, json_text, MICROMANAGER_TAG};
use crate::flavour::{stk, MicroManager, OmeFileSet, StkPlanes};
use crate::{DType, Limit, Limits, TiffError};

/// How a page's pixels are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// No compression (1).
    None,
    /// LZW (5).
    Lzw,
    /// Deflate / zlib (8 and 32946).
    Deflate,
    /// PackBits (32773).
    PackBits,
    /// Zstandard (50000, as tifffile and libtiff write it).
    Zstd,
    /// "New-style" JPEG (7), 8-bit baseline or progressive, with the
    /// page's JPEGTables ([`JpegLayout`]).
    Jpeg,
    /// LZMA (34925): an xz stream, as imagecodecs writes it.
    Lzma,
    /// CCITT bilevel: modified Huffman RLE (2), Group 3 (3) or Group 4 (4),
    /// with the page's T4Options and FillOrder.
    Ccitt(Fax),
    /// WebP (50001, and 34927 of older writers).
    WebP,
    /// A JPEG 2000 codestream (34712, and Aperio's 33003, 33004, 33005).
    Jpeg2000,
    /// JPEG XL (50002, and DNG's 52546).
    JpegXl,
}

impl Codec {
    fn from_tag(value: u16) -> Result<Codec, TiffError> {
        Ok(match value {
            1 => Codec::None,
            5 => Codec::Lzw,
            8 | 32946 => Codec::Deflate,
            32773 => Codec::PackBits,
            50000 => Codec::Zstd,
            // old-style JPEG (6) where its strips are JPEG streams, as tifffile reads it
            6 | 7 => Codec::Jpeg,
            34925 => Codec::Lzma,
            2..=4 => Codec::Ccitt(Fax::of_compression(value)),
            50001 | 34927 => Codec::WebP,
            33003 | 33004 | 33005 | 34712 => Codec::Jpeg2000,
            50002 | 52546 => Codec::JpegXl,
            33007 | 34892 => {
                return Err(TiffError::Unsupported(format!(
                    "{} (TIFF compression {value}) is not supported; supported are {SUPPORTED}",
                    codec_name(value)
                )))
            }
            other => {
                return Err(TiffError::Unsupported(format!(
                    "TIFF compression {other} ({}) is not supported; supported are \
                     {SUPPORTED}",
                    codec_name(other)
                )))
            }
        })
    }
}

fn codec_name(value: u16) -> &'static str {
    match value {
        33007 => "Kodak/ALT JPEG",
        34892 => "lossless JPEG (DNG)",
        34887 => "LERC",
        _ => "unknown",
    }
}

/// Most bytes of JPEGTables read from one page: the tables of a real file
/// (quantisation and Huffman tables) take well under a kilobyte, and no
/// marker segment is longer than 64 KiB.
pub const MAX_JPEG_TABLES_BYTES: usize = 1 << 20;

/// What decoding a JPEG-compressed (compression 7) page needs besides its
/// chunks, as tifffile hands it to libjpeg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JpegLayout {
    /// JPEGTables (tag 347): an abbreviated JPEG stream of the quantisation
    /// and Huffman tables the page's strips or tiles leave out; prepended
    /// to each of them.
    pub tables: Option<Arc<[u8]>>,
    /// PhotometricInterpretation (1 when missing).
    pub photometric: u16,
    /// Whether the first strip or tile carries a JFIF (APP0) marker, which
    /// says its three components are YCbCr even where the page says RGB.
    pub jfif: bool,
}

/// How a page is cut into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkGeometry {
    /// Strips of `rows` full-width rows (the last may be shorter).
    Strips {
        /// RowsPerStrip.
        rows: u32,
    },
    /// Tiles of `width` × `height` (edge tiles are padded to full size).
    Tiles {
        /// TileWidth.
        width: u32,
        /// TileLength.
        height: u32,
    },
}

/// Everything needed to decode one page (IFD) into samples.
#[derive(Debug, Clone, PartialEq)]
pub struct PageLayout {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// SamplesPerPixel.
    pub samples: u16,
    /// Sample type.
    pub dtype: DType,
    /// BitsPerSample as stored: the width of `dtype`, or fewer for packed
    /// unsigned samples (1, 2, 4, 12 bits, …), which are widened to `dtype`
    /// when decoded.
    pub bits_per_sample: u16,
    /// PlanarConfiguration 2: each sample stored in its own set of chunks.
    pub planar_separate: bool,
    /// Compression.
    pub codec: Codec,
    /// Predictor: 1 none, 2 horizontal, 3 floating point.
    pub predictor: u16,
    /// Strips or tiles.
    pub geometry: ChunkGeometry,
    /// Chunk file offsets.
    pub offsets: Vec<u64>,
    /// Chunk byte counts.
    pub byte_counts: Vec<u64>,
    /// NewSubfileType bit 0: a reduced-resolution copy of another page.
    pub reduced: bool,
    /// NewSubfileType as written (0 where absent): Aperio tells its label
    /// (1) from its macro image (9) by it.
    pub subfile_type: u32,
    /// Colour space and tables of a JPEG-compressed page ([`Codec::Jpeg`]).
    pub jpeg: Option<JpegLayout>,
}

impl PageLayout {
    /// Chunks per sample plane: across × down.
    pub fn chunk_grid(&self) -> (u32, u32) {
        match self.geometry {
            ChunkGeometry::Strips { rows } => (1, self.height.div_ceil(rows)),
            ChunkGeometry::Tiles { width, height } => {
                (self.width.div_ceil(width), self.height.div_ceil(height))
            }
        }
    }

    /// Width and height of a chunk as stored (tiles are always full size).
    pub fn chunk_size(&self) -> (u32, u32) {
        match self.geometry {
            ChunkGeometry::Strips { rows } => (self.width, rows.min(self.height)),
            ChunkGeometry::Tiles { width, height } => (width, height),
        }
    }

    /// Bytes of the file the page's strips or tiles occupy, overlaps counted
    /// as often as they are read.
    pub fn stored_bytes(&self) -> u64 {
        self.byte_counts
            .iter()
            .fold(0u64, |sum, n| sum.saturating_add(*n))
    }

    /// Whether samples are packed more tightly than `dtype` holds them.
    pub fn is_packed(&self) -> bool {
        usize::from(self.bits_per_sample) != self.dtype.size() * 8
    }

    /// Bytes one stored row of a chunk takes: packed rows start on a byte
    /// boundary.
    pub fn stored_row_bytes(&self) -> u64 {
        let (chunk_w, _) = self.chunk_size();
        let per_chunk = if self.planar_separate {
            1
        } else {
            u64::from(self.samples)
        };
        // at most 2^32 × 2^16 × 2^16 bits: no overflow
        (u64::from(chunk_w) * per_chunk * u64::from(self.bits_per_sample)).div_ceil(8)
    }

    /// Whether the page's strips (or full-width tiles) hold its samples
    /// uncompressed, back to back and in the order the pixels are read:
    /// what tifffile calls a page in final form, whose plane can be read as
    /// one block from the first offset.
    pub fn is_final(&self) -> bool {
        let rows_whole = match self.geometry {
            ChunkGeometry::Strips { .. } => true,
            ChunkGeometry::Tiles { width, height } => {
                width == self.width
                    && self.height.is_multiple_of(height)
                    && width % 16 == 0
                    && height % 16 == 0
            }
        };
        self.codec == Codec::None
            && self.predictor == 1
            && !self.is_packed()
            && rows_whole
            && self
                .offsets
                .windows(2)
                .zip(&self.byte_counts)
                .all(|(o, n)| *n != 0 && o[0].checked_add(*n) == Some(o[1]))
    }

    /// Bytes of one plane as stored uncompressed (all samples), if it fits
    /// in 64 bits.
    pub fn plane_bytes(&self) -> Option<u64> {
        u64::from(self.width)
            .checked_mul(u64::from(self.height))?
            .checked_mul(u64::from(self.samples))?
            .checked_mul(self.dtype.size() as u64)
    }

    /// Whether two pages hold the same kind of image (shape and type).
    pub fn same_kind(&self, other: &PageLayout) -> bool {
        self.width == other.width
            && self.height == other.height
            && self.samples == other.samples
            && self.dtype == other.dtype
    }
}

/// The parsed directory chain of a TIFF file.
#[derive(Debug)]
pub struct IfdChain {
    /// Whether the file is BigTIFF.
    pub bigtiff: bool,
    /// Whether samples are stored big-endian.
    pub big_endian: bool,
    /// One entry per IFD in chain order. `Err` holds why a page could not be
    /// used (it is only fatal if the series needs that page).
    pub pages: Vec<Result<PageLayout, TiffError>>,
    /// ImageDescription of the first page.
    pub description: Option<String>,
    /// Software tag of the first page.
    pub software: Option<String>,
    /// ImageJ's binary metadata of the first page (IJMetadataByteCounts,
    /// IJMetadata: display ranges, LUTs, labels), bounded as metadata text.
    pub imagej_metadata: Option<(Vec<u32>, Vec<u8>)>,
    /// X and Y resolution of the first page (pixels per unit) and the unit
    /// (ResolutionUnit: 1 none, 2 inch, 3 centimetre).
    pub resolution: Option<(f64, f64, u16)>,
    /// File offset of each IFD, in chain order.
    pub ifd_offsets: Vec<u64>,
    /// MetaMorph STK planes (UIC1tag and UIC2tag on the first page).
    pub stk: Option<StkPlanes>,
    /// Zeiss LSM's CZ_LSMINFO structure of the first page (little-endian
    /// bytes, bounded as metadata text).
    pub lsm_info: Option<Vec<u8>>,
    /// Olympus FluoView's MM_Header of the first page, where it also has
    /// MM_Stamp (bytes in the file's order, bounded as metadata text).
    pub fluoview_header: Option<Vec<u8>>,
    /// Micro-Manager's summary metadata and index map, where the first page
    /// has a MicroManagerMetadata tag and the file Micro-Manager's header.
    pub micromanager: Option<MicroManager>,
    /// The first page has a MicroManagerMetadata tag: a Micro-Manager file
    /// (MMStack, or NDTiff by its own header).
    pub micromanager_tag: bool,
    /// Where the pages of a multi-file OME-TIFF set's files are among
    /// `pages`, once [`TiffFile::open`](crate::TiffFile::open) has read
    /// them beside the file; `None` for a file read alone.
    pub ome_files: Option<OmeFileSet>,
    /// Length of the file in bytes.
    pub file_len: u64,
    /// The IFD after the last one read, where a [`ChainWalk`] stopped early.
    pub next_ifd: Option<u64>,
    /// The SubIFDs (tag 330) of each page of the file's own chain, in chain
    /// order: for each one the page lists, its index in `sub_pages`, or
    /// `None` where the chain was read only in part
    /// ([`ChainWalk::max_ifds`]) and the SubIFDs were not.
    pub subifds: Vec<Vec<Option<usize>>>,
    /// The pages of the SubIFDs: reduced-resolution copies of the pages
    /// that list them (an OME-TIFF's pyramid). Not among `pages`, which
    /// the flavours read as tifffile's pages; [`IfdChain::subifd_page`]
    /// numbers them after `pages`.
    pub sub_pages: Vec<Result<PageLayout, TiffError>>,
    /// SubIFD lists that were ignored, and why.
    pub subifd_warnings: Vec<String>,
    /// Hamamatsu NDPI's tags of each page in chain order, where the first
    /// page has NDPI's FileFormat tag and a Make tag (as tifffile
    /// recognises NDPI).
    pub ndpi: Option<Vec<NdpiPage>>,
    /// The ImageDescriptions of the chain's pages where the flavour needs
    /// them, with their page's index, in chain order: where the first page
    /// has tifffile's shaped description, the pages that have one (the
    /// first of each shaped series); in a Ventana BIF, every page that has
    /// one, and so in a Philips DP slide. Bounded as metadata text.
    pub descriptions: Vec<(usize, String)>,
    /// The file is a Ventana (Roche) BIF slide, as tifffile recognises it:
    /// the first page has XMP metadata, and Ventana's or ScanOutputManager's
    /// Software or a BIF label's or probability map's description.
    pub bif: bool,
    /// The file is a Philips DP slide, as tifffile recognises it: the
    /// first page's Software starts `Philips DP` and its description (the
    /// slide's XML) ends with `</DataObject>`.
    pub philips: bool,
}

/// Whether a description is tifffile's shaped JSON one, as pentascope
/// recognises it.
pub(crate) fn is_shaped(description: &str) -> bool {
    description.trim_start().starts_with('{')
}

/// Whether the first page, whose tags are `tags`, makes the file a Ventana
/// BIF, as tifffile's `is_bif` decides.
fn is_bif(
    tags: &mut tiff::decoder::IfdDecoder<'_>,
    software: Option<&str>,
    description: Option<&str>,
) -> bool {
    let software = software.unwrap_or("");
    tags.find_entry(Tag::Unknown(XMP_TAG)).is_some()
        && (software.contains("Ventana")
            || software.starts_with("ScanOutputManager")
            || matches!(
                description,
                Some("Label Image" | "Label_Image" | "Probability_Image")
            ))
}

/// XMP metadata (tag 700).
const XMP_TAG: u16 = 700;

/// Hamamatsu NDPI's FileFormat tag: with a Make tag on the first page, the
/// file is an NDPI.
pub const NDPI_FILE_FORMAT_TAG: u16 = 65420;
/// NDPI's Magnification (source lens) tag: -1 on the macro image, -2 on
/// the map.
pub const NDPI_MAGNIFICATION_TAG: u16 = 65421;
/// NDPI's SlideLabel tag.
pub const NDPI_SLIDE_LABEL_TAG: u16 = 65427;

/// What an NDPI page's own tags say about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NdpiPage {
    /// Magnification (65421): the objective's, or -1 for the macro image
    /// and -2 for the map.
    pub magnification: Option<f64>,
    /// SlideLabel (65427), which tifffile names the pyramid by.
    pub slide_label: Option<String>,
}

impl NdpiPage {
    /// The page's NDPI tags; `text` is what is left of the bytes of slide
    /// labels that may be kept, and labels past it are left out.
    fn of(tags: &mut tiff::decoder::IfdDecoder<'_>, text: &mut u64) -> NdpiPage {
        let magnification = tags
            .find_tag(Tag::Unknown(NDPI_MAGNIFICATION_TAG))
            .ok()
            .flatten()
            .and_then(tag_number);
        let slide_label = tags
            .find_entry(Tag::Unknown(NDPI_SLIDE_LABEL_TAG))
            .filter(|entry| entry.count() <= *text)
            .and_then(|_| ascii(tags, Tag::Unknown(NDPI_SLIDE_LABEL_TAG)));
        if let Some(label) = &slide_label {
            *text = text.saturating_sub(label.len() as u64);
        }
        NdpiPage {
            magnification,
            slide_label,
        }
    }
}

impl IfdChain {
    /// The page number of page `page`'s SubIFD `k`, counting the SubIFDs'
    /// pages after `pages` (as [`TiffFile`](crate::TiffFile) keeps them),
    /// where the page lists one.
    pub fn subifd_page(&self, page: usize, k: usize) -> Option<usize> {
        Some(self.pages.len() + (*self.subifds.get(page)?.get(k)?)?)
    }

    /// Page `index`, counting the SubIFDs' pages after `pages`.
    pub fn page(&self, index: usize) -> Option<&Result<PageLayout, TiffError>> {
        match index.checked_sub(self.pages.len()) {
            None => self.pages.get(index),
            Some(sub) => self.sub_pages.get(sub),
        }
    }
}

/// Which IFDs [`read_ifds`] reads.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ChainWalk {
    /// The IFD to start at, or `None` for the file's first (whose tags
    /// also give the chain's metadata: description, resolution, flavours).
    pub start: Option<u64>,
    /// How many IFDs to read at most.
    pub max_ifds: Option<usize>,
}

fn map_tiff_error(e: DecoderError) -> TiffError {
    match e {
        DecoderError::FormatError(f) => TiffError::Format(f.to_string()),
        DecoderError::UnsupportedError(u) => TiffError::Unsupported(u.to_string()),
        // the decoder is given max_metadata_bytes as its largest
        // directory value (read_chain), the limit a directory can exceed
        DecoderError::LimitsExceeded => TiffError::too_large(
            Limit::MaxMetadataBytes,
            "a TIFF directory value exceeds the configured maximum of bytes of metadata",
        ),
        DecoderError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            TiffError::Format("the file ends in the middle of a TIFF directory (truncated?)".into())
        }
        DecoderError::IoError(io) => TiffError::Io(io),
        other => TiffError::Format(other.to_string()),
    }
}

/// The `tiff` crate's [`Decoder`] insists on parsing the first directory as
/// an image it could decode itself, and refuses files it cannot (a page
/// without PhotometricInterpretation, which libtiff and tifffile read as
/// grayscale, or with packed 12-bit samples). This module reads and checks
/// the directories itself, so the decoder is opened on a stand-in TIFF of
/// one pixel in the file's byte order and then switched to the file.
enum DirectoryReader {
    StandIn(Cursor<Vec<u8>>),
    File(BufReader<File>),
}

impl Read for DirectoryReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            DirectoryReader::StandIn(c) => c.read(buf),
            DirectoryReader::File(f) => f.read(buf),
        }
    }
}

impl Seek for DirectoryReader {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        match self {
            DirectoryReader::StandIn(c) => c.seek(pos),
            DirectoryReader::File(f) => f.seek(pos),
        }
    }
}

/// A TIFF of one 8-bit grayscale pixel, with `big_endian` byte order, as
/// BigTIFF when `bigtiff`: what [`DirectoryReader::StandIn`] serves.
fn stand_in_tiff(big_endian: bool, bigtiff: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let put = |out: &mut Vec<u8>, value: u64, bytes: usize| {
        let be = value.to_be_bytes();
        let le = value.to_le_bytes();
        if big_endian {
            out.extend_from_slice(&be[8 - bytes..]);
        } else {
            out.extend_from_slice(&le[..bytes]);
        }
    };
    out.extend_from_slice(if big_endian { b"MM" } else { b"II" });
    let offset_bytes = if bigtiff { 8 } else { 4 };
    if bigtiff {
        put(&mut out, 43, 2);
        put(&mut out, 8, 2);
        put(&mut out, 0, 2);
    } else {
        put(&mut out, 42, 2);
    }
    let ifd_at = out.len() as u64 + offset_bytes as u64;
    put(&mut out, ifd_at, offset_bytes);
    // ImageWidth, ImageLength, PhotometricInterpretation, StripOffsets,
    // StripByteCounts; the pixel is the header's first byte
    let entries: [(u64, u64); 5] = [(256, 1), (257, 1), (262, 1), (273, 0), (279, 1)];
    put(&mut out, entries.len() as u64, if bigtiff { 8 } else { 2 });
    for (tag, value) in entries {
        put(&mut out, tag, 2);
        put(&mut out, 3, 2); // SHORT
        put(&mut out, 1, offset_bytes);
        // a SHORT sits in the first two bytes of the value field
        put(&mut out, value, 2);
        put(&mut out, 0, offset_bytes - 2);
    }
    put(&mut out, 0, offset_bytes);
    out
}

/// The offset of the first IFD, from the header (whose signature
/// [`read_chain`] has checked).
fn first_ifd_offset(
    file: &File,
    file_len: u64,
    big_endian: bool,
    bigtiff: bool,
) -> Result<u64, TiffError> {
    let header_len = if bigtiff { 16 } else { 8 };
    if file_len < header_len {
        return Err(TiffError::Format(format!(
            "the file has only {file_len} bytes, less than a TIFF header (truncated?)"
        )));
    }
    let mut header = [0u8; 16];
    file.read_exact_at(&mut header[..header_len as usize], 0)?;
    let number = |bytes: &[u8]| {
        let mut word = [0u8; 8];
        if big_endian {
            word[8 - bytes.len()..].copy_from_slice(bytes);
            u64::from_be_bytes(word)
        } else {
            word[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(word)
        }
    };
    if bigtiff {
        if number(&header[4..6]) != 8 || number(&header[6..8]) != 0 {
            return Err(TiffError::Format(
                "the BigTIFF header does not declare 8-byte offsets".into(),
            ));
        }
        Ok(number(&header[8..16]))
    } else {
        Ok(number(&header[4..8]))
    }
}

/// A numeric tag value as `f64`; TIFF's resolutions are RATIONALs.
fn tag_number(value: Value) -> Option<f64> {
    match value {
        Value::Rational(n, d) => (d != 0).then(|| f64::from(n) / f64::from(d)),
        Value::SRational(n, d) => (d != 0).then(|| f64::from(n) / f64::from(d)),
        Value::Float(v) => Some(f64::from(v)),
        Value::Double(v) => Some(v),
        Value::Byte(v) => Some(f64::from(v)),
        Value::Short(v) => Some(f64::from(v)),
        Value::Unsigned(v) => Some(f64::from(v)),
        Value::List(mut values) if values.len() == 1 => tag_number(values.remove(0)),
        _ => None,
    }
}

/// Bytes of the file a strip or tile takes at least in the IFDs' offset and
/// byte count arrays (2-byte SHORTs each), halved as a margin.
const MIN_BYTES_PER_LISTED_CHUNK: u64 = 2;

/// The most SubIFDs (tag 330) read from one page: a pyramid halving a
/// plane of 2^32 pixels a side down to one pixel has 32 levels.
pub const MAX_SUBIFDS: usize = 64;

/// What reading the pages of one file keeps from page to page.
struct PageListing<'a> {
    file: &'a File,
    file_len: u64,
    limits: &'a Limits,
    /// JPEGTables by content: pages sharing tables share one copy, so that
    /// the tables kept in memory are no more than the file holds.
    jpeg_tables: HashSet<Arc<[u8]>>,
    /// Strips and tiles the pages read so far list.
    chunks_listed: u64,
}

impl PageListing<'_> {
    /// The page of the IFD whose tags are `tags`, the `nth` page read:
    /// `Err` inside where it cannot be used, `Err` outside where the file
    /// cannot be read on.
    fn page(
        &mut self,
        tags: &mut tiff::decoder::IfdDecoder<'_>,
        lsm_file: Option<&File>,
        nth: usize,
    ) -> Result<Result<PageLayout, TiffError>, TiffError> {
        let mut page = page_layout(tags, self.file_len, self.limits, lsm_file);
        if let Ok(layout) = &mut page {
            if let Some(jpeg) = &mut layout.jpeg {
                if let Some(tables) = jpeg.tables.take() {
                    let shared = match self.jpeg_tables.get(&tables) {
                        Some(shared) => shared.clone(),
                        None => {
                            self.jpeg_tables.insert(tables.clone());
                            tables
                        }
                    };
                    jpeg.tables = Some(shared);
                }
                jpeg.jfif = starts_as_jfif(self.file, layout.offsets[0], layout.byte_counts[0])?;
            }
            // each strip or tile takes at least 4 bytes of offset and byte
            // count arrays in the file, unless IFDs share one array; kept in
            // memory at 16 bytes a chunk, shared arrays would multiply it
            self.chunks_listed += layout.offsets.len() as u64;
            if self.chunks_listed > self.file_len / MIN_BYTES_PER_LISTED_CHUNK {
                return Err(TiffError::Format(format!(
                    "the first {nth} IFDs list {} strips or tiles, more than a file of {} bytes \
                     can hold: they share their offset arrays",
                    self.chunks_listed, self.file_len
                )));
            }
        }
        Ok(page)
    }
}

/// The offsets of the SubIFDs (tag 330) a page lists: its reduced-resolution
/// copies, as OME-TIFF pyramids store them. A list of more than
/// [`MAX_SUBIFDS`], one that cannot be read and one pointing outside the
/// file are ignored, with a warning (once per reason, however many pages
/// have one).
fn subifd_offsets(
    tags: &mut tiff::decoder::IfdDecoder<'_>,
    file_len: u64,
    warnings: &mut Vec<String>,
) -> Vec<u64> {
    let mut warn = |message: String| {
        if !warnings.contains(&message) {
            warnings.push(message);
        }
    };
    let Some(entry) = tags.find_entry(Tag::SubIfd) else {
        return Vec::new();
    };
    if entry.count() > MAX_SUBIFDS as u64 {
        warn(format!(
            "a page lists more SubIFDs than the {MAX_SUBIFDS} read: its SubIFDs are ignored"
        ));
        return Vec::new();
    }
    let offsets = match tags
        .find_tag(Tag::SubIfd)
        .map(|v| v.map(Value::into_ifd_vec))
    {
        Ok(Some(Ok(pointers))) => pointers,
        Ok(None) => return Vec::new(),
        Ok(Some(Err(e))) | Err(e) => {
            warn(format!(
                "a page's SubIFDs cannot be read ({e}): they are ignored"
            ));
            return Vec::new();
        }
    };
    // the levels after one that is missing would be taken for it: a list
    // with one offset outside the file is ignored whole
    if offsets.iter().any(|p| !(8..file_len).contains(&p.0)) {
        warn(format!(
            "a page lists SubIFDs outside the file of {file_len} bytes: its SubIFDs are ignored"
        ));
        return Vec::new();
    }
    offsets.into_iter().map(|p| p.0).collect()
}

/// Reads the header and every IFD of `file`.
pub fn read_chain(file: &File, file_len: u64, limits: &Limits) -> Result<IfdChain, TiffError> {
    read_ifds(file, file_len, limits, ChainWalk::default())
}

/// Reads the IFDs of `file` that `walk` says, as [`read_chain`] reads them:
/// what an upload that streams in needs, one IFD at a time as it arrives.
pub(crate) fn read_ifds(
    file: &File,
    file_len: u64,
    limits: &Limits,
    walk: ChainWalk,
) -> Result<IfdChain, TiffError> {
    if file_len == 0 {
        return Err(TiffError::NotTiff("the file is empty".into()));
    }
    let mut magic = [0u8; 4];
    {
        let n = file.read_at(&mut magic, 0)?;
        if n < 4
            || !(magic == *b"II*\0"
                || magic == *b"MM\0*"
                || magic == *b"II+\0"
                || magic == *b"MM\0+")
        {
            return Err(TiffError::NotTiff(
                "the file does not start with a TIFF signature (II*/MM* or BigTIFF II+/MM+); \
                 upload a .tif/.tiff file"
                    .into(),
            ));
        }
    }
    let mut tiff_limits = TiffLimits::default();
    tiff_limits.ifd_value_size = limits.max_metadata_bytes as usize;
    let big_endian = magic[0] == b'M';
    let bigtiff = magic[2] == b'+' || magic[3] == b'+';
    let stand_in = DirectoryReader::StandIn(Cursor::new(stand_in_tiff(big_endian, bigtiff)));
    let mut decoder = Decoder::new(stand_in)
        .map_err(map_tiff_error)?
        .with_limits(tiff_limits);
    *decoder.inner() = DirectoryReader::File(BufReader::new(file.try_clone()?));

    let mut pages = Vec::new();
    let mut seen = HashSet::new();
    let mut next = match walk.start {
        Some(offset) => Some(IfdPointer(offset)),
        None => match first_ifd_offset(file, file_len, big_endian, bigtiff)? {
            0 => None,
            offset => Some(IfdPointer(offset)),
        },
    };
    let mut description = None;
    let mut software = None;
    let mut imagej_metadata = None;
    let mut resolution = None;
    let mut listing = PageListing {
        file,
        file_len,
        limits,
        jpeg_tables: HashSet::new(),
        chunks_listed: 0,
    };
    let mut subifds: Vec<Vec<u64>> = Vec::new();
    let mut ndpi: Option<Vec<NdpiPage>> = None;
    let mut bif = false;
    let mut philips = false;
    let mut descriptions = Vec::new();
    // bytes of the pages' descriptions kept, bounded as metadata text
    let mut description_bytes = limits.max_metadata_bytes;
    // bytes of NDPI slide labels kept, bounded as metadata text
    let mut ndpi_text = limits.max_metadata_bytes;
    let mut subifd_warnings = Vec::new();
    let mut ifd_offsets = Vec::new();
    let mut stk = None;
    let mut lsm_info: Option<Vec<u8>> = None;
    let mut fluoview_header: Option<Vec<u8>> = None;
    let mut micromanager_metadata = None;
    let mut micromanager_tag = false;
    while let Some(ptr) = next {
        if walk.max_ifds.is_some_and(|most| pages.len() >= most) {
            break;
        }
        if !seen.insert(ptr.0) {
            return Err(TiffError::Format(format!(
                "the IFD chain loops back to offset {} after {} pages",
                ptr.0,
                pages.len()
            )));
        }
        if pages.len() as u64 >= limits.max_pages {
            return Err(TiffError::too_large(
                Limit::MaxPages,
                format!(
                    "the file has more than {} pages (IFDs), the configured maximum",
                    limits.max_pages
                ),
            ));
        }
        if ptr.0 >= file_len {
            return Err(TiffError::Format(format!(
                "IFD {} is at offset {} but the file has only {file_len} bytes (truncated?)",
                pages.len(),
                ptr.0
            )));
        }
        let dir = decoder.read_directory(ptr).map_err(map_tiff_error)?;
        next = dir.next();
        let mut tags = decoder.read_directory_tags(&dir);
        if pages.is_empty() && walk.start.is_none() {
            stk = stk::read_planes(file, ptr.0, big_endian, bigtiff, file_len, limits)?;
            lsm_info = (!big_endian)
                .then(|| tags.find_tag(Tag::Unknown(CZ_LSMINFO_TAG)).ok().flatten())
                .flatten()
                .and_then(|v| v.into_u8_vec().ok())
                .filter(|info| info.len() as u64 <= limits.max_metadata_bytes);
            fluoview_header = tags
                .find_entry(Tag::Unknown(MM_STAMP_TAG))
                .and_then(|_| tags.find_tag(Tag::Unknown(MM_HEADER_TAG)).ok().flatten())
                .and_then(|v| v.into_u8_vec().ok())
                .filter(|header| header.len() as u64 <= limits.max_metadata_bytes);
            if let Some(entry) = tags.find_entry(Tag::Unknown(MICROMANAGER_TAG)) {
                micromanager_tag = true;
                micromanager_metadata =
                    micromanager::read_header(file, big_endian, file_len, limits)?;
                if let Some(mm) = &mut micromanager_metadata {
                    let kept = [&mm.display_settings, &mm.comments]
                        .iter()
                        .map(|text| text.as_ref().map_or(0, |t| t.len() as u64))
                        .sum::<u64>()
                        + mm.summary.len() as u64;
                    if entry.count() <= limits.max_metadata_bytes.saturating_sub(kept) {
                        mm.first_image = tags
                            .find_tag(Tag::Unknown(MICROMANAGER_TAG))
                            .ok()
                            .flatten()
                            .and_then(|v| match v {
                                tiff::decoder::ifd::Value::Ascii(s) => Some(s.into_bytes()),
                                v => v.into_u8_vec().ok(),
                            })
                            .map(|bytes| json_text(&bytes));
                    }
                }
            }
            description = ascii(&mut tags, Tag::ImageDescription);
            // as tifffile recognises a Hamamatsu NDPI
            if tags
                .find_entry(Tag::Unknown(NDPI_FILE_FORMAT_TAG))
                .is_some()
                && tags.find_entry(Tag::Make).is_some()
            {
                ndpi = Some(Vec::new());
            }
            software = ascii(&mut tags, Tag::Software);
            bif = is_bif(&mut tags, software.as_deref(), description.as_deref());
            // as tifffile recognises a Philips DP slide
            philips = software
                .as_deref()
                .is_some_and(|s| s.starts_with("Philips DP"))
                && description
                    .as_deref()
                    .is_some_and(|d| d.trim_end().ends_with("</DataObject>"));
            let counts = tags
                .find_tag(Tag::Unknown(50838))
                .ok()
                .flatten()
                .and_then(|v| v.into_u32_vec().ok());
            let data = tags
                .find_tag(Tag::Unknown(50839))
                .ok()
                .flatten()
                .and_then(|v| v.into_u8_vec().ok());
            imagej_metadata = counts
                .zip(data)
                .filter(|(_, data)| data.len() as u64 <= limits.max_metadata_bytes);
            let xr = tags
                .find_tag(Tag::XResolution)
                .ok()
                .flatten()
                .and_then(tag_number);
            let yr = tags
                .find_tag(Tag::YResolution)
                .ok()
                .flatten()
                .and_then(tag_number);
            let unit = tags
                .find_tag_unsigned::<u16>(Tag::ResolutionUnit)
                .ok()
                .flatten()
                .unwrap_or(2);
            if let (Some(x), Some(y)) = (xr, yr) {
                resolution = Some((x, y, unit));
            }
        }
        // LSM writers store two BitsPerSample values at an offset although
        // they fit in the entry, as tifffile corrects
        let lsm_file = lsm_info.is_some().then_some(file);
        let page = listing.page(&mut tags, lsm_file, pages.len() + 1)?;
        subifds.push(subifd_offsets(&mut tags, file_len, &mut subifd_warnings));
        if let Some(ndpi) = &mut ndpi {
            ndpi.push(NdpiPage::of(&mut tags, &mut ndpi_text));
        }
        // tifffile's shaped series each begin with a page of its own
        // shaped description; a BIF's pages say what they are in theirs
        let shaped = description.as_deref().is_some_and(is_shaped);
        if shaped || bif || philips {
            let text = if pages.is_empty() {
                description.clone()
            } else {
                tags.find_entry(Tag::ImageDescription)
                    .filter(|entry| entry.count() <= description_bytes)
                    .and_then(|_| ascii(&mut tags, Tag::ImageDescription))
                    .filter(|text| bif || philips || is_shaped(text))
            };
            if let Some(text) = text {
                description_bytes = description_bytes.saturating_sub(text.len() as u64);
                descriptions.push((pages.len(), text));
            }
        }
        pages.push(page);
        ifd_offsets.push(ptr.0);
    }
    // a page's SubIFDs are read once the chain is known, and only where it
    // is read whole (an upload that streams in has not got them yet)
    let mut sub_pages = Vec::new();
    let subifds = if walk.max_ifds.is_none() {
        let mut read = Vec::with_capacity(subifds.len());
        for offsets in subifds {
            let mut indexes = Vec::with_capacity(offsets.len());
            for offset in offsets {
                if (pages.len() + sub_pages.len()) as u64 >= limits.max_pages {
                    return Err(TiffError::too_large(
                        Limit::MaxPages,
                        format!(
                            "the file has more than {} pages (IFDs and SubIFDs), the configured \
                         maximum",
                            limits.max_pages
                        ),
                    ));
                }
                let page = if seen.insert(offset) {
                    match decoder.read_directory(IfdPointer(offset)) {
                        Ok(dir) => {
                            let mut tags = decoder.read_directory_tags(&dir);
                            listing.page(&mut tags, None, pages.len() + sub_pages.len() + 1)?
                        }
                        Err(e) => Err(map_tiff_error(e)),
                    }
                } else {
                    Err(TiffError::Format(format!(
                        "the SubIFD at offset {offset} is also another IFD of the file"
                    )))
                };
                indexes.push(Some(sub_pages.len()));
                sub_pages.push(page);
            }
            read.push(indexes);
        }
        read
    } else {
        subifds
            .into_iter()
            .map(|offsets| vec![None; offsets.len()])
            .collect()
    };
    if pages.is_empty() {
        return Err(TiffError::Format("the file has no image directory".into()));
    }
    Ok(IfdChain {
        bigtiff,
        big_endian,
        pages,
        description,
        software,
        imagej_metadata,
        resolution,
        ifd_offsets,
        stk,
        lsm_info,
        fluoview_header,
        micromanager: micromanager_metadata,
        micromanager_tag,
        ome_files: None,
        file_len,
        next_ifd: next.map(|p| p.0),
        subifds,
        sub_pages,
        subifd_warnings,
        ndpi,
        descriptions,
        bif,
        philips,
    })
}

/// Whether a JPEG chunk of `count` bytes at `offset` starts with a JFIF
/// APP0 segment, tested as tifffile does (`is_jfif`: "JFIF" at byte 6).
fn starts_as_jfif(file: &File, offset: u64, count: u64) -> Result<bool, TiffError> {
    if offset == 0 || count < 11 {
        return Ok(false);
    }
    let mut id = [0u8; 4];
    // offset + count lies within the file: checked by page_layout
    file.read_exact_at(&mut id, offset + 6)?;
    Ok(id == *b"JFIF")
}

fn ascii(tags: &mut tiff::decoder::IfdDecoder<'_>, tag: Tag) -> Option<String> {
    match tags.find_tag(tag).ok().flatten()? {
        tiff::decoder::ifd::Value::Ascii(s) => Some(s),
        v => v.into_string().ok(),
    }
}

/// Checks that a JPEG-compressed page is one pentascope decodes (8-bit
/// samples; grayscale, or RGB / YCbCr as three samples) and reads its
/// JPEGTables and photometric interpretation.
fn jpeg_layout(
    tags: &mut tiff::decoder::IfdDecoder<'_>,
    bits_per_sample: u16,
    sample_format: u16,
    samples: u16,
    planar_separate: bool,
) -> Result<JpegLayout, TiffError> {
    if bits_per_sample != 8 || sample_format != 1 {
        return Err(TiffError::Unsupported(format!(
            "{bits_per_sample}-bit JPEG (TIFF compression 7{}) is not supported; pentascope \
             decodes 8-bit JPEG only: re-save the image uncompressed or with LZW, Deflate or \
             Zstd",
            if sample_format == 1 {
                ""
            } else {
                ", signed or floating-point samples"
            }
        )));
    }
    let photometric: u16 = tags
        .find_tag_unsigned(Tag::PhotometricInterpretation)
        .map_err(|x| TiffError::Format(format!("cannot read PhotometricInterpretation: {x}")))?
        .unwrap_or(1);
    let supported = match samples {
        1 => matches!(photometric, 0 | 1),
        3 => matches!(photometric, 0 | 1 | 2 | 6),
        4 => photometric == 5,
        _ => false,
    };
    if !supported {
        return Err(TiffError::Unsupported(format!(
            "JPEG-compressed pages of {samples} samples per pixel with photometric \
             interpretation {photometric} ({}) are not supported; supported are grayscale \
             (1 sample), RGB or YCbCr (3 samples) and CMYK (4 samples)",
            match photometric {
                0 => "min-is-white",
                1 => "min-is-black",
                2 => "RGB",
                3 => "palette",
                4 => "mask",
                5 => "CMYK / separated",
                6 => "YCbCr",
                8 => "CIELab",
                _ => "other",
            }
        )));
    }
    // planar YCbCr would need the chroma planes' subsampling undone here
    if planar_separate && photometric == 6 {
        return Err(TiffError::Unsupported(
            "JPEG-compressed YCbCr pages with planar configuration 2 (separate planes) are \
             not supported"
                .into(),
        ));
    }
    let tables = match tags.find_entry(Tag::JPEGTables) {
        None => None,
        Some(entry) if entry.count() > MAX_JPEG_TABLES_BYTES as u64 => {
            return Err(TiffError::Unsupported(format!(
                "JPEGTables holds {} bytes, more than the {MAX_JPEG_TABLES_BYTES} pentascope \
                 reads (real tables take about a kilobyte)",
                entry.count()
            )))
        }
        Some(_) => tags
            .find_tag(Tag::JPEGTables)
            .map_err(|x| TiffError::Format(format!("cannot read JPEGTables: {x}")))?
            .map(|v| v.into_u8_vec())
            .transpose()
            .map_err(|x| TiffError::Format(format!("cannot read JPEGTables: {x}")))?
            .map(Arc::from),
    };
    Ok(JpegLayout {
        tables,
        photometric,
        jfif: false,
    })
}

fn page_layout(
    tags: &mut tiff::decoder::IfdDecoder<'_>,
    file_len: u64,
    limits: &Limits,
    lsm_file: Option<&File>,
) -> Result<PageLayout, TiffError> {
    let bad = |msg: String| TiffError::Format(msg);
    let e = |t: &str, err: DecoderError| TiffError::Format(format!("cannot read {t}: {err}"));
    let width: u32 = tags
        .find_tag_unsigned(Tag::ImageWidth)
        .map_err(|x| e("ImageWidth", x))?
        .ok_or_else(|| bad("ImageWidth is missing".into()))?;
    let height: u32 = tags
        .find_tag_unsigned(Tag::ImageLength)
        .map_err(|x| e("ImageLength", x))?
        .ok_or_else(|| bad("ImageLength is missing".into()))?;
    if width == 0 || height == 0 {
        return Err(bad(format!("the page is {width}×{height} pixels")));
    }
    let plane_pixels = u64::from(width) * u64::from(height);
    if plane_pixels > limits.max_plane_pixels {
        return Err(TiffError::too_large(
            Limit::MaxPlanePixels,
            format!(
            "a page declares {width}×{height} = {plane_pixels} pixels, more than the configured \
             maximum of {} pixels per plane",
            limits.max_plane_pixels
        ),
        ));
    }
    let samples: u16 = tags
        .find_tag_unsigned(Tag::SamplesPerPixel)
        .map_err(|x| e("SamplesPerPixel", x))?
        .unwrap_or(1);
    if samples == 0 {
        return Err(bad("SamplesPerPixel is 0".into()));
    }
    let mut bits: Vec<u16> = tags
        .find_tag_unsigned_vec(Tag::BitsPerSample)
        .map_err(|x| e("BitsPerSample", x))?
        .unwrap_or_else(|| vec![1]);
    if let (Some(file), [low, high]) = (lsm_file, bits.as_slice()) {
        let offset = u64::from(*low) | u64::from(*high) << 16;
        let mut values = [0u8; 4];
        if offset + 4 <= file_len && file.read_exact_at(&mut values, offset).is_ok() {
            bits = vec![
                u16::from_le_bytes([values[0], values[1]]),
                u16::from_le_bytes([values[2], values[3]]),
            ];
        }
    }
    let format: Vec<u16> = tags
        .find_tag_unsigned_vec(Tag::SampleFormat)
        .map_err(|x| e("SampleFormat", x))?
        .unwrap_or_else(|| vec![1]);
    if bits.is_empty() || format.is_empty() {
        return Err(bad("BitsPerSample or SampleFormat is empty".into()));
    }
    if bits.iter().any(|b| *b != bits[0]) || format.iter().any(|f| *f != format[0]) {
        return Err(TiffError::Unsupported(
            "samples of one pixel have different types".into(),
        ));
    }
    let bits_per_sample = bits[0];
    // packed unsigned samples are widened, as tifffile does (bilevel too:
    // pentascope gives 0/1 as uint8 where tifffile gives bool)
    let dtype = match (format[0], bits_per_sample) {
        (1, 1..=7) => Some(DType::U8),
        (1, 9..=15) => Some(DType::U16),
        (format, bits) => DType::from_tiff(format, bits),
    }
    .ok_or_else(|| {
        TiffError::Unsupported(format!(
            "{bits_per_sample}-bit {} samples are not supported; supported are 8, 16, 32 and \
             64-bit integers, unsigned integers of 1 to 16 bits and 32 and 64-bit floats",
            match format[0] {
                1 => "unsigned integer",
                2 => "signed integer",
                3 => "floating-point",
                _ => "untyped",
            }
        ))
    })?;
    let compression: u16 = tags
        .find_tag_unsigned(Tag::Compression)
        .map_err(|x| e("Compression", x))?
        .unwrap_or(1);
    let codec = codecs::with_page_tags(Codec::from_tag(compression)?, tags)?;
    let planar_separate = tags
        .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
        .map_err(|x| e("PlanarConfiguration", x))?
        .unwrap_or(1)
        == 2
        && samples > 1;
    let mut jpeg = if codec == Codec::Jpeg {
        Some(jpeg_layout(
            tags,
            bits_per_sample,
            format[0],
            samples,
            planar_separate,
        )?)
    } else {
        None
    };
    if let (6, Some(jpeg)) = (compression, &mut jpeg) {
        codecs::old_style_jpeg(tags, samples, jpeg);
    }
    codecs::check_page(codec, bits_per_sample, dtype, samples, planar_separate)?;
    // tifffile ignores a predictor on JPEG pages (libtiff writes none), and
    // on those of the other image codecs
    let predictor: u16 = match codec {
        Codec::Jpeg => 1,
        codec if codec.decodes_frames() => 1,
        _ => tags
            .find_tag_unsigned(Tag::Predictor)
            .map_err(|x| e("Predictor", x))?
            .unwrap_or(1),
    };
    let packed = usize::from(bits_per_sample) != dtype.size() * 8;
    if !(1..=3).contains(&predictor)
        || (predictor == 3 && !dtype.is_float())
        || (predictor != 1 && packed)
    {
        return Err(TiffError::Unsupported(format!(
            "TIFF predictor {predictor} is not supported for {bits_per_sample}-bit {dtype} \
             samples"
        )));
    }
    let subfile: u32 = tags
        .find_tag_unsigned(Tag::NewSubfileType)
        .ok()
        .flatten()
        .unwrap_or(0);
    let tiled = tags.find_entry(Tag::TileWidth).is_some();
    let (geometry, offsets_tag, counts_tag) = if tiled {
        let tw: u32 = tags
            .find_tag_unsigned(Tag::TileWidth)
            .map_err(|x| e("TileWidth", x))?
            .unwrap_or(0);
        let th: u32 = tags
            .find_tag_unsigned(Tag::TileLength)
            .map_err(|x| e("TileLength", x))?
            .unwrap_or(0);
        if tw == 0 || th == 0 {
            return Err(bad(format!("tiles of {tw}×{th} pixels")));
        }
        (
            ChunkGeometry::Tiles {
                width: tw,
                height: th,
            },
            Tag::TileOffsets,
            Tag::TileByteCounts,
        )
    } else {
        let rows: u32 = tags
            .find_tag_unsigned(Tag::RowsPerStrip)
            .map_err(|x| e("RowsPerStrip", x))?
            .unwrap_or(height)
            .clamp(1, height);
        (
            ChunkGeometry::Strips { rows },
            Tag::StripOffsets,
            Tag::StripByteCounts,
        )
    };
    let offsets: Vec<u64> = tags
        .find_tag_unsigned_vec(offsets_tag)
        .map_err(|x| e("chunk offsets", x))?
        .ok_or_else(|| bad("the page has no strip or tile offsets".into()))?;
    let byte_counts: Vec<u64> = tags
        .find_tag_unsigned_vec(counts_tag)
        .map_err(|x| e("chunk byte counts", x))?
        .ok_or_else(|| bad("the page has no strip or tile byte counts".into()))?;
    let mut layout = PageLayout {
        width,
        height,
        samples,
        dtype,
        bits_per_sample,
        planar_separate,
        codec,
        predictor,
        geometry,
        offsets,
        byte_counts,
        reduced: subfile & 1 == 1,
        subfile_type: subfile,
        jpeg,
    };
    let (across, down) = layout.chunk_grid();
    let planes = if planar_separate {
        u64::from(samples)
    } else {
        1
    };
    let expected = (u64::from(across) * u64::from(down)).saturating_mul(planes);
    if (layout.offsets.len() as u64) < expected || (layout.byte_counts.len() as u64) < expected {
        return Err(bad(format!(
            "the page needs {expected} strips or tiles but lists {} offsets and {} byte counts",
            layout.offsets.len(),
            layout.byte_counts.len()
        )));
    }
    // entries past the ones the grid needs are never read
    layout.offsets.truncate(expected as usize);
    layout.byte_counts.truncate(expected as usize);
    // only the rows of a chunk that lie in the image are decoded, except
    // that a JPEG decoder (or another image codec's) produces the whole
    // frame of a tile
    let (cw, ch) = layout.chunk_size();
    let chunk_bytes = [
        u64::from(if codec == Codec::Jpeg || codec.decodes_frames() {
            ch
        } else {
            ch.min(height)
        }),
        if planar_separate {
            1
        } else {
            u64::from(samples)
        },
        dtype.size() as u64,
    ]
    .into_iter()
    .try_fold(u64::from(cw), u64::checked_mul);
    if chunk_bytes.is_none_or(|n| n > limits.max_chunk_bytes) {
        return Err(TiffError::too_large(
            Limit::MaxChunkBytes,
            format!(
                "one strip or tile of {cw}×{ch} pixels decodes to {} bytes, more than the \
             configured maximum of {} bytes",
                chunk_bytes.map_or("over 2^64".to_string(), |n| n.to_string()),
                limits.max_chunk_bytes
            ),
        ));
    }
    for (i, (&off, &n)) in layout.offsets.iter().zip(&layout.byte_counts).enumerate() {
        if off.checked_add(n).is_none_or(|end| end > file_len) {
            return Err(bad(format!(
                "strip/tile {i} spans bytes {off}..{} but the file has only {file_len} bytes \
                 (truncated upload?)",
                off.saturating_add(n)
            )));
        }
    }
    Ok(layout)
}
