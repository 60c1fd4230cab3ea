//! Helpers shared by the hostile-input tests and the fuzz targets (which
//! include this file from `fuzz/src/lib.rs`): a byte-level TIFF writer for
//! building hostile files, and the harnesses that drive the reader, so that
//! a regression file is replayed exactly as the fuzzer ran it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use pentascope_tiff::{dispatch_dtype, DType, Limits, Sample, TiffError};
use pentascope_tiff::{
    ChunkGeometry, Codec, IfdChain, MicroManager, PageLayout, Series, StkPlanes, TiffFile,
};

/// One page (IFD) of a TIFF being built. Strips or tiles are given as blob
/// indices, so pages can share data.
#[derive(Debug, Clone)]
pub struct PageSpec {
    pub width: u32,
    pub height: u32,
    pub samples: u16,
    pub bits: u16,
    /// SampleFormat: 1 unsigned, 2 signed, 3 float.
    pub sample_format: u16,
    pub compression: u16,
    pub predictor: u16,
    /// Tile width and length; strips of `rows_per_strip` rows when `None`.
    pub tile: Option<(u32, u32)>,
    pub rows_per_strip: u32,
    /// Blob of each strip or tile.
    pub chunks: Vec<usize>,
    pub description: Option<String>,
    /// PhotometricInterpretation; the tag is left out when `None`.
    pub photometric: Option<u16>,
    /// XResolution, YResolution and ResolutionUnit; the tags are left out
    /// when `None`.
    pub resolution: Option<Resolution>,
    /// JPEGTables (tag 347); left out when `None`.
    pub jpeg_tables: Option<Vec<u8>>,
    /// Further tags, as UNDEFINED bytes (vendors' private tags).
    pub extra_tags: Vec<(u16, Vec<u8>)>,
    /// SubIFDs (tag 330, LONG offsets); left out when empty.
    pub subifds: Vec<u32>,
}

/// Pixels per unit across and down, each a RATIONAL (numerator,
/// denominator), and the ResolutionUnit (1 none, 2 inch, 3 centimeter).
pub type Resolution = ((u32, u32), (u32, u32), u16);

impl PageSpec {
    /// An uncompressed 8-bit, one-sample page in one strip, whose data is `blob`.
    pub fn new(width: u32, height: u32, blob: usize) -> PageSpec {
        PageSpec {
            width,
            height,
            samples: 1,
            bits: 8,
            sample_format: 1,
            compression: 1,
            predictor: 1,
            tile: None,
            rows_per_strip: height,
            chunks: vec![blob],
            description: None,
            photometric: Some(1),
            resolution: None,
            jpeg_tables: None,
            extra_tags: Vec::new(),
            subifds: Vec::new(),
        }
    }
}

/// A little-endian classic TIFF or BigTIFF, written byte by byte.
#[derive(Debug, Default)]
pub struct TiffBuilder {
    bigtiff: bool,
    /// Whether IFDs point at one copy of equal out-of-line tag values.
    share_values: bool,
    scanimage: Option<String>,
    /// Bytes right after a classic header (at offset 8), where
    /// Micro-Manager writes its own header.
    preamble: Vec<u8>,
    blobs: Vec<Vec<u8>>,
    pages: Vec<PageSpec>,
}

enum Values {
    Short(Vec<u16>),
    Long(Vec<u32>),
    Ascii(Vec<u8>),
    Undefined(Vec<u8>),
    Rational(Vec<(u32, u32)>),
}

