//! Helpers shared by the hostile-input tests and the fuzz targets (which
//! include this file from `fuzz/src/lib.rs`): a byte-level TIFF writer for
//! building hostile files, and the harnesses that drive the reader, so that
//! a regression file is replayed exactly as the fuzzer ran it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use pentascope_core::tiff::{ChunkGeometry, Codec, IfdChain, PageLayout, Series, TiffFile};
use pentascope_core::{dispatch_dtype, CoreError, DType, Limits, Sample};

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
    blobs: Vec<Vec<u8>>,
    pages: Vec<PageSpec>,
}

enum Values {
    Short(Vec<u16>),
    Long(Vec<u32>),
    Ascii(Vec<u8>),
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
            if page.predictor != 1 {
                entries.push((317, Values::Short(vec![page.predictor])));
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

/// Limits for fuzzing: small enough that no input costs more than a few
/// milliseconds or megabytes to decode.
pub fn tight_limits() -> Limits {
    Limits {
        max_samples: 1 << 20,
        max_plane_pixels: 1 << 20,
        max_pages: 1 << 10,
        max_chunk_bytes: 1 << 22,
        max_metadata_bytes: 1 << 20,
        max_channels: 64,
    }
}

/// Opens `path` and decodes every page of its series, in bands of a few
/// rows (so that band edges fall inside strips and tiles). Returns the
/// series and how many samples were decoded.
pub fn read_every_plane(path: &Path, limits: &Limits) -> Result<(Series, u64), CoreError> {
    let file = TiffFile::open(path, limits, None)?;
    let decoded = dispatch_dtype!(file.series().dtype, T => read_pages::<T>(&file))?;
    Ok((file.series().clone(), decoded))
}

fn read_pages<T: Sample>(file: &TiffFile) -> Result<u64, CoreError> {
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
pub fn reader_target(data: &[u8], limits: &Limits) -> Result<(Series, u64), CoreError> {
    let file = TempFile::with_bytes(data);
    read_every_plane(file.path(), limits)
}

/// The flavour parsers: five bytes choose the flavour and the pages'
/// count and shape, the rest is the metadata text.
pub fn flavour_target(data: &[u8], limits: &Limits) -> Result<Series, CoreError> {
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let kind = match byte(0) % 4 {
        0 => MetadataKind::Ome,
        1 => MetadataKind::ImageJ,
        2 => MetadataKind::ScanImage,
        _ => MetadataKind::Shaped,
    };
    let pages = usize::from(byte(1) % 8) + 1;
    let shape = (
        u32::from(byte(2) % 4) + 1,
        u32::from(byte(3) % 4) + 1,
        u16::from(byte(4) % 3) + 1,
    );
    let text = String::from_utf8_lossy(data.get(5..).unwrap_or_default());
    interpret_metadata(kind, &text, pages, shape, limits)
}

/// The codecs and predictors: seven bytes choose the compression,
/// predictor, sample type, page shape and strips or a tile; the rest is the
/// compressed chunk.
pub fn codec_target(data: &[u8], limits: &Limits) -> Result<(Series, u64), CoreError> {
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

/// Which flavour's metadata parser [`interpret_metadata`] drives.
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
}

/// Interprets `text` as `kind` metadata of a file with `pages`
/// uncompressed `width`×`height` pages of `samples` samples, and maps it
/// onto a series. Nothing is decoded.
pub fn interpret_metadata(
    kind: MetadataKind,
    text: &str,
    pages: usize,
    (width, height, samples): (u32, u32, u16),
    limits: &Limits,
) -> Result<Series, CoreError> {
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
    };
    let mut header = Vec::new();
    let description = match kind {
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
        resolution: Some((2.0, 4.0, 3)),
    };
    let series = Series::from_chain(&chain, &header, None, limits)?;
    series.page_groups();
    Ok(series)
}

/// The compressions the reader decodes, by TIFF tag value.
pub const COMPRESSIONS: [u16; 5] = [1, 5, 8, 32773, 50000];

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
) -> Result<(Series, u64), CoreError> {
    let mut tiff = TiffBuilder::classic();
    let blob = tiff.blob(payload.to_vec());
    let (sample_format, bits) = dtype_tags(dtype);
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
        DType::F32 | DType::F64 => 3,
        DType::I8 | DType::I16 | DType::I32 | DType::I64 => 2,
        _ => 1,
    };
    (format, dtype.size() as u16 * 8)
}