impl Values {
    fn type_and_bytes(&self) -> (u16, u64, Vec<u8>) {
        match self {
            Values::Short(v) => (
                3,
                v.len() as u64,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            Values::Long(v) => (
                4,
                v.len() as u64,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            Values::Ascii(v) => (2, v.len() as u64, v.clone()),
            Values::Undefined(v) => (7, v.len() as u64, v.clone()),
            Values::Rational(v) => (
                5,
                v.len() as u64,
                v.iter()
                    .flat_map(|(n, d)| n.to_le_bytes().into_iter().chain(d.to_le_bytes()))
                    .collect(),
            ),
        }
    }
}

impl TiffBuilder {
    /// A classic (32-bit offset) TIFF.
    pub fn classic() -> TiffBuilder {
        TiffBuilder::default()
    }

    /// A BigTIFF carrying ScanImage's frame metadata `text` after its header.
    pub fn scanimage(text: &str) -> TiffBuilder {
        TiffBuilder {
            bigtiff: true,
            scanimage: Some(text.to_string()),
            ..TiffBuilder::default()
        }
    }

    /// Puts `bytes` right after a classic TIFF's header, at offset 8.
    pub fn preamble(&mut self, bytes: Vec<u8>) -> &mut TiffBuilder {
        self.preamble = bytes;
        self
    }

    /// Makes IFDs share equal tag values (such as strip offset arrays)
    /// instead of each writing its own copy.
    pub fn share_values(&mut self) -> &mut TiffBuilder {
        self.share_values = true;
        self
    }

    /// Adds strip or tile data that pages refer to by the returned index.
    pub fn blob(&mut self, bytes: Vec<u8>) -> usize {
        self.blobs.push(bytes);
        self.blobs.len() - 1
    }

    /// Appends a page to the IFD chain.
    pub fn page(&mut self, page: PageSpec) -> &mut TiffBuilder {
        self.pages.push(page);
        self
    }

    /// The file's bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut out: Vec<u8> = Vec::new();
        // where the offset of the next IFD goes
        let mut next_pointer;
        if self.bigtiff {
            out.extend_from_slice(b"II+\0\x08\0\0\0");
            next_pointer = out.len();
            out.extend_from_slice(&[0; 8]);
            if let Some(text) = &self.scanimage {
                for word in [0x0703_0301u32, 3, text.len() as u32, 0] {
                    out.extend_from_slice(&word.to_le_bytes());
                }
                out.extend_from_slice(text.as_bytes());
            }
        } else {
            out.extend_from_slice(b"II*\0");
            next_pointer = out.len();
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&self.preamble);
        }
        let mut written_values: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut blob_offsets = Vec::new();
        for blob in &self.blobs {
            blob_offsets.push(out.len() as u32);
            out.extend_from_slice(blob);
        }
        for page in &self.pages {
            let offsets = page.chunks.iter().map(|b| blob_offsets[*b]).collect();
            let counts = page
                .chunks
                .iter()
                .map(|b| self.blobs[*b].len() as u32)
                .collect();
            let mut entries = vec![
                (256, Values::Long(vec![page.width])),
                (257, Values::Long(vec![page.height])),
                (258, Values::Short(vec![page.bits])),
                (259, Values::Short(vec![page.compression])),
                (277, Values::Short(vec![page.samples])),
                (284, Values::Short(vec![1])),
                (339, Values::Short(vec![page.sample_format])),
            ];
            if let Some(photometric) = page.photometric {
                entries.push((262, Values::Short(vec![photometric])));
            }
            if let Some((x, y, unit)) = page.resolution {
                entries.extend([
                    (282, Values::Rational(vec![x])),
                    (283, Values::Rational(vec![y])),
                    (296, Values::Short(vec![unit])),
                ]);
            }
            if let Some(tables) = &page.jpeg_tables {
                entries.push((347, Values::Undefined(tables.clone())));
            }
            if page.predictor != 1 {
                entries.push((317, Values::Short(vec![page.predictor])));
            }
            if !page.subifds.is_empty() {
                entries.push((330, Values::Long(page.subifds.clone())));
            }
            for (tag, bytes) in &page.extra_tags {
                entries.push((u32::from(*tag), Values::Undefined(bytes.clone())));
            }
            if let Some(text) = &page.description {
                let mut bytes = text.as_bytes().to_vec();
                bytes.push(0);
                entries.push((270, Values::Ascii(bytes)));
            }
            match page.tile {
                Some((w, h)) => entries.extend([
                    (322, Values::Long(vec![w])),
                    (323, Values::Long(vec![h])),
                    (324, Values::Long(offsets)),
                    (325, Values::Long(counts)),
                ]),
                None => entries.extend([
                    (273, Values::Long(offsets)),
                    (278, Values::Long(vec![page.rows_per_strip])),
                    (279, Values::Long(counts)),
                ]),
            }
            entries.sort_by_key(|(tag, _)| *tag);
            let inline = if self.bigtiff { 8 } else { 4 };
            // values that do not fit in an entry go before the IFD
            let mut encoded = Vec::new();
            for (tag, values) in &entries {
                let (ty, count, mut bytes) = values.type_and_bytes();
                if bytes.len() > inline {
                    let at = match written_values.get(&bytes) {
                        Some(at) if self.share_values => *at,
                        _ => {
                            out.resize(out.len().next_multiple_of(2), 0);
                            let at = out.len() as u64;
                            out.extend_from_slice(&bytes);
                            written_values.insert(bytes, at);
                            at
                        }
                    };
                    bytes = at.to_le_bytes()[..inline].to_vec();
                } else {
                    bytes.resize(inline, 0);
                }
                encoded.push((*tag as u16, ty, count, bytes));
            }
            out.resize(out.len().next_multiple_of(2), 0);
            let ifd = out.len() as u64;
            out[next_pointer..next_pointer + inline].copy_from_slice(&ifd.to_le_bytes()[..inline]);
            if self.bigtiff {
                out.extend_from_slice(&(encoded.len() as u64).to_le_bytes());
            } else {
                out.extend_from_slice(&(encoded.len() as u16).to_le_bytes());
            }
            for (tag, ty, count, bytes) in encoded {
                out.extend_from_slice(&tag.to_le_bytes());
                out.extend_from_slice(&ty.to_le_bytes());
                out.extend_from_slice(&count.to_le_bytes()[..inline]);
                out.extend_from_slice(&bytes);
            }
            next_pointer = out.len();
            out.extend_from_slice(&vec![0; inline]);
        }
        out
    }

    /// Writes the file to a fresh temporary path, removed when dropped.
    pub fn write(&self) -> TempFile {
        TempFile::with_bytes(&self.build())
    }
}

/// A file under the temporary directory, removed when dropped.
pub struct TempFile(PathBuf);

impl TempFile {
    /// A new file holding `bytes`, with a name unique to this process and call.
    pub fn with_bytes(bytes: &[u8]) -> TempFile {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "pentascope-hostile-{}-{}.tif",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, bytes).expect("write a temporary TIFF");
        TempFile(path)
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An ImageJ hyperstack of uint16 `planes` (each `width`×`height`, in
/// ImageJ's order: channels fastest, then slices, then frames) stored as
/// ImageJ stores files of more than 4 GB: one IFD, describing the first
/// plane, whose description declares `images` (the planes' count unless
/// given), and every plane's bytes one after another from the first
/// plane's strip.
pub fn imagej_contiguous(
    (width, height): (u32, u32),
    (channels, slices, frames): (u64, u64, u64),
    planes: &[Vec<u16>],
    images: Option<u64>,
) -> TiffBuilder {
    let bytes = |plane: &[u16]| -> Vec<u8> { plane.iter().flat_map(|v| v.to_le_bytes()).collect() };
    let mut tiff = TiffBuilder::classic();
    // blobs are written back to back, in order
    let first = tiff.blob(bytes(&planes[0]));
    let rest: Vec<u8> = planes[1..].iter().flat_map(|p| bytes(p)).collect();
    if !rest.is_empty() {
        tiff.blob(rest);
    }
    let images = images.unwrap_or(planes.len() as u64);
    let description = format!(
        "ImageJ=1.54f\nimages={images}\nchannels={channels}\nslices={slices}\n\
         frames={frames}\nhyperstack=true\nmode=grayscale\nloop=false\nmin=0.0\n\
         max=4095.0\n"
    );
    tiff.page(PageSpec {
        bits: 16,
        description: Some(description),
        ..PageSpec::new(width, height, first)
    });
    tiff
}

/// A 16×16 grayscale baseline JPEG (JFIF) whose every pixel is 100, as
/// libjpeg (imagecodecs.jpeg8_encode, quality 90) writes it: quantisation
/// table (DQT) at bytes 20..89, frame header (SOF0) at 89..102 (height at
/// 94..96, width at 96..98), Huffman tables (DHT) at 102..318, scan from 318.
pub const FLAT_JPEG_16X16: [u8; 335] = [
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xFF, 0xDB, 0x00, 0x43, 0x00, 0x03, 0x02, 0x02, 0x03, 0x02, 0x02, 0x03,
    0x03, 0x03, 0x03, 0x04, 0x03, 0x03, 0x04, 0x05, 0x08, 0x05, 0x05, 0x04, 0x04, 0x05, 0x0A, 0x07,
    0x07, 0x06, 0x08, 0x0C, 0x0A, 0x0C, 0x0C, 0x0B, 0x0A, 0x0B, 0x0B, 0x0D, 0x0E, 0x12, 0x10, 0x0D,
    0x0E, 0x11, 0x0E, 0x0B, 0x0B, 0x10, 0x16, 0x10, 0x11, 0x13, 0x14, 0x15, 0x15, 0x15, 0x0C, 0x0F,
    0x17, 0x18, 0x16, 0x14, 0x18, 0x12, 0x14, 0x15, 0x14, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10,
    0x00, 0x10, 0x01, 0x01, 0x11, 0x00, 0xFF, 0xC4, 0x00, 0x1F, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04,
    0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0xFF, 0xC4, 0x00, 0xB5, 0x10, 0x00, 0x02, 0x01, 0x03,
    0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7D, 0x01, 0x02, 0x03, 0x00,
    0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32,
    0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0, 0x24, 0x33, 0x62, 0x72,
    0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x34, 0x35,
    0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A, 0x53, 0x54, 0x55,
    0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x73, 0x74, 0x75,
    0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x92, 0x93, 0x94,
    0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2,
    0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9,
    0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6,
    0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFF, 0xDA,
    0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00, 0xF3, 0x4A, 0x28, 0xA2, 0xBF, 0xFF, 0xD9,
];

/// Limits for fuzzing: small enough that no input costs more than a few
/// milliseconds or megabytes to decode.
pub fn tight_limits() -> Limits {
    Limits::default()
        .with_max_samples(1 << 20)
        .with_max_plane_pixels(1 << 20)
        .with_max_pages(1 << 10)
        .with_max_chunk_bytes(1 << 22)
        .with_max_metadata_bytes(1 << 20)
        .with_max_channels(64)
}

/// Opens `path` and decodes every page of its series, in bands of a few
/// rows (so that band edges fall inside strips and tiles). Returns the
/// series and how many samples were decoded.
pub fn read_every_plane(path: &Path, limits: &Limits) -> Result<(Series, u64), TiffError> {
    let file = TiffFile::open(path, limits, None)?;
    let decoded = dispatch_dtype!(file.series().dtype, T => read_pages::<T>(&file))?;
    Ok((file.series().clone(), decoded))
}

fn read_pages<T: Sample>(file: &TiffFile) -> Result<u64, TiffError> {
    const BAND_ROWS: u32 = 7;
    let shape = file.series().shape;
    let height = shape.y as u32;
    let mut decoded = 0u64;
    for group in file.series().page_groups() {
        let Some(page) = group.page else { continue };
        let mut bands: Vec<Vec<T>> = vec![Vec::new(); group.planes.len()];
        let mut y = 0;
        while y < height {
            let end = (y + BAND_ROWS).min(height);
            file.read_band(page, y..end, &mut bands)?;
            decoded += bands.iter().map(|b| b.len() as u64).sum::<u64>();
            y = end;
        }
    }
    Ok(decoded)
}

/// The fuzz targets, by the name of their directory under `fuzz/regressions`.
pub const TARGETS: [&str; 3] = ["reader", "flavour", "codec"];

/// Runs fuzz target `target` on `data` with `limits`, exactly as the fuzzer
/// does (which uses [`tight_limits`]). Returns a short description of the
/// outcome; panics only where the reader does.
pub fn run_target(target: &str, data: &[u8], limits: &Limits) -> String {
    let outcome = match target {
        "reader" => reader_target(data, limits),
        "flavour" => flavour_target(data, limits).map(|s| (s, 0)),
        "codec" => codec_target(data, limits),
        other => panic!("no fuzz target {other}"),
    };
    match outcome {
        Ok((series, decoded)) => format!("{:?}, {decoded} samples decoded", series.shape),
        Err(e) => format!("refused: {e}"),
    }
}

/// The whole reader: `data` is a TIFF file.
pub fn reader_target(data: &[u8], limits: &Limits) -> Result<(Series, u64), TiffError> {
    let file = TempFile::with_bytes(data);
    read_every_plane(file.path(), limits)
}

/// The flavour parsers, every one of them: five bytes choose the flavour
/// and the pages' count and shape, the rest is the metadata (text, or the
/// vendor's binary structure).
pub fn flavour_target(data: &[u8], limits: &Limits) -> Result<Series, TiffError> {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let kind = MetadataKind::ALL[usize::from(byte(0)) % MetadataKind::ALL.len()];
    let pages = usize::from(byte(1) % 8) + 1;
    let shape = (
        u32::from(byte(2) % 4) + 1,
        u32::from(byte(3) % 4) + 1,
        u16::from(byte(4) % 3) + 1,
    );
    let metadata = data.get(5..).unwrap_or_default();
    if let MetadataKind::NdTiff = kind {
        return ndtiff_dataset(metadata, shape, limits);
    }
    interpret_metadata(kind, metadata, pages, shape, limits)
}

/// The codecs and predictors: seven bytes choose the compression,
/// predictor, sample type, page shape and strips or a tile; the rest is the
/// compressed chunk.
pub fn codec_target(data: &[u8], limits: &Limits) -> Result<(Series, u64), TiffError> {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let compression = COMPRESSIONS[usize::from(byte(0)) % COMPRESSIONS.len()];
    let predictor = u16::from(byte(1) % 3) + 1;
    let dtype = DType::ALL[usize::from(byte(2)) % DType::ALL.len()];
    let shape = (
        u32::from(byte(3) % 16) + 1,
        u32::from(byte(4) % 16) + 1,
        u16::from(byte(5) % 4) + 1,
    );
    let payload = data.get(7..).unwrap_or_default();
    decode_one_chunk(
        compression,
        predictor,
        dtype,
        shape,
        byte(6) & 1 == 1,
        payload,
        limits,
    )
}

/// Which flavour's metadata parser [`flavour_target`] drives.
#[derive(Debug, Clone, Copy)]
pub enum MetadataKind {
    /// OME-XML in the ImageDescription.
    Ome,
    /// ImageJ's `key=value` ImageDescription.
    ImageJ,
    /// ScanImage's frame data after a BigTIFF header.
    ScanImage,
    /// tifffile's `{"shape": [...]}` ImageDescription.
    Shaped,
    /// Zeiss LSM's CZ_LSMINFO structure.
    Lsm,
    /// Olympus FluoView's MM_Header.
    FluoView,
    /// MetaMorph STK: the first bytes give UIC2tag's plane count and
    /// axis, the rest is the description.
    Stk,
    /// Micro-Manager MMStack: the summary JSON, with an index map placing
    /// the pages by coordinates taken from the text's bytes.
    MicroManager,
    /// Micro-Manager NDTiff: the bytes are `NDTiff.index`, beside a
    /// one-page NDTiff file ([`ndtiff_dataset`]).
    NdTiff,
}

impl MetadataKind {
    /// Every flavour with a parser of its own (plain files are what any
    /// rejected metadata falls back to).
    pub const ALL: [MetadataKind; 9] = [
        MetadataKind::Ome,
        MetadataKind::ImageJ,
        MetadataKind::ScanImage,
        MetadataKind::Shaped,
        MetadataKind::Lsm,
        MetadataKind::FluoView,
        MetadataKind::Stk,
        MetadataKind::MicroManager,
        MetadataKind::NdTiff,
    ];
}

/// Opens an NDTiff dataset made of one 8-bit `width`×`height`×`samples`
/// page and an `NDTiff.index` holding `index` (written to a temporary
/// folder, removed afterwards), and decodes nothing.
pub fn ndtiff_dataset(
    index: &[u8],
    (width, height, samples): (u32, u32, u16),
    limits: &Limits,
) -> Result<Series, TiffError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "pentascope-ndtiff-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("make a temporary folder");
    // NDTiff v3's words after the TIFF header: its magic number, major and
    // minor version, then the summary's magic number, length and JSON
    let summary = b"{}";
    let mut preamble = Vec::new();
    for word in [483_729u32, 3, 0, 2_355_492, summary.len() as u32] {
        preamble.extend_from_slice(&word.to_le_bytes());
    }
    preamble.extend_from_slice(summary);
    let mut tiff = TiffBuilder::classic();
    tiff.preamble(preamble);
    let pixels = (width * height) as usize * usize::from(samples);
    let blob = tiff.blob(vec![0; pixels]);
    tiff.page(PageSpec {
        samples,
        photometric: Some(if samples == 3 { 2 } else { 1 }),
        extra_tags: vec![(51123, b"{}".to_vec())],
        ..PageSpec::new(width, height, blob)
    });
    let path = dir.join("fuzz_NDTiffStack.tif");
    std::fs::write(&path, tiff.build()).expect("write the NDTiff file");
    std::fs::write(dir.join("NDTiff.index"), index).expect("write the index");
    let opened = TiffFile::open(&path, limits, None).map(|f| f.series().clone());
    let _ = std::fs::remove_dir_all(&dir);
    opened
}

/// Interprets `metadata` as `kind` metadata of a file with `pages`
/// uncompressed `width`×`height` pages of `samples` samples, and maps it
/// onto a series. Nothing is decoded.
pub fn interpret_metadata(
    kind: MetadataKind,
    metadata: &[u8],
    pages: usize,
    (width, height, samples): (u32, u32, u16),
    limits: &Limits,
) -> Result<Series, TiffError> {
    let page = PageLayout {
        width,
        height,
        samples,
        dtype: DType::U8,
        bits_per_sample: 8,
        planar_separate: false,
        codec: Codec::None,
        predictor: 1,
        geometry: ChunkGeometry::Strips { rows: height },
        offsets: vec![0],
        byte_counts: vec![u64::from(width) * u64::from(height) * u64::from(samples)],
        reduced: false,
        subfile_type: 0,
        jpeg: None,
    };
    let text = String::from_utf8_lossy(metadata);
    let byte = |i: usize| metadata.get(i).copied().unwrap_or(0);
    let mut header = Vec::new();
    let binary = |k: MetadataKind| std::mem::discriminant(&kind) == std::mem::discriminant(&k);
    let description = match kind {
        MetadataKind::Lsm | MetadataKind::FluoView | MetadataKind::MicroManager => None,
        MetadataKind::ScanImage => {
            header.extend_from_slice(b"II+\0\x08\0\0\0\0\0\0\0\0\0\0\0");
            for word in [0x0703_0301u32, 3, text.len() as u32, 0] {
                header.extend_from_slice(&word.to_le_bytes());
            }
            header.extend_from_slice(text.as_bytes());
            None
        }
        _ => Some(text.to_string()),
    };
    let chain = IfdChain {
        bigtiff: matches!(kind, MetadataKind::ScanImage),
        big_endian: false,
        pages: (0..pages).map(|_| Ok(page.clone())).collect(),
        description,
        software: None,
        imagej_metadata: None,
        resolution: Some((2.0, 4.0, 3)),
        ifd_offsets: (0..pages as u64).map(|i| 8 + 100 * i).collect(),
        stk: binary(MetadataKind::Stk).then(|| StkPlanes {
            count: u64::from(byte(0)) + 1,
            axis: ['Z', 'T', 'I'][usize::from(byte(1)) % 3],
        }),
        lsm_info: binary(MetadataKind::Lsm).then(|| metadata.to_vec()),
        fluoview_header: binary(MetadataKind::FluoView).then(|| metadata.to_vec()),
        micromanager: binary(MetadataKind::MicroManager).then(|| MicroManager {
            summary: text.to_string(),
            // channel, slice, frame, position and IFD offset of each page
            index_map: (0..pages as u32)
                .map(|i| {
                    let at = 4 * i as usize;
                    let coordinate = |k: usize| u32::from(byte(at + k) % 4);
                    [
                        coordinate(0),
                        coordinate(1),
                        coordinate(2),
                        coordinate(3),
                        8 + 100 * i,
                    ]
                })
                .collect(),
            display_settings: None,
            comments: None,
            first_image: None,
            siblings: Vec::new(),
        }),
        micromanager_tag: binary(MetadataKind::MicroManager),
        ome_files: None,
        file_len: u64::MAX,
        next_ifd: None,
        subifds: Vec::new(),
        sub_pages: Vec::new(),
        subifd_warnings: Vec::new(),
        ndpi: None,
        descriptions: Vec::new(),
        bif: false,
        philips: false,
    };
    let series = Series::from_chain(&chain, &header, None, limits)?;
    series.page_groups();
    Ok(series)
}

/// The compressions the reader decodes, by TIFF tag value (each added
/// after the others, so that the seeds' first bytes keep choosing them):
/// none, LZW, Deflate, PackBits, Zstd, JPEG, then LZMA, CCITT RLE, Group 3
/// and Group 4, WebP, JPEG 2000 and JPEG XL.
pub const COMPRESSIONS: [u16; 13] = [
    1, 5, 8, 32773, 50000, 7, 34925, 2, 3, 4, 50001, 34712, 50002,
];

/// Decodes a one-page TIFF whose only strip (or tile, padded to multiples
/// of 16) is `payload`, compressed with `compression` (a TIFF tag value),
/// with `predictor`, `dtype` and `width`×`height`×`samples`.
pub fn decode_one_chunk(
    compression: u16,
    predictor: u16,
    dtype: DType,
    (width, height, samples): (u32, u32, u16),
    tiled: bool,
    payload: &[u8],
    limits: &Limits,
) -> Result<(Series, u64), TiffError> {
    let mut tiff = TiffBuilder::classic();
    let blob = tiff.blob(payload.to_vec());
    // CCITT codes bilevel pages
    let (sample_format, bits) = match compression {
        2..=4 => (1, 1),
        _ => dtype_tags(dtype),
    };
    tiff.page(PageSpec {
        samples,
        bits,
        sample_format,
        compression,
        predictor,
        tile: tiled.then(|| (width.next_multiple_of(16), height.next_multiple_of(16))),
        ..PageSpec::new(width, height, blob)
    });
    read_every_plane(tiff.write().path(), limits)
}

/// SampleFormat and BitsPerSample of `dtype`.
pub fn dtype_tags(dtype: DType) -> (u16, u16) {
    let format = match dtype {
        DType::F16 | DType::F32 | DType::F64 => 3,
        DType::I8 | DType::I16 | DType::I32 | DType::I64 => 2,
        _ => 1,
    };
    (format, dtype.size() as u16 * 8)
}
